"""DataRepository: pure helpers, properties of every stack's offline plan, mutated stack files,
and the component built on its own from its args (the library use)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi_aws as aws
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components.data_repository import (
    ACCESS_LOG_PREFIX,
    EFS_HOME_PATH,
    TYPE_TOKEN,
    DataRepository,
    DataRepositoryArgs,
    access_policy,
    efs_tls_only_policy,
    intelligent_tiering_days,
    lifecycle_rules,
    s3_uri,
)
from components.mounts import SharedStorageMount
from hpc_platform.app import wiring
from hpc_platform.app.offline import StackPlan, plan_stack_file, run_offline
from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.config.models import StackConfig, StorageConfig
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import REQUIRED_TAG_KEYS
from tests.support.component_queries import component_queries
from tests.support.stacks import STACKS, planned

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
TIERING = "aws:s3/bucketIntelligentTieringConfiguration:BucketIntelligentTieringConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
EFS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
ACCESS_POINT = "aws:efs/accessPoint:AccessPoint"
BACKUP_POLICY = "aws:efs/backupPolicy:BackupPolicy"
EFS_POLICY = "aws:efs/fileSystemPolicy:FileSystemPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

WriteStack = Callable[[dict[str, Any], str], Path]
LoadStack = Callable[[str], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------------
component, subtree, of_type, named = component_queries(TYPE_TOKEN)


def for_bucket(plan: Plan, token: str, bucket: PlannedResource) -> list[dict[str, Any]]:
    """Inputs of every `token` resource configuring `bucket` (matched on the bucket's id)."""
    return [r.inputs for r in plan.of_type(token) if r.inputs.get("bucket") == bucket.id]


def config_of(stack_plan: StackPlan) -> StackConfig:
    return stack_plan.loaded.config


def statements(policy: str) -> list[dict[str, Any]]:
    document = json.loads(policy)
    assert document["Version"] == "2012-10-17"
    result: list[dict[str, Any]] = document["Statement"]
    return result


def denies_insecure_transport(statement: dict[str, Any], *resources: str) -> bool:
    return (
        statement["Effect"] == "Deny"
        and statement["Principal"] in ("*", {"AWS": "*"})
        and statement["Action"] in ("s3:*", "*")
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and all(resource in _as_list(statement["Resource"]) for resource in resources)
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def plan_with(
    stack_config: LoadStack, write_stack: WriteStack, edit: Callable[[dict[str, Any]], None]
) -> Plan:
    config = stack_config("dev")
    edit(config["hpc:storage"])
    return plan_stack_file(write_stack(config, "Pulumi.storage.yaml")).plan


def stub_network(config: StackConfig) -> Any:
    """What the wiring reads from EfaNetwork: one private subnet per AZ and the EFS group."""
    return SimpleNamespace(
        private_subnet_ids=[f"subnet-{az}" for az in config.network.availability_zones],
        efs_security_group_id="sg-efs",
    )


def wired(config: StackConfig) -> DataRepositoryArgs:
    return wiring.data_repository_args(config, stub_network(config))


def lifecycle(**values: Any) -> DataRepositoryArgs:
    return DataRepositoryArgs(region="us-east-2", **values)


# --- pure helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bucket", "prefix", "expected"),
    [
        ("data", None, "s3://data/"),
        ("data", "", "s3://data/"),
        ("data", "projects/", "s3://data/projects/"),
        ("data", "/projects/", "s3://data/projects/"),
        ("data", "a/b", "s3://data/a/b"),
    ],
)
def test_s3_uri(bucket: str, prefix: str | None, expected: str) -> None:
    assert s3_uri(bucket, prefix) == expected


def _transitions(args: DataRepositoryArgs) -> list[tuple[str, int]]:
    rules = {rule.id: rule for rule in lifecycle_rules(args)}
    tiering = rules.get("tiering")
    if tiering is None:
        return []
    return [(t.storage_class, t.days) for t in tiering.transitions]


def test_lifecycle_with_intelligent_tiering_moves_everything_on_day_zero() -> None:
    args = lifecycle(cold_after_days=120, archive_after_days=400)
    assert _transitions(args) == [("INTELLIGENT_TIERING", 0)]
    assert intelligent_tiering_days(args) == {"ARCHIVE_ACCESS": 120, "DEEP_ARCHIVE_ACCESS": 400}


def test_lifecycle_without_intelligent_tiering_uses_fixed_days_and_skips_unset_tiers() -> None:
    args = lifecycle(
        intelligent_tiering=False, warm_after_days=45, cold_after_days=None, archive_after_days=200
    )
    assert _transitions(args) == [("STANDARD_IA", 45)]
    (archive,) = [rule for rule in lifecycle_rules(args) if rule.id == "archive"]
    assert archive.filter.prefix == "archive/"
    assert [(t.storage_class, t.days) for t in archive.transitions] == [("DEEP_ARCHIVE", 200)]
    assert intelligent_tiering_days(args) == {}
    none = lifecycle(intelligent_tiering=False, cold_after_days=None, archive_after_days=None)
    assert _transitions(none) == []


def test_lifecycle_always_expires_old_versions_and_aborts_uploads() -> None:
    args = lifecycle(noncurrent_version_expiration_days=33, abort_incomplete_multipart_days=3)
    rules = {rule.id: rule for rule in lifecycle_rules(args)}
    assert rules["noncurrent-versions"].noncurrent_version_expiration.noncurrent_days == 33
    assert rules["noncurrent-versions"].expiration.expired_object_delete_marker is True
    assert (
        rules["abort-incomplete-multipart-uploads"].abort_incomplete_multipart_upload.days_after_initiation
        == 3
    )
    assert {rule.status for rule in rules.values()} == {"Enabled"}


def test_intelligent_tiering_leaves_out_unset_archive_tiers() -> None:
    assert intelligent_tiering_days(lifecycle(cold_after_days=None, archive_after_days=200)) == {
        "DEEP_ARCHIVE_ACCESS": 200
    }


def _actions(policy: dict[str, Any]) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def test_read_access_cannot_write_or_encrypt() -> None:
    policy = access_policy("arn:aws:s3:::data", "arn:aws:kms:r:1:key/k", "us-east-2", write=False)
    actions = _actions(policy)
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"} <= actions
    assert not {a for a in actions if a.startswith(("s3:Put", "s3:Delete", "kms:GenerateDataKey"))}
    assert "*" not in [s["Resource"] for s in policy["Statement"]]


def test_read_write_access_adds_writes_and_data_keys_on_this_bucket_and_key_only() -> None:
    policy = access_policy("arn:aws:s3:::data", "arn:aws:kms:r:1:key/k", "us-east-2", write=True)
    assert {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "kms:GenerateDataKey"} <= _actions(
        policy
    )
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources == {
        "Bucket": "arn:aws:s3:::data",
        "Objects": "arn:aws:s3:::data/*",
        "DataKeyThroughS3": "arn:aws:kms:r:1:key/k",
    }
    (key,) = [s for s in policy["Statement"] if s["Sid"] == "DataKeyThroughS3"]
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-2.amazonaws.com"}}


def test_efs_policy_allows_mount_target_clients_and_denies_plain_nfs() -> None:
    policy = efs_tls_only_policy("arn:aws:elasticfilesystem:r:1:file-system/fs-1")
    allow, deny = policy["Statement"]
    assert allow["Effect"] == "Allow"
    assert allow["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}
    assert denies_insecure_transport(deny, "arn:aws:elasticfilesystem:r:1:file-system/fs-1")


# --- the plan of every stack ---------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_follow_the_stack_config(stack: str) -> None:
    stack_plan = planned(stack)
    config = config_of(stack_plan)
    storage = config.storage
    azs = len(config.network.availability_zones)
    logging = int(storage.data_bucket.enable_access_logging)
    efs = int(storage.efs_home.enabled)
    counts = Counter(r.type for r in subtree(stack_plan.plan) if r.custom)
    expected = {
        BUCKET: 1 + logging,
        OWNERSHIP: 1 + logging,
        PUBLIC_ACCESS_BLOCK: 1 + logging,
        SSE: 1 + logging,
        VERSIONING: 1 + logging,
        BUCKET_POLICY: 1 + logging,
        LIFECYCLE: 1 + logging,
        LOGGING: logging,
        TIERING: int(bool(intelligent_tiering_days(wired(config)))),
        KMS_KEY: 1 + efs,
        KMS_ALIAS: 1 + efs,
        EFS: efs,
        MOUNT_TARGET: efs * azs,
        ACCESS_POINT: efs,
        BACKUP_POLICY: efs,
        EFS_POLICY: efs,
    }
    assert dict(counts) == expected
    # The committed stacks use every feature: a change to a default shows up here.
    assert sum(counts.values()) == {"dev": 26, "staging": 27, "prod": 27}[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_in_the_plan_is_encrypted_versioned_private_and_tls_only(stack: str) -> None:
    plan = planned(stack).plan
    buckets = plan.of_type(BUCKET)
    assert len(buckets) >= 2
    for bucket in buckets:
        (sse,) = for_bucket(plan, SSE, bucket)
        assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("aws:kms", "AES256")
        (block,) = for_bucket(plan, PUBLIC_ACCESS_BLOCK, bucket)
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert {flag: block.get(flag) for flag in flags} == dict.fromkeys(flags, True), bucket.name
        (versioning,) = for_bucket(plan, VERSIONING, bucket)
        assert versioning["versioningConfiguration"]["status"] == "Enabled"
        (policy,) = for_bucket(plan, BUCKET_POLICY, bucket)
        arn = bucket.outputs["arn"]
        assert any(denies_insecure_transport(s, arn, f"{arn}/*") for s in statements(policy["policy"]))
        (ownership,) = for_bucket(plan, OWNERSHIP, bucket)
        assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("stack", STACKS)
def test_data_bucket_uses_the_customer_key_with_bucket_keys(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    bucket, key = named(plan, "bucket"), named(plan, "key")
    (sse,) = for_bucket(plan, SSE, bucket)
    (rule,) = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key.outputs["arn"],
    }
    assert rule["bucketKeyEnabled"] is True
    assert key.inputs["enableKeyRotation"] is True
    assert bucket.inputs["forceDestroy"] is config_of(stack_plan).storage.data_bucket.force_destroy
    assert stack_plan.plan.outputs["data_bucket_name"] == bucket.id
    assert stack_plan.plan.outputs["data_kms_key_arn"] == key.outputs["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_fsx_service_linked_roles_may_use_the_data_key_only_through_s3(stack: str) -> None:
    plan = planned(stack).plan
    region = config_of(planned(stack)).region
    by_sid = {s["Sid"]: s for s in statements(named(plan, "key").inputs["policy"])}
    fsx = by_sid["AllowFsxLustreThroughS3"]
    assert fsx["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{region}.amazonaws.com"
    assert fsx["Condition"]["ArnLike"]["aws:PrincipalArn"].endswith(
        "role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_*"
    )
    assert "kms:*" not in fsx["Action"]


@pytest.mark.parametrize("stack", STACKS)
def test_access_logs_go_to_an_sse_s3_bucket_that_only_s3_logging_may_write(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    bucket, logs = named(plan, "bucket"), named(plan, "access-logs")
    (logging,) = for_bucket(plan, LOGGING, bucket)
    assert (logging["targetBucket"], logging["targetPrefix"]) == (logs.id, ACCESS_LOG_PREFIX)
    (sse,) = for_bucket(plan, SSE, logs)
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    (policy,) = for_bucket(plan, BUCKET_POLICY, logs)
    (allow,) = [s for s in statements(policy["policy"]) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Resource"] == f"{logs.outputs['arn']}/{ACCESS_LOG_PREFIX}*"
    assert allow["Condition"]["ArnLike"] == {"aws:SourceArn": bucket.outputs["arn"]}
    (lifecycle,) = for_bucket(plan, LIFECYCLE, logs)
    (rule,) = lifecycle["rules"]
    assert rule["expiration"]["days"] == config_of(stack_plan).observability.log_retention_days
    assert plan.outputs["access_log_bucket_name"] == logs.id


@pytest.mark.parametrize("stack", STACKS)
def test_lifecycle_and_tiering_days_match_config(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    lifecycle = config_of(stack_plan).storage.data_bucket.lifecycle
    assert lifecycle.enable_intelligent_tiering
    (rules,) = [i["rules"] for i in for_bucket(plan, LIFECYCLE, named(plan, "bucket"))]
    by_id = {rule["id"]: rule for rule in rules}
    assert by_id["tiering"]["transitions"] == [{"storageClass": "INTELLIGENT_TIERING", "days": 0}]
    assert (
        by_id["noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"]
        == lifecycle.noncurrent_version_expiration_days
    )
    assert (
        by_id["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
        == lifecycle.abort_incomplete_multipart_days
    )
    (tiering,) = for_bucket(plan, TIERING, named(plan, "bucket"))
    assert tiering["status"] == "Enabled"
    assert tiering["filter"] == {"prefix": lifecycle.archive_prefix}
    assert {t["accessTier"]: t["days"] for t in tiering["tierings"]} == {
        "ARCHIVE_ACCESS": lifecycle.cold_after_days,
        "DEEP_ARCHIVE_ACCESS": lifecycle.archive_after_days,
    }


@pytest.mark.parametrize("stack", STACKS)
def test_efs_is_encrypted_with_its_own_key_and_mounted_in_every_private_subnet(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    efs_config = config_of(stack_plan).storage.efs_home
    (efs,) = of_type(plan, EFS)
    key = named(plan, "efs-key")
    assert efs.inputs["encrypted"] is True
    assert efs.inputs["kmsKeyId"] == key.outputs["arn"] != named(plan, "key").outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert efs.inputs["throughputMode"] == efs_config.throughput_mode
    assert efs.inputs["performanceMode"] == efs_config.performance_mode
    assert efs.inputs["lifecyclePolicies"] == [
        {"transitionToIa": efs_config.transition_to_ia},
        {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    targets = of_type(plan, MOUNT_TARGET)
    private = plan.outputs["private_subnet_ids"]
    assert len(private) == len(config_of(stack_plan).network.availability_zones)
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(private)
    assert {t.inputs["fileSystemId"] for t in targets} == {efs.id}
    for target in targets:
        assert target.inputs["securityGroups"] == [plan.outputs["efs_security_group_id"]]
    assert plan.outputs["efs_file_system_id"] == efs.id


@pytest.mark.parametrize("stack", STACKS)
def test_efs_home_access_point_backup_and_tls_policy(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    (efs,) = of_type(plan, EFS)
    (access_point,) = of_type(plan, ACCESS_POINT)
    assert access_point.inputs["fileSystemId"] == efs.id
    assert access_point.inputs["rootDirectory"] == {
        "path": EFS_HOME_PATH,
        "creationInfo": {"ownerUid": 0, "ownerGid": 0, "permissions": "0755"},
    }
    assert plan.outputs["efs_access_point_id"] == access_point.id
    (backup,) = of_type(plan, BACKUP_POLICY)
    assert backup.inputs["backupPolicy"] == {"status": "ENABLED"}
    assert config_of(stack_plan).storage.efs_home.enable_backup
    (policy,) = of_type(plan, EFS_POLICY)
    assert policy.inputs["fileSystemId"] == efs.id
    assert any(denies_insecure_transport(s, efs.outputs["arn"]) for s in statements(policy.inputs["policy"]))


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_compliance_tags(stack: str) -> None:
    plan = planned(stack).plan
    taggable = [r for r in subtree(plan) if r.custom and is_taggable(r.type)]
    assert {r.type for r in taggable} >= {BUCKET, KMS_KEY, EFS, ACCESS_POINT}
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert set(REQUIRED_TAG_KEYS) <= set(tags), resource.name
        assert tags["Environment"] == stack
    assert named(plan, "bucket").inputs["tags"]["Name"] == f"{component(plan).name}-bucket"


@pytest.mark.parametrize("stack", STACKS)
def test_only_prod_protects_buckets_keys_and_efs(stack: str) -> None:
    plan = planned(stack).plan
    roles = ("bucket", "access-logs", "key", "efs-key", "efs")
    protected = {role: named(plan, role).protect for role in roles}
    assert protected == dict.fromkeys(roles, stack == "prod")
    assert not any(r.protect for r in subtree(plan) if r.name not in {named(plan, x).name for x in roles})


# --- mutated stack files -------------------------------------------------------------------------
def test_fixed_day_tiers_without_intelligent_tiering(
    stack_config: LoadStack, write_stack: WriteStack
) -> None:
    def edit(storage: dict[str, Any]) -> None:
        storage.setdefault("data_bucket", {})["lifecycle"] = {
            "enable_intelligent_tiering": False,
            "warm_after_days": 30,
            "cold_after_days": 120,
            "archive_after_days": 400,
        }

    plan = plan_with(stack_config, write_stack, edit)
    assert of_type(plan, TIERING) == []
    (rules,) = [i["rules"] for i in for_bucket(plan, LIFECYCLE, named(plan, "bucket"))]
    (tiering,) = [rule for rule in rules if rule["id"] == "tiering"]
    assert tiering["transitions"] == [
        {"storageClass": "STANDARD_IA", "days": 30},
        {"storageClass": "GLACIER_IR", "days": 120},
    ]
    # Deep Archive needs a restore before Lustre can read an object: only the archive prefix goes there.
    (archive,) = [rule for rule in rules if rule["id"] == "archive"]
    assert archive["filter"] == {"prefix": "archive/"}
    assert archive["transitions"] == [{"storageClass": "DEEP_ARCHIVE", "days": 400}]


def test_no_efs_and_no_access_logs_when_disabled(stack_config: LoadStack, write_stack: WriteStack) -> None:
    def edit(storage: dict[str, Any]) -> None:
        storage["efs_home"] = {"enabled": False}
        storage.setdefault("data_bucket", {})["enable_access_logging"] = False

    plan = plan_with(stack_config, write_stack, edit)
    types = {r.type for r in subtree(plan)}
    assert not types & {EFS, MOUNT_TARGET, ACCESS_POINT, BACKUP_POLICY, EFS_POLICY, LOGGING}
    assert len(of_type(plan, BUCKET)) == len(of_type(plan, KMS_KEY)) == 1
    assert not {"efs_file_system_id", "efs_access_point_id", "access_log_bucket_name"} & set(plan.outputs)


def test_efs_backup_policy_is_disabled_explicitly(stack_config: LoadStack, write_stack: WriteStack) -> None:
    plan = plan_with(stack_config, write_stack, lambda s: s.update(efs_home={"enable_backup": False}))
    (backup,) = of_type(plan, BACKUP_POLICY)
    assert backup.inputs["backupPolicy"] == {"status": "DISABLED"}


# --- the wiring: config and environment table → args ---------------------------------------------
def test_args_defaults_are_the_stack_defaults() -> None:
    """A library user who passes only the required args gets the bucket and EFS a stack with an
    empty `hpc:storage` gets: the args' defaults and the config models' defaults agree."""
    config = config_of(planned("dev"))
    from_config = wired(config.model_copy(update={"storage": StorageConfig()}))
    environment_and_wiring = {
        "region",
        "efs_mount_subnet_ids",
        "efs_security_group_ids",
        "access_log_retention_days",  # the stack's log retention, not a storage setting
        "protect_data",
        "kms_key_deletion_window_days",
    }
    required = {f.name: getattr(from_config, f.name) for f in dataclasses.fields(DataRepositoryArgs)}
    defaults = DataRepositoryArgs(**{name: required[name] for name in environment_and_wiring})
    assert from_config == defaults


@pytest.mark.parametrize("stack", STACKS)
def test_wiring_hands_environment_choices_and_no_compliance_tags(stack: str) -> None:
    config = config_of(planned(stack))
    args = wired(config)
    environment = profile(config.environment)
    assert args.protect_data is environment.protect_data
    assert args.kms_key_deletion_window_days == environment.kms_deletion_window_days
    # The stack transform adds the compliance tags; the component must not send them again.
    assert dict(args.tags) == {}
    assert args.efs_mount_subnet_ids == {az: f"subnet-{az}" for az in config.network.availability_zones}


@pytest.mark.parametrize("stack", STACKS)
def test_keys_wait_the_environments_deletion_window(stack: str) -> None:
    plan = planned(stack).plan
    window = profile(config_of(planned(stack)).environment).kms_deletion_window_days
    assert named(plan, "key").inputs["deletionWindowInDays"] == window
    assert named(plan, "efs-key").inputs["deletionWindowInDays"] == window


# --- the component on its own: schema, grants, mounts, tags ----------------------------------------
def test_analyzer_builds_a_schema_for_the_component() -> None:
    result = Analyzer("hpc").analyze([DataRepository])
    definition = result["component_definitions"]["DataRepository"]
    assert {"region", "efsMountSubnetIds", "protectData", "tags"} <= set(definition.inputs)
    assert {"bucketName", "bucketArn", "kmsKeyArn", "efsFileSystemId"} <= set(definition.outputs)
    assert definition.inputs["efsMountSubnetIds"].additional_properties is not None


def _plan_component(**values: Any) -> tuple[Plan, dict[str, Any]]:
    captured: dict[str, Any] = {}
    args: dict[str, Any] = {
        "region": "us-east-2",
        "efs_mount_subnet_ids": {"us-east-2a": "subnet-a", "us-east-2b": "subnet-b"},
        "efs_security_group_ids": ["sg-efs"],
        **values,
    }

    def program() -> None:
        data = DataRepository("unit-data", DataRepositoryArgs(**args))
        role = aws.iam.Role("head", assume_role_policy="{}")
        captured["read"] = data.grant_read(role)
        captured["write"] = data.grant_read_write(aws.iam.Role("compute", assume_role_policy="{}"))
        captured["mounts"] = data.mounts()

    plan = run_offline(program, stack="unit", config={}, region="us-east-2")
    return plan, captured


def test_grants_attach_read_and_read_write_policies_to_the_roles() -> None:
    plan, _ = _plan_component()
    policies = {r.name: r.inputs for r in plan.of_type(ROLE_POLICY)}
    assert set(policies) == {"unit-data-read-head", "unit-data-read-write-compute"}
    bucket_arn = plan.by_name("unit-data-bucket").outputs["arn"]
    read = json.loads(policies["unit-data-read-head"]["policy"])
    write = json.loads(policies["unit-data-read-write-compute"]["policy"])
    assert policies["unit-data-read-head"]["role"] == plan.by_name("head").id
    assert "s3:PutObject" not in _actions(read)
    assert "s3:PutObject" in _actions(write)
    assert {s["Resource"] for s in read["Statement"]} >= {bucket_arn, f"{bucket_arn}/*"}
    assert read["Statement"][2]["Resource"] == plan.by_name("unit-data-key").outputs["arn"]


def test_mounts_home_only_when_efs_is_enabled() -> None:
    _, with_efs = _plan_component(efs_home=True)
    (mount,) = with_efs["mounts"]
    assert isinstance(mount, SharedStorageMount)
    assert (mount.name, mount.mount_dir, mount.storage_type) == ("home", "/home", "Efs")
    _, without = _plan_component(efs_home=False, efs_mount_subnet_ids={})
    assert without["mounts"] == []


def test_one_mount_target_per_given_subnet_named_by_its_key() -> None:
    plan, _ = _plan_component()
    targets = {r.name: r.inputs for r in plan.of_type(MOUNT_TARGET)}
    assert {name: t["subnetId"] for name, t in targets.items()} == {
        "unit-data-efs-mount-us-east-2a": "subnet-a",
        "unit-data-efs-mount-us-east-2b": "subnet-b",
    }
    assert {tuple(t["securityGroups"]) for t in targets.values()} == {("sg-efs",)}


def test_efs_home_without_mount_subnets_is_refused() -> None:
    with pytest.raises(Exception, match="efs_home is on but efs_mount_subnet_ids is empty"):
        _plan_component(efs_mount_subnet_ids={})


def test_library_use_tags_every_taggable_child_with_the_given_tags_only() -> None:
    plan, _ = _plan_component(tags={"Project": "demo"})
    taggable = [
        r for r in plan.resources if r.custom and is_taggable(r.type) and r.name.startswith("unit-data")
    ]
    assert {r.type for r in taggable} >= {BUCKET, KMS_KEY, EFS, ACCESS_POINT}
    for resource in taggable:
        # The given tags and the Name the component sets; nothing compliance-related without a transform.
        assert set(resource.inputs["tags"]) == {"Project", "Name"}, resource.name
        assert resource.inputs["tags"]["Project"] == "demo"
    assert plan.by_name("unit-data-bucket").inputs["tags"]["Name"] == "unit-data-bucket"


def test_environment_choices_arrive_as_plain_args() -> None:
    plan, _ = _plan_component(protect_data=True, kms_key_deletion_window_days=7)
    assert {r.name for r in plan.resources if r.protect} == {
        "unit-data-key",
        "unit-data-bucket",
        "unit-data-access-logs",
        "unit-data-efs-key",
        "unit-data-efs",
    }
    assert {r.inputs["deletionWindowInDays"] for r in plan.of_type(KMS_KEY)} == {7}
    unset, _ = _plan_component()
    # Left to AWS's default when not given.
    assert [r.inputs.get("deletionWindowInDays") for r in unset.of_type(KMS_KEY)] == [None, None]
    assert not any(r.protect for r in unset.resources)
