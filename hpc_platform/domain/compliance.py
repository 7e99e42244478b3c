"""The AWS Config managed rules the audit trail deploys, each with the NIST SP 800-171 controls
it gives evidence for: one list, read by the AuditTrail component's wiring and by the generated
docs (`python -m hpc_platform.domain.compliance`).

Identifiers are AWS Config's managed-rule `SourceIdentifier`s (AWS Config Developer Guide, "List
of AWS Config Managed Rules"). Plain values only, so the component library may import this module.
"""

# No `from __future__ import annotations`: AuditTrailArgs takes `ManagedRule`s, and Pulumi's
# component analyzer reads their annotations as types.
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ManagedRule:
    name: str
    """The Config rule's name in the account (kebab-case, as AWS names the managed rule)."""
    identifier: str
    """AWS Config's managed-rule identifier (`SourceIdentifier`)."""
    controls: Sequence[str]
    """NIST SP 800-171 Rev. 2 requirements the rule gives evidence for."""
    what: str
    """What the rule checks, for the docs."""


MANAGED_RULES: tuple[ManagedRule, ...] = (
    ManagedRule(
        name="encrypted-volumes",
        identifier="ENCRYPTED_VOLUMES",
        controls=("3.13.16", "3.13.11"),
        what="Attached EBS volumes are encrypted.",
    ),
    ManagedRule(
        name="ec2-ebs-encryption-by-default",
        identifier="EC2_EBS_ENCRYPTION_BY_DEFAULT",
        controls=("3.13.16",),
        what="EBS encryption by default is on in the region.",
    ),
    ManagedRule(
        name="efs-encrypted-check",
        identifier="EFS_ENCRYPTED_CHECK",
        controls=("3.13.16", "3.13.11"),
        what="EFS file systems encrypt their data with KMS.",
    ),
    ManagedRule(
        name="s3-bucket-server-side-encryption-enabled",
        identifier="S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED",
        controls=("3.13.16", "3.13.11"),
        what="S3 buckets have default encryption (or deny unencrypted puts).",
    ),
    ManagedRule(
        name="rds-storage-encrypted",
        identifier="RDS_STORAGE_ENCRYPTED",
        controls=("3.13.16", "3.13.11"),
        what="RDS storage (the Slurm accounting database) is encrypted.",
    ),
    ManagedRule(
        name="vpc-flow-logs-enabled",
        identifier="VPC_FLOW_LOGS_ENABLED",
        controls=("3.3.1", "3.13.1"),
        what="Every VPC has a flow log.",
    ),
    ManagedRule(
        name="cloudtrail-enabled",
        identifier="CLOUD_TRAIL_ENABLED",
        controls=("3.3.1", "3.3.2"),
        what="A CloudTrail trail is logging in the account.",
    ),
    ManagedRule(
        name="multi-region-cloudtrail-enabled",
        identifier="MULTI_REGION_CLOUD_TRAIL_ENABLED",
        controls=("3.3.1", "3.3.2"),
        what="At least one multi-region trail records management events.",
    ),
    ManagedRule(
        name="cloud-trail-log-file-validation-enabled",
        identifier="CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
        controls=("3.3.8",),
        what="Trails write digest files, so tampering with log files can be detected.",
    ),
    ManagedRule(
        name="root-account-mfa-enabled",
        identifier="ROOT_ACCOUNT_MFA_ENABLED",
        controls=("3.5.3",),
        what="The account's root user has MFA.",
    ),
    ManagedRule(
        name="ec2-imdsv2-check",
        identifier="EC2_IMDSV2_CHECK",
        controls=("3.1.1", "3.13.1"),
        what="Instances require IMDSv2 session tokens.",
    ),
)
"""The rules, in the order the docs list them."""

NOT_COVERED_BY_A_MANAGED_RULE: tuple[tuple[str, str, str], ...] = (
    (
        "FSx for Lustre encryption at rest",
        "3.13.16",
        "AWS Config has no managed rule for it (its FSx rules cover tags, backups and deployment "
        "types). FSx for Lustre always encrypts at rest; the policy pack's "
        "`fsx-lustre-customer-kms-key` requires a customer key on PERSISTENT file systems before "
        "anything is deployed.",
    ),
)
"""(what, NIST control, how it is covered instead): requirements no managed rule checks."""


def markdown_table() -> str:
    """The rules as a Markdown table: rule, identifier, NIST SP 800-171 controls, what it checks."""
    lines = [
        "| Config rule | managed rule identifier | NIST SP 800-171 | checks |",
        "|---|---|---|---|",
        *(
            f"| `{rule.name}` | `{rule.identifier}` | {', '.join(rule.controls)} | {rule.what} |"
            for rule in MANAGED_RULES
        ),
        *(
            f"| — | none | {control} | {what}: {how} |"
            for what, control, how in NOT_COVERED_BY_A_MANAGED_RULE
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
