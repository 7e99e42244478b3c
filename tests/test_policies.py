"""The policy pack, rule by rule: a violating and a compliant fixture for every policy.

Fixtures are small hand-built plans run through the same path `hpcctl check` uses (pulumi-policy's
analyzer servicer, configured like the Pulumi CLI configures it), so what passes here is what the
engine would see.
"""

from __future__ import annotations

import copy
import json
import re
import runpy
import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from hpc_platform.app.offline import Plan, PlannedResource
from hpc_platform.app.policy_check import Violation, evaluate, read_policy_config
from hpc_platform.domain.config.models import ComplianceConfig
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from policy.hpc_policies.pack import PACK_NAME, PACK_VERSION, policies
from tests.support.stacks import REPO_ROOT, planned

STACK = "test"
PROJECT = "hpc-platform"
TAGS = ComplianceConfig(
    frameworks=["NIST-800-171"],
    data_classification="cui",
    owner="hpc-platform@example.org",
    cost_center="CC-1001",
    research_group="research-computing",
).tags("prod")
KMS_ARN = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def resource(
    type_: str, name: str, inputs: dict[str, Any] | None = None, *, tags: bool = True, custom: bool = True
) -> PlannedResource:
    inputs = dict(inputs or {})
    if tags and "tags" not in inputs:
        inputs["tags"] = dict(TAGS)
    resource_id = f"{name}-id"
    return PlannedResource(
        urn=f"urn:pulumi:{STACK}::{PROJECT}::{type_}::{name}",
        type=type_,
        name=name,
        parent=None,
        custom=custom,
        remote=False,
        provider=None,
        id=resource_id if custom else None,
        inputs=inputs,
        outputs=dict(inputs),
    )


def plan_of(*resources: PlannedResource, outputs: dict[str, Any] | None = None) -> Plan:
    """The plan of `resources`; a `stack_outputs(...)` among them gives the stack's outputs."""
    declared = {k: v for r in resources if r.type == STACK_TYPE for k, v in r.outputs.items()}
    resources = tuple(r for r in resources if r.type != STACK_TYPE)
    return Plan(
        stack=STACK, project=PROJECT, resources=list(resources), outputs={**declared, **(outputs or {})}
    )


def run(
    *resources: PlannedResource, config: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None
) -> list[Violation]:
    given = {name: (None, dict(props)) for name, props in (config or {}).items()}
    return evaluate(plan_of(*resources, outputs=outputs), given)


def names(violations: list[Violation]) -> set[str]:
    return {v.policy for v in violations}


# --- fixtures --------------------------------------------------------------------------------------
STACK_TYPE = "pulumi:pulumi:Stack"


def stack_outputs(**outputs: Any) -> PlannedResource:
    """Not a resource: the stack outputs of a fixture (`run` hands them to the plan)."""
    return resource(STACK_TYPE, "outputs", outputs, tags=False, custom=False)


def trail(**props: Any) -> PlannedResource:
    return resource(
        "aws:cloudtrail/trail:Trail",
        "trail",
        {"isMultiRegionTrail": True, "enableLogFileValidation": True, "kmsKeyId": KMS_ARN, **props},
    )


def recorder(enabled: bool = True) -> list[PlannedResource]:
    return [
        resource("aws:cfg/recorder:Recorder", "recorder", {"name": "recorder"}, tags=False),
        resource(
            "aws:cfg/recorderStatus:RecorderStatus",
            "recorder-status",
            {"name": "recorder", "isEnabled": enabled},
            tags=False,
        ),
    ]


EXISTING_AUDIT = {
    "audit_mode": "existing",
    "audit_trail_arn": "arn:aws:cloudtrail:us-east-2:111122223333:trail/org-trail",
    "audit_config_recorder_name": "default",
}


def bucket(name: str) -> PlannedResource:
    return resource("aws:s3/bucket:Bucket", name, {"bucket": name})


