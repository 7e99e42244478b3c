"""AuditTrail: who did what in the account, kept where it cannot quietly change (NIST SP 800-171
3.3.1, 3.3.2, 3.3.8), and AWS Config checking the platform's controls.

Mode `CREATE`: a multi-region CloudTrail trail with log file validation, delivered to its own
versioned bucket (SSE-KMS with the component's customer key, public access blocked, TLS only,
writable by CloudTrail only for this trail) and to a CloudWatch log group encrypted with the same
key; an AWS Config recorder of every supported resource type (global ones too: this is the
stack's home region), its delivery channel to the same bucket under `config/`, and the recorder
switched on. Mode `EXISTING`: the organization runs the trail and the recorder (an account has one
Config recorder per region); nothing of that is created and their names are passed through as
outputs. In both modes the managed Config rules given (default: `hpc_platform.domain.compliance`)
are deployed.

A library component: plain values, no stack schema. No `from __future__ import annotations`:
Pulumi's component analyzer reads these annotations as types.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pulumi

from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from components.secure_bucket import deny_insecure_transport, harden_bucket
from hpc_platform.domain.compliance import MANAGED_RULES, ManagedRule
from hpc_platform.domain.limits import AUDIT_LOG_RETENTION_DAYS_DEFAULT, KMS_DEFAULT_DELETION_WINDOW_DAYS

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:audit:AuditTrail"
# Where each service writes in the bucket.
CLOUDTRAIL_PREFIX = "cloudtrail"
CONFIG_PREFIX = "config"
# The AWS managed policy that lets AWS Config read resource configurations.
CONFIG_MANAGED_POLICY = "service-role/AWS_ConfigRole"


class AuditMode(StrEnum):
    CREATE = "create"
    """The component creates the trail, the recorder and where they deliver."""
    EXISTING = "existing"
    """The organization runs them; only the Config rules are created."""


@dataclass(frozen=True, kw_only=True)
class AuditTrailArgs:
    region: str
    """The stack's region: the trail's home region and where the recorder records global types."""
    trail_name: str
    """Name of the trail (mode `CREATE`). Fixed rather than autonamed: the bucket and key policies
    name the trail's ARN before the trail exists (`aws:SourceArn`)."""
    mode: AuditMode = AuditMode.CREATE
    """See `AuditMode`. Omitted: create."""
    existing_trail_arn: str | None = None
    """The organization's trail (mode `EXISTING`, required there): exported as `audit_trail_arn`."""
    existing_config_recorder_name: str | None = None
    """The organization's Config recorder (mode `EXISTING`, required there)."""
    log_retention_days: pulumi.Input[int] = AUDIT_LOG_RETENTION_DAYS_DEFAULT
    """Retention of the trail's CloudWatch log group (a value CloudWatch Logs accepts)."""
    config_rules: Sequence[ManagedRule] = MANAGED_RULES
    """AWS Config managed rules to deploy. Omitted: every rule of `hpc_platform.domain.compliance`."""
    protect_data: bool = False
    """`protect` the bucket and the key: deleting them then needs `pulumi state unprotect`."""
    force_destroy: bool = False
    """Let `pulumi destroy` delete a bucket that holds log files."""
    kms_key_deletion_window_days: pulumi.Input[int] = KMS_DEFAULT_DELETION_WINDOW_DAYS
    """Days before the deleted key is gone (7-30)."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if self.mode == AuditMode.EXISTING and not (
            self.existing_trail_arn and self.existing_config_recorder_name
        ):
            raise ValueError(
                "AuditTrailArgs: mode EXISTING needs existing_trail_arn and existing_config_recorder_name"
            )


class AuditTrail(pulumi.ComponentResource):
    """CloudTrail, AWS Config and the managed rules, or the organization's trail and recorder."""

    trail_arn: pulumi.Output[str]
    """The trail that records the account (this component's, or the organization's)."""
    config_recorder_name: pulumi.Output[str]
    """The AWS Config recorder the rules evaluate with."""
    config_rule_names: list[pulumi.Output[str]]
    """The managed Config rules, in `config_rules` order."""

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self.args = args
        self.bucket: aws.s3.Bucket | None = None
        self.kms_key: aws.kms.Key | None = None
        self.log_group: aws.cloudwatch.LogGroup | None = None
        self.trail: aws.cloudtrail.Trail | None = None
        self.recorder: aws.cfg.Recorder | None = None
        self.recorder_status: aws.cfg.RecorderStatus | None = None

        if args.mode == AuditMode.CREATE:
            trail, recorder = self._create_trail_and_recorder()
            self.trail_arn = trail.arn
            self.config_recorder_name = recorder.name
        else:
            self.trail_arn = pulumi.Output.from_input(str(args.existing_trail_arn))
            self.config_recorder_name = pulumi.Output.from_input(str(args.existing_config_recorder_name))

        # Rules need a recorder running; ours, when this component made it.
        rule_opts = pulumi.ResourceOptions(
            parent=self, depends_on=[self.recorder_status] if self.recorder_status is not None else []
        )
        self.config_rules: list[aws.cfg.Rule] = [
            aws.cfg.Rule(
                f"{name}-rule-{rule.name}",
                name=f"{name}-{rule.name}",
                description=f"{rule.what} NIST SP 800-171 {', '.join(rule.controls)}.",
                source=aws.cfg.RuleSourceArgs(owner="AWS", source_identifier=rule.identifier),
                tags=self._tags(f"{name}-{rule.name}"),
                opts=rule_opts,
            )
            for rule in args.config_rules
        ]
        self.config_rule_names = [rule.name for rule in self.config_rules]
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values."""
        outputs: dict[str, Any] = {
            "audit_mode": str(self.args.mode),
            "audit_trail_arn": self.trail_arn,
            "audit_config_recorder_name": self.config_recorder_name,
            "audit_config_rule_names": self.config_rule_names,
        }
        if self.bucket is not None:
            outputs["audit_bucket_name"] = self.bucket.bucket
        if self.log_group is not None:
            outputs["audit_log_group_name"] = self.log_group.name
        return outputs

    # --- building blocks -----------------------------------------------------------------------
    def _tags(self, name: str) -> dict[str, pulumi.Input[str]]:
        return {**self.args.tags, "Name": name}

    def _create_trail_and_recorder(self) -> tuple[aws.cloudtrail.Trail, aws.cfg.Recorder]:
        name, args = self._name, self.args
        child = pulumi.ResourceOptions(parent=self)
        durable = pulumi.ResourceOptions(parent=self, protect=args.protect_data)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke)
        region = args.region
        log_group_name = f"/aws/cloudtrail/{args.trail_name}"
        trail_arn = pulumi.Output.all(partition.partition, account).apply(
            lambda v: f"arn:{v[0]}:cloudtrail:{region}:{v[1]}:trail/{args.trail_name}"
        )

        # --- key: CloudTrail (this trail only), CloudWatch Logs (this log group only), IAM -----
        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: CloudTrail log files, the trail's log group and AWS Config snapshots",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_key_deletion_window_days,
            policy=pulumi.Output.all(partition.partition, partition.dns_suffix, account, trail_arn).apply(
                lambda v: json.dumps(
                    audit_key_policy(
                        partition=v[0],
                        dns_suffix=v[1],
                        account_id=v[2],
                        region=region,
                        trail_arn=v[3],
                        log_group_name=log_group_name,
                    )
                )
            ),
            tags=self._tags(f"{name}-key"),
            opts=durable,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.kms_key.key_id, opts=child
        )

        # --- bucket ------------------------------------------------------------------------------
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=args.force_destroy,
            tags=self._tags(f"{name}-bucket"),
            opts=durable,
        )
        self.bucket = bucket
        hardening = harden_bucket(f"{name}-bucket", bucket, kms_key_arn=self.kms_key.arn, parent=self)
        bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, account, trail_arn).apply(
                lambda v: json.dumps(audit_bucket_policy(bucket_arn=v[0], account_id=v[1], trail_arn=v[2]))
            ),
            # S3 refuses concurrent policy and public-access-block changes on one bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hardening.public_access_block]),
        )

        # --- log group and the role CloudTrail delivers to it with ---------------------------
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-trail-logs",
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=self.kms_key.arn,
            tags=self._tags(f"{name}-trail-logs"),
            opts=child,
        )
        logs_role = aws.iam.Role(
            f"{name}-trail-logs-role",
            description=f"{name}: CloudTrail delivery to {log_group_name}",
            assume_role_policy=trail_arn.apply(lambda arn: json.dumps(service_trust("cloudtrail", arn))),
            tags=self._tags(f"{name}-trail-logs-role"),
            opts=child,
        )
        logs_policy = aws.iam.RolePolicy(
            f"{name}-trail-logs-policy",
            role=logs_role.id,
            policy=self.log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DeliverToThisLogGroupOnly",
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": f"{arn}:log-stream:*",
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )

        # --- the trail ---------------------------------------------------------------------------
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=args.trail_name,
            s3_bucket_name=bucket.id,
            s3_key_prefix=CLOUDTRAIL_PREFIX,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=self.kms_key.arn,
            cloud_watch_logs_group_arn=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            cloud_watch_logs_role_arn=logs_role.arn,
            tags=self._tags(f"{name}-trail"),
            # CloudTrail checks bucket and log-group access when the trail is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket_policy, logs_policy]),
        )

        # --- AWS Config ---------------------------------------------------------------------------
        config_role = aws.iam.Role(
            f"{name}-config-role",
            description=f"{name}: AWS Config recorder and delivery channel",
            assume_role_policy=account.apply(lambda a: json.dumps(service_trust("config", None, a))),
            tags=self._tags(f"{name}-config-role"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-config-read",
            role=config_role.name,
            policy_arn=partition.partition.apply(
                lambda p: f"arn:{p}:iam::aws:policy/{CONFIG_MANAGED_POLICY}"
            ),
            opts=child,
        )
        delivery_policy = aws.iam.RolePolicy(
            f"{name}-config-delivery-policy",
            role=config_role.id,
            policy=pulumi.Output.all(bucket.arn, self.kms_key.arn, account).apply(
                lambda v: json.dumps(config_delivery_policy(bucket_arn=v[0], key_arn=v[1], account_id=v[2]))
            ),
            opts=child,
        )
        self.recorder = aws.cfg.Recorder(
            f"{name}-recorder",
            name=name,
            role_arn=config_role.arn,
            recording_group=aws.cfg.RecorderRecordingGroupArgs(
                all_supported=True,
                # Global types (IAM) are recorded once, here, in the stack's home region.
                include_global_resource_types=True,
            ),
            opts=child,
        )
        channel = aws.cfg.DeliveryChannel(
            f"{name}-delivery-channel",
            name=name,
            s3_bucket_name=bucket.id,
            s3_key_prefix=CONFIG_PREFIX,
            s3_kms_key_arn=self.kms_key.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.recorder, delivery_policy]),
        )
        self.recorder_status = aws.cfg.RecorderStatus(
            f"{name}-recorder-status",
            name=self.recorder.name,
            is_enabled=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[channel]),
        )
        return self.trail, self.recorder


# --- policy documents (plain functions: tests read them) ---------------------------------------
def audit_key_policy(
    *, partition: str, dns_suffix: str, account_id: str, region: str, trail_arn: str, log_group_name: str
) -> dict[str, Any]:
    """The account's IAM policies decide who uses the key (the Config role among them); CloudTrail
    may encrypt for this trail only; CloudWatch Logs for the trail's log group only."""
    source = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            account_root_statement(partition, account_id),
            {
                "Sid": "CloudTrailEncryptsThisTrailsLogs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    **source,
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"
                        )
                    },
                },
            },
            {
                "Sid": "CloudTrailDescribesTheKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": source,
            },
            cloudwatch_logs_statement(
                region=region,
                dns_suffix=dns_suffix,
                log_group_arns=log_group_arn(partition, region, account_id, log_group_name),
                sid="CloudWatchLogsEncryptsTheTrailLogGroup",
            ),
        ],
    }


