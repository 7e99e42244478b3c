"""LustreFs: pure helpers, the throughput outputs the program adds beside it, every stack's offline
plan, mutated stack files, and the component built on its own from its args (the library use)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi.provider.experimental.analyzer import Analyzer

from components.lustre_fs import (
    FSX_LOG_GROUP_PREFIX,
    LUSTRE_LOG_LEVEL,
    LUSTRE_VERSION,
    TYPE_TOKEN,
    DataRepositoryAssociationArgs,
    LustreFs,
    LustreFsArgs,
    association_s3_args,
    association_slug,
)
from components.mounts import SharedStorageMount
from hpc_platform.app import wiring
from hpc_platform.app.offline import StackPlan, plan_stack_file, run_offline
from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.config.models import (
    DataRepositoryAssociationConfig,
    PersistentLustreConfig,
    ScratchLustreConfig,
    StackConfig,
    StorageConfig,
)
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import (
    LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB,
    LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB,
    REQUIRED_TAG_KEYS,
)
from hpc_platform.domain.performance import lustre_baseline_mbps, throughput_model
from tests.support.component_queries import component_queries
from tests.support.stacks import STACKS, planned

LUSTRE = "aws:fsx/lustreFileSystem:LustreFileSystem"
DRA = "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"

WriteStack = Callable[[dict[str, Any], str], Path]
LoadStack = Callable[[str], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------------
component, subtree, of_type, named = component_queries(TYPE_TOKEN)


def maybe_named(plan: Plan, role: str) -> PlannedResource | None:
    matches = [r for r in subtree(plan) if r.name == f"{component(plan).name}-{role}"]
    return matches[0] if matches else None


def config_of(stack_plan: StackPlan) -> StackConfig:
    return stack_plan.loaded.config


def data_bucket(plan: Plan) -> str:
    bucket: str = plan.outputs["data_bucket_name"]
    return bucket


def plan_with(
    stack_config: LoadStack, write_stack: WriteStack, edit: Callable[[dict[str, Any]], None]
) -> Plan:
    config = stack_config("dev")
    edit(config["hpc:storage"])
    return plan_stack_file(write_stack(config, "Pulumi.lustre.yaml")).plan


def wired(config: StackConfig) -> LustreFsArgs:
    """The wiring's args, with stand-ins for what it reads from EfaNetwork and DataRepository."""
    network = SimpleNamespace(storage_subnet_id="subnet-storage", lustre_security_group_id="sg-lustre")
    data = SimpleNamespace(bucket_name="data-bucket")
    return wiring.lustre_args(config, network, data)  # type: ignore[arg-type]


def with_storage(config: StackConfig, **parts: Any) -> StackConfig:
    """`config` with some of `storage`'s parts (scratch, persistent, target) replaced."""
    return config.model_copy(update={"storage": config.storage.model_copy(update=parts)})


# --- throughput arithmetic -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capacity_gib", "per_tib", "expected"),
    [
        (1200, 200, 234.375),
        (2400, 125, 292.96875),
        (1024, 1000, 1000.0),
        (468000, 200, 91406.25),  # prod scratch: ≈ 91 GB/s
        (93600, 500, 45703.125),  # prod persistent: ≈ 46 GB/s
    ],
)
def test_baseline_throughput_is_capacity_in_tib_times_throughput_per_tib(
    capacity_gib: int, per_tib: int, expected: float
) -> None:
    assert lustre_baseline_mbps(capacity_gib, per_tib) == pytest.approx(expected)


def _throughput(config: StackConfig) -> dict[str, Any]:
    return wiring.lustre_throughput_outputs(config)


def test_throughput_outputs_use_the_scratch_2_baseline_and_convert_the_target_to_mbps() -> None:
    config = with_storage(
        config_of(planned("dev")),
        scratch=ScratchLustreConfig(capacity_gib=2400),
        persistent=PersistentLustreConfig(capacity_gib=2400, throughput_mbps_per_tib=1000),
        target_aggregate_throughput_gbps=2.5,
    )
    outputs = _throughput(config)
    assert outputs["lustre_throughput_mbps"] == {
        "scratch": 468.8,  # 2400 / 1024 TiB × 200 MB/s/TiB = 468.75
        "persistent": 2343.8,
        "aggregate": 2812.5,
        "target": 2500.0,
    }
    assert outputs["lustre_throughput_meets_target"] is True


