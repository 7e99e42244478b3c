"""LustreFs: the scratch (SCRATCH_2) and persistent (PERSISTENT_2) FSx for Lustre file systems.

Both live in one subnet (Lustre lives in one AZ) behind the given security groups and outlive any
cluster: ParallelCluster mounts them by id (`mounts()`), never creates or deletes them.

- Scratch: AWS-owned key (SCRATCH_2 takes no customer key), LZ4, linked to the data bucket
  either by the legacy `import_path`/`export_path` made at creation (what the committed stacks
  use) or by data repository associations (SCRATCH_2 on Lustre 2.15 supports them), never both.
- Persistent: the component's customer KMS key (rotation on; unless `persistent_customer_kms_key`
  is off), automatic backups, optional root squash, one data repository association per bucket
  prefix.
- Both log data-repository warnings and errors to CloudWatch (`/aws/fsx/...` log groups, encrypted
  with the component's key whatever the persistent file system uses).

Usable on its own: the args are plain values and Pulumi inputs (subnet, security-group ids, the
bucket name), never the platform's stack schema. The expected baseline throughput is the domain's
performance model's to compute, not this component's.

Reading order: args → resources → outputs → `register_outputs`, then `mounts()`.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.data_repository import s3_uri
from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from components.mounts import SharedStorageMount
from hpc_platform.domain.limits import LUSTRE_PERSISTENT_2, LUSTRE_SCRATCH_2

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:storage:LustreFs"

# Lustre 2.15: the client version ParallelCluster 3's current AMIs (alinux2023, ubuntu2204+, rhel9) ship.
LUSTRE_VERSION = "2.15"
LUSTRE_LOG_LEVEL = "WARN_ERROR"
# FSx writes Lustre logs only to log groups under this prefix.
FSX_LOG_GROUP_PREFIX = "/aws/fsx/"
# Events a data repository association can follow, in both directions.
REPOSITORY_EVENTS = ("NEW", "CHANGED", "DELETED")

SCRATCH_MOUNT_DIR = "/scratch"
# DRAs appear below it: /fsx/projects, /fsx/reference, ...
PERSISTENT_MOUNT_DIR = "/fsx"


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DataRepositoryAssociationArgs:
    """A prefix of the data bucket linked into a Lustre file system."""

    file_system_path: str
    """Lustre path the bucket prefix appears at, e.g. `/projects`."""
    bucket_prefix: str = ""
    """Prefix in the data bucket (empty: the whole bucket)."""
    import_events: Sequence[str] = REPOSITORY_EVENTS
    """S3 changes (`NEW`, `CHANGED`, `DELETED`) Lustre picks up automatically; empty: none."""
    export_events: Sequence[str] = REPOSITORY_EVENTS
    """Lustre changes written back to S3 automatically; empty: a read-only association."""
    batch_import_metadata_on_create: bool = True
    """Import the prefix's object metadata when the association is created."""


# The defaults are the platform's stack defaults (tests/test_lustre_fs.py checks they agree with
# the config models), so a library user gets the file systems a default stack gets.
@dataclass(frozen=True, kw_only=True)
class LustreFsArgs:
    """Inputs of a LustreFs: where the file systems live, their sizes and links to the bucket."""

    region: str
    """AWS region: CloudWatch Logs of this region may use the component's key for its log groups."""
    subnet_id: pulumi.Input[str]
    """The one subnet (one AZ) both file systems live in."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the file systems (they must allow Lustre, TCP 988 and 1018-1023, from
    clients and among themselves). Empty: the VPC's default security group."""
    data_bucket: pulumi.Input[str] | None = None
    """Name of the S3 bucket the import/export paths and associations refer to; required when any
    is set."""
    scratch: bool = True
    """Create the SCRATCH_2 file system."""
    scratch_capacity_gib: int = 1200
    """SCRATCH_2 size: 1200, 2400, then multiples of 2400 GiB."""
    scratch_data_compression: str = "LZ4"
    """`LZ4` or `NONE`."""
    scratch_import_path: str | None = None
    """Bucket prefix scratch lazy-loads from, linked once when FSx creates the file system (legacy
    link; no automatic export). Not together with `scratch_associations`."""
    scratch_export_path: str | None = None
    """Bucket prefix of the legacy export link; requires `scratch_import_path`."""
    scratch_associations: Sequence[DataRepositoryAssociationArgs] = ()
    """Bucket prefixes linked into scratch with automatic import/export."""
    persistent: bool = True
    """Create the PERSISTENT_2 file system."""
    persistent_capacity_gib: int = 1200
    """PERSISTENT_2 size: 1200, 2400, then multiples of 2400 GiB."""
    persistent_throughput_mbps_per_tib: int = 250
    """Baseline throughput per TiB of storage: 125, 250, 500 or 1000 MB/s/TiB."""
    persistent_data_compression: str = "LZ4"
    """`LZ4` or `NONE`."""
    persistent_customer_kms_key: bool = True
    """Encrypt persistent data with the component's customer KMS key instead of an AWS-owned key."""
    persistent_backup_retention_days: int = 7
    """Daily automatic backups kept this many days (0–90); 0 turns them off."""
    persistent_root_squash: str | None = None
    """`UID:GID` root is squashed to (e.g. `65534:65534`); None: root is not squashed."""
    persistent_associations: Sequence[DataRepositoryAssociationArgs] = ()
    """Bucket prefixes linked into the persistent file system, with automatic import/export."""
    log_retention_days: int = 90
    """Retention of the Lustre log groups (a CloudWatch Logs retention value)."""
    daily_backup_start_time: str = "05:00"
    """UTC `HH:MM` of the persistent file system's daily automatic backup."""
    protect_data: bool = False
    """`protect` the persistent file system and the key. Scratch holds only disposable data and is
    never protected."""
    final_backup: bool = False
    """Take a final backup of the persistent file system when it is deleted."""
    kms_key_deletion_window_days: int | None = None
    """Waiting period (7–30 days) before the deleted KMS key is gone. None: AWS's default (30)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child, beside the `Name` each gets (a stack-wide transform may add
    more)."""


