"""LustreFs: the scratch (SCRATCH_2) and persistent (PERSISTENT_2) FSx for Lustre file systems.

Both live in the network's storage subnet behind the Lustre security group and outlive any
cluster: ParallelCluster mounts them by id (`mounts()`), never creates or deletes them.

- Scratch: AWS-owned key (SCRATCH_2 takes no customer key), LZ4, linked to the data bucket
  either by the legacy `import_path`/`export_path` made at creation (what the committed stacks
  use) or by data repository associations (SCRATCH_2 on Lustre 2.15 supports them), never both.
- Persistent: the component's customer KMS key (rotation on; unless `enable_customer_kms_key` is
  off), automatic backups, optional root squash, one data
  repository association per configured bucket prefix.
- Both log data-repository warnings and errors to CloudWatch (`/aws/fsx/...` log groups, encrypted
  with the component's key whatever the persistent file system uses).

The expected baseline throughput is plain arithmetic on the config (capacity × MB/s per TiB), so
the plan shows it next to the design target before anything is deployed.

Reading order: args → resources → outputs → `register_outputs`, then `mounts()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.data_repository import DataRepository
from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from components.mounts import SharedStorageMount
from hpc_platform.domain.config.models import (
    DataRepositoryAssociationConfig,
    PersistentLustreConfig,
    ScratchLustreConfig,
    StackConfig,
)
from hpc_platform.domain.limits import (
    LUSTRE_PERSISTENT_2,
    LUSTRE_SCRATCH_2,
    LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB,
)
from hpc_platform.domain.performance import MB_PER_GB, lustre_baseline_mbps

TYPE_TOKEN = "hpc:storage:LustreFs"

# Lustre 2.15: the client version ParallelCluster 3's current AMIs (alinux2023, ubuntu2204+, rhel9) ship.
LUSTRE_VERSION = "2.15"
LUSTRE_LOG_LEVEL = "WARN_ERROR"
# FSx writes Lustre logs only to log groups under this prefix.
FSX_LOG_GROUP_PREFIX = "/aws/fsx/"
KMS_DELETION_WINDOW_DAYS = 30

SCRATCH_MOUNT_DIR = "/scratch"
# DRAs appear below it: /fsx/projects, /fsx/reference, ...
PERSISTENT_MOUNT_DIR = "/fsx"


class LustreNetwork(Protocol):
    """What LustreFs needs from the network (EfaNetwork provides it)."""

    @property
    def storage_subnet_id(self) -> pulumi.Output[str]: ...

    @property
    def lustre_security_group_id(self) -> pulumi.Output[str]: ...


# ---------------------------------------------------------------------------------------------
# Pure helpers (tested directly)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LustreThroughput:
    """Baseline throughput of each file system (0 when disabled) and the design target, in MB/s."""

    scratch_mbps: float
    persistent_mbps: float
    target_mbps: float | None

    @property
    def aggregate_mbps(self) -> float:
        return self.scratch_mbps + self.persistent_mbps

    @property
    def meets_target(self) -> bool | None:
        return None if self.target_mbps is None else self.aggregate_mbps >= self.target_mbps

    def as_output(self) -> dict[str, float | None]:
        """Rounded for people reading a plan: the three baselines and the target, side by side."""
        return {
            "scratch": round(self.scratch_mbps, 1),
            "persistent": round(self.persistent_mbps, 1),
            "aggregate": round(self.aggregate_mbps, 1),
            "target": None if self.target_mbps is None else round(self.target_mbps, 1),
        }


def lustre_throughput(
    scratch: ScratchLustreConfig, persistent: PersistentLustreConfig, target_gbps: float | None
) -> LustreThroughput:
    return LustreThroughput(
        scratch_mbps=(
            lustre_baseline_mbps(scratch.capacity_gib, LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB)
            if scratch.enabled
            else 0.0
        ),
        persistent_mbps=(
            lustre_baseline_mbps(persistent.capacity_gib, persistent.throughput_mbps_per_tib)
            if persistent.enabled
            else 0.0
        ),
        target_mbps=None if target_gbps is None else target_gbps * MB_PER_GB,
    )


def association_slug(file_system_path: str) -> str:
    """Resource-name part for an association: `/projects` → `projects`, `/a/b` → `a-b`, `/` → `root`."""
    slug = re.sub(r"[^a-z0-9]+", "-", file_system_path.lower()).strip("-")
    return slug or "root"


def association_s3_args(
    association: DataRepositoryAssociationConfig,
) -> aws.fsx.DataRepositoryAssociationS3Args | None:
    """Automatic import/export policies; a direction with no events is left out (read-only
    associations have no export policy)."""
    import_policy = (
        aws.fsx.DataRepositoryAssociationS3AutoImportPolicyArgs(events=list(association.import_events))
        if association.import_events
        else None
    )
    export_policy = (
        aws.fsx.DataRepositoryAssociationS3AutoExportPolicyArgs(events=list(association.export_events))
        if association.export_events
        else None
    )
    if import_policy is None and export_policy is None:
        return None
    return aws.fsx.DataRepositoryAssociationS3Args(
        auto_import_policy=import_policy, auto_export_policy=export_policy
    )


def lustre_key_policy(partition: str, account_id: str, region: str, log_group_prefix: str) -> dict[str, Any]:
    """IAM policies in the account decide who uses the key (FSx gets its grants through the
    creating principal); CloudWatch Logs may use it for this component's log groups only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            account_root_statement(partition, account_id),
            cloudwatch_logs_statement(
                region=region,
                dns_suffix="amazonaws.com",
                log_group_arns=log_group_arn(partition, region, account_id, f"{log_group_prefix}*"),
                sid="AllowCloudWatchLogsForLustreLogGroups",
                match="ArnLike",
            ),
        ],
    }


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LustreFsArgs:
    network: LustreNetwork
    """Storage subnet (Lustre lives in one AZ) and the Lustre security group."""
    data_repository: DataRepository
    """The bucket both file systems link to (associations, or scratch's legacy import/export paths)."""
    region: str
    scratch: ScratchLustreConfig = field(default_factory=ScratchLustreConfig)
    persistent: PersistentLustreConfig = field(default_factory=PersistentLustreConfig)
    target_aggregate_throughput_gbps: float | None = None
    log_retention_days: int = 90
    """Retention of the Lustre log groups (a CloudWatch Logs retention value)."""
    daily_backup_start_time: str = "05:00"
    """UTC `HH:MM` of the persistent file system's daily automatic backup."""
    protect_data: bool = False
    """`protect` the persistent file system and its key (prod), and take a final backup when it is
    deleted. Scratch holds only disposable data and is never protected."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags for every taggable child (the compliance tags are added stack-wide)."""

    @classmethod
    def from_config(
        cls, config: StackConfig, network: LustreNetwork, data_repository: DataRepository
    ) -> LustreFsArgs:
        storage = config.storage
        return cls(
            network=network,
            data_repository=data_repository,
            region=config.region,
            scratch=storage.scratch,
            persistent=storage.persistent,
            target_aggregate_throughput_gbps=storage.target_aggregate_throughput_gbps,
            log_retention_days=config.observability.log_retention_days,
            protect_data=config.environment == "prod",
            tags=config.tags,
        )


