"""KMS key-policy statements the components share.

Every customer key here starts from the same two ideas: the account's IAM policies decide who uses
the key (the root statement), and a service that encrypts on our behalf (CloudWatch Logs) gets use
of the key only for the log groups named in the encryption context.
"""

from __future__ import annotations

from typing import Any

# What CloudWatch Logs needs on a key to encrypt a log group.
LOGS_KEY_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)


def account_root_statement(partition: str, account_id: str, sid: str = "EnableIamPolicies") -> dict[str, Any]:
    """The account (through its IAM policies) administers and uses the key."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def log_group_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}"


def cloudwatch_logs_statement(
    *,
    region: str,
    dns_suffix: str,
    log_group_arns: str | list[str],
    sid: str,
    match: str = "ArnEquals",
) -> dict[str, Any]:
    """CloudWatch Logs may use the key only for these log groups (`match="ArnLike"` for a prefix)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.{dns_suffix}"},
        "Action": list(LOGS_KEY_ACTIONS),
        "Resource": "*",
        "Condition": {match: {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
    }
