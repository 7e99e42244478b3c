"""Encryption at rest (NIST SP 800-171 3.13.16): every store of data is encrypted, with a
customer-managed KMS key wherever AWS allows one.

S3 access-log buckets are the one exception to SSE-KMS: S3 server access logging only delivers to
a destination bucket whose default encryption is SSE-S3 (AES256). A bucket counts as a log bucket
when some `BucketLogging` resource in the stack names it as `targetBucket` — what makes it a log
bucket is that S3 delivers logs to it, not its name or tags, so nothing else can claim the
exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._common import (
    DEFAULT_ENFORCEMENT,
    S3_BUCKET_TYPES,
    Check,
    get,
    is_cluster,
    is_false,
    is_true,
    items,
    joined,
    resource_policy,
    short,
)

SSE_CONFIG_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_LOGGING_TYPES = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
SSE_S3_ALGORITHM = "AES256"


# --- S3 (stack policy: a bucket and its encryption configuration are separate resources) --------
def _default_algorithms(rules: Any) -> list[tuple[str | None, Any]]:
    """(sseAlgorithm, kmsMasterKeyId) of each rule's default encryption."""
    found = []
    for rule in items(rules):
        default = get(rule, "applyServerSideEncryptionByDefault")
        if default is not None:
            found.append((get(default, "sseAlgorithm"), get(default, "kmsMasterKeyId")))
    return found


def _bucket_encryption(bucket: Any, configs: list[Any]) -> list[tuple[str | None, Any]]:
    algorithms = []
    for config in configs:
        algorithms.extend(_default_algorithms(config.props.get("rules")))
    # The deprecated inline block on the bucket itself counts too.
    inline = bucket.props.get("serverSideEncryptionConfiguration")
    if inline is not None:
        rules = get(inline, "rules") if get(inline, "rules") is not None else [get(inline, "rule")]
        algorithms.extend(_default_algorithms(rules))
    return algorithms