# ---------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------
class LustreFs(pulumi.ComponentResource):
    kms_key: aws.kms.Key | None
    scratch_file_system: aws.fsx.LustreFileSystem | None
    persistent_file_system: aws.fsx.LustreFileSystem | None
    data_repository_associations: list[aws.fsx.DataRepositoryAssociation]
    scratch_file_system_id: pulumi.Output[str] | None
    scratch_dns_name: pulumi.Output[str] | None
    scratch_mount_name: pulumi.Output[str] | None
    persistent_file_system_id: pulumi.Output[str] | None
    persistent_dns_name: pulumi.Output[str] | None
    persistent_mount_name: pulumi.Output[str] | None
    throughput: LustreThroughput
    expected_baseline_throughput_mbps: float
    target_throughput_mbps: float | None

    def __init__(self, name: str, args: LustreFsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        scratch, persistent = args.scratch, args.persistent
        data = args.data_repository
        log_group_prefix = f"{FSX_LOG_GROUP_PREFIX}{name}/"

        # --- key: the Lustre log groups always, persistent data when `enable_customer_kms_key` ----
        self.kms_key = None
        if scratch.enabled or persistent.enabled:
            invoke = pulumi.InvokeOutputOptions(parent=self)
            partition = aws.get_partition_output(opts=invoke).partition
            account_id = aws.get_caller_identity_output(opts=invoke).account_id
            self.kms_key = aws.kms.Key(
                f"{name}-key",
                description=f"{name}: Lustre log groups and the persistent file system",
                enable_key_rotation=True,
                deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
                policy=pulumi.Output.json_dumps(
                    pulumi.Output.all(partition, account_id).apply(
                        lambda v: lustre_key_policy(v[0], v[1], args.region, log_group_prefix)
                    )
                ),
                tags=self._tag(f"{name}-key"),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
            )
            aws.kms.Alias(
                f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.kms_key.key_id, opts=child
            )

        # --- scratch ---------------------------------------------------------------------------
        self.scratch_file_system = None
        self.data_repository_associations = []
        if scratch.enabled:
            self.scratch_file_system = aws.fsx.LustreFileSystem(
                f"{name}-scratch",
                deployment_type=LUSTRE_SCRATCH_2,
                storage_capacity=scratch.capacity_gib,
                data_compression_type=scratch.data_compression,
                file_system_type_version=LUSTRE_VERSION,
                subnet_ids=args.network.storage_subnet_id,
                security_group_ids=[args.network.lustre_security_group_id],
                # No kms_key_id: SCRATCH_2 is always encrypted with an AWS-owned key.
                import_path=data.s3_uri(scratch.import_path) if scratch.import_path is not None else None,
                export_path=data.s3_uri(scratch.export_path) if scratch.export_path is not None else None,
                log_configuration=self._logging(name, "scratch", log_group_prefix, args),
                tags=self._tag(f"{name}-scratch"),
                opts=child,
            )
            self._associations(
                f"{name}-scratch-dra", self.scratch_file_system, scratch.data_repository_associations, data
            )

        # --- persistent ------------------------------------------------------------------------
        self.persistent_file_system = None
        if persistent.enabled:
            backups = persistent.automatic_backup_retention_days > 0
            persistent_key_arn = (
                self.kms_key.arn if self.kms_key is not None and persistent.enable_customer_kms_key else None
            )
            self.persistent_file_system = aws.fsx.LustreFileSystem(
                f"{name}-persistent",
                deployment_type=LUSTRE_PERSISTENT_2,
                storage_capacity=persistent.capacity_gib,
                per_unit_storage_throughput=persistent.throughput_mbps_per_tib,
                data_compression_type=persistent.data_compression,
                file_system_type_version=LUSTRE_VERSION,
                subnet_ids=args.network.storage_subnet_id,
                security_group_ids=[args.network.lustre_security_group_id],
                kms_key_id=persistent_key_arn,
                automatic_backup_retention_days=persistent.automatic_backup_retention_days,
                daily_automatic_backup_start_time=args.daily_backup_start_time if backups else None,
                copy_tags_to_backups=True,
                skip_final_backup=not args.protect_data,
                root_squash_configuration=(
                    aws.fsx.LustreFileSystemRootSquashConfigurationArgs(root_squash=persistent.root_squash)
                    if persistent.root_squash is not None
                    else None
                ),
                log_configuration=self._logging(name, "persistent", log_group_prefix, args),
                tags=self._tag(f"{name}-persistent"),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
            )
            self._associations(
                f"{name}-dra", self.persistent_file_system, persistent.data_repository_associations, data
            )

        # --- outputs ---------------------------------------------------------------------------
        fs_scratch, fs_persistent = self.scratch_file_system, self.persistent_file_system
        self.scratch_file_system_id = fs_scratch.id if fs_scratch is not None else None
        self.scratch_dns_name = fs_scratch.dns_name if fs_scratch is not None else None
        self.scratch_mount_name = fs_scratch.mount_name if fs_scratch is not None else None
        self.persistent_file_system_id = fs_persistent.id if fs_persistent is not None else None
        self.persistent_dns_name = fs_persistent.dns_name if fs_persistent is not None else None
        self.persistent_mount_name = fs_persistent.mount_name if fs_persistent is not None else None
        self.throughput = lustre_throughput(scratch, persistent, args.target_aggregate_throughput_gbps)
        self.expected_baseline_throughput_mbps = self.throughput.aggregate_mbps
        self.target_throughput_mbps = self.throughput.target_mbps
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values (disabled file systems
        left out). `lustre_throughput_mbps` puts the expected baselines (scratch, persistent, aggregate)
        next to the design target."""
        outputs = {
            "scratch_file_system_id": self.scratch_file_system_id,
            "scratch_dns_name": self.scratch_dns_name,
            "scratch_mount_name": self.scratch_mount_name,
            "persistent_file_system_id": self.persistent_file_system_id,
            "persistent_dns_name": self.persistent_dns_name,
            "persistent_mount_name": self.persistent_mount_name,
            "lustre_kms_key_arn": self.kms_key.arn if self.kms_key is not None else None,
            "lustre_throughput_mbps": self.throughput.as_output(),
            "lustre_throughput_meets_target": self.throughput.meets_target,
        }
        return {key: value for key, value in outputs.items() if value is not None}

    # --- resource builders (called from __init__ only) ----------------------------------------
    def _tag(self, name: str) -> dict[str, str]:
        return {**self._tags, "Name": name}

    def _logging(
        self, name: str, role: str, log_group_prefix: str, args: LustreFsArgs
    ) -> aws.fsx.LustreFileSystemLogConfigurationArgs:
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-{role}-logs",
            name=f"{log_group_prefix}{role}",
            retention_in_days=args.log_retention_days,
            kms_key_id=self.kms_key.arn if self.kms_key is not None else None,
            tags=self._tag(f"{name}-{role}-logs"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.fsx.LustreFileSystemLogConfigurationArgs(level=LUSTRE_LOG_LEVEL, destination=log_group.arn)

    def _associations(
        self,
        prefix: str,
        file_system: aws.fsx.LustreFileSystem,
        associations: list[DataRepositoryAssociationConfig],
        data: DataRepository,
    ) -> None:
        for association in associations:
            role = f"{prefix}-{association_slug(association.file_system_path)}"
            self.data_repository_associations.append(
                aws.fsx.DataRepositoryAssociation(
                    role,
                    file_system_id=file_system.id,
                    file_system_path=association.file_system_path,
                    data_repository_path=data.s3_uri(association.bucket_prefix),
                    batch_import_meta_data_on_create=association.batch_import_metadata_on_create,
                    delete_data_in_filesystem=False,
                    s3=association_s3_args(association),
                    tags=self._tag(role),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )

    # --- intent helpers -----------------------------------------------------------------------
    def mounts(self) -> list[SharedStorageMount]:
        """`/scratch` and `/fsx` (associations below it, e.g. `/fsx/projects`) for the enabled ones."""
        mounts = []
        if self.scratch_file_system_id is not None:
            mounts.append(
                SharedStorageMount("scratch", SCRATCH_MOUNT_DIR, "FsxLustre", self.scratch_file_system_id)
            )
        if self.persistent_file_system_id is not None:
            mounts.append(
                SharedStorageMount(
                    "persistent", PERSISTENT_MOUNT_DIR, "FsxLustre", self.persistent_file_system_id
                )
            )
        return mounts
