"""The portal deployment's config: the example stack file is valid, and each bad value gets one line
naming the file and the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app.portal.deploy import (
    PortalConfigError,
    database_url,
    ecr_repository_arn,
    json_key,
    load_portal_stack_file,
    model_input,
    parse_portal_config,
)
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.domain.limits import FARGATE_TASK_MEMORY_MIB

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "portal" / "Pulumi.portal-prod.yaml"
SOURCE = "Pulumi.portal-prod.yaml"


def example() -> dict[str, Any]:
    return copy.deepcopy(read_stack_file(EXAMPLE))


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(PortalConfigError) as raised:
        parse_portal_config(model_input(config), SOURCE)
    return raised.value.lines


def test_example_stack_file_is_valid() -> None:
    config = load_portal_stack_file(EXAMPLE)
    assert (config.environment, config.region) == ("prod", "us-east-2")
    assert config.service.memory_mib in FARGATE_TASK_MEMORY_MIB[config.service.cpu]
    assert config.tags["ComplianceFrameworks"] == "NIST-800-171"


def _set(config: dict[str, Any], key: str, path: tuple[str | int, ...], value: Any) -> None:
    target = config[key]
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()

CASES: list[tuple[str, tuple[str | int, ...], Any, str]] = [
    (
        "portal:service",
        ("certificate_arn",),
        "arn:aws:acm:us-east-1:123456789012:certificate/6f1d7c2e-8b3a-4e5f-9a0b-1c2d3e4f5a6b",
        "portal:service.certificate_arn: the certificate is in us-east-1, the load balancer in us-east-2; "
        "request or import the certificate in ACM in us-east-2",
    ),
    (
        "portal:service",
        ("certificate_arn",),
        "my-cert",
        "portal:service.certificate_arn: 'my-cert' is not an ACM certificate ARN "
        "(arn:aws:acm:<region>:<account>:certificate/<id>)",
    ),
    (
        "portal:service",
        ("memory_mib",),
        1024,
        "portal:service.memory_mib: Fargate does not offer 1024 MiB with 2048 CPU units; "
        "use 4096 to 16384 MiB in steps of 1024",
    ),
    (
        "portal:service",
        ("cpu",),
        3000,
        "portal:service.cpu: 3000 is not a Fargate CPU size; "
        "use one of 256, 512, 1024, 2048, 4096, 8192, 16384",
    ),
    (
        "portal:service",
        ("log_retention_days",),
        100,
        "portal:service.log_retention_days: 100 is not a CloudWatch Logs retention period; use one of "
        "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, "
        "3288, 3653",
    ),
    (
        "portal:service",
        ("contaner_port",),
        8080,
        "portal:service.contaner_port: unknown key; did you mean 'container_port'?",
    ),
    (
        "portal:service",
        ("image",),
        _DELETE,
        "portal:service.image: is required",
    ),
    (
        "portal:network",
        ("allowed_cidrs", 0),
        "198.51.100.0/33",
        "portal:network.allowed_cidrs[0]: '198.51.100.0/33' is not an IPv4 CIDR block "
        "('33' is not a valid netmask)",
    ),
    (
        "portal:network",
        ("availability_zones", 1),
        "us-west-2b",
        "portal:network.availability_zones[1]: 'us-west-2b' is not in us-east-2",
    ),
    (
        "portal:network",
        ("private_subnet_ids",),
        ["subnet-0a1b2c3d4e5f60718"],
        "portal:network.private_subnet_ids: is only read with vpc_id; set vpc_id or remove this key",
    ),
    (
        "portal:database",
        ("max_allocated_storage_gib",),
        40,
        "portal:database.max_allocated_storage_gib: 40 is below allocated_storage_gib (50); "
        "set it at or above that",
    ),
    (
        "portal:deployment_role_arns",
        (0,),
        "hpc-platform-deployer-dev",
        "portal:deployment_role_arns[0]: 'hpc-platform-deployer-dev' is not an IAM role ARN "
        "(arn:aws:iam::<account>:role/<name>)",
    ),
]


@pytest.mark.parametrize(("key", "path", "value", "expected"), CASES, ids=[c[3].split(":")[1] for c in CASES])
def test_fails_on_a_bad_value_with_one_line_naming_file_and_key(
    key: str, path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    config = example()
    _set(config, key, path, value)
    assert problems(config) == [f"{SOURCE}: {expected}"]


def test_fails_on_an_existing_vpc_without_its_subnets() -> None:
    config = example()
    config["portal:network"] = {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "public_subnet_ids": ["subnet-0a1b2c3d4e5f60718"],
        "allowed_cidrs": ["198.51.100.0/24"],
    }
    two_azs = (
        "list two subnets at least (in different AZs) with vpc_id: "
        "the load balancer and the database need two AZs"
    )
    assert problems(config) == [
        f"{SOURCE}: portal:network.private_subnet_ids: {two_azs}",
        f"{SOURCE}: portal:network.public_subnet_ids: {two_azs}",
    ]


def test_fails_on_new_vpc_keys_beside_an_existing_vpc() -> None:
    config = example()
    config["portal:network"]["vpc_id"] = "vpc-0a1b2c3d4e5f60718"
    config["portal:network"]["private_subnet_ids"] = ["subnet-0a1b2c3d4e5f60718", "subnet-1a1b2c3d4e5f60718"]
    config["portal:network"]["internal"] = True
    lines = problems(config)
    assert lines == [
        f"{SOURCE}: portal:network.{key}: only applies to a new VPC; remove it or remove vpc_id"
        for key in ("vpc_cidr", "availability_zones", "nat_gateways")
    ]


def test_fails_on_an_unknown_top_level_key_naming_the_known_ones() -> None:
    config = example()
    config["portal:frobnicate"] = True
    assert problems(config) == [
        f"{SOURCE}: portal:frobnicate: unknown key; known keys: compliance, database, deployment_role_arns, "
        "environment, network, region, service"
    ]


def test_fails_on_a_missing_key_outside_the_namespace_too() -> None:
    config = example()
    del config["aws:region"]
    assert problems(config) == [f"{SOURCE}: aws:region: is required"]


def test_other_packages_keys_are_not_ours_to_check() -> None:
    config = example()
    config["aws:profile"] = "deployer"
    config["pulumi:tags"] = {"team": "hpc"}
    assert parse_portal_config(model_input(config), SOURCE).region == "us-east-2"


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        (
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/hpc-portal@sha256:" + "a" * 64,
            "arn:aws:ecr:us-east-2:123456789012:repository/hpc-portal",
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/hpc-portal:1.2.0",
            "arn:aws:ecr:eu-west-1:123456789012:repository/team/hpc-portal",
        ),
        ("ghcr.io/example/hpc-portal:1.2.0", None),
    ],
)
def test_the_execution_role_pulls_only_from_the_images_ecr_repository(
    image: str, repository: str | None
) -> None:
    assert ecr_repository_arn(image) == repository


def test_database_url_never_carries_a_password() -> None:
    url = database_url("db.example.internal", 5432)
    assert url == "postgresql+psycopg://portal@db.example.internal:5432/portal?sslmode=require"
    assert json_key("arn:aws:secretsmanager:us-east-2:1:secret:x", "password").endswith(":password::")
