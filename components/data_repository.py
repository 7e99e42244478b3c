"""DataRepository: the S3 data bucket (with its access-log bucket) and the EFS home file system.

The data bucket is the durable home of research data: Lustre lazy-loads from it and exports back
to it. It is encrypted with a customer KMS key (rotation on, S3 Bucket Keys on), versioned, closed
to the public and to plain HTTP, tiered to cheaper storage by age, and its server access logs go to
a separate log bucket. The EFS file system holds `/home`, encrypted with its own customer KMS key,
reachable from every private subnet and only over TLS.

Reading order: args → resources → outputs → `register_outputs`, then the intent helpers
(`grant_read`, `grant_read_write`, `s3_uri`, `mounts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.kms import account_root_statement
from components.mounts import SharedStorageMount
from hpc_platform.domain.config.models import DataBucketConfig, EfsHomeConfig, LifecycleConfig, StackConfig

TYPE_TOKEN = "hpc:storage:DataRepository"

# S3 server access logs land under this prefix of the log bucket.
ACCESS_LOG_PREFIX = "s3-access/"
# Old versions of access logs (made by the expiry rule on the versioned log bucket) are kept this long.
ACCESS_LOG_NONCURRENT_DAYS = 30
# The EFS access point everyone mounts /home through.
EFS_HOME_PATH = "/home"
EFS_HOME_PERMISSIONS = "0755"
KMS_DELETION_WINDOW_DAYS = 30
# FSx for Lustre reads and writes a linked bucket through this per-file-system service-linked role.
FSX_S3_SERVICE_ROLE = (
    "aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_*"
)


class DataNetwork(Protocol):
    """What DataRepository needs from the network (EfaNetwork provides it)."""

    @property
    def private_subnet_ids(self) -> Sequence[pulumi.Output[str]]: ...

    @property
    def efs_security_group_id(self) -> pulumi.Output[str]: ...


def s3_uri(bucket: str, prefix: str | None = None) -> str:
    """`s3://bucket/prefix` as FSx expects it (`import_path`, `data_repository_path`).

    A leading `/` on the prefix is dropped; an empty or missing prefix names the whole bucket.
    """
    return f"s3://{bucket}/{(prefix or '').lstrip('/')}"


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DataRepositoryArgs:
    network: DataNetwork
    """Private subnets (EFS mount targets) and the EFS security group."""
    region: str
    availability_zones: Sequence[str]
    """AZ names in the order of `network.private_subnet_ids`; they name the EFS mount targets."""
    data_bucket: DataBucketConfig = field(default_factory=DataBucketConfig)
    efs_home: EfsHomeConfig = field(default_factory=EfsHomeConfig)
    access_log_retention_days: int = 365
    """Server access logs are deleted after this many days."""
    protect_data: bool = False
    """`protect` the bucket, the log bucket, the EFS file system and their KMS keys (prod): deleting
    or replacing them then needs a deliberate `pulumi state unprotect`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags for every taggable child (the compliance tags are added stack-wide)."""

    @classmethod
    def from_config(cls, config: StackConfig, network: DataNetwork) -> DataRepositoryArgs:
        return cls(
            network=network,
            region=config.region,
            availability_zones=list(config.network.availability_zones),
            data_bucket=config.storage.data_bucket,
            efs_home=config.storage.efs_home,
            access_log_retention_days=config.observability.log_retention_days,
            protect_data=config.environment == "prod",
            tags=config.tags,
        )


# ---------------------------------------------------------------------------------------------
# Pure helpers: lifecycle rules and policy documents (tested directly)
# ---------------------------------------------------------------------------------------------
def lifecycle_rules(lifecycle: LifecycleConfig) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The data bucket's lifecycle: tiering by age, old versions expired, stale uploads aborted."""
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs] = []
    if lifecycle.enable_intelligent_tiering:
        transitions = [
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=0, storage_class="INTELLIGENT_TIERING")
        ]
    else:
        # STANDARD_IA and GLACIER_IR stay instantly readable (Lustre can import them).
        transitions = [
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=days, storage_class=storage_class)
            for days, storage_class in (
                (lifecycle.warm_after_days, "STANDARD_IA"),
                (lifecycle.cold_after_days, "GLACIER_IR"),
            )
            if days is not None
        ]
    if transitions:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="tiering", status="Enabled", filter=whole_bucket, transitions=transitions
            )
        )
    if not lifecycle.enable_intelligent_tiering and lifecycle.archive_after_days is not None:
        # DEEP_ARCHIVE needs a restore before anything (Lustre included) can read it: archive prefix only.
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="archive",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=lifecycle.archive_prefix),
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=lifecycle.archive_after_days, storage_class="DEEP_ARCHIVE"
                    )
                ],
            )
        )
    rules.append(
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="noncurrent-versions",
            status="Enabled",
            filter=whole_bucket,
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=lifecycle.noncurrent_version_expiration_days
            ),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                expired_object_delete_marker=True
            ),
        )
    )
    rules.append(
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-multipart-uploads",
            status="Enabled",
            filter=whole_bucket,
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=lifecycle.abort_incomplete_multipart_days
            ),
        )
    )
    return rules


