"""Performance model of a stack: what its config promises, computed before anything is deployed.

Pure functions over `StackConfig` and the instance catalog; the plan report prints them.

- Lustre baseline throughput: `hpc_platform.domain.lustre`'s (capacity in TiB × MB/s per TiB for
  each enabled file system), summed and set beside `storage.target_aggregate_throughput_gbps`.
- EFA coverage: the share of compute-purpose queues' max vCPUs that run with EFA in one AZ with
  a cluster placement group, i.e. where tightly coupled MPI jobs get low-latency networking.
- Capacity: maximum nodes, vCPUs and Slurm CPUs per queue and in total.
- Spot share: `hpc_platform.domain.spot`'s definition (Spot-ineligible types left out of the ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.models import QueueConfig, StackConfig
from hpc_platform.domain.lustre import (
    GIB_PER_TIB,
    MB_PER_GB,
    LustreBaseline,
    ThroughputModel,
    lustre_baseline_mbps,
    lustre_throughput_model,
)
from hpc_platform.domain.placement import place_queue, resource_uses_efa
from hpc_platform.domain.spot import SpotShare, spot_share

MPI_PURPOSE = "compute"
"""Queues of this purpose are the MPI queues EFA coverage is measured over."""


# ---------------------------------------------------------------------------------------------
# Lustre throughput (`hpc_platform.domain.lustre`)
# ---------------------------------------------------------------------------------------------
def throughput_model(config: StackConfig) -> ThroughputModel:
    storage = config.storage
    return lustre_throughput_model(
        scratch_capacity_gib=storage.scratch.capacity_gib if storage.scratch.enabled else None,
        persistent_capacity_gib=storage.persistent.capacity_gib if storage.persistent.enabled else None,
        persistent_throughput_mbps_per_tib=storage.persistent.throughput_mbps_per_tib,
        target_gbps=storage.target_aggregate_throughput_gbps,
    )


# ---------------------------------------------------------------------------------------------
# Queues: capacity and EFA
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueCapacity:
    queue: str
    purpose: str
    capacity_type: str
    instance_types: tuple[str, ...]
    azs: tuple[str, ...]
    max_nodes: int
    max_vcpus: int
    max_slurm_cpus: int
    """CPUs Slurm schedules: physical cores where hyperthreading is disabled, else vCPUs."""
    efa_vcpus: int
    """Max vCPUs with EFA on, in a single AZ with a cluster placement group."""

    @property
    def efa_share(self) -> float:
        return self.efa_vcpus / self.max_vcpus if self.max_vcpus else 0.0


def queue_capacity(queue: QueueConfig, config: StackConfig, catalog: InstanceCatalog) -> QueueCapacity:
    placement = place_queue(queue, config, catalog)
    # The network builds a cluster placement group for every EFA queue, and EFA queues run in one AZ.
    placed_for_mpi = placement.efa and len(placement.azs) == 1
    nodes = vcpus = slurm_cpus = efa_vcpus = 0
    types: list[str] = []
    for resource in queue.compute_resources:
        spec = catalog.get(resource.instance_type)
        if spec is None:
            continue
        types.append(resource.instance_type)
        nodes += resource.max_count
        resource_vcpus = spec.vcpus * resource.max_count
        vcpus += resource_vcpus
        per_node = spec.default_cores if resource.disable_hyperthreading else spec.vcpus
        slurm_cpus += per_node * resource.max_count
        if resource_uses_efa(queue, resource) and spec.efa_supported and placed_for_mpi:
            efa_vcpus += resource_vcpus
    return QueueCapacity(
        queue=queue.name,
        purpose=queue.purpose,
        capacity_type=queue.capacity_type,
        instance_types=tuple(dict.fromkeys(types)),
        azs=placement.azs,
        max_nodes=nodes,
        max_vcpus=vcpus,
        max_slurm_cpus=slurm_cpus,
        efa_vcpus=efa_vcpus,
    )


@dataclass(frozen=True)
class EfaCoverage:
    efa_vcpus: int
    mpi_vcpus: int
    """Max vCPUs of compute-purpose (MPI) queues."""
    uncovered_queues: tuple[str, ...]
    """MPI queues with some capacity not covered."""

    @property
    def share(self) -> float:
        return self.efa_vcpus / self.mpi_vcpus if self.mpi_vcpus else 0.0


def efa_coverage(queues: tuple[QueueCapacity, ...]) -> EfaCoverage:
    mpi = [q for q in queues if q.purpose == MPI_PURPOSE]
    return EfaCoverage(
        efa_vcpus=sum(q.efa_vcpus for q in mpi),
        mpi_vcpus=sum(q.max_vcpus for q in mpi),
        uncovered_queues=tuple(q.queue for q in mpi if q.efa_vcpus < q.max_vcpus),
    )


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerformanceModel:
    throughput: ThroughputModel
    queues: tuple[QueueCapacity, ...]
    efa: EfaCoverage
    spot: SpotShare
    spot_target: float
    max_total_nodes: int
    """The configured cap on the sum of every compute resource's max_count."""

    @property
    def max_nodes(self) -> int:
        return sum(q.max_nodes for q in self.queues)

    @property
    def max_vcpus(self) -> int:
        return sum(q.max_vcpus for q in self.queues)

    @property
    def max_slurm_cpus(self) -> int:
        return sum(q.max_slurm_cpus for q in self.queues)


