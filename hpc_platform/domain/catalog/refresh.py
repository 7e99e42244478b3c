"""Rebuild the instance catalog snapshot from EC2's own APIs.

`hpcctl catalog refresh` calls this with real credentials; the tests call it against moto,
whose EC2 data is a recorded copy of the same two APIs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import boto3

from hpc_platform.domain.catalog import SNAPSHOT_FORMAT

# Families an HPC environment uses: EFA compute, memory-optimised, GPU, and small head/debug types.
HPC_FAMILIES: tuple[str, ...] = (
    "hpc6a",
    "hpc6id",
    "hpc7a",
    "hpc7g",
    "c5",
    "c5n",
    "c6a",
    "c6i",
    "c6id",
    "c6in",
    "c6g",
    "c6gn",
    "c7a",
    "c7g",
    "c7gn",
    "c7i",
    "c8g",
    "m5",
    "m6a",
    "m6i",
    "m6id",
    "m6in",
    "m7a",
    "m7g",
    "m7i",
    "r5",
    "r6a",
    "r6i",
    "r6id",
    "r6in",
    "r7a",
    "r7g",
    "r7i",
    "r7iz",
    "x2idn",
    "x2iedn",
    "x2iezn",
    "x2gd",
    "z1d",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "g5",
    "g6",
    "g6e",
    "trn1",
    "t3",
)
DEFAULT_REGIONS: tuple[str, ...] = ("us-east-1", "us-east-2", "us-west-2")


def describe_instance_type(raw: dict[str, Any]) -> dict[str, Any]:
    """The catalog's fields from one DescribeInstanceTypes item."""
    network = raw.get("NetworkInfo", {})
    gpu_info = raw.get("GpuInfo") or {}
    gpus = gpu_info.get("Gpus", [])
    return {
        "vcpus": raw["VCpuInfo"]["DefaultVCpus"],
        "default_cores": raw["VCpuInfo"].get("DefaultCores", raw["VCpuInfo"]["DefaultVCpus"]),
        "memory_mib": raw["MemoryInfo"]["SizeInMiB"],
        "architectures": sorted(raw.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
        "network_performance": network.get("NetworkPerformance", ""),
        "efa_supported": bool(network.get("EfaSupported", False)),
        "max_efa_interfaces": int((network.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)),
        "max_network_interfaces": int(network.get("MaximumNetworkInterfaces", 1)),
        "spot_supported": "spot" in raw.get("SupportedUsageClasses", []),
        # What ParallelCluster's CapacityTypeValidator reads for a CAPACITY_BLOCK queue.
        "capacity_block_supported": "capacity-block" in raw.get("SupportedUsageClasses", []),
        "gpus": sum(int(g.get("Count", 0)) for g in gpus),
        "gpu_model": gpus[0].get("Name") if gpus else None,
        "gpu_memory_mib": int(gpu_info.get("TotalGpuMemoryInMiB", 0)),
    }


def _wanted(name: str, families: Sequence[str]) -> bool:
    return name.split(".", 1)[0] in families


def _instance_types(session: boto3.Session, region: str, families: Sequence[str]) -> Iterable[Any]:
    ec2 = session.client("ec2", region_name=region)
    # Ask EC2 for the wanted families only, a fraction of all types: fewer pages to fetch and parse.
    wanted = [f"{family}.*" for family in families]
    pages = ec2.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "instance-type", "Values": wanted}]
    )
    for page in pages:
        for item in page["InstanceTypes"]:
            if _wanted(item["InstanceType"], families):
                yield item


def _offerings(session: boto3.Session, region: str, families: Sequence[str]) -> dict[str, list[str]]:
    ec2 = session.client("ec2", region_name=region)
    azs: dict[str, list[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(LocationType="availability-zone"):
        for offer in page["InstanceTypeOfferings"]:
            if _wanted(offer["InstanceType"], families):
                azs.setdefault(offer["InstanceType"], []).append(offer["Location"])
    return {name: sorted(set(zones)) for name, zones in azs.items()}


def build_snapshot(
    session: boto3.Session,
    regions: Sequence[str] = DEFAULT_REGIONS,
    families: Sequence[str] = HPC_FAMILIES,
    source: str = "ec2:DescribeInstanceTypes+DescribeInstanceTypeOfferings",
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Read specs from the first region and AZ offerings from every region."""
    if not regions:
        raise ValueError("name at least one region")
    types = {
        item["InstanceType"]: describe_instance_type(item)
        for item in _instance_types(session, regions[0], families)
    }
    for region in regions:
        for name, zones in _offerings(session, region, families).items():
            if name in types:
                types[name].setdefault("offerings", {})[region] = zones
    for spec in types.values():
        spec.setdefault("offerings", {})
    date = (today or dt.date.today()).isoformat()
    return {
        "format": SNAPSHOT_FORMAT,
        "version": date,
        "source": source,
        "regions": list(regions),
        "families": sorted(families),
        "instance_types": dict(sorted(types.items())),
    }


def write_snapshot(snapshot: dict[str, Any], path: Path) -> None:
    """Write atomically: a failed refresh never leaves a half-written catalog behind."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(snapshot, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
