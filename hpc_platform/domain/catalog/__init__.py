"""EC2 instance facts validation needs, from a bundled, versioned snapshot.

The snapshot (`instance_types.json`) is rebuilt by `hpcctl catalog refresh`, which reads EC2's
DescribeInstanceTypes and DescribeInstanceTypeOfferings (see `refresh.py`). Nothing here calls AWS.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

SNAPSHOT_PATH = Path(__file__).with_name("instance_types.json")
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    default_cores: int
    memory_mib: int
    architectures: tuple[str, ...]
    network_performance: str
    efa_supported: bool
    max_efa_interfaces: int
    max_network_interfaces: int
    spot_supported: bool
    capacity_block_supported: bool = False
    """EC2 sells the type in Capacity Blocks (`capacity-block` in its SupportedUsageClasses)."""
    gpus: int = 0
    gpu_model: str | None = None
    gpu_memory_mib: int = 0
    offerings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Region → availability zones that offer this type."""

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def architecture(self) -> str:
        return "arm64" if "arm64" in self.architectures else self.architectures[0]

    def azs(self, region: str) -> tuple[str, ...]:
        return self.offerings.get(region, ())

    def addresses_per_node(self) -> int:
        """Private IPs a node takes in its subnet: one per EFA interface (or the primary ENI)."""
        return max(1, self.max_efa_interfaces) if self.efa_supported else 1

    @classmethod
    def from_json(cls, name: str, data: dict[str, object]) -> InstanceType:
        offerings = data.get("offerings", {})
        assert isinstance(offerings, dict)
        fields = {k: v for k, v in data.items() if k != "offerings"}
        fields["architectures"] = tuple(fields["architectures"])  # type: ignore[arg-type]
        return cls(
            name=name,
            offerings={region: tuple(azs) for region, azs in offerings.items()},
            **fields,  # type: ignore[arg-type]
        )


def _size_units(size: str) -> float | None:
    """`48xlarge` → 48, `xlarge` → 1, `large` → 0.5; `metal` and the like → None."""
    if size == "xlarge":
        return 1.0
    if size == "large":
        return 0.5
    if size == "medium":
        return 0.25
    match = re.fullmatch(r"(\d+)xlarge", size)
    return float(match.group(1)) if match else None


class InstanceCatalog:
    def __init__(
        self, types: dict[str, InstanceType], version: str, regions: tuple[str, ...], source: str = ""
    ):
        self.types = types
        self.version = version
        self.regions = regions
        self.source = source
        """Where the snapshot's data came from (the API and, for a recorded one, the recorder)."""
        # A region's AZs are those that offer at least one catalogued type (the snapshot records
        # offerings by AZ); derived once here so every check reads the same list.
        self._region_azs: dict[str, tuple[str, ...]] = {
            region: tuple(sorted({az for spec in types.values() for az in spec.azs(region)}))
            for region in regions
        }

    def availability_zones(self, region: str) -> tuple[str, ...] | None:
        """The region's availability zones (those offering a catalogued type), sorted; None when
        the snapshot does not cover the region."""
        return self._region_azs.get(region)

    @classmethod
    def from_file(cls, path: Path) -> InstanceCatalog:
        data = json.loads(path.read_text())
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"{path}: unsupported instance catalog format {data.get('format')!r}")
        types = {name: InstanceType.from_json(name, spec) for name, spec in data["instance_types"].items()}
        return cls(
            types, version=data["version"], regions=tuple(data["regions"]), source=data.get("source", "")
        )

    def get(self, name: str) -> InstanceType | None:
        return self.types.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.types

    def suggestions(self, name: str, limit: int = 2) -> list[str]:
        """Close matches for an unknown type: the nearest size in the same family, then the same
        size in the most similar family, then plain spelling matches."""
        found: list[str] = []
        family, _, size = name.partition(".")
        wanted = _size_units(size)
        same_family = [t for t in self.types.values() if t.family == family and _size_units(t.size)]
        if same_family and wanted is not None:
            nearest = min(same_family, key=lambda t: (abs((_size_units(t.size) or 0) - wanted), t.name))
            found.append(nearest.name)
        same_size_families = sorted(
            {t.family for t in self.types.values() if t.size == size and t.family != family}
        )
        for other in difflib.get_close_matches(family, same_size_families, n=1, cutoff=0.6):
            found.append(f"{other}.{size}")
        for close in difflib.get_close_matches(name, list(self.types), n=limit + 2, cutoff=0.75):
            if close not in found:
                found.append(close)
        return found[:limit]


@cache
def default_catalog() -> InstanceCatalog:
    return InstanceCatalog.from_file(SNAPSHOT_PATH)


def or_join(items: list[str]) -> str:
    """`a`, `a or b`, `a, b or c`: for messages."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


__all__ = ["SNAPSHOT_PATH", "InstanceCatalog", "InstanceType", "default_catalog", "or_join"]
