"""FSx for Lustre facts: valid sizes and throughput tiers, and the baseline throughput they give.

Baseline throughput is capacity in TiB × MB/s per TiB: SCRATCH_2 has one rate, PERSISTENT_2 the
configured tier. The aggregate is set beside a design target in GB/s (1 GB = 1000 MB, as FSx quotes
MB/s). The performance model, the config validators and the LustreFs component all read this
module; it takes plain values and does not import the stack schema.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hpc_platform.domain.catalog import or_join
from hpc_platform.domain.limits import (
    LUSTRE_CAPACITY_FIRST_STEPS_GIB,
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_PERSISTENT_2,
    LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB,
    LUSTRE_SCRATCH_2,
    LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB,
)

GIB_PER_TIB = 1024
MB_PER_GB = 1000
SCRATCH = "scratch"
PERSISTENT = "persistent"


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------
def lustre_capacity_ok(capacity_gib: int) -> bool:
    return capacity_gib in LUSTRE_CAPACITY_FIRST_STEPS_GIB or (
        capacity_gib > 0 and capacity_gib % LUSTRE_CAPACITY_INCREMENT_GIB == 0
    )


def lustre_capacity_problem(capacity_gib: int, deployment_type: str) -> str | None:
    """What is wrong with a file system size (None: nothing)."""
    if lustre_capacity_ok(capacity_gib):
        return None
    first, second = LUSTRE_CAPACITY_FIRST_STEPS_GIB
    return (
        f"{capacity_gib} is not a valid {deployment_type} size; use {first}, {second} or a multiple "
        f"of {LUSTRE_CAPACITY_INCREMENT_GIB}"
    )


def persistent_throughput_problem(throughput_mbps_per_tib: int) -> str | None:
    """What is wrong with a PERSISTENT_2 throughput tier (None: nothing)."""
    allowed = LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB
    if throughput_mbps_per_tib in allowed:
        return None
    return (
        f"{throughput_mbps_per_tib} MB/s/TiB is not offered for {LUSTRE_PERSISTENT_2}; "
        f"use {or_join([str(v) for v in allowed])}"
    )


# ---------------------------------------------------------------------------------------------
# Baseline throughput
# ---------------------------------------------------------------------------------------------
def lustre_baseline_mbps(capacity_gib: int, throughput_mbps_per_tib: float) -> float:
    """`1200 GiB × 200 MB/s/TiB` → 1.171875 TiB × 200 = 234.375 MB/s."""
    return capacity_gib / GIB_PER_TIB * throughput_mbps_per_tib


@dataclass(frozen=True)
class LustreBaseline:
    role: str
    """`scratch` or `persistent`."""
    deployment_type: str
    capacity_gib: int
    throughput_mbps_per_tib: float

    @property
    def capacity_tib(self) -> float:
        return self.capacity_gib / GIB_PER_TIB

    @property
    def baseline_mbps(self) -> float:
        return lustre_baseline_mbps(self.capacity_gib, self.throughput_mbps_per_tib)


def scratch_baseline(capacity_gib: int) -> LustreBaseline:
    return LustreBaseline(SCRATCH, LUSTRE_SCRATCH_2, capacity_gib, LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB)


def persistent_baseline(capacity_gib: int, throughput_mbps_per_tib: float) -> LustreBaseline:
    return LustreBaseline(PERSISTENT, LUSTRE_PERSISTENT_2, capacity_gib, throughput_mbps_per_tib)


@dataclass(frozen=True)
class ThroughputModel:
    file_systems: tuple[LustreBaseline, ...]
    """The enabled file systems."""
    target_gbps: float | None

    @property
    def aggregate_mbps(self) -> float:
        return sum(fs.baseline_mbps for fs in self.file_systems)

    @property
    def aggregate_gbps(self) -> float:
        return self.aggregate_mbps / MB_PER_GB

    @property
    def target_mbps(self) -> float | None:
        return None if self.target_gbps is None else self.target_gbps * MB_PER_GB

    @property
    def meets_target(self) -> bool | None:
        """None when no target is configured."""
        return None if self.target_gbps is None else self.aggregate_gbps >= self.target_gbps

    @property
    def target_ratio(self) -> float | None:
        """Aggregate baseline over target (≥ 1: the target is met)."""
        return None if not self.target_gbps else self.aggregate_gbps / self.target_gbps

    def baseline_mbps(self, role: str) -> float:
        """Baseline of the file system with this role; 0 when it is not enabled."""
        return sum(fs.baseline_mbps for fs in self.file_systems if fs.role == role)


def lustre_throughput_model(
    *,
    scratch_capacity_gib: int | None,
    persistent_capacity_gib: int | None,
    persistent_throughput_mbps_per_tib: float,
    target_gbps: float | None = None,
) -> ThroughputModel:
    """The baselines of the enabled file systems (a capacity of None: that one is disabled)."""
    file_systems: Sequence[LustreBaseline] = [
        *([scratch_baseline(scratch_capacity_gib)] if scratch_capacity_gib is not None else []),
        *(
            [persistent_baseline(persistent_capacity_gib, persistent_throughput_mbps_per_tib)]
            if persistent_capacity_gib is not None
            else []
        ),
    ]
    return ThroughputModel(tuple(file_systems), target_gbps)