def test_throughput_outputs_count_disabled_file_systems_as_zero_and_omit_a_verdict_without_target() -> None:
    config = with_storage(
        config_of(planned("dev")),
        scratch=ScratchLustreConfig(enabled=False, capacity_gib=24000),
        persistent=PersistentLustreConfig(capacity_gib=1200, throughput_mbps_per_tib=125),
        target_aggregate_throughput_gbps=1,
    )
    outputs = _throughput(config)
    assert outputs["lustre_throughput_mbps"]["scratch"] == 0
    assert outputs["lustre_throughput_mbps"]["aggregate"] == pytest.approx(146.5)
    assert outputs["lustre_throughput_meets_target"] is False
    untargeted = _throughput(with_storage(config, target_aggregate_throughput_gbps=None))
    assert untargeted["lustre_throughput_mbps"]["target"] is None
    assert "lustre_throughput_meets_target" not in untargeted


@given(
    scratch_steps=st.integers(min_value=1, max_value=400),
    persistent_steps=st.integers(min_value=1, max_value=400),
    per_tib=st.sampled_from(LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB),
)
def test_aggregate_is_the_sum_and_grows_with_capacity(
    scratch_steps: int, persistent_steps: int, per_tib: int
) -> None:
    base = config_of(planned("dev"))
    scratch = ScratchLustreConfig(capacity_gib=2400 * scratch_steps)
    persistent = PersistentLustreConfig(capacity_gib=2400 * persistent_steps, throughput_mbps_per_tib=per_tib)
    model = throughput_model(with_storage(base, scratch=scratch, persistent=persistent))
    assert model.aggregate_mbps == pytest.approx(sum(fs.baseline_mbps for fs in model.file_systems))
    bigger = throughput_model(
        with_storage(
            base,
            scratch=scratch.model_copy(update={"capacity_gib": scratch.capacity_gib + 2400}),
            persistent=persistent,
        )
    )
    assert bigger.aggregate_mbps - model.aggregate_mbps == pytest.approx(2400 / 1024 * 200)


# --- associations --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "slug"),
    [
        ("/projects", "projects"),
        ("/reference/", "reference"),
        ("/a/b_c", "a-b-c"),
        ("/", "root"),
        ("/Ref", "ref"),
    ],
)
def test_association_slug(path: str, slug: str) -> None:
    assert association_slug(path) == slug


def test_association_policies_leave_out_directions_without_events() -> None:
    both = association_s3_args(DataRepositoryAssociationArgs(file_system_path="/p"))
    assert both is not None
    assert both.auto_import_policy.events == ["NEW", "CHANGED", "DELETED"]
    assert both.auto_export_policy.events == ["NEW", "CHANGED", "DELETED"]
    read_only = association_s3_args(DataRepositoryAssociationArgs(file_system_path="/r", export_events=[]))
    assert read_only is not None and read_only.auto_export_policy is None
    assert read_only.auto_import_policy.events == ["NEW", "CHANGED", "DELETED"]
    manual = association_s3_args(
        DataRepositoryAssociationArgs(file_system_path="/m", import_events=[], export_events=[])
    )
    assert manual is None


