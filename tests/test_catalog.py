"""The instance catalog: facts validation relies on, suggestions, and the refresh against moto
(whose EC2 data is a recorded copy of DescribeInstanceTypes / DescribeInstanceTypeOfferings)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from hpc_platform.domain.catalog import SNAPSHOT_PATH, InstanceCatalog, or_join
from hpc_platform.domain.catalog.refresh import (
    HPC_FAMILIES,
    build_snapshot,
    describe_instance_type,
    write_snapshot,
)
from hpcctl.cli import main


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    # Each region's EC2 backend would build moto's ~1300 default AMIs; the refresh reads no image.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield boto3.Session(region_name="us-east-2")


@pytest.mark.parametrize(
    ("name", "efa", "spot", "vcpus"),
    [
        ("hpc6a.48xlarge", True, False, 96),
        ("hpc7a.96xlarge", True, False, 192),
        ("c5n.18xlarge", True, True, 72),
        ("x2iezn.12xlarge", True, True, 48),
        ("x2iedn.32xlarge", True, True, 128),
        ("p4d.24xlarge", True, True, 96),
        ("c6i.2xlarge", False, True, 8),
    ],
)
def test_bundled_facts_match_aws(
    catalog: InstanceCatalog, name: str, efa: bool, spot: bool, vcpus: int
) -> None:
    spec = catalog.get(name)
    assert spec is not None
    assert (spec.efa_supported, spec.spot_supported, spec.vcpus) == (efa, spot, vcpus)


def test_fails_lookup_of_types_that_do_not_exist(catalog: InstanceCatalog) -> None:
    assert catalog.get("x2iezn.32xlarge") is None
    assert "x2iezn.32xlarge" not in catalog


def test_az_offerings(catalog: InstanceCatalog) -> None:
    hpc6a = catalog.get("hpc6a.48xlarge")
    assert hpc6a is not None
    assert hpc6a.azs("us-east-2") == ("us-east-2b",)
    assert hpc6a.azs("us-east-1") == ()


def test_efa_interfaces_count_addresses(catalog: InstanceCatalog) -> None:
    p4d, c6i = catalog.get("p4d.24xlarge"), catalog.get("c6i.2xlarge")
    assert p4d is not None and c6i is not None
    assert p4d.max_efa_interfaces == 4
    assert p4d.addresses_per_node() == 4
    assert c6i.addresses_per_node() == 1


@pytest.mark.parametrize(
    ("unknown", "expected"),
    [
        ("x2iezn.32xlarge", ["x2iezn.12xlarge", "x2iedn.32xlarge"]),
        ("c5n.19xlarge", ["c5n.18xlarge", "c5n.9xlarge"]),
        ("hpc6a.24xlarge", ["hpc6a.48xlarge", "hpc7a.24xlarge"]),
        ("zz9.huge", []),
    ],
)
def test_suggestions(catalog: InstanceCatalog, unknown: str, expected: list[str]) -> None:
    assert catalog.suggestions(unknown) == expected


@pytest.mark.parametrize(
    ("items", "text"), [([], ""), (["a"], "a"), (["a", "b"], "a or b"), (["a", "b", "c"], "a, b or c")]
)
def test_or_join(items: list[str], text: str) -> None:
    assert or_join(items) == text


def test_describe_instance_type_maps_ec2_fields() -> None:
    raw = {
        "InstanceType": "p4d.24xlarge",
        "VCpuInfo": {"DefaultVCpus": 96, "DefaultCores": 48},
        "MemoryInfo": {"SizeInMiB": 1179648},
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
        "NetworkInfo": {
            "NetworkPerformance": "4x 100 Gigabit",
            "EfaSupported": True,
            "EfaInfo": {"MaximumEfaInterfaces": 4},
            "MaximumNetworkInterfaces": 60,
        },
        "SupportedUsageClasses": ["on-demand", "spot", "capacity-block"],
        "GpuInfo": {"Gpus": [{"Name": "A100", "Count": 8}], "TotalGpuMemoryInMiB": 327680},
    }
    spec = describe_instance_type(raw)
    assert spec["gpus"] == 8 and spec["gpu_model"] == "A100"
    assert spec["max_efa_interfaces"] == 4 and spec["spot_supported"] is True
    assert spec["capacity_block_supported"] is True
    assert spec["default_cores"] == 48
    without = describe_instance_type({**raw, "SupportedUsageClasses": ["on-demand", "spot"]})
    assert without["capacity_block_supported"] is False


def test_refresh_against_moto_rebuilds_the_bundled_snapshot(aws: boto3.Session, tmp_path: Path) -> None:
    """The bundled snapshot is what the refresh produces from EC2's data: same types and facts."""
    bundled = json.loads(SNAPSHOT_PATH.read_text())
    snapshot = build_snapshot(
        aws, regions=bundled["regions"], today=dt.date.fromisoformat(bundled["version"])
    )
    assert snapshot["instance_types"] == bundled["instance_types"]
    target = tmp_path / "catalog.json"
    write_snapshot(snapshot, target)
    rebuilt = InstanceCatalog.from_file(target)
    assert rebuilt.get("hpc6a.48xlarge") == InstanceCatalog.from_file(SNAPSHOT_PATH).get("hpc6a.48xlarge")
    assert not list(tmp_path.glob("*.tmp"))


