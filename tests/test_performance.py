"""Performance model: arithmetic checked by hand, per-stack numbers derived from the stack files,
and the "Performance model" section of the plan report."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.app.report import render_plan
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.loader import model_input, parse_config
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.performance import (
    lustre_baseline_mbps,
    performance_model,
    render_performance,
    throughput_model,
)
from hpc_platform.domain.pricing import PriceSnapshot, default_prices, estimate_monthly_cost, render_cost
from hpc_platform.domain.spot import spot_share
from tests.support.stacks import STACKS, planned

LoadStack = Callable[[str], dict[str, Any]]


def config_of(stack: str) -> StackConfig:
    return planned(stack).loaded.config


def parsed(config: dict[str, Any]) -> StackConfig:
    return parse_config(model_input(config), "Pulumi.test.yaml").config


# --- Lustre throughput ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capacity_gib", "mbps_per_tib", "expected_mbps"),
    [
        (1200, 200, 234.375),  # 1.171875 TiB × 200
        (2400, 200, 468.75),  # 2.34375 TiB × 200
        (1200, 125, 146.484375),  # 1.171875 TiB × 125
        (9600, 250, 2343.75),  # 9.375 TiB × 250
        (468000, 200, 91406.25),  # 457.03125 TiB × 200
        (93600, 500, 45703.125),  # 91.40625 TiB × 500
        (1024, 1000, 1000.0),  # exactly 1 TiB
    ],
)
def test_lustre_baseline_is_capacity_in_tib_times_mbps_per_tib(
    capacity_gib: int, mbps_per_tib: int, expected_mbps: float
) -> None:
    assert lustre_baseline_mbps(capacity_gib, mbps_per_tib) == expected_mbps


@pytest.mark.parametrize(
    ("stack", "scratch_mbps", "persistent_mbps", "target_gbps"),
    [
        ("dev", 234.375, 146.484375, 0.3),
        ("staging", 4687.5, 2343.75, 6),
        ("prod", 91406.25, 45703.125, 100),
    ],
)
def test_stack_throughput_against_target(
    stack: str, scratch_mbps: float, persistent_mbps: float, target_gbps: float
) -> None:
    model = throughput_model(config_of(stack))
    by_role = {fs.role: fs.baseline_mbps for fs in model.file_systems}
    assert by_role == {"scratch": scratch_mbps, "persistent": persistent_mbps}
    assert model.aggregate_mbps == scratch_mbps + persistent_mbps
    assert model.aggregate_gbps == pytest.approx((scratch_mbps + persistent_mbps) / 1000)
    assert model.target_gbps == target_gbps
    assert model.meets_target is True


def test_fails_target_when_baseline_is_below(stack_config: LoadStack) -> None:
    config = stack_config("dev")
    config["hpc:storage"]["target_aggregate_throughput_gbps"] = 1.0
    model = throughput_model(parsed(config))
    assert model.meets_target is False
    assert model.target_ratio == pytest.approx(0.380859375)
    text = "\n".join(render_performance(performance_model(parsed(config), _catalog())))
    assert "BELOW target (38%)" in text


def test_disabled_file_system_adds_nothing(stack_config: LoadStack) -> None:
    config = stack_config("dev")
    config["hpc:storage"]["scratch"] = {"enabled": False}
    del config["hpc:storage"]["target_aggregate_throughput_gbps"]
    model = throughput_model(parsed(config))
    assert [fs.role for fs in model.file_systems] == ["persistent"]
    assert model.aggregate_mbps == 146.484375
    assert model.meets_target is None


# --- capacity, EFA, Spot -------------------------------------------------------------------------
def _catalog() -> InstanceCatalog:
    from hpc_platform.domain.catalog import default_catalog

    return default_catalog()


def test_prod_capacity_by_hand(catalog: InstanceCatalog) -> None:
    model = performance_model(config_of("prod"), catalog)
    # hpc6a.48xl 96 vCPU (no SMT), c5n.18xl 72, x2iedn.32xl 128, p4d.24xl 96, c6i.2xl 8.
    queues = {q.queue: (q.max_nodes, q.max_vcpus, q.max_slurm_cpus) for q in model.queues}
    assert queues == {
        "mpi-hpc6a": (200, 19200, 19200),
        "compute-spot": (560, 40320, 20160),
        "compute-od": (140, 10080, 5040),
        "memory-spot": (32, 4096, 2048),
        "memory-od": (12, 1536, 768),
        "gpu": (16, 1536, 768),
        "debug": (40, 320, 320),
    }
    assert model.max_nodes == 1000 == model.max_total_nodes
    assert model.max_vcpus == 77088
    # Every compute-purpose queue is EFA, single-AZ, with a placement group.
    assert (model.efa.efa_vcpus, model.efa.mpi_vcpus, model.efa.share) == (69600, 69600, 1.0)
    # Spot: (40320 + 4096) / (40320 + 10080 + 4096 + 1536 + 1536 + 320); hpc6a left out.
    assert (model.spot.spot_vcpus, model.spot.eligible_vcpus, model.spot.ineligible_vcpus) == (
        44416,
        57888,
        19200,
    )
    assert model.spot.share == pytest.approx(0.76727, abs=1e-5)
    assert model.spot_target == 0.70


def test_dev_capacity_by_hand(catalog: InstanceCatalog) -> None:
    model = performance_model(config_of("dev"), catalog)
    assert (model.max_nodes, model.max_vcpus, model.max_slurm_cpus) == (7, 368, 188)
    assert model.efa.share == 1.0
    assert model.spot.share == pytest.approx(288 / 368)


@pytest.mark.parametrize("stack", STACKS)
def test_model_agrees_with_config_and_spot_module(stack: str, catalog: InstanceCatalog) -> None:
    config = config_of(stack)
    model = performance_model(config, catalog)
    assert [q.queue for q in model.queues] == [q.name for q in config.cluster.queues]
    assert model.max_nodes == sum(r.max_count for q in config.cluster.queues for r in q.compute_resources)
    assert model.max_nodes <= config.cluster.max_total_nodes
    assert model.spot == spot_share(config, catalog)
    for queue in model.queues:
        if queue.efa_vcpus:
            assert len(queue.azs) == 1


def test_efa_coverage_drops_when_an_mpi_queue_has_no_efa(
    stack_config: LoadStack, catalog: InstanceCatalog
) -> None:
    config = stack_config("dev")
    config["hpc:cluster"]["queues"][1]["enable_efa"] = False  # compute-od: 1 × 72 vCPUs
    model = performance_model(parsed(config), catalog)
    assert (model.efa.efa_vcpus, model.efa.mpi_vcpus) == (288, 360)
    assert model.efa.share == 0.8
    assert model.efa.uncovered_queues == ("compute-od",)


def test_efa_coverage_honours_compute_resource_override(
    stack_config: LoadStack, catalog: InstanceCatalog
) -> None:
    config = stack_config("dev")
    config["hpc:cluster"]["queues"][0]["compute_resources"][0]["enable_efa"] = False  # 4 × 72
    model = performance_model(parsed(config), catalog)
    assert (model.efa.efa_vcpus, model.efa.mpi_vcpus) == (72, 360)
    assert model.efa.uncovered_queues == ("compute-spot",)


# --- the plan report -----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_plan_report_shows_the_performance_model(stack: str) -> None:
    text = render_plan(planned(stack))
    section = text.split("Performance model:\n", 1)[1]
    config = config_of(stack)
    assert "Lustre baseline throughput" in section
    assert f"vs target {config.storage.target_aggregate_throughput_gbps:g} GB/s: meets target" in section
    assert "EFA coverage of MPI (compute) queues: 100%" in section
    assert "Spot share:" in section
    for queue in config.cluster.queues:
        assert f"    {queue.name} " in section


def test_prod_report_numbers() -> None:
    section = render_plan(planned("prod")).split("Performance model:\n", 1)[1]
    assert "468,000 GiB (457.03 TiB) × 200 MB/s/TiB = 91.4 GB/s" in section
    assert "93,600 GiB (91.41 TiB) × 500 MB/s/TiB = 45.7 GB/s" in section
    assert "aggregate   137.11 GB/s vs target 100 GB/s: meets target (137%)" in section
    assert "1,000 max nodes (cap 1,000), 77,088 max vCPUs" in section
    assert "Spot share: 77% of 57,888 Spot-eligible max vCPUs (target ≥ 70%)" in section


# --- cost estimate -------------------------------------------------------------------------------
def _flat_prices(**overrides: Any) -> PriceSnapshot:
    """$1/h for every type the stacks use, $0.10/GB-month Lustre, everything else free: easy sums."""
    prices = default_prices()
    base = {
        "ec2_on_demand_hourly": dict.fromkeys(prices.ec2_on_demand_hourly, 1.0),
        "fsx_lustre_gb_month": dict.fromkeys(prices.fsx_lustre_gb_month, 0.1),
        "nat_gateway_hourly": 0.0,
        "interface_endpoint_az_hourly": 0.0,
        "aurora_serverless_v2_acu_hourly": 0.0,
        "hours_per_month": 100.0,
        "spot_discount": 0.5,
    }
    return dataclasses.replace(prices, **{**base, **overrides})


def test_dev_cost_by_hand() -> None:
    estimate = estimate_monthly_cost(config_of("dev"), default_prices(), utilization=0.25)
    by_item = {line.item: round(line.monthly_usd, 3) for line in estimate.lines}
    assert by_item == {
        "head node": 124.1,  # 0.17 × 730
        "queue compute-spot": 1135.296,  # 4 × 0.25 nodes × 3.888 × (1 − 0.6) × 730
        "queue compute-od": 709.56,  # 1 × 0.25 × 3.888 × 730
        "queue debug": 62.05,  # 2 × 0.25 × 0.17 × 730
        "Lustre scratch": 168.0,  # 1200 × 0.14
        "Lustre persistent": 174.0,  # 1200 × 0.145 (PERSISTENT_2/125)
        "NAT gateways": 32.85,  # 1 × 0.045 × 730
        "VPC interface endpoints": 102.2,  # 7 × 2 AZs × 0.01 × 730
        "Slurm accounting DB": 43.8,  # 0.5 ACU × 0.12 × 730
    }
    assert estimate.monthly_usd == pytest.approx(2551.856)
    assert estimate.ceiling_usd == pytest.approx(8272.574)
    assert estimate.fixed_usd == pytest.approx(644.95)
    assert estimate.utilization_within(2000) == pytest.approx((2000 - 644.95) / 7627.624)
    assert estimate.unpriced == ()


@pytest.mark.parametrize("stack", STACKS)
def test_cost_scales_with_utilization_and_spot_discount(stack: str) -> None:
    config = config_of(stack)
    prices = _flat_prices()
    idle = estimate_monthly_cost(config, prices, utilization=0)
    full = estimate_monthly_cost(config, prices, utilization=1)
    # $1/h × 100 h: On-Demand node-months cost 100, Spot ones 50; Lustre $0.10/GB.
    compute = sum(
        r.max_count * (50 if q.capacity_type == "SPOT" else 100)
        for q in config.cluster.queues
        for r in q.compute_resources
    )
    lustre = 0.1 * (config.storage.scratch.capacity_gib + config.storage.persistent.capacity_gib)
    assert idle.monthly_usd == pytest.approx(100 + lustre)
    assert full.monthly_usd == pytest.approx(100 + lustre + compute) == full.ceiling_usd
    assert idle.ceiling_usd == pytest.approx(full.ceiling_usd)


def test_min_count_nodes_run_all_month(stack_config: LoadStack) -> None:
    config = stack_config("dev")
    config["hpc:cluster"]["queues"][2]["compute_resources"][0]["min_count"] = 1  # debug: 1 of 2
    estimate = estimate_monthly_cost(parsed(config), _flat_prices(), utilization=0.5)
    debug = next(line for line in estimate.lines if line.item == "queue debug")
    assert debug.monthly_usd == pytest.approx(150)  # (1 + 1 × 0.5) nodes × $1 × 100 h
    assert debug.fixed_usd == pytest.approx(100)


def test_fails_unpriced_types_are_reported_not_guessed(stack_config: LoadStack) -> None:
    config = stack_config("dev")
    config["hpc:cluster"]["queues"][2]["compute_resources"][0]["instance_type"] = "c6i.large"
    estimate = estimate_monthly_cost(parsed(config))
    assert estimate.unpriced == ("c6i.large",)
    assert "queue debug" not in {line.item for line in estimate.lines}
    assert "  no price in the snapshot for: c6i.large (left out)" in render_cost(estimate)


def test_fails_utilization_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        estimate_monthly_cost(config_of("dev"), utilization=1.5)


def test_price_snapshot_says_what_it_is() -> None:
    prices = default_prices()
    assert prices.region == "us-east-2" and prices.currency == "USD"
    assert "approximate" in prices.source.lower() and "not fetched" in prices.source
    assert re.fullmatch(r"\d{4}-\d{2}", prices.as_of)
    # Every instance type the committed stacks use is priced.
    for stack in STACKS:
        assert estimate_monthly_cost(config_of(stack)).unpriced == ()


def test_report_labels_the_cost_estimate() -> None:
    stack_plan = planned("prod")
    text = render_plan(stack_plan)
    section = text.split("Cost estimate", 1)[1]
    assert section.startswith(" (approximate, us-east-2 list prices as of ")
    assert "an estimate, not a quote" in section.splitlines()[0]
    assert "Spot 60% below On-Demand" in section
    budget = stack_plan.loaded.config.observability.budget
    assert budget is not None
    assert f"budget: ${budget.monthly_limit_usd:,.0f} / month" in section


def test_report_lists_components_in_build_order() -> None:
    text = render_plan(planned("prod"))
    # The stack's direct children in the preview tree: ` +   ├─ hpc:network:EfaNetwork  name`.
    tokens = re.findall(r"^ \+   [├└]─ (hpc:\S+)", text, flags=re.MULTILINE)
    assert tokens == [
        "hpc:network:EfaNetwork",
        "hpc:storage:DataRepository",
        "hpc:storage:LustreFs",
        "hpc:cluster:ParallelCluster",
        "hpc:observability:Observability",
        "hpc:audit:AuditTrail",
    ]
