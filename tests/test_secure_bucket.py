"""`harden_bucket`: the four hardening resources, their inputs, names and parents, planned offline."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.secure_bucket import BucketHardening, harden_bucket
from hpc_platform.app.offline.engine import Plan, PlannedResource, plain, run_offline

OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
HARDENING = (OWNERSHIP, PUBLIC_ACCESS_BLOCK, SSE, VERSIONING)
OWNER_TYPE = "test:index:Owner"

# What `harden_bucket` returned, per bucket name, as (field, resource name) pairs.
returned: dict[str, dict[str, str]] = {}


def program() -> None:
    owner = pulumi.ComponentResource(OWNER_TYPE, "owner")
    key = aws.kms.Key("key", opts=pulumi.ResourceOptions(parent=owner))
    for name, kms_key_arn, parent in (("kms", key.arn, owner), ("s3", None, owner), ("root", key.arn, None)):
        bucket = aws.s3.Bucket(name, opts=pulumi.ResourceOptions(parent=parent))
        hardening = harden_bucket(name, bucket, kms_key_arn=kms_key_arn, parent=parent)
        returned[name] = {
            field: getattr(hardening, field).pulumi_resource_name
            for field in BucketHardening.__dataclass_fields__
        }
    owner.register_outputs({})


@pytest.fixture(scope="module")
def plan() -> Plan:
    returned.clear()
    return run_offline(program, stack="test", config={}, region="us-east-2")


def hardening_of(plan: Plan, bucket: PlannedResource) -> dict[str, PlannedResource]:
    """The hardening resources configuring `bucket`, by type (each type exactly once)."""
    found = [r for r in plan.resources if r.type in HARDENING and r.inputs.get("bucket") == bucket.id]
    by_type = {r.type: r for r in found}
    assert len(by_type) == len(found), f"{bucket.name}: a hardening resource is there twice"
    return by_type


def inputs(resource: PlannedResource) -> dict[str, Any]:
    result: dict[str, Any] = plain(resource.inputs)
    result.pop("bucket")
    return result


@pytest.mark.parametrize("name", ["kms", "s3", "root"])
def test_every_bucket_gets_ownership_controls_public_access_block_encryption_and_versioning(
    plan: Plan, name: str
) -> None:
    resources = hardening_of(plan, plan.by_name(name))
    assert sorted(resources) == sorted(HARDENING)
    assert inputs(resources[OWNERSHIP]) == {"rule": {"objectOwnership": "BucketOwnerEnforced"}}
    assert inputs(resources[PUBLIC_ACCESS_BLOCK]) == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    assert inputs(resources[VERSIONING]) == {"versioningConfiguration": {"status": "Enabled"}}


@pytest.mark.parametrize("name", ["kms", "root"])
def test_a_key_gives_sse_kms_with_that_key_and_bucket_keys(plan: Plan, name: str) -> None:
    encryption = hardening_of(plan, plan.by_name(name))[SSE]
    assert inputs(encryption) == {
        "rules": [
            {
                "applyServerSideEncryptionByDefault": {
                    "sseAlgorithm": "aws:kms",
                    "kmsMasterKeyId": plan.by_name("key").outputs["arn"],
                },
                "bucketKeyEnabled": True,
            }
        ]
    }


def test_no_key_gives_sse_s3_without_bucket_keys(plan: Plan) -> None:
    # Server access logs are delivered only to SSE-S3 buckets; a bucket key means nothing there.
    encryption = hardening_of(plan, plan.by_name("s3"))[SSE]
    assert inputs(encryption) == {
        "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    }


@pytest.mark.parametrize("name", ["kms", "s3", "root"])
def test_names_follow_the_bucket(plan: Plan, name: str) -> None:
    block_name = f"{name}-public-access-block"
    resources = hardening_of(plan, plan.by_name(name))
    assert {token: r.name for token, r in resources.items()} == {
        OWNERSHIP: f"{name}-ownership",
        PUBLIC_ACCESS_BLOCK: block_name,
        SSE: f"{name}-encryption",
        VERSIONING: f"{name}-versioning",
    }
    # What callers order their bucket policy and lifecycle rules after.
    assert returned[name] == {
        "ownership_controls": f"{name}-ownership",
        "public_access_block": block_name,
        "encryption": f"{name}-encryption",
        "versioning": f"{name}-versioning",
    }


def test_the_resources_are_children_of_the_given_parent_or_of_the_stack(plan: Plan) -> None:
    (owner,) = plan.of_type(OWNER_TYPE)
    for name in ("kms", "s3"):
        assert {r.parent for r in hardening_of(plan, plan.by_name(name)).values()} == {owner.urn}
    assert {r.parent for r in hardening_of(plan, plan.by_name("root")).values()} == {plan.stack_urn}
