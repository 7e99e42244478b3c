"""A rough monthly cost estimate of a stack, from a bundled price snapshot.

An estimate, not a quote: prices come from `catalog/prices.json` (approximate list prices for one
region, dated, compiled by hand; see its `source`), Spot is an assumed discount off On-Demand, and
compute is charged for `min_count` nodes all month plus the rest of `max_count` for an assumed
share of the month; reserved capacity (a compute resource's `capacity_reservation`) is paid for
every reserved instance all month, used or not. Usage-priced items (S3 and EFS bytes, data
transfer, NAT data processing) are listed as rates, not amounts. Nothing here calls AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hpc_platform.domain.config.models import ComputeResourceConfig, StackConfig
from hpc_platform.domain.limits import LUSTRE_PERSISTENT_2, LUSTRE_SCRATCH_2

PRICES_PATH = Path(__file__).parent / "catalog" / "prices.json"
PRICES_FORMAT = 1
DEFAULT_UTILIZATION = 0.25
"""Share of the month the nodes above `min_count` run, when the caller does not say."""


@dataclass(frozen=True)
class PriceSnapshot:
    region: str
    currency: str
    as_of: str
    source: str
    hours_per_month: float
    spot_discount: float
    ec2_on_demand_hourly: dict[str, float]
    fsx_lustre_gb_month: dict[str, float]
    nat_gateway_hourly: float
    interface_endpoint_az_hourly: float
    aurora_serverless_v2_acu_hourly: float
    s3_standard_gb_month: float
    efs_standard_gb_month: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PriceSnapshot:
        if data.get("format") != PRICES_FORMAT:
            raise ValueError(f"unsupported price snapshot format {data.get('format')!r}")
        return cls(
            region=data["region"],
            currency=data["currency"],
            as_of=data["as_of"],
            source=data["source"],
            hours_per_month=float(data["hours_per_month"]),
            spot_discount=float(data["assumptions"]["spot_discount"]),
            ec2_on_demand_hourly={k: float(v) for k, v in data["ec2_on_demand_hourly"].items()},
            fsx_lustre_gb_month={k: float(v) for k, v in data["fsx_lustre_gb_month"].items()},
            nat_gateway_hourly=float(data["nat_gateway_hourly"]),
            interface_endpoint_az_hourly=float(data["interface_endpoint_az_hourly"]),
            aurora_serverless_v2_acu_hourly=float(data["aurora_serverless_v2_acu_hourly"]),
            s3_standard_gb_month=float(data["s3_standard_gb_month"]),
            efs_standard_gb_month=float(data["efs_standard_gb_month"]),
        )

    def lustre_key(self, deployment_type: str, throughput_mbps_per_tib: int | None = None) -> str:
        return (
            deployment_type
            if throughput_mbps_per_tib is None
            else f"{deployment_type}/{throughput_mbps_per_tib}"
        )


@cache
def default_prices() -> PriceSnapshot:
    return PriceSnapshot.from_json(json.loads(PRICES_PATH.read_text()))


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly_usd: float
    detail: str
    ceiling_usd: float | None = None
    """Same item with every compute node running all month (compute lines only)."""
    fixed_usd: float | None = None
    """The part that does not depend on utilization (compute lines: the min_count nodes, and
    reserved capacity)."""
    reserved: bool = False
    """Reserved capacity: paid all month whether nodes run or not."""


@dataclass(frozen=True)
class CostEstimate:
    lines: tuple[CostLine, ...]
    utilization: float
    snapshot: PriceSnapshot
    region: str
    unpriced: tuple[str, ...] = field(default_factory=tuple)
    """Instance types or tiers the snapshot has no price for (left out of the totals)."""

    @property
    def monthly_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    @property
    def ceiling_usd(self) -> float:
        """Every compute node at max_count all month, everything else as estimated."""
        return sum(
            line.ceiling_usd if line.ceiling_usd is not None else line.monthly_usd for line in self.lines
        )

    @property
    def fixed_usd(self) -> float:
        """Cost with no node above min_count running."""
        return sum(line.fixed_usd if line.fixed_usd is not None else line.monthly_usd for line in self.lines)

    def utilization_within(self, budget_usd: float) -> float:
        """Share of the month the nodes above min_count can run before `budget_usd` is spent
        (0: the fixed costs alone exceed it; 1: even the ceiling fits)."""
        variable = self.ceiling_usd - self.fixed_usd
        if variable <= 0:
            return 1.0 if self.fixed_usd <= budget_usd else 0.0
        return min(1.0, max(0.0, (budget_usd - self.fixed_usd) / variable))


def estimate_monthly_cost(
    config: StackConfig, prices: PriceSnapshot | None = None, utilization: float = DEFAULT_UTILIZATION
) -> CostEstimate:
    if not 0 <= utilization <= 1:
        raise ValueError(f"utilization must be between 0 and 1, not {utilization}")
    prices = prices or default_prices()
    hours = prices.hours_per_month
    lines: list[CostLine] = []
    unpriced: list[str] = []

    head = config.cluster.head_node.instance_type
    if head in prices.ec2_on_demand_hourly:
        rate = prices.ec2_on_demand_hourly[head]
        lines.append(CostLine("head node", rate * hours, f"1 × {head} × ${rate:g}/h × {hours:g} h"))
    else:
        unpriced.append(head)

    for queue in config.cluster.queues:
        spot = queue.capacity_type == "SPOT"
        for resource in queue.compute_resources:
            on_demand = prices.ec2_on_demand_hourly.get(resource.instance_type)
            if on_demand is None:
                unpriced.append(resource.instance_type)
                continue
            if resource.capacity_reservation is not None:
                lines.append(_reserved_line(queue.name, resource, on_demand, hours, utilization))
                continue
            rate = on_demand * (1 - prices.spot_discount) if spot else on_demand
            nodes = resource.min_count + (resource.max_count - resource.min_count) * utilization
            kind = f"Spot ≈ ${rate:.4g}/h" if spot else f"${rate:g}/h"
            lines.append(
                CostLine(
                    f"queue {queue.name}",
                    nodes * rate * hours,
                    f"{nodes:g} avg of {resource.max_count} × {resource.instance_type} × {kind}",
                    ceiling_usd=resource.max_count * rate * hours,
                    fixed_usd=resource.min_count * rate * hours,
                )
            )

    storage = config.storage
    lustre: list[tuple[str, int, str]] = []
    if storage.scratch.enabled:
        lustre.append(("scratch", storage.scratch.capacity_gib, prices.lustre_key(LUSTRE_SCRATCH_2)))
    if storage.persistent.enabled:
        key = prices.lustre_key(LUSTRE_PERSISTENT_2, storage.persistent.throughput_mbps_per_tib)
        lustre.append(("persistent", storage.persistent.capacity_gib, key))
    for role, capacity_gib, key in lustre:
        gb_month = prices.fsx_lustre_gb_month.get(key)
        if gb_month is None:
            unpriced.append(key)
            continue
        lines.append(
            CostLine(
                f"Lustre {role}",
                capacity_gib * gb_month,
                f"{capacity_gib:,} GB × ${gb_month:g}/GB-month ({key})",
            )
        )

    network = config.network
    azs = len(network.availability_zones)
    nat_count = {"none": 0, "single": 1, "one_per_az": azs}[network.nat_gateways]
    if nat_count:
        rate = prices.nat_gateway_hourly
        lines.append(
            CostLine(
                "NAT gateways", nat_count * rate * hours, f"{nat_count} × ${rate:g}/h (data processing extra)"
            )
        )
    if network.interface_endpoints:
        count = len(network.interface_endpoints) * azs
        rate = prices.interface_endpoint_az_hourly
        lines.append(
            CostLine(
                "VPC interface endpoints",
                count * rate * hours,
                f"{len(network.interface_endpoints)} endpoints × {azs} AZs × ${rate:g}/h",
            )
        )
    accounting = config.cluster.slurm.accounting
    if accounting.enabled:
        rate = prices.aurora_serverless_v2_acu_hourly
        lines.append(
            CostLine(
                "Slurm accounting DB",
                accounting.min_capacity_acu * rate * hours,
                f"Aurora Serverless v2 at its minimum {accounting.min_capacity_acu:g} ACU × ${rate:g}/ACU-h",
            )
        )
    return CostEstimate(
        lines=tuple(lines),
        utilization=utilization,
        snapshot=prices,
        region=config.region,
        unpriced=tuple(dict.fromkeys(unpriced)),
    )


def _reserved_line(
    queue: str, resource: ComputeResourceConfig, on_demand: float, hours: float, utilization: float
) -> CostLine:
    """A compute resource in reserved capacity: the reserved instances are paid every hour whether
    nodes run or not, at the reservation's rate (a Capacity Block's quoted price) or else the
    On-Demand rate (what an On-Demand Capacity Reservation bills); nodes above the reservation
    (a resource group's, when max_count exceeds the declared count) are open On-Demand as usual."""
    reservation = resource.capacity_reservation
    assert reservation is not None
    reserved = reservation.instance_count or resource.max_count
    rate = reservation.hourly_usd_per_instance or on_demand
    always = min(resource.min_count, reserved)
    base = resource.min_count - always  # min_count nodes the reservation does not hold
    burst = max(0, resource.max_count - max(resource.min_count, reserved))
    reserved_usd = reserved * rate * hours
    rate_kind = "reservation rate" if reservation.hourly_usd_per_instance else "On-Demand rate"
    detail = f"{reserved} reserved × {resource.instance_type} × ${rate:g}/h ({rate_kind}) all month"
    if base or burst:
        detail += f"; {base + burst * utilization:g} avg of {base + burst} more On-Demand × ${on_demand:g}/h"
    return CostLine(
        f"queue {queue} (reserved)",
        reserved_usd + (base + burst * utilization) * on_demand * hours,
        detail,
        ceiling_usd=reserved_usd + (base + burst) * on_demand * hours,
        fixed_usd=reserved_usd + base * on_demand * hours,
        reserved=True,
    )


def render_cost(estimate: CostEstimate, budget_usd: float | None = None) -> list[str]:
    """The "Cost estimate" section of the plan report."""
    snapshot = estimate.snapshot
    lines = [
        f"Cost estimate (approximate, {snapshot.region} list prices as of {snapshot.as_of}; "
        "an estimate, not a quote):",
        f"  assumptions: nodes above min_count run {estimate.utilization:.0%} of the month; "
        f"Spot {snapshot.spot_discount:.0%} below On-Demand; {snapshot.hours_per_month:g} h/month",
    ]
    if any(line.reserved for line in estimate.lines):
        lines.append(
            "  reserved capacity: every reserved instance is paid all month, used or not, at its "
            "declared rate or else On-Demand (a Capacity Block covering fewer days costs proportionally less)"
        )
    if estimate.region != snapshot.region:
        lines.append(f"  note: the stack is in {estimate.region}; prices are for {snapshot.region}")
    for line in estimate.lines:
        lines.append(f"  {line.item:<26} ${line.monthly_usd:>12,.0f}  {line.detail}")
    total = f"  {'total':<26} ${estimate.monthly_usd:>12,.0f} / month"
    total += f"; ceiling ${estimate.ceiling_usd:,.0f} with every node running all month"
    lines.append(total)
    if budget_usd is not None:
        share = estimate.monthly_usd / budget_usd
        lines.append(
            f"  budget: ${budget_usd:,.0f} / month; the estimate is {share:.0%} of it; the budget covers "
            f"nodes above min_count running {estimate.utilization_within(budget_usd):.0%} of the month"
        )
    lines.append(
        f"  not included: S3 (${snapshot.s3_standard_gb_month:g}/GB-month Standard), EFS "
        f"(${snapshot.efs_standard_gb_month:g}/GB-month Standard), data transfer, backups, CloudWatch"
    )
    if estimate.unpriced:
        lines.append(f"  no price in the snapshot for: {', '.join(estimate.unpriced)} (left out)")
    return lines


__all__ = [
    "DEFAULT_UTILIZATION",
    "PRICES_PATH",
    "CostEstimate",
    "CostLine",
    "PriceSnapshot",
    "default_prices",
    "estimate_monthly_cost",
    "render_cost",
]