def test_refresh_keeps_only_hpc_families(aws: boto3.Session) -> None:
    snapshot = build_snapshot(aws, regions=["us-east-2"], families=("hpc6a",))
    assert list(snapshot["instance_types"]) == ["hpc6a.48xlarge"]
    assert snapshot["instance_types"]["hpc6a.48xlarge"]["offerings"] == {"us-east-2": ["us-east-2b"]}
    assert set(HPC_FAMILIES) >= {"hpc6a", "hpc7a", "c5n", "x2iedn", "p4d"}


def test_refresh_asks_ec2_for_the_wanted_families_only(aws: boto3.Session) -> None:
    """EC2 filters the types server-side (`c5.*` is c5 without c5n): a fraction of the pages."""
    asked: list[object] = []
    aws.events.register(
        "provide-client-params.ec2.DescribeInstanceTypes",
        lambda params, **_: asked.append(params.get("Filters")),
    )
    snapshot = build_snapshot(aws, regions=["us-east-2"], families=("hpc6a", "c5"))
    assert asked == [[{"Name": "instance-type", "Values": ["hpc6a.*", "c5.*"]}]]
    families = {name.split(".", 1)[0] for name in snapshot["instance_types"]}
    assert families == {"hpc6a", "c5"}


def test_fails_refresh_without_regions(aws: boto3.Session) -> None:
    with pytest.raises(ValueError, match="at least one region"):
        build_snapshot(aws, regions=[])


def test_refresh_command_writes_the_snapshot(aws: boto3.Session, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "refreshed.json"
    code = main(["catalog", "refresh", "--regions", "us-east-2", "--output", str(target)], out, err)
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("wrote ")
    assert InstanceCatalog.from_file(target).get("c5n.18xlarge") is not None


def test_fails_to_read_an_unknown_snapshot_format(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": 99, "version": "x", "regions": [], "instance_types": {}}))
    with pytest.raises(ValueError, match="unsupported instance catalog format 99"):
        InstanceCatalog.from_file(path)


def test_region_availability_zones_are_those_offering_a_catalogued_type(catalog: InstanceCatalog) -> None:
    for region in catalog.regions:
        azs = catalog.availability_zones(region)
        assert azs and list(azs) == sorted(azs)
        assert set(azs) == {az for spec in catalog.types.values() for az in spec.azs(region)}
        assert all(az.startswith(region) for az in azs)
    assert catalog.availability_zones("us-east-2") == ("us-east-2a", "us-east-2b", "us-east-2c")
    assert catalog.availability_zones("eu-north-1") is None