def intelligent_tiering_days(lifecycle: LifecycleConfig) -> dict[str, int]:
    """Intelligent-Tiering archive tiers (access tier → days without access); empty: none."""
    if not lifecycle.enable_intelligent_tiering:
        return {}
    tiers = {"ARCHIVE_ACCESS": lifecycle.cold_after_days, "DEEP_ARCHIVE_ACCESS": lifecycle.archive_after_days}
    return {tier: days for tier, days in tiers.items() if days is not None}


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def data_key_policy(partition: str, account_id: str, region: str) -> dict[str, Any]:
    """The data key: IAM policies in the account decide who uses it, plus the FSx service-linked
    roles, which cannot carry our IAM policies, through S3 only (Lustre import/export of the
    SSE-KMS bucket)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            account_root_statement(partition, account_id),
            {
                "Sid": "AllowFsxLustreThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account_id,
                        "kms:ViaService": f"s3.{region}.amazonaws.com",
                    },
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{partition}:iam::{account_id}:role/{FSX_S3_SERVICE_ROLE}"
                    },
                },
            },
        ],
    }


def efs_tls_only_policy(file_system_arn: str) -> dict[str, Any]:
    """Clients that reach a mount target may mount, write and act as root, over TLS only.

    The Allow keeps the default NFS-client access (a policy with only a Deny would lock everyone
    out); the Deny refuses every unencrypted connection.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowClientsThroughMountTargets",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "elasticfilesystem:ClientMount",
                    "elasticfilesystem:ClientWrite",
                    "elasticfilesystem:ClientRootAccess",
                ],
                "Resource": file_system_arn,
                "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "*",
                "Resource": file_system_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging")
WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


def access_policy(bucket_arn: str, key_arn: str, region: str, write: bool) -> dict[str, Any]:
    """Least privilege on the data bucket, its objects and its key (only through S3)."""
    object_actions = [*READ_ACTIONS, *(WRITE_ACTIONS if write else ())]
    bucket_actions = ["s3:ListBucket", "s3:GetBucketLocation"]
    key_actions = ["kms:Decrypt", "kms:DescribeKey"]
    if write:
        bucket_actions.append("s3:ListBucketMultipartUploads")
        key_actions.append("kms:GenerateDataKey")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Bucket", "Effect": "Allow", "Action": bucket_actions, "Resource": bucket_arn},
            {"Sid": "Objects", "Effect": "Allow", "Action": object_actions, "Resource": f"{bucket_arn}/*"},
            {
                "Sid": "DataKeyThroughS3",
                "Effect": "Allow",
                "Action": key_actions,
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
        ],
    }


