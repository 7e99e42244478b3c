"""DataRepository: the S3 data bucket (with its access-log bucket) and the EFS home file system.

The data bucket is the durable home of research data: Lustre lazy-loads from it and exports back
to it. It is encrypted with a customer KMS key (rotation on, S3 Bucket Keys on), versioned, closed
to the public and to plain HTTP, tiered to cheaper storage by age, and its server access logs go to
a separate log bucket. The EFS file system holds `/home`, encrypted with its own customer KMS key,
reachable from the subnets it is given and only over TLS.

Usable on its own: the args are plain values and Pulumi inputs (subnet and security-group ids),
never the platform's stack schema. Reading order: args → resources → outputs → `register_outputs`,
then the intent helpers (`grant_read`, `grant_read_write`, `s3_uri`, `mounts`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.kms import account_root_statement
from components.mounts import SharedStorageMount
from components.secure_bucket import deny_insecure_transport, harden_bucket

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:storage:DataRepository"

# S3 server access logs land under this prefix of the log bucket.
ACCESS_LOG_PREFIX = "s3-access/"
# Old versions of access logs (made by the expiry rule on the versioned log bucket) are kept this long.
ACCESS_LOG_NONCURRENT_DAYS = 30
# The EFS access point everyone mounts /home through.
EFS_HOME_PATH = "/home"
EFS_HOME_PERMISSIONS = "0755"
# FSx for Lustre reads and writes a linked bucket through this per-file-system service-linked role.
FSX_S3_SERVICE_ROLE = (
    "aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_*"
)


def s3_uri(bucket: str, prefix: str | None = None) -> str:
    """`s3://bucket/prefix` as FSx expects it (`import_path`, `data_repository_path`).

    A leading `/` on the prefix is dropped; an empty or missing prefix names the whole bucket.
    """
    return f"s3://{bucket}/{(prefix or '').lstrip('/')}"


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
# The defaults are the platform's stack defaults (tests/test_data_repository.py checks they agree
# with the config models), so a library user gets the same bucket a default stack gets.
@dataclass(frozen=True, kw_only=True)
class DataRepositoryArgs:
    """Inputs of a DataRepository: the bucket's lifecycle and logging, the EFS home file system,
    and where EFS is reachable from."""

    region: str
    """AWS region of the bucket: the data key and the access grants allow use only through S3 in
    this region (`kms:ViaService`)."""
    efs_mount_subnet_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """One EFS mount target per entry (EFS allows one per AZ): the key, usually the AZ name, names
    the mount target `<name>-efs-mount-<key>`; the value is the subnet id. Required when
    `efs_home` is on."""
    efs_security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the EFS mount targets (they must allow NFS, TCP 2049, from clients).
    Empty: the VPC's default security group."""
    force_destroy: bool = False
    """Let `pulumi destroy` delete the buckets while they still hold objects. Never for real data."""
    access_logging: bool = True
    """Server access logs to a separate, SSE-S3 encrypted log bucket."""
    access_log_retention_days: int = 365
    """Server access logs are deleted after this many days."""
    intelligent_tiering: bool = True
    """Objects move into INTELLIGENT_TIERING on day 0 (and into its archive tiers after
    `cold_after_days`/`archive_after_days` without access) instead of by fixed ages."""
    warm_after_days: int | None = None
    """Days to STANDARD_IA (S3 requires ≥ 30); only without intelligent tiering. None: no warm tier."""
    cold_after_days: int | None = 90
    """Days to GLACIER_IR (with intelligent tiering: to its Archive Access tier, ≥ 90). None: none."""
    archive_after_days: int | None = 365
    """Days to DEEP_ARCHIVE (with intelligent tiering: its Deep Archive Access tier, ≥ 180), for
    objects under `archive_prefix` only. None: no archive tier."""
    archive_prefix: str = "archive/"
    """Only objects under this prefix reach the archive tiers: FSx for Lustre cannot read archived
    objects until they are restored, so keep prefixes linked into Lustre outside it. Empty: the
    whole bucket."""
    noncurrent_version_expiration_days: int = 90
    """Old object versions are deleted after this many days."""
    abort_incomplete_multipart_days: int = 7
    """Incomplete multipart uploads are aborted after this many days."""
    efs_home: bool = True
    """Create the EFS file system for `/home` (with its own KMS key and an access point)."""
    efs_throughput_mode: str = "elastic"
    """`elastic` (scales with load, billed per use) or `bursting` (earns credits with size)."""
    efs_performance_mode: str = "generalPurpose"
    """`generalPurpose` (lowest latency) or `maxIO` (only for very many clients)."""
    efs_transition_to_ia: str = "AFTER_30_DAYS"
    """EFS lifecycle: files not read for this long move to Infrequent Access (`AFTER_1_DAY` …
    `AFTER_365_DAYS`), and back on first access."""
    efs_backup: bool = True
    """AWS Backup's default policy on the file system (daily backups kept 35 days)."""
    protect_data: bool = False
    """`protect` the bucket, the log bucket, the EFS file system and their KMS keys: deleting or
    replacing them then needs a deliberate `pulumi state unprotect`."""
    kms_key_deletion_window_days: int | None = None
    """Waiting period (7–30 days) before a deleted KMS key of this component is gone. None: AWS's
    default (30)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child, beside the `Name` each gets (a stack-wide transform may add
    more)."""