# ---------------------------------------------------------------------------------------------
# Pure helpers (tested directly)
# ---------------------------------------------------------------------------------------------
def association_slug(file_system_path: str) -> str:
    """Resource-name part for an association: `/projects` → `projects`, `/a/b` → `a-b`, `/` → `root`."""
    slug = re.sub(r"[^a-z0-9]+", "-", file_system_path.lower()).strip("-")
    return slug or "root"


def association_s3_args(
    association: DataRepositoryAssociationArgs,
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
# The component
# ---------------------------------------------------------------------------------------------
class LustreFs(pulumi.ComponentResource):
    """Scratch (SCRATCH_2) and persistent (PERSISTENT_2) FSx for Lustre file systems, their log
    groups, the KMS key, and the data repository associations to an S3 bucket."""

    kms_key_arn: pulumi.Output[str] | None
    """ARN of the component's KMS key (Lustre log groups; persistent data unless turned off);
    absent when neither file system is created."""
    scratch_file_system_id: pulumi.Output[str] | None
    scratch_dns_name: pulumi.Output[str] | None
    scratch_mount_name: pulumi.Output[str] | None
    persistent_file_system_id: pulumi.Output[str] | None
    persistent_dns_name: pulumi.Output[str] | None
    persistent_mount_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: LustreFsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        scratch_links = [args.scratch_import_path, args.scratch_export_path, *args.scratch_associations]
        linked = (args.scratch and any(link is not None for link in scratch_links)) or (
            args.persistent and bool(args.persistent_associations)
        )
        if linked and args.data_bucket is None:
            raise ValueError(
                f"LustreFs {name}: import/export paths or data repository associations are set "
                "but data_bucket is not; pass the name of the bucket they refer to"
            )
        self._tags = dict(args.tags)
        self._data_bucket = args.data_bucket
        child = pulumi.ResourceOptions(parent=self)
        log_group_prefix = f"{FSX_LOG_GROUP_PREFIX}{name}/"

        # --- key: the Lustre log groups always, persistent data when `persistent_customer_kms_key`
        self.kms_key: aws.kms.Key | None = None
        if args.scratch or args.persistent:
            invoke = pulumi.InvokeOutputOptions(parent=self)
            partition = aws.get_partition_output(opts=invoke).partition
            account_id = aws.get_caller_identity_output(opts=invoke).account_id
            self.kms_key = aws.kms.Key(
                f"{name}-key",
                description=f"{name}: Lustre log groups and the persistent file system",
                enable_key_rotation=True,
                deletion_window_in_days=args.kms_key_deletion_window_days,
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
        self.scratch_file_system: aws.fsx.LustreFileSystem | None = None
        self.data_repository_associations: list[aws.fsx.DataRepositoryAssociation] = []
        if args.scratch:
            self.scratch_file_system = aws.fsx.LustreFileSystem(
                f"{name}-scratch",
                deployment_type=LUSTRE_SCRATCH_2,
                storage_capacity=args.scratch_capacity_gib,
                data_compression_type=args.scratch_data_compression,
                file_system_type_version=LUSTRE_VERSION,
                subnet_ids=args.subnet_id,
                security_group_ids=list(args.security_group_ids) or None,
                # No kms_key_id: SCRATCH_2 is always encrypted with an AWS-owned key.
                import_path=self._s3_uri(args.scratch_import_path)
                if args.scratch_import_path is not None
                else None,
                export_path=self._s3_uri(args.scratch_export_path)
                if args.scratch_export_path is not None
                else None,
                log_configuration=self._logging(name, "scratch", log_group_prefix, args),
                tags=self._tag(f"{name}-scratch"),
                opts=child,
            )
            self._associations(f"{name}-scratch-dra", self.scratch_file_system, args.scratch_associations)

        # --- persistent ------------------------------------------------------------------------
        self.persistent_file_system: aws.fsx.LustreFileSystem | None = None
        if args.persistent:
            backups = args.persistent_backup_retention_days > 0
            persistent_key_arn = (
                self.kms_key.arn if self.kms_key is not None and args.persistent_customer_kms_key else None
            )
            self.persistent_file_system = aws.fsx.LustreFileSystem(
                f"{name}-persistent",
                deployment_type=LUSTRE_PERSISTENT_2,
                storage_capacity=args.persistent_capacity_gib,
                per_unit_storage_throughput=args.persistent_throughput_mbps_per_tib,
                data_compression_type=args.persistent_data_compression,
                file_system_type_version=LUSTRE_VERSION,
                subnet_ids=args.subnet_id,
                security_group_ids=list(args.security_group_ids) or None,
                kms_key_id=persistent_key_arn,
                automatic_backup_retention_days=args.persistent_backup_retention_days,
                daily_automatic_backup_start_time=args.daily_backup_start_time if backups else None,
                copy_tags_to_backups=True,
                skip_final_backup=not args.final_backup,
                root_squash_configuration=(
                    aws.fsx.LustreFileSystemRootSquashConfigurationArgs(
                        root_squash=args.persistent_root_squash
                    )
                    if args.persistent_root_squash is not None
                    else None
                ),
                log_configuration=self._logging(name, "persistent", log_group_prefix, args),
                tags=self._tag(f"{name}-persistent"),
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect_data),
            )
            self._associations(f"{name}-dra", self.persistent_file_system, args.persistent_associations)

        # --- outputs ---------------------------------------------------------------------------
        fs_scratch, fs_persistent = self.scratch_file_system, self.persistent_file_system
        self.kms_key_arn = self.kms_key.arn if self.kms_key is not None else None
        self.scratch_file_system_id = fs_scratch.id if fs_scratch is not None else None
        self.scratch_dns_name = fs_scratch.dns_name if fs_scratch is not None else None
        self.scratch_mount_name = fs_scratch.mount_name if fs_scratch is not None else None
        self.persistent_file_system_id = fs_persistent.id if fs_persistent is not None else None
        self.persistent_dns_name = fs_persistent.dns_name if fs_persistent is not None else None
        self.persistent_mount_name = fs_persistent.mount_name if fs_persistent is not None else None
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values (disabled file systems
        left out)."""
        outputs = {
            "scratch_file_system_id": self.scratch_file_system_id,
            "scratch_dns_name": self.scratch_dns_name,
            "scratch_mount_name": self.scratch_mount_name,
            "persistent_file_system_id": self.persistent_file_system_id,
            "persistent_dns_name": self.persistent_dns_name,
            "persistent_mount_name": self.persistent_mount_name,
            "lustre_kms_key_arn": self.kms_key_arn,
        }
        return {key: value for key, value in outputs.items() if value is not None}

    # --- resource builders (called from __init__ only) ----------------------------------------
    def _tag(self, name: str) -> dict[str, str]:
        return {**self._tags, "Name": name}

    def _s3_uri(self, prefix: str) -> pulumi.Output[str]:
        bucket = self._data_bucket
        assert bucket is not None, "checked in __init__: a path or association needs data_bucket"
        return pulumi.Output.from_input(bucket).apply(lambda name: s3_uri(name, prefix))

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
        associations: Sequence[DataRepositoryAssociationArgs],
    ) -> None:
        for association in associations:
            role = f"{prefix}-{association_slug(association.file_system_path)}"
            self.data_repository_associations.append(
                aws.fsx.DataRepositoryAssociation(
                    role,
                    file_system_id=file_system.id,
                    file_system_path=association.file_system_path,
                    data_repository_path=self._s3_uri(association.bucket_prefix),
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