def sse(bucket_name: str, algorithm: str, key: str | None = KMS_ARN) -> PlannedResource:
    default: dict[str, Any] = {"sseAlgorithm": algorithm}
    if key:
        default["kmsMasterKeyId"] = key
    return resource(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{bucket_name}-sse",
        {"bucket": bucket_name, "rules": [{"applyServerSideEncryptionByDefault": default}]},
        tags=False,
    )


def public_access_block(bucket_name: str, **flags: bool) -> PlannedResource:
    settings = {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
        **flags,
    }
    return resource(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        f"{bucket_name}-pab",
        {"bucket": bucket_name, **settings},
        tags=False,
    )


def logging_to(source: str, target: str) -> PlannedResource:
    return resource(
        "aws:s3/bucketLogging:BucketLogging",
        f"{source}-logging",
        {"bucket": source, "targetBucket": target, "targetPrefix": "s3/"},
        tags=False,
    )


def compliant_bucket(name: str) -> list[PlannedResource]:
    return [bucket(name), sse(name, "aws:kms"), public_access_block(name)]


def queue(name: str, capacity: str, instance_type: str, max_count: int, **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "CapacityType": capacity,
        "ComputeResources": [
            {"Name": "cr", "InstanceType": instance_type, "MinCount": 0, "MaxCount": max_count}
        ],
        **extra,
    }


PROD_QUEUES = [
    queue("mpi-hpc6a", "ONDEMAND", "hpc6a.48xlarge", 200),
    queue("compute-spot", "SPOT", "c5n.18xlarge", 560),
    queue("compute-od", "ONDEMAND", "c5n.18xlarge", 140),
    queue("memory-spot", "SPOT", "x2iedn.32xlarge", 32),
    queue("memory-od", "ONDEMAND", "x2iedn.32xlarge", 12),
    queue("gpu", "ONDEMAND", "p4d.24xlarge", 16),
    queue("debug", "ONDEMAND", "c6i.2xlarge", 40),
]


def cluster_config(queues: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "Region": "us-east-2",
        "Image": {"Os": "alinux2023"},
        "HeadNode": {"InstanceType": "c6i.8xlarge", "LocalStorage": {"RootVolume": {"Size": 200}}},
        "Scheduling": {"Scheduler": "slurm", "SlurmQueues": copy.deepcopy(queues or PROD_QUEUES)},
        **top,
    }


def cluster(config: dict[str, Any] | None = None, **props: Any) -> PlannedResource:
    return resource(
        "pulumi-python:dynamic:Resource",
        "hpc-test-cluster",
        {
            "cluster_name": "hpc-test",
            "cluster_config": config if config is not None else cluster_config(),
            KIND_PROPERTY: KIND_VALUE,
            **props,
        },
        tags=False,
    )