def audit_bucket_policy(*, bucket_arn: str, account_id: str, trail_arn: str) -> dict[str, Any]:
    """TLS only; CloudTrail may check the ACL and write log files for this trail only (AWS's
    CloudTrail bucket policy with the `aws:SourceArn` condition)."""
    source = {"aws:SourceArn": trail_arn}
    return {
        "Version": "2012-10-17",
        "Statement": [
            deny_insecure_transport(bucket_arn),
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": source},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{CLOUDTRAIL_PREFIX}/AWSLogs/{account_id}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **source}},
            },
        ],
    }


def config_delivery_policy(*, bucket_arn: str, key_arn: str, account_id: str) -> dict[str, Any]:
    """The Config role writes snapshots and history under `config/` only, with the bucket's key."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CheckBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "DeliverUnderConfigPrefix",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{CONFIG_PREFIX}/AWSLogs/{account_id}/Config/*",
            },
            {
                "Sid": "EncryptWithTheBucketKey",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key_arn,
            },
        ],
    }


def service_trust(service: str, source_arn: str | None, account_id: str | None = None) -> dict[str, Any]:
    """A role only `service` may assume, for this trail (`aws:SourceArn`) or this account."""
    condition: dict[str, Any] = (
        {"StringEquals": {"aws:SourceArn": source_arn}}
        if source_arn
        else {"StringEquals": {"aws:SourceAccount": account_id}}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": f"{service}.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": condition,
            }
        ],
    }


__all__ = ["TYPE_TOKEN", "AuditMode", "AuditTrail", "AuditTrailArgs"]