# ---------------------------------------------------------------------------------------------
# Pure helpers: lifecycle rules and policy documents (tested directly)
# ---------------------------------------------------------------------------------------------
def lifecycle_rules(args: DataRepositoryArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """The data bucket's lifecycle: tiering by age, old versions expired, stale uploads aborted."""
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs] = []
    if args.intelligent_tiering:
        transitions = [
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=0, storage_class="INTELLIGENT_TIERING")
        ]
    else:
        # STANDARD_IA and GLACIER_IR stay instantly readable (Lustre can import them).
        transitions = [
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=days, storage_class=storage_class)
            for days, storage_class in (
                (args.warm_after_days, "STANDARD_IA"),
                (args.cold_after_days, "GLACIER_IR"),
            )
            if days is not None
        ]
    if transitions:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="tiering", status="Enabled", filter=whole_bucket, transitions=transitions
            )
        )
    if not args.intelligent_tiering and args.archive_after_days is not None:
        # DEEP_ARCHIVE needs a restore before anything (Lustre included) can read it: archive prefix only.
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="archive",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=args.archive_prefix),
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=args.archive_after_days, storage_class="DEEP_ARCHIVE"
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
                noncurrent_days=args.noncurrent_version_expiration_days
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
                days_after_initiation=args.abort_incomplete_multipart_days
            ),
        )
    )
    return rules


