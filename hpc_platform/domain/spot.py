"""Spot share: Spot max vCPUs over the max vCPUs of Spot-eligible instance types.

On-Demand-only types (hpc6a, hpc7a) cannot be moved to Spot, so they are left out of the ratio
instead of dragging it down. The config validator, the plan report and the policy pack all use
this one definition (`spot_share_of` on plain values; `spot_share` on anything shaped like the
stack config, `hpc_platform.domain.shapes`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.shapes import StackShape

# Shares are ratios of integers; a target such as 0.7 is met by 7/10 despite float rounding.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SpotShare:
    spot_vcpus: int
    eligible_vcpus: int
    ineligible_vcpus: int

    @property
    def share(self) -> float:
        return self.spot_vcpus / self.eligible_vcpus if self.eligible_vcpus else 0.0

    def below(self, target: float) -> bool:
        """The share misses `target` (never when nothing is Spot-eligible)."""
        return bool(self.eligible_vcpus) and self.share + _TOLERANCE < target


def spot_share_of(resources: Iterable[tuple[str, str, int]], catalog: InstanceCatalog) -> SpotShare:
    """`resources`: (capacity_type, instance_type, max_count) per compute resource."""
    spot = eligible = ineligible = 0
    for capacity_type, instance_type, max_count in resources:
        spec = catalog.get(instance_type)
        if spec is None:
            continue
        vcpus = spec.vcpus * max_count
        if not spec.spot_supported:
            ineligible += vcpus
            continue
        eligible += vcpus
        if capacity_type == "SPOT":
            spot += vcpus
    return SpotShare(spot, eligible, ineligible)


def spot_share(config: StackShape, catalog: InstanceCatalog) -> SpotShare:
    return spot_share_of(
        (
            (queue.capacity_type, resource.instance_type, resource.max_count)
            for queue in config.cluster.queues
            for resource in queue.compute_resources
        ),
        catalog,
    )