def with_path(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`with_path(c, "HeadNode.Imds.Secured", False)` — sets a nested key, creating mappings."""
    config = copy.deepcopy(config)
    target: Any = config
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    target[last] = value
    return config


def sg(name: str, *ingress: dict[str, Any]) -> PlannedResource:
    return resource("aws:ec2/securityGroup:SecurityGroup", name, {"ingress": list(ingress), "vpcId": "vpc-1"})


def rule(cidr: str, from_port: int, to_port: int | None = None, protocol: str = "tcp") -> dict[str, Any]:
    key = "ipv6CidrBlocks" if ":" in cidr else "cidrBlocks"
    return {"protocol": protocol, "fromPort": from_port, "toPort": to_port or from_port, key: [cidr]}


def vpc(name: str = "vpc") -> PlannedResource:
    return resource("aws:ec2/vpc:Vpc", name, {"cidrBlock": "10.0.0.0/16"})


def flow_log(vpc_id: str) -> PlannedResource:
    return resource("aws:ec2/flowLog:FlowLog", f"flow-{vpc_id}", {"vpcId": vpc_id, "trafficType": "ALL"})


def kms_key(**props: Any) -> PlannedResource:
    return resource("aws:kms/key:Key", "key", {"enableKeyRotation": True, **props})


def launch_template(**props: Any) -> PlannedResource:
    base = {
        "metadataOptions": {"httpTokens": "required"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeSize": 50}}],
    }
    return resource("aws:ec2/launchTemplate:LaunchTemplate", "lt", {**base, **props})


# --- the table: policy → (violating fixture, compliant fixture) -----------------------------------
Fixture = Callable[[], list[PlannedResource]]
CASES: list[tuple[str, str, Fixture, Fixture]] = [
    # encryption
    (
        "s3-bucket-sse-kms",
        "no encryption configuration",
        lambda: [bucket("data"), public_access_block("data")],
        lambda: compliant_bucket("data"),
    ),
    (
        "s3-bucket-sse-kms",
        "SSE-S3 on a data bucket",
        lambda: [bucket("data"), sse("data", "AES256", None), public_access_block("data")],
        lambda: [bucket("data"), sse("data", "aws:kms:dsse"), public_access_block("data")],
    ),
    (
        "s3-bucket-sse-kms",
        "SSE-KMS with the AWS-managed key",
        lambda: [bucket("data"), sse("data", "aws:kms", None), public_access_block("data")],
        lambda: compliant_bucket("data"),
    ),
    (
        "s3-bucket-sse-kms",
        "SSE-S3 is allowed only on access-log destination buckets",
        lambda: [
            *compliant_bucket("data"),
            bucket("logs"),
            sse("logs", "AES256", None),
            public_access_block("logs"),
            logging_to("logs", "data"),  # logs of "logs" go to "data": "logs" is not a log bucket
        ],
        lambda: [
            *compliant_bucket("data"),
            bucket("logs"),
            sse("logs", "AES256", None),
            public_access_block("logs"),
            logging_to("data", "logs"),
        ],
    ),
    (
        "fsx-lustre-customer-kms-key",
        "PERSISTENT_2 without kmsKeyId (SCRATCH_2 needs none)",
        lambda: [
            resource("aws:fsx/lustreFileSystem:LustreFileSystem", "fs", {"deploymentType": "PERSISTENT_2"})
        ],
        lambda: [
            resource(
                "aws:fsx/lustreFileSystem:LustreFileSystem",
                "fs",
                {"deploymentType": "PERSISTENT_2", "kmsKeyId": KMS_ARN},
            ),
            resource("aws:fsx/lustreFileSystem:LustreFileSystem", "scratch", {"deploymentType": "SCRATCH_2"}),
        ],
    ),
    (
        "efs-encrypted",
        "encrypted off",
        lambda: [resource("aws:efs/fileSystem:FileSystem", "efs", {"encrypted": False})],
        lambda: [resource("aws:efs/fileSystem:FileSystem", "efs", {"encrypted": True, "kmsKeyId": KMS_ARN})],
    ),
    (
        "ebs-encrypted",
        "launch template device and volume unencrypted",
        lambda: [
            launch_template(blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 50}}]),
            resource("aws:ebs/volume:Volume", "vol", {"availabilityZone": "us-east-2b", "size": 10}),
        ],
        lambda: [
            launch_template(),
            resource(
                "aws:ebs/volume:Volume",
                "vol",
                {"availabilityZone": "us-east-2b", "size": 10, "encrypted": True},
            ),
        ],
    ),
    (
        "ebs-encrypted",
        "instance root volume unencrypted",
        lambda: [
            resource(
                "aws:ec2/instance:Instance",
                "vm",
                {"metadataOptions": {"httpTokens": "required"}, "rootBlockDevice": {"volumeSize": 20}},
            )
        ],
        lambda: [
            resource(
                "aws:ec2/instance:Instance",
                "vm",
                {"metadataOptions": {"httpTokens": "required"}, "rootBlockDevice": {"encrypted": True}},
            )
        ],
    ),
    (
        "rds-storage-encrypted",
        "Aurora cluster storage unencrypted",
        lambda: [resource("aws:rds/cluster:Cluster", "db", {"engine": "aurora-mysql"})],
        lambda: [
            resource("aws:rds/cluster:Cluster", "db", {"engine": "aurora-mysql", "storageEncrypted": True})
        ],
    ),
    (
        "log-group-kms-key",
        "log group without a key",
        lambda: [resource("aws:cloudwatch/logGroup:LogGroup", "lg", {"retentionInDays": 30})],
        lambda: [resource("aws:cloudwatch/logGroup:LogGroup", "lg", {"kmsKeyId": KMS_ARN})],
    ),
    (
        "sns-topic-kms-key",
        "topic without a key",
        lambda: [resource("aws:sns/topic:Topic", "topic", {})],
        lambda: [resource("aws:sns/topic:Topic", "topic", {"kmsMasterKeyId": KMS_ARN})],
    ),
    (
        "secret-kms-key",
        "secret without a key",
        lambda: [resource("aws:secretsmanager/secret:Secret", "secret", {})],
        lambda: [resource("aws:secretsmanager/secret:Secret", "secret", {"kmsKeyId": KMS_ARN})],
    ),
    (
        "parallelcluster-root-volumes-encrypted",
        "head node root volume Encrypted: false",
        lambda: [cluster(with_path(cluster_config(), "HeadNode.LocalStorage.RootVolume.Encrypted", False))],
        lambda: [cluster(with_path(cluster_config(), "HeadNode.LocalStorage.RootVolume.Encrypted", True))],
    ),
    (
        "parallelcluster-root-volumes-encrypted",
        "a queue's root volumes Encrypted: false (omitted: ParallelCluster encrypts)",
        lambda: [
            cluster(
                with_path(
                    cluster_config(),
                    "Scheduling.SlurmQueues.1.ComputeSettings.LocalStorage.RootVolume.Encrypted",
                    False,
                )
            )
        ],
        lambda: [cluster()],
    ),
    # spot
    (
        "spot-ratio",
        "half of the Spot-eligible vCPUs on Spot",
        lambda: [
            cluster(
                cluster_config(
                    [queue("spot", "SPOT", "c5n.18xlarge", 50), queue("od", "ONDEMAND", "c5n.18xlarge", 50)]
                )
            )
        ],
        lambda: [cluster()],
    ),
    (
        "spot-ratio",
        "the stack's declared target below the minimum (cluster property)",
        lambda: [cluster(spot_min_share=0.5)],
        lambda: [cluster(spot_min_share=0.7)],
    ),
    # tagging
    (
        "nist-800-171-tagging",
        "a required tag missing",
        lambda: [resource("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": KMS_ARN, "tags": {"Name": "t"}})],
        lambda: [resource("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": KMS_ARN})],
    ),
    (
        "nist-800-171-tagging",
        "a framework outside COMPLIANCE_FRAMEWORKS",
        lambda: [
            resource(
                "aws:sns/topic:Topic",
                "t",
                {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "ComplianceFrameworks": "NIST-800-171+SOC2"}},
            )
        ],
        lambda: [
            resource(
                "aws:sns/topic:Topic",
                "t",
                {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "ComplianceFrameworks": "NIST-800-171+HIPAA"}},
            )
        ],
    ),
    (
        "nist-800-171-tagging",
        "an Environment outside dev/staging/prod",
        lambda: [
            resource(
                "aws:sns/topic:Topic", "t", {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "Environment": "qa"}}
            )
        ],
        lambda: [
            resource(
                "aws:sns/topic:Topic",
                "t",
                {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "Environment": "staging"}},
            )
        ],
    ),
    (
        "nist-800-171-tagging",
        "a DataClassification outside DATA_CLASSIFICATIONS",
        lambda: [
            resource(
                "aws:sns/topic:Topic",
                "t",
                {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "DataClassification": "secret"}},
            )
        ],
        lambda: [
            resource(
                "aws:sns/topic:Topic",
                "t",
                {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "DataClassification": "public"}},
            )
        ],
    ),
    # network
    (
        "no-public-ingress",
        "SSH from 0.0.0.0/0",
        lambda: [sg("sg", rule("0.0.0.0/0", 22))],
        lambda: [sg("sg", rule("10.0.0.0/8", 22))],
    ),
    (
        "no-public-ingress",
        "all traffic from ::/0 (ingress rule resource)",
        lambda: [
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "r",
                {"securityGroupId": "sg-1", "ipProtocol": "-1", "cidrIpv6": "::/0"},
            )
        ],
        lambda: [
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "r",
                {"securityGroupId": "sg-1", "ipProtocol": "-1", "referencedSecurityGroupId": "sg-1"},
            )
        ],
    ),
    (
        "vpc-flow-logs",
        "a VPC without a flow log",
        lambda: [vpc(), flow_log("vpc-other")],
        lambda: [vpc(), flow_log("vpc-id")],
    ),
    (
        "imdsv2-required",
        "cluster ImdsSupport v1.0",
        lambda: [cluster(cluster_config(Imds={"ImdsSupport": "v1.0"}))],
        lambda: [cluster(cluster_config(Imds={"ImdsSupport": "v2.0"}))],
    ),
    (
        "imdsv2-required",
        "head node IMDS not secured",
        lambda: [cluster(with_path(cluster_config(), "HeadNode.Imds.Secured", False))],
        lambda: [cluster()],
    ),
    (
        "imdsv2-required",
        "launch template allows IMDSv1",
        lambda: [launch_template(metadataOptions={"httpTokens": "optional"})],
        lambda: [launch_template()],
    ),
    (
        "s3-public-access-block",
        "a bucket without a public access block",
        lambda: [bucket("data"), sse("data", "aws:kms")],
        lambda: compliant_bucket("data"),
    ),
    (
        "s3-public-access-block",
        "a public access block with a setting off",
        lambda: [
            bucket("data"),
            sse("data", "aws:kms"),
            public_access_block("data", blockPublicPolicy=False),
        ],
        lambda: compliant_bucket("data"),
    ),
    (
        "kms-key-rotation",
        "rotation off on a symmetric key (asymmetric keys cannot rotate)",
        lambda: [kms_key(enableKeyRotation=False)],
        lambda: [
            kms_key(),
            resource(
                "aws:kms/key:Key", "signing", {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"}
            ),
        ],
    ),
    # audit
    (
        "audit-trail",
        "prod with no trail, no recorder and nothing declared",
        lambda: [stack_outputs(environment="prod")],
        lambda: [stack_outputs(environment="prod", audit_mode="create"), trail(), *recorder()],
    ),
    (
        "audit-trail",
        "staging's trail is single-region and unvalidated, its recorder never switched on",
        lambda: [
            stack_outputs(environment="staging"),
            trail(isMultiRegionTrail=False, enableLogFileValidation=False),
            *recorder(enabled=False),
        ],
        lambda: [stack_outputs(environment="staging"), trail(), *recorder()],
    ),
    (
        "audit-trail",
        "prod declares existing mode without naming the trail (dev needs nothing)",
        lambda: [
            stack_outputs(environment="prod", audit_mode="existing", audit_config_recorder_name="default")
        ],
        lambda: [stack_outputs(environment="prod", **EXISTING_AUDIT)],
    ),
]


@pytest.mark.parametrize(
    ("policy", "fixture"),
    [pytest.param(policy, bad, id=f"{policy}: {what}") for policy, what, bad, _ in CASES],
)
def test_fails_violating_fixture(policy: str, fixture: Fixture) -> None:
    violations = run(*fixture())
    assert policy in names(violations), violations
    assert names(violations) == {policy}, f"other policies fired too: {violations}"
    mine = [v for v in violations if v.policy == policy]
    assert all(v.level == "mandatory" and v.urn.startswith("urn:pulumi:") for v in mine)
    fix = re.compile(r"\b(set|add|use|move|raise|allow)\b", re.IGNORECASE)
    assert all(fix.search(v.message) for v in mine), f"every message says the fix: {mine}"


@pytest.mark.parametrize(
    ("policy", "fixture"),
    [pytest.param(policy, good, id=f"{policy}: {what}") for policy, what, _, good in CASES],
)
def test_compliant_fixture(policy: str, fixture: Fixture) -> None:
    assert run(*fixture()) == []


def test_every_policy_has_a_violating_and_a_compliant_fixture() -> None:
    assert {p.name for p in policies()} == {policy for policy, *_ in CASES}


def test_policies_have_kebab_case_names_descriptions_and_levels() -> None:
    for policy in policies():
        assert policy.name == policy.name.lower() and " " not in policy.name and "_" not in policy.name
        assert policy.description and policy.enforcement_level is not None


# --- config-dependent behaviour --------------------------------------------------------------------
def test_spot_minimum_comes_from_policy_config() -> None:
    assert run(cluster()) == []  # prod layout: 77 % on Spot
    violations = run(cluster(), config={"spot-ratio": {"minShare": 0.8}})
    assert names(violations) == {"spot-ratio"}
    assert "77%" in violations[0].message and "80%" in violations[0].message


def test_spot_ratio_reads_the_declared_target_from_the_stack_outputs() -> None:
    violations = run(cluster(), outputs={"spot_min_share": 0.5})
    assert names(violations) == {"spot-ratio"}
    assert "hpc:cluster.spot.min_share is 0.50" in violations[0].message


def test_spot_ratio_leaves_out_on_demand_only_types_and_stacks_without_a_cluster() -> None:
    on_demand_only = cluster_config([queue("mpi", "ONDEMAND", "hpc6a.48xlarge", 100)])
    assert run(cluster(on_demand_only)) == []
    assert run(*compliant_bucket("data")) == []


def test_spot_ratio_ignores_dynamic_resources_without_the_cluster_marker() -> None:
    other = resource(
        "pulumi-python:dynamic:Resource",
        "other",
        {"cluster_config": cluster_config([queue("od", "ONDEMAND", "c5n.18xlarge", 10)])},
        tags=False,
    )
    assert run(other) == []


def test_tagging_allowed_sets_narrow_per_environment() -> None:
    topic = resource(
        "aws:sns/topic:Topic",
        "t",
        {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "DataClassification": "internal"}},
    )
    assert run(topic) == []
    violations = run(
        topic, config={"nist-800-171-tagging": {"allowedDataClassifications": ["cui", "restricted"]}}
    )
    assert names(violations) == {"nist-800-171-tagging"}
    assert "hpc:compliance.data_classification to one of cui, restricted" in violations[0].message


def test_tagging_required_frameworks() -> None:
    topic = resource(
        "aws:sns/topic:Topic",
        "t",
        {"kmsMasterKeyId": KMS_ARN, "tags": {**TAGS, "ComplianceFrameworks": "HIPAA"}},
    )
    assert run(topic) == []
    violations = run(topic, config={"nist-800-171-tagging": {"requiredFrameworks": ["NIST-800-171"]}})
    assert "lacks NIST-800-171" in violations[0].message


def test_tagging_skips_resources_that_take_no_tags() -> None:
    association = resource(
        "aws:ec2/routeTableAssociation:RouteTableAssociation", "a", {"subnetId": "s"}, tags=False
    )
    assert run(association) == []


def test_ingress_allowed_ports_come_from_policy_config() -> None:
    https = sg("lb", rule("0.0.0.0/0", 443))
    assert names(run(https)) == {"no-public-ingress"}
    assert run(https, config={"no-public-ingress": {"allowedPorts": [443]}}) == []
    wide = sg("lb", rule("0.0.0.0/0", 443, 444))
    assert names(run(wide, config={"no-public-ingress": {"allowedPorts": [443]}})) == {"no-public-ingress"}


def test_access_log_exception_can_be_switched_off() -> None:
    log_bucket = [
        *compliant_bucket("data"),
        bucket("logs"),
        sse("logs", "AES256", None),
        public_access_block("logs"),
        logging_to("data", "logs"),
    ]
    assert run(*log_bucket) == []
    violations = run(*log_bucket, config={"s3-bucket-sse-kms": {"allowSseS3ForAccessLogBuckets": False}})
    assert [v.urn.rsplit("::", 1)[-1] for v in violations] == ["logs"]


def test_stack_policies_do_not_guess_when_a_join_key_is_unknown() -> None:
    from pulumi.runtime import rpc

    unknown_log = resource("aws:ec2/flowLog:FlowLog", "flow", {"vpcId": rpc.UNKNOWN})
    assert run(vpc(), unknown_log) == []


def test_audit_trail_is_required_only_where_the_environment_profile_says_so() -> None:
    assert names(run(stack_outputs(environment="prod"))) == {"audit-trail"}
    assert names(run(stack_outputs(environment="staging"))) == {"audit-trail"}
    assert run(stack_outputs(environment="dev")) == []
    assert run(kms_key()) == []  # a stack that exports no environment is not judged


def test_audit_trail_messages_name_the_key_to_set() -> None:
    (violation, recorder_violation) = run(stack_outputs(environment="prod"))
    assert "set hpc:audit.mode: create" in violation.message
    assert "AWS Config recorder" in recorder_violation.message


# --- the shipped policy configs --------------------------------------------------------------------
CONFIG_DIR = REPO_ROOT / "policy" / "config"


@pytest.mark.parametrize(
    ("environment", "level"), [("dev", "advisory"), ("staging", "mandatory"), ("prod", "mandatory")]
)
def test_environment_config_sets_the_enforcement_level(environment: str, level: str) -> None:
    path = CONFIG_DIR / f"{environment}.json"
    assert json.loads(path.read_text())["all"] == level
    plan = Plan(STACK, PROJECT, [resource("aws:sns/topic:Topic", "t", {})], {})
    violations = evaluate(plan, read_policy_config(path), str(path))
    assert {v.level for v in violations} == {level}


def test_policy_pack_files_agree() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert str(manifest["version"]) == PACK_VERSION


def test_main_builds_the_pack_from_the_importable_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy

    built: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    monkeypatch.syspath_prepend(str(REPO_ROOT / "policy"))
    for module in [m for m in sys.modules if m == "hpc_policies" or m.startswith("hpc_policies.")]:
        monkeypatch.delitem(sys.modules, module)
    runpy.run_path(str(REPO_ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME
    assert [p.name for p in built["policies"]] == [p.name for p in policies()]


# --- the committed stacks --------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_pass_their_environment_policies(stack: str) -> None:
    path = CONFIG_DIR / f"{stack}.json"
    violations = evaluate(planned(stack).plan, read_policy_config(path), str(path))
    assert violations == []


def test_readme_lists_every_policy() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Policy pack", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE))
    assert listed == {p.name for p in policies()}


def test_secret_and_unknown_inputs_reach_the_policies_as_the_engine_sends_them() -> None:
    from pulumi.runtime import rpc

    secret_key = {rpc._special_sig_key: rpc._special_secret_sig, "value": KMS_ARN}
    assert run(resource("aws:cloudwatch/logGroup:LogGroup", "lg", {"kmsKeyId": secret_key})) == []
    violations = run(resource("aws:efs/fileSystem:FileSystem", "efs", {"encrypted": rpc.UNKNOWN}))
    assert [(v.policy, v.level) for v in violations] == [("efs-encrypted", "advisory")]
    assert "can't be known during preview" in violations[0].message