# --- the plan of every stack ---------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_follow_the_stack_config(stack: str) -> None:
    stack_plan = planned(stack)
    storage = config_of(stack_plan).storage
    scratch, persistent = int(storage.scratch.enabled), int(storage.persistent.enabled)
    key = int(storage.scratch.enabled or storage.persistent.enabled)
    counts = Counter(r.type for r in subtree(stack_plan.plan) if r.custom)
    assert dict(counts) == {
        LUSTRE: scratch + persistent,
        LOG_GROUP: scratch + persistent,
        DRA: len(storage.persistent.data_repository_associations),
        KMS_KEY: key,
        KMS_ALIAS: key,
    }
    assert sum(counts.values()) == {"dev": 7, "staging": 8, "prod": 8}[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_scratch_is_scratch_2_with_the_aws_owned_key_and_the_data_bucket_paths(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    config = config_of(stack_plan).storage.scratch
    scratch = named(plan, "scratch").inputs
    assert scratch["deploymentType"] == "SCRATCH_2"
    assert scratch["storageCapacity"] == config.capacity_gib
    assert scratch["dataCompressionType"] == config.data_compression == "LZ4"
    assert "kmsKeyId" not in scratch
    assert "perUnitStorageThroughput" not in scratch
    assert scratch["fileSystemTypeVersion"] == LUSTRE_VERSION
    assert scratch["subnetIds"] == plan.outputs["storage_subnet_id"]
    assert scratch["securityGroupIds"] == [plan.outputs["lustre_security_group_id"]]
    bucket = data_bucket(plan)
    assert scratch["importPath"] == f"s3://{bucket}/{config.import_path}"
    assert scratch["exportPath"] == f"s3://{bucket}/{config.export_path}"
    assert plan.outputs["scratch_file_system_id"] == named(plan, "scratch").id


@pytest.mark.parametrize("stack", STACKS)
def test_persistent_is_persistent_2_with_config_capacity_throughput_and_customer_key(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    config = config_of(stack_plan).storage.persistent
    persistent = named(plan, "persistent").inputs
    assert persistent["deploymentType"] == "PERSISTENT_2"
    assert persistent["storageCapacity"] == config.capacity_gib
    assert persistent["perUnitStorageThroughput"] == config.throughput_mbps_per_tib
    assert persistent["dataCompressionType"] == "LZ4"
    assert persistent["fileSystemTypeVersion"] == LUSTRE_VERSION
    assert persistent["subnetIds"] == plan.outputs["storage_subnet_id"]
    assert persistent["securityGroupIds"] == [plan.outputs["lustre_security_group_id"]]
    assert config.enable_customer_kms_key
    key = named(plan, "key")
    assert persistent["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert persistent["automaticBackupRetentionDays"] == config.automatic_backup_retention_days > 0
    assert persistent["dailyAutomaticBackupStartTime"] == "05:00"
    assert persistent["copyTagsToBackups"] is True
    squash = persistent.get("rootSquashConfiguration")
    assert squash == (None if config.root_squash is None else {"rootSquash": config.root_squash})
    # A final backup when prod's persistent file system is ever deleted.
    assert persistent["skipFinalBackup"] is (stack != "prod")


def test_committed_stacks_cover_both_root_squash_cases() -> None:
    squash = {stack: config_of(planned(stack)).storage.persistent.root_squash for stack in STACKS}
    assert squash == {"dev": None, "staging": "65534:65534", "prod": "65534:65534"}


@pytest.mark.parametrize("stack", STACKS)
def test_data_repository_associations_link_the_persistent_file_system_to_config_paths(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    persistent_id = named(plan, "persistent").id
    scratch_id = named(plan, "scratch").id
    associations = config_of(stack_plan).storage.persistent.data_repository_associations
    planned_dras = plan.of_type(DRA)  # the whole plan: the committed scratch uses the legacy paths
    assert len(planned_dras) == len(associations) >= 1
    assert {d.inputs["fileSystemId"] for d in planned_dras} == {persistent_id} != {scratch_id}
    bucket = data_bucket(plan)
    for association in associations:
        dra = named(plan, f"dra-{association_slug(association.file_system_path)}").inputs
        assert dra["fileSystemPath"] == association.file_system_path
        assert dra["dataRepositoryPath"] == f"s3://{bucket}/{association.bucket_prefix}"
        assert dra["batchImportMetaDataOnCreate"] is association.batch_import_metadata_on_create
        assert dra["deleteDataInFilesystem"] is False
        s3 = dra["s3"]
        assert s3["autoImportPolicy"]["events"] == association.import_events
        if association.export_events:
            assert s3["autoExportPolicy"]["events"] == association.export_events
        else:
            assert "autoExportPolicy" not in s3


def test_staging_and_prod_have_a_read_only_reference_association() -> None:
    for stack in ("staging", "prod"):
        plan = planned(stack).plan
        assert "autoExportPolicy" not in named(plan, "dra-reference").inputs["s3"]
        assert "autoExportPolicy" in named(plan, "dra-projects").inputs["s3"]


@pytest.mark.parametrize("stack", STACKS)
def test_lustre_logs_warnings_and_errors_to_encrypted_fsx_log_groups(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    retention = config_of(stack_plan).observability.log_retention_days
    key_arn = named(plan, "key").outputs["arn"]
    for role in ("scratch", "persistent"):
        group = named(plan, f"{role}-logs")
        assert group.inputs["name"].startswith(FSX_LOG_GROUP_PREFIX)
        assert group.inputs["retentionInDays"] == retention
        assert group.inputs["kmsKeyId"] == key_arn
        logging = named(plan, role).inputs["logConfiguration"]
        assert logging == {"level": LUSTRE_LOG_LEVEL, "destination": group.outputs["arn"]}
    by_sid = {s["Sid"]: s for s in json.loads(named(plan, "key").inputs["policy"])["Statement"]}
    logs = by_sid["AllowCloudWatchLogsForLustreLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{config_of(stack_plan).region}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].endswith(
        f":log-group:{FSX_LOG_GROUP_PREFIX}{component(plan).name}/*"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_compliance_tags(stack: str) -> None:
    plan = planned(stack).plan
    taggable = [r for r in subtree(plan) if r.custom and is_taggable(r.type)]
    assert {r.type for r in taggable} >= {LUSTRE, DRA, LOG_GROUP, KMS_KEY}
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert set(REQUIRED_TAG_KEYS) <= set(tags), resource.name
        assert tags["Name"] == resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_only_prod_protects_the_persistent_file_system_and_its_key(stack: str) -> None:
    plan = planned(stack).plan
    protected = {r.name for r in subtree(plan) if r.protect}
    expected = {named(plan, "persistent").name, named(plan, "key").name} if stack == "prod" else set()
    assert protected == expected


@pytest.mark.parametrize("stack", STACKS)
def test_plan_outputs_show_the_baseline_next_to_the_target(stack: str) -> None:
    stack_plan = planned(stack)
    config = config_of(stack_plan)
    storage = config.storage
    model = throughput_model(config)
    outputs = stack_plan.plan.outputs
    assert outputs["lustre_throughput_mbps"]["aggregate"] == round(model.aggregate_mbps, 1)
    assert outputs["lustre_throughput_mbps"]["scratch"] == round(
        lustre_baseline_mbps(storage.scratch.capacity_gib, LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB), 1
    )
    assert outputs["lustre_throughput_mbps"]["target"] == storage.target_aggregate_throughput_gbps * 1000
    assert outputs["lustre_throughput_meets_target"] is True
    plan = stack_plan.plan
    for role in ("scratch", "persistent"):
        fs = named(plan, role)
        assert outputs[f"{role}_file_system_id"] == fs.id
        assert outputs[f"{role}_dns_name"] == fs.outputs["dnsName"]
        assert outputs[f"{role}_mount_name"] == fs.outputs["mountName"]


def test_prod_baseline_is_about_137_gb_per_second_against_a_100_gb_target() -> None:
    output = planned("prod").plan.outputs["lustre_throughput_mbps"]
    assert output["aggregate"] == pytest.approx(137109.4)
    assert output["target"] == 100000


# --- mutated stack files -------------------------------------------------------------------------
def test_persistent_without_customer_key(stack_config: LoadStack, write_stack: WriteStack) -> None:
    plan = plan_with(
        stack_config,
        write_stack,
        lambda s: s["persistent"].update(enable_customer_kms_key=False, automatic_backup_retention_days=0),
    )
    persistent = named(plan, "persistent").inputs
    assert "kmsKeyId" not in persistent
    assert "dailyAutomaticBackupStartTime" not in persistent
    assert persistent["automaticBackupRetentionDays"] == 0
    # The key stays for the log groups.
    key_arn = named(plan, "key").outputs["arn"]
    assert [group.inputs["kmsKeyId"] for group in of_type(plan, LOG_GROUP)] == [key_arn, key_arn]
    assert "lustre_kms_key_arn" in plan.outputs


def test_only_the_enabled_file_systems_are_created(stack_config: LoadStack, write_stack: WriteStack) -> None:
    plan = plan_with(stack_config, write_stack, lambda s: s["scratch"].update(enabled=False))
    assert [r.name for r in of_type(plan, LUSTRE)] == [named(plan, "persistent").name]
    assert "scratch_file_system_id" not in plan.outputs
    assert plan.outputs["lustre_throughput_mbps"]["scratch"] == 0

    plan = plan_with(stack_config, write_stack, lambda s: s["persistent"].update(enabled=False))
    assert [r.name for r in of_type(plan, LUSTRE)] == [named(plan, "scratch").name]
    assert of_type(plan, DRA) == []
    assert [group.inputs["kmsKeyId"] for group in of_type(plan, LOG_GROUP)] == [
        named(plan, "key").outputs["arn"]
    ]

    plan = plan_with(
        stack_config,
        write_stack,
        lambda s: (s["scratch"].update(enabled=False), s["persistent"].update(enabled=False)),
    )
    assert subtree(plan) == []
    assert plan.outputs["lustre_throughput_mbps"]["aggregate"] == 0
    assert "persistent_file_system_id" not in plan.outputs


def test_scratch_without_data_repository_paths(stack_config: LoadStack, write_stack: WriteStack) -> None:
    def edit(storage: dict[str, Any]) -> None:
        del storage["scratch"]["import_path"], storage["scratch"]["export_path"]

    scratch = named(plan_with(stack_config, write_stack, edit), "scratch").inputs
    assert "importPath" not in scratch and "exportPath" not in scratch


def test_scratch_2_links_the_bucket_through_associations_when_configured(
    stack_config: LoadStack, write_stack: WriteStack
) -> None:
    """SCRATCH_2 on Lustre 2.15 takes data repository associations (only 2.10 and SCRATCH_1 do not)."""

    def edit(storage: dict[str, Any]) -> None:
        del storage["scratch"]["import_path"], storage["scratch"]["export_path"]
        storage["scratch"]["data_repository_associations"] = [
            {"file_system_path": "/staging", "bucket_prefix": "scratch-staging/", "export_events": []},
            {"file_system_path": "/results", "bucket_prefix": "scratch-results/", "import_events": []},
        ]

    plan = plan_with(stack_config, write_stack, edit)
    scratch = named(plan, "scratch")
    assert "importPath" not in scratch.inputs and "exportPath" not in scratch.inputs
    bucket = data_bucket(plan)
    staging = named(plan, "scratch-dra-staging").inputs
    results = named(plan, "scratch-dra-results").inputs
    assert staging["fileSystemId"] == results["fileSystemId"] == scratch.id
    assert staging["dataRepositoryPath"] == f"s3://{bucket}/scratch-staging/"
    assert "autoExportPolicy" not in staging["s3"] and "autoImportPolicy" not in results["s3"]
    assert results["s3"]["autoExportPolicy"]["events"] == ["NEW", "CHANGED", "DELETED"]
    # The persistent file system keeps its own associations, under their old names.
    assert named(plan, "dra-projects").inputs["fileSystemId"] == named(plan, "persistent").id


def test_reports_a_throughput_target_the_baseline_misses(
    stack_config: LoadStack, write_stack: WriteStack
) -> None:
    plan = plan_with(stack_config, write_stack, lambda s: s.update(target_aggregate_throughput_gbps=5))
    assert plan.outputs["lustre_throughput_mbps"]["target"] == 5000
    assert plan.outputs["lustre_throughput_meets_target"] is False


# --- the wiring: config and environment table → args ---------------------------------------------
def test_args_defaults_are_the_stack_defaults() -> None:
    """A library user who passes only the required args gets the file systems a stack with an
    empty `hpc:storage` gets: the args' defaults and the config models' defaults agree."""
    from_config = wired(config_of(planned("dev")).model_copy(update={"storage": StorageConfig()}))
    environment_and_wiring = {
        "region",
        "subnet_id",
        "security_group_ids",
        "data_bucket",
        "log_retention_days",  # the stack's log retention, not a storage setting
        "protect_data",
        "final_backup",
        "kms_key_deletion_window_days",
    }
    values = {f.name: getattr(from_config, f.name) for f in dataclasses.fields(LustreFsArgs)}
    defaults = LustreFsArgs(**{name: values[name] for name in environment_and_wiring})
    assert from_config == defaults
    assert (
        DataRepositoryAssociationArgs(file_system_path="/p")
        == wiring._associations([DataRepositoryAssociationConfig(file_system_path="/p")])[0]
    )


@pytest.mark.parametrize("stack", STACKS)
def test_wiring_hands_environment_choices_and_no_compliance_tags(stack: str) -> None:
    config = config_of(planned(stack))
    args = wired(config)
    environment = profile(config.environment)
    assert args.protect_data is environment.protect_data
    assert args.final_backup is environment.final_backups
    assert args.kms_key_deletion_window_days == environment.kms_deletion_window_days
    # The stack transform adds the compliance tags; the component must not send them again.
    assert dict(args.tags) == {}
    assert (args.subnet_id, list(args.security_group_ids), args.data_bucket) == (
        "subnet-storage",
        ["sg-lustre"],
        "data-bucket",
    )


@pytest.mark.parametrize("stack", STACKS)
def test_key_waits_the_environments_deletion_window(stack: str) -> None:
    window = profile(config_of(planned(stack)).environment).kms_deletion_window_days
    assert named(planned(stack).plan, "key").inputs["deletionWindowInDays"] == window


# --- the component on its own: schema, mounts, bucket links, tags ----------------------------------
def test_analyzer_builds_a_schema_for_the_component() -> None:
    result = Analyzer("hpc").analyze([LustreFs])
    definition = result["component_definitions"]["LustreFs"]
    assert {"subnetId", "securityGroupIds", "dataBucket", "persistentAssociations"} <= set(definition.inputs)
    assert {"scratchFileSystemId", "persistentFileSystemId", "kmsKeyArn"} <= set(definition.outputs)
    assert "DataRepositoryAssociationArgs" in result["type_definitions"]


def _plan_component(**values: Any) -> tuple[Plan, list[SharedStorageMount]]:
    captured: list[SharedStorageMount] = []
    args: dict[str, Any] = {
        "region": "us-east-2",
        "subnet_id": "subnet-s",
        "security_group_ids": ["sg-lustre"],
    }

    def program() -> None:
        lustre = LustreFs("unit-lustre", LustreFsArgs(**{**args, **values}))
        captured.extend(lustre.mounts())

    plan = run_offline(program, stack="unit", config={}, region="us-east-2")
    return plan, captured


@pytest.mark.parametrize(
    ("scratch", "persistent", "expected"),
    [
        (True, True, [("scratch", "/scratch"), ("persistent", "/fsx")]),
        (True, False, [("scratch", "/scratch")]),
        (False, True, [("persistent", "/fsx")]),
        (False, False, []),
    ],
)
def test_mounts_one_lustre_entry_per_enabled_file_system(
    scratch: bool, persistent: bool, expected: list[tuple[str, str]]
) -> None:
    _, mounts = _plan_component(scratch=scratch, persistent=persistent)
    assert [(m.name, m.mount_dir) for m in mounts] == expected
    assert {m.storage_type for m in mounts} <= {"FsxLustre"}
    assert all(isinstance(m.file_system_id, pulumi.Output) for m in mounts)


def test_links_to_a_bucket_given_by_name() -> None:
    plan, _ = _plan_component(
        data_bucket="research-data",
        scratch_import_path="staging/",
        persistent_associations=[
            DataRepositoryAssociationArgs(file_system_path="/projects", bucket_prefix="p/")
        ],
    )
    scratch = plan.by_name("unit-lustre-scratch").inputs
    assert (scratch["importPath"], scratch["subnetIds"], scratch["securityGroupIds"]) == (
        "s3://research-data/staging/",
        "subnet-s",
        ["sg-lustre"],
    )
    dra = plan.by_name("unit-lustre-dra-projects").inputs
    assert dra["dataRepositoryPath"] == "s3://research-data/p/"
    assert dra["fileSystemId"] == plan.by_name("unit-lustre-persistent").id


def test_a_bucket_link_without_a_bucket_is_refused() -> None:
    with pytest.raises(Exception, match="data_bucket is not"):
        _plan_component(persistent_associations=[DataRepositoryAssociationArgs(file_system_path="/p")])
    # A link of a file system that is not created needs no bucket.
    _plan_component(scratch=False, scratch_import_path="staging/")


def test_environment_choices_arrive_as_plain_args() -> None:
    plan, _ = _plan_component(protect_data=True, final_backup=False, kms_key_deletion_window_days=7)
    assert {r.name for r in plan.resources if r.protect} == {"unit-lustre-persistent", "unit-lustre-key"}
    persistent = plan.by_name("unit-lustre-persistent").inputs
    # Protection and the final backup are separate choices.
    assert persistent["skipFinalBackup"] is True
    assert plan.by_name("unit-lustre-key").inputs["deletionWindowInDays"] == 7
    unset, _ = _plan_component(final_backup=True)
    assert unset.by_name("unit-lustre-persistent").inputs["skipFinalBackup"] is False
    assert "deletionWindowInDays" not in unset.by_name("unit-lustre-key").inputs
    assert not any(r.protect for r in unset.resources)


def test_library_use_tags_every_taggable_child_with_the_given_tags_only() -> None:
    plan, _ = _plan_component(tags={"Project": "demo"})
    taggable = [r for r in plan.resources if r.custom and is_taggable(r.type)]
    assert {r.type for r in taggable} >= {LUSTRE, LOG_GROUP, KMS_KEY}
    for resource in taggable:
        # The given tags and the Name the component sets; nothing compliance-related without a transform.
        assert resource.inputs["tags"] == {"Project": "demo", "Name": resource.name}
