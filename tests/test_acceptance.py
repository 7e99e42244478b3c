"""The issues' acceptance criteria, checked on the public contract: `hpcctl plan --json -`."""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import cache
from typing import Any

from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.limits import REQUIRED_TAG_KEYS
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpcctl.cli import EXIT_OK, main
from tests.support.stacks import REPO_ROOT


@cache
def prod_plan() -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "--stack", "prod", "--project-dir", str(REPO_ROOT), "--json", "-"], out, err)
    assert code == EXIT_OK, err.getvalue()
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def of_type(token: str) -> list[dict[str, Any]]:
    return [r for r in prod_plan()["resources"] if r["type"] == token]


def test_network_and_storage_acceptance() -> None:
    assert len(of_type("aws:fsx/lustreFileSystem:LustreFileSystem")) == 2
    assert [
        g for g in of_type("aws:ec2/placementGroup:PlacementGroup") if g["inputs"]["strategy"] == "cluster"
    ]
    assert len(of_type("aws:ec2/vpcEndpoint:VpcEndpoint")) >= 6
    assert len(of_type("aws:ec2/flowLog:FlowLog")) == 1
    sse = of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    algorithms = {
        rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        for r in sse
        for rule in r["inputs"]["rules"]
    }
    assert "aws:kms" in algorithms


def test_a_security_group_references_itself_for_all_protocols_both_ways() -> None:
    """Some group has an all-protocol ingress and egress rule whose peer is the group itself."""
    ingress = of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    egress = of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")

    def self_all(rules: list[dict[str, Any]]) -> set[str]:
        return {
            r["inputs"]["securityGroupId"]
            for r in rules
            if r["inputs"].get("ipProtocol") == "-1"
            and r["inputs"].get("referencedSecurityGroupId") == r["inputs"]["securityGroupId"]
        }

    assert self_all(ingress) & self_all(egress)


def test_every_taggable_custom_resource_carries_the_compliance_tags() -> None:
    missing = [
        (r["type"], r["name"])
        for r in prod_plan()["resources"]
        if r["custom"]
        and is_taggable(r["type"])
        and not set(REQUIRED_TAG_KEYS) <= set((r["inputs"].get("tags") or {}).keys())
    ]
    assert missing == []


def test_cluster_acceptance() -> None:
    (cluster,) = [r for r in prod_plan()["resources"] if r["inputs"].get(KIND_PROPERTY) == KIND_VALUE]
    config = cluster["inputs"]["cluster_config"]
    assert config["Scheduling"]["Scheduler"] == "slurm"
    assert {q["Name"] for q in config["Scheduling"]["SlurmQueues"]} >= {"compute-spot", "compute-od", "gpu"}
    assert of_type("aws:rds/cluster:Cluster")[0]["inputs"]["storageEncrypted"] is True
    assert of_type("aws:secretsmanager/secret:Secret")
    roles = Counter(r["type"] for r in prod_plan()["resources"] if r["type"].startswith("aws:iam/"))
    assert roles["aws:iam/role:Role"] >= 2 and roles["aws:iam/instanceProfile:InstanceProfile"] == 2
    database = config["Scheduling"]["SlurmSettings"]["Database"]
    assert database["PasswordSecretArn"].startswith("arn:aws:secretsmanager:")
    assert "Password" not in database


def test_no_secret_value_reaches_the_plan_json() -> None:
    text = json.dumps(prod_plan())
    password_inputs = [
        r["inputs"].get("secretString") for r in of_type("aws:secretsmanager/secretVersion:SecretVersion")
    ]
    assert password_inputs and all(value == "[secret]" for value in password_inputs)
    assert "masterPassword" not in text or all(
        r["inputs"].get("masterPassword") in (None, "[secret]") for r in of_type("aws:rds/cluster:Cluster")
    )