def performance_model(config: StackConfig, catalog: InstanceCatalog) -> PerformanceModel:
    queues = tuple(queue_capacity(queue, config, catalog) for queue in config.cluster.queues)
    return PerformanceModel(
        throughput=throughput_model(config),
        queues=queues,
        efa=efa_coverage(queues),
        spot=spot_share(config, catalog),
        spot_target=config.cluster.spot.min_share,
        max_total_nodes=config.cluster.max_total_nodes,
    )


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------
def _mbps(value: float) -> str:
    return f"{value / MB_PER_GB:,.1f} GB/s" if value >= MB_PER_GB else f"{value:,.1f} MB/s"


def render_performance(model: PerformanceModel) -> list[str]:
    """The "Performance model" section of the plan report."""
    lines = ["Performance model:"]
    throughput = model.throughput
    lines.append("  Lustre baseline throughput:")
    for fs in throughput.file_systems:
        lines.append(
            f"    {fs.role:<11} {fs.deployment_type:<13} "
            f"{fs.capacity_gib:>9,} GiB ({fs.capacity_tib:,.2f} TiB)"
            f" × {fs.throughput_mbps_per_tib:g} MB/s/TiB = {_mbps(fs.baseline_mbps)}"
        )
    if not throughput.file_systems:
        lines.append("    no Lustre file system enabled")
    aggregate = f"    aggregate   {throughput.aggregate_gbps:,.2f} GB/s"
    if throughput.target_gbps is not None and throughput.target_ratio is not None:
        verdict = "meets" if throughput.meets_target else "BELOW"
        aggregate += (
            f" vs target {throughput.target_gbps:g} GB/s: {verdict} target ({throughput.target_ratio:.0%})"
        )
    else:
        aggregate += " (no target set: storage.target_aggregate_throughput_gbps)"
    lines.append(aggregate)
    efa = model.efa
    efa_line = f"  EFA coverage of MPI (compute) queues: {efa.share:.0%} of {efa.mpi_vcpus:,} max vCPUs"
    if efa.uncovered_queues:
        efa_line += f"; not fully covered: {', '.join(efa.uncovered_queues)}"
    lines.append(efa_line)
    spot = model.spot
    spot_line = (
        f"  Spot share: {spot.share:.0%} of {spot.eligible_vcpus:,} Spot-eligible max vCPUs"
        f" (target ≥ {model.spot_target:.0%})"
    )
    if spot.ineligible_vcpus:
        spot_line += f"; {spot.ineligible_vcpus:,} vCPUs On-Demand-only types left out"
    lines.append(spot_line)
    lines.append(
        f"  Capacity: {model.max_nodes:,} max nodes (cap {model.max_total_nodes:,}), "
        f"{model.max_vcpus:,} max vCPUs, {model.max_slurm_cpus:,} Slurm CPUs"
    )
    lines.append(
        f"    {'queue':<14} {'purpose':<8} {'capacity':<9} "
        f"{'nodes':>6} {'vCPUs':>8} {'Slurm CPUs':>10}  EFA   AZ"
    )
    for q in model.queues:
        lines.append(
            f"    {q.queue:<14} {q.purpose:<8} {q.capacity_type:<9} {q.max_nodes:>6,} {q.max_vcpus:>8,}"
            f" {q.max_slurm_cpus:>10,}  {q.efa_share:>4.0%}  {', '.join(q.azs) or '-'}"
        )
    return lines


__all__ = [
    "GIB_PER_TIB",
    "MB_PER_GB",
    "EfaCoverage",
    "LustreBaseline",
    "PerformanceModel",
    "QueueCapacity",
    "ThroughputModel",
    "efa_coverage",
    "lustre_baseline_mbps",
    "performance_model",
    "queue_capacity",
    "render_performance",
    "throughput_model",
]