# ---------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------
class DataRepository(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key: aws.kms.Key
    kms_key_arn: pulumi.Output[str]
    log_bucket: aws.s3.Bucket | None
    log_bucket_name: pulumi.Output[str] | None
    efs_kms_key: aws.kms.Key | None
    efs_file_system: aws.efs.FileSystem | None
    efs_file_system_id: pulumi.Output[str] | None
    efs_access_point_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: DataRepositoryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._region = args.region
        self._tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        durable = pulumi.ResourceOptions(parent=self, protect=args.protect_data)
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        account_id = caller.account_id

        # --- data key ---------------------------------------------------------------------------
        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: S3 data bucket (SSE-KMS)",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(partition, account_id).apply(
                    lambda v: data_key_policy(v[0], v[1], args.region)
                )
            ),
            tags=self._tag(f"{name}-key"),
            opts=durable,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.kms_key.key_id, opts=child
        )

        # --- data bucket --------------------------------------------------------------------------
        bucket_config = args.data_bucket
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=bucket_config.force_destroy,
            tags=self._tag(f"{name}-bucket"),
            opts=durable,
        )
        public_access_block = self._harden(f"{name}-bucket", self.bucket)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.kms_key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = self._versioning(f"{name}-bucket", self.bucket)
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps(
                self.bucket.arn.apply(
                    lambda arn: {"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn)]}
                )
            ),
            # S3 refuses concurrent policy and public-access-block changes on one bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        lifecycle = bucket_config.lifecycle
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rules(lifecycle),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        tiers = intelligent_tiering_days(lifecycle)
        if tiers:
            aws.s3.BucketIntelligentTieringConfiguration(
                f"{name}-bucket-tiering",
                bucket=self.bucket.id,
                name="archive-tiers",
                status="Enabled",
                # Archived objects need a restore before Lustre can read them: archive prefix only.
                filter=aws.s3.BucketIntelligentTieringConfigurationFilterArgs(prefix=lifecycle.archive_prefix)
                if lifecycle.archive_prefix
                else None,
                tierings=[
                    aws.s3.BucketIntelligentTieringConfigurationTieringArgs(access_tier=tier, days=days)
                    for tier, days in tiers.items()
                ],
                opts=child,
            )

        # --- access-log bucket ---------------------------------------------------------------
        self.log_bucket = None
        if bucket_config.enable_access_logging:
            self.log_bucket = self._log_bucket(name, args, account_id, durable)

        # --- EFS home ------------------------------------------------------------------------
        self.efs_kms_key = None
        self.efs_file_system = None
        access_point: aws.efs.AccessPoint | None = None
        if args.efs_home.enabled:
            access_point = self._efs_home(name, args, durable)

        # --- outputs -------------------------------------------------------------------------
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.kms_key_arn = self.kms_key.arn
        self.log_bucket_name = self.log_bucket.bucket if self.log_bucket is not None else None
        self.efs_file_system_id = self.efs_file_system.id if self.efs_file_system is not None else None
        self.efs_access_point_id = access_point.id if access_point is not None else None
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values (disabled parts left out)."""
        outputs = {
            "data_bucket_name": self.bucket_name,
            "data_bucket_arn": self.bucket_arn,
            "data_kms_key_arn": self.kms_key_arn,
            "access_log_bucket_name": self.log_bucket_name,
            "efs_file_system_id": self.efs_file_system_id,
            "efs_access_point_id": self.efs_access_point_id,
        }
        return {key: value for key, value in outputs.items() if value is not None}

    # --- resource builders (called from __init__ only) ----------------------------------------
    def _tag(self, name: str) -> dict[str, str]:
        return {**self._tags, "Name": name}

    def _harden(self, prefix: str, bucket: aws.s3.Bucket) -> aws.s3.BucketPublicAccessBlock:
        """ACLs off (bucket owner owns every object) and every public-access switch on."""
        aws.s3.BucketOwnershipControls(
            f"{prefix}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.s3.BucketPublicAccessBlock(
            f"{prefix}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _versioning(self, prefix: str, bucket: aws.s3.Bucket) -> aws.s3.BucketVersioning:
        return aws.s3.BucketVersioning(
            f"{prefix}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_bucket(
        self,
        name: str,
        args: DataRepositoryArgs,
        account_id: pulumi.Output[str],
        durable: pulumi.ResourceOptions,
    ) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        log_bucket = aws.s3.Bucket(
            f"{name}-access-logs",
            force_destroy=args.data_bucket.force_destroy,
            tags=self._tag(f"{name}-access-logs"),
            opts=durable,
        )
        public_access_block = self._harden(f"{name}-access-logs", log_bucket)
        # S3 server access logging delivers only to buckets encrypted with SSE-S3, not SSE-KMS.
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs-encryption",
            bucket=log_bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        versioning = self._versioning(f"{name}-access-logs", log_bucket)
        policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=log_bucket.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(log_bucket.arn, self.bucket.arn, account_id).apply(
                    lambda v: {
                        "Version": "2012-10-17",
                        "Statement": [
                            deny_insecure_transport(v[0]),
                            {
                                "Sid": "AllowS3ServerAccessLogs",
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Resource": f"{v[0]}/{ACCESS_LOG_PREFIX}*",
                                "Condition": {
                                    "ArnLike": {"aws:SourceArn": v[1]},
                                    "StringEquals": {"aws:SourceAccount": v[2]},
                                },
                            },
                        ],
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=log_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.access_log_retention_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=ACCESS_LOG_NONCURRENT_DAYS
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketLogging(
            f"{name}-bucket-logging",
            bucket=self.bucket.id,
            target_bucket=log_bucket.id,
            target_prefix=ACCESS_LOG_PREFIX,
            target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                    partition_date_source="EventTime"
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        return log_bucket

    def _efs_home(
        self, name: str, args: DataRepositoryArgs, durable: pulumi.ResourceOptions
    ) -> aws.efs.AccessPoint:
        """EFS for /home with its own key: home directories are a different data set from the
        bucket (other readers, other retention); a separate key keeps grants on the data key from
        reaching them and lets either key be disabled or audited alone."""
        child = pulumi.ResourceOptions(parent=self)
        efs = args.efs_home
        subnet_ids = list(args.network.private_subnet_ids)
        if len(subnet_ids) != len(args.availability_zones):
            raise ValueError(
                f"DataRepository {name}: the network has {len(subnet_ids)} private subnets for "
                f"{len(args.availability_zones)} availability zones; pass one AZ name per private subnet"
            )
        self.efs_kms_key = aws.kms.Key(
            f"{name}-efs-key",
            description=f"{name}: EFS home file system",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            tags=self._tag(f"{name}-efs-key"),
            opts=durable,
        )
        aws.kms.Alias(
            f"{name}-efs-key-alias",
            name=f"alias/{name}-efs",
            target_key_id=self.efs_kms_key.key_id,
            opts=child,
        )
        file_system = aws.efs.FileSystem(
            f"{name}-efs",
            encrypted=True,
            kms_key_id=self.efs_kms_key.arn,
            performance_mode=efs.performance_mode,
            throughput_mode=efs.throughput_mode,
            lifecycle_policies=[
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia=efs.transition_to_ia),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ],
            tags=self._tag(f"{name}-efs-home"),
            opts=durable,
        )
        self.efs_file_system = file_system
        for az, subnet_id in zip(args.availability_zones, subnet_ids, strict=True):
            aws.efs.MountTarget(
                f"{name}-efs-mount-{az}",
                file_system_id=file_system.id,
                subnet_id=subnet_id,
                security_groups=[args.network.efs_security_group_id],
                opts=child,
            )
        access_point = aws.efs.AccessPoint(
            f"{name}-efs-home",
            file_system_id=file_system.id,
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=EFS_HOME_PATH,
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=0, owner_gid=0, permissions=EFS_HOME_PERMISSIONS
                ),
            ),
            tags=self._tag(f"{name}-efs-home"),
            opts=child,
        )
        aws.efs.BackupPolicy(
            f"{name}-efs-backup",
            file_system_id=file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(
                status="ENABLED" if efs.enable_backup else "DISABLED"
            ),
            opts=child,
        )
        aws.efs.FileSystemPolicy(
            f"{name}-efs-policy",
            file_system_id=file_system.id,
            policy=pulumi.Output.json_dumps(file_system.arn.apply(efs_tls_only_policy)),
            opts=child,
        )
        return access_point

    # --- intent helpers -----------------------------------------------------------------------
    def s3_uri(self, prefix: str | None = None) -> pulumi.Output[str]:
        """`s3://<data bucket>/<prefix>`."""
        return self.bucket.bucket.apply(lambda bucket: s3_uri(bucket, prefix))

    def grant_read(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role` list the data bucket and read its objects (decrypting through S3 only)."""
        return self._grant(role, write=False)

    def grant_read_write(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """`grant_read`, plus writing and deleting objects (multipart uploads included)."""
        return self._grant(role, write=True)

    def _grant(self, role: aws.iam.Role, write: bool) -> aws.iam.RolePolicy:
        access = "read-write" if write else "read"
        region = self._region
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-{access}-{role.pulumi_resource_name}",
            role=role.id,
            name=f"{self.pulumi_resource_name}-data-{access}",
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(self.bucket.arn, self.kms_key.arn).apply(
                    lambda v: access_policy(v[0], v[1], region, write)
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def mounts(self) -> list[SharedStorageMount]:
        """`/home` on EFS when the home file system is enabled."""
        if self.efs_file_system_id is None:
            return []
        return [
            SharedStorageMount(
                "home",
                EFS_HOME_PATH,
                "Efs",
                self.efs_file_system_id,
                access_point_id=self.efs_access_point_id,
            )
        ]