def intelligent_tiering_days(args: DataRepositoryArgs) -> dict[str, int]:
    """Intelligent-Tiering archive tiers (access tier → days without access); empty: none."""
    if not args.intelligent_tiering:
        return {}
    tiers = {"ARCHIVE_ACCESS": args.cold_after_days, "DEEP_ARCHIVE_ACCESS": args.archive_after_days}
    return {tier: days for tier, days in tiers.items() if days is not None}


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
    """The S3 data bucket (customer KMS key, versioned, private, TLS only, tiered by age) with its
    access-log bucket, and the encrypted EFS file system for `/home`."""

    bucket_name: pulumi.Output[str]
    """Name of the data bucket."""
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    """ARN of the data bucket's customer KMS key."""
    log_bucket_name: pulumi.Output[str] | None
    """Name of the access-log bucket; absent without access logging."""
    efs_file_system_id: pulumi.Output[str] | None
    """Id of the EFS home file system; absent when `efs_home` is off."""
    efs_access_point_id: pulumi.Output[str] | None
    """Id of the `/home` access point; absent when `efs_home` is off."""

    def __init__(self, name: str, args: DataRepositoryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        if args.efs_home and not args.efs_mount_subnet_ids:
            raise ValueError(
                f"DataRepository {name}: efs_home is on but efs_mount_subnet_ids is empty; "
                "pass one subnet id per AZ the file system must be reachable from, or turn efs_home off"
            )
        self._region = args.region
        self._tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        durable = pulumi.ResourceOptions(parent=self, protect=args.protect_data)
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        account_id = caller.account_id

        # --- data key ---------------------------------------------------------------------------
        self.kms_key: aws.kms.Key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: S3 data bucket (SSE-KMS)",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_key_deletion_window_days,
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
        self.bucket: aws.s3.Bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=args.force_destroy,
            tags=self._tag(f"{name}-bucket"),
            opts=durable,
        )
        hardening = harden_bucket(f"{name}-bucket", self.bucket, kms_key_arn=self.kms_key.arn, parent=self)
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps(
                self.bucket.arn.apply(
                    lambda arn: {"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn)]}
                )
            ),
            # S3 refuses concurrent policy and public-access-block changes on one bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardening.public_access_block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rules(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardening.versioning]),
        )
        tiers = intelligent_tiering_days(args)
        if tiers:
            aws.s3.BucketIntelligentTieringConfiguration(
                f"{name}-bucket-tiering",
                bucket=self.bucket.id,
                name="archive-tiers",
                status="Enabled",
                # Archived objects need a restore before Lustre can read them: archive prefix only.
                filter=aws.s3.BucketIntelligentTieringConfigurationFilterArgs(prefix=args.archive_prefix)
                if args.archive_prefix
                else None,
                tierings=[
                    aws.s3.BucketIntelligentTieringConfigurationTieringArgs(access_tier=tier, days=days)
                    for tier, days in tiers.items()
                ],
                opts=child,
            )

        # --- access-log bucket ---------------------------------------------------------------
        self.log_bucket: aws.s3.Bucket | None = None
        if args.access_logging:
            self.log_bucket = self._log_bucket(name, args, account_id, durable)

        # --- EFS home ------------------------------------------------------------------------
        self.efs_kms_key: aws.kms.Key | None = None
        self.efs_file_system: aws.efs.FileSystem | None = None
        access_point: aws.efs.AccessPoint | None = None
        if args.efs_home:
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

    def _log_bucket(
        self,
        name: str,
        args: DataRepositoryArgs,
        account_id: pulumi.Output[str],
        durable: pulumi.ResourceOptions,
    ) -> aws.s3.Bucket:
        log_bucket = aws.s3.Bucket(
            f"{name}-access-logs",
            force_destroy=args.force_destroy,
            tags=self._tag(f"{name}-access-logs"),
            opts=durable,
        )
        # S3 server access logging delivers only to buckets encrypted with SSE-S3, not SSE-KMS.
        hardening = harden_bucket(f"{name}-access-logs", log_bucket, kms_key_arn=None, parent=self)
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardening.public_access_block]),
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardening.versioning]),
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
        self.efs_kms_key = aws.kms.Key(
            f"{name}-efs-key",
            description=f"{name}: EFS home file system",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_key_deletion_window_days,
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
            performance_mode=args.efs_performance_mode,
            throughput_mode=args.efs_throughput_mode,
            lifecycle_policies=[
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia=args.efs_transition_to_ia),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ],
            tags=self._tag(f"{name}-efs-home"),
            opts=durable,
        )
        self.efs_file_system = file_system
        for key, subnet_id in args.efs_mount_subnet_ids.items():
            aws.efs.MountTarget(
                f"{name}-efs-mount-{key}",
                file_system_id=file_system.id,
                subnet_id=subnet_id,
                security_groups=list(args.efs_security_group_ids) or None,
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
                status="ENABLED" if args.efs_backup else "DISABLED"
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