def _validate_s3(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    allow_log_buckets = bool(args.get_config().get("allowSseS3ForAccessLogBuckets", True))
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    configs = [r for r in args.resources if r.resource_type in SSE_CONFIG_TYPES]
    loggings = [r for r in args.resources if r.resource_type in BUCKET_LOGGING_TYPES]
    for bucket in buckets:
        own_configs, undecided = joined(configs, "bucket", bucket)
        log_targets, log_undecided = joined(loggings, "targetBucket", bucket)
        is_log_bucket = bool(log_targets)
        algorithms = _bucket_encryption(bucket, own_configs)
        if not algorithms:
            if undecided:
                continue
            report_violation(
                f"S3 bucket {short(bucket.urn)} has no default encryption; add an "
                "aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm 'aws:kms' and a "
                "customer-managed kms_master_key_id.",
                bucket.urn,
            )
            continue
        for algorithm, key_id in algorithms:
            if algorithm in KMS_ALGORITHMS and key_id:
                continue
            if algorithm in KMS_ALGORITHMS:
                report_violation(
                    f"S3 bucket {short(bucket.urn)} uses SSE-KMS with the AWS-managed key; set "
                    "kms_master_key_id to the platform's customer-managed KMS key.",
                    bucket.urn,
                )
            elif algorithm == SSE_S3_ALGORITHM and (is_log_bucket or log_undecided) and allow_log_buckets:
                continue
            elif algorithm == SSE_S3_ALGORITHM:
                report_violation(
                    f"S3 bucket {short(bucket.urn)} uses SSE-S3 (AES256); use sse_algorithm 'aws:kms' "
                    "with a customer-managed kms_master_key_id (only server access-log destination "
                    "buckets may use AES256).",
                    bucket.urn,
                )
            else:
                report_violation(
                    f"S3 bucket {short(bucket.urn)} has default encryption {algorithm!r}; use "
                    "sse_algorithm 'aws:kms' with a customer-managed kms_master_key_id.",
                    bucket.urn,
                )


s3_bucket_sse_kms = StackValidationPolicy(
    name="s3-bucket-sse-kms",
    description="S3 buckets encrypt by default with SSE-KMS and a customer-managed key "
    "(server access-log destination buckets may use SSE-S3, which S3 logging requires).",
    validate=_validate_s3,
    enforcement_level=DEFAULT_ENFORCEMENT,
    config_schema=PolicyConfigSchema(
        properties={
            "allowSseS3ForAccessLogBuckets": {
                "type": "boolean",
                "default": True,
                "description": "Let buckets that receive S3 server access logs use AES256.",
            }
        }
    ),
)


# --- one-resource rules --------------------------------------------------------------------------
def _fsx_lustre(props: Mapping[str, Any]) -> list[str]:
    deployment = props.get("deploymentType") or "SCRATCH_1"
    if not str(deployment).startswith("PERSISTENT"):
        return []  # SCRATCH file systems are always encrypted with an AWS-owned key.
    if props.get("kmsKeyId"):
        return []
    return [
        f"{deployment} Lustre file system has no kms_key_id; set it to the platform's customer-managed "
        "KMS key (persistent file systems accept one; without it FSx uses the AWS-managed key)."
    ]


fsx_lustre_customer_kms_key = resource_policy(
    "fsx-lustre-customer-kms-key",
    "Persistent FSx for Lustre file systems are encrypted with a customer-managed KMS key.",
    {"aws:fsx/lustreFileSystem:LustreFileSystem": _fsx_lustre},
)


def _efs(props: Mapping[str, Any]) -> list[str]:
    if is_true(props.get("encrypted")):
        return []
    return [
        "EFS file system is not encrypted; set encrypted=True and kms_key_id to the customer-managed key."
    ]


efs_encrypted = resource_policy(
    "efs-encrypted",
    "EFS file systems are encrypted at rest.",
    {"aws:efs/fileSystem:FileSystem": _efs},
)


def _launch_template(props: Mapping[str, Any]) -> list[str]:
    messages = []
    for i, mapping in enumerate(items(props.get("blockDeviceMappings"))):
        ebs = get(mapping, "ebs")
        if ebs is not None and not is_true(get(ebs, "encrypted")):
            device = get(mapping, "deviceName") or f"#{i}"
            messages.append(
                f"launch template block device {device} is not encrypted; set "
                'ebs.encrypted="true" and kms_key_id to the customer-managed key.'
            )
    return messages


def _instance(props: Mapping[str, Any]) -> list[str]:
    messages = []
    if not is_true(get(props.get("rootBlockDevice"), "encrypted")):
        messages.append("instance root volume is not encrypted; set root_block_device.encrypted=True.")
    for device in items(props.get("ebsBlockDevices")):
        if not is_true(get(device, "encrypted")):
            name = get(device, "deviceName") or "an EBS block device"
            messages.append(f"instance volume {name} is not encrypted; set encrypted=True.")
    return messages


def _volume(props: Mapping[str, Any]) -> list[str]:
    if is_true(props.get("encrypted")):
        return []
    return ["EBS volume is not encrypted; set encrypted=True and kms_key_id to the customer-managed key."]


ebs_encrypted = resource_policy(
    "ebs-encrypted",
    "EBS volumes, instance volumes and launch-template block devices are encrypted.",
    {
        "aws:ebs/volume:Volume": _volume,
        "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
        "aws:ec2/instance:Instance": _instance,
    },
)


def _rds(props: Mapping[str, Any]) -> list[str]:
    if is_true(props.get("storageEncrypted")):
        return []
    return [
        "database storage is not encrypted; set storage_encrypted=True "
        "and kms_key_id (this forces a new database)."
    ]


rds_storage_encrypted = resource_policy(
    "rds-storage-encrypted",
    "RDS and Aurora databases encrypt their storage.",
    {"aws:rds/cluster:Cluster": _rds, "aws:rds/instance:Instance": _rds},
)


def _key_attribute(attribute: str, what: str, fix: str) -> Check:
    def check(props: Mapping[str, Any]) -> list[str]:
        return (
            [] if props.get(attribute) else [f"{what} has no {fix}; set it to the customer-managed KMS key."]
        )

    return check


log_group_kms_key = resource_policy(
    "log-group-kms-key",
    "CloudWatch log groups are encrypted with a customer-managed KMS key.",
    {"aws:cloudwatch/logGroup:LogGroup": _key_attribute("kmsKeyId", "CloudWatch log group", "kms_key_id")},
)

sns_topic_kms_key = resource_policy(
    "sns-topic-kms-key",
    "SNS topics are encrypted with a KMS key.",
    {"aws:sns/topic:Topic": _key_attribute("kmsMasterKeyId", "SNS topic", "kms_master_key_id")},
)

secret_kms_key = resource_policy(
    "secret-kms-key",
    "Secrets Manager secrets are encrypted with a customer-managed KMS key.",
    {"aws:secretsmanager/secret:Secret": _key_attribute("kmsKeyId", "Secrets Manager secret", "kms_key_id")},
)


# --- ParallelCluster -----------------------------------------------------------------------------
def _validate_cluster_volumes(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """ParallelCluster encrypts root volumes unless `Encrypted: false` (3.x default: true)."""
    if not is_cluster(args.resource_type, args.props):
        return
    config = args.props.get("cluster_config")
    if is_false(get(config, "HeadNode", "LocalStorage", "RootVolume", "Encrypted")):
        report_violation(
            "the head node root volume is unencrypted; set HeadNode.LocalStorage.RootVolume.Encrypted "
            "to true (or leave it out: ParallelCluster encrypts by default).",
            None,
        )
    for queue in items(get(config, "Scheduling", "SlurmQueues")):
        if is_false(get(queue, "ComputeSettings", "LocalStorage", "RootVolume", "Encrypted")):
            report_violation(
                f"queue {get(queue, 'Name')}: compute root volumes are unencrypted; set "
                "ComputeSettings.LocalStorage.RootVolume.Encrypted to true (or leave it out).",
                None,
            )


parallelcluster_root_volumes_encrypted = ResourceValidationPolicy(
    name="parallelcluster-root-volumes-encrypted",
    description="ParallelCluster head node and compute root volumes are encrypted.",
    validate=_validate_cluster_volumes,
    enforcement_level=DEFAULT_ENFORCEMENT,
)


POLICIES = [
    s3_bucket_sse_kms,
    fsx_lustre_customer_kms_key,
    efs_encrypted,
    ebs_encrypted,
    rds_storage_encrypted,
    log_group_kms_key,
    sns_topic_kms_key,
    secret_kms_key,
    parallelcluster_root_volumes_encrypted,
]
