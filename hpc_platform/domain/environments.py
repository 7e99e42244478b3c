"""Every choice that depends on the environment (dev, staging, prod), in one table.

Components and the ParallelCluster renderer never compare environment names: the application's
wiring reads the stack's `EnvironmentProfile` and hands them plain values (`protect_data`,
`kms_deletion_window_days`, …); the validators read it too. A new environment is a new row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from hpc_platform.domain.limits import (
    KMS_DEFAULT_DELETION_WINDOW_DAYS,
    KMS_DELETION_WINDOW_RANGE_DAYS,
    SECRET_RECOVERY_WINDOW_RANGE_DAYS,
)

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
EnforcementLevel = Literal["advisory", "mandatory"]


@dataclass(frozen=True, kw_only=True)
class EnvironmentProfile:
    name: Environment
    name_prefix: str
    """Prefix of every component's name (`hpc-prod-network`, …) and of the Grafana/AMP workspaces."""
    protect_data: bool
    """`protect` on the resources that hold data (bucket, EFS, Lustre, their keys): a `pulumi
    destroy` stops before deleting them."""
    final_backups: bool
    """Final backup of persistent Lustre and final snapshot of the accounting database on delete."""
    kms_deletion_window_days: int
    """Waiting period before a deleted customer KMS key is gone (within AWS's
    `KMS_DELETION_WINDOW_RANGE_DAYS`). Every component that creates a KMS key uses it."""
    secret_recovery_window_days: int
    """Waiting period before a deleted Secrets Manager secret is gone (within AWS's
    `SECRET_RECOVERY_WINDOW_RANGE_DAYS`)."""
    database_backup_retention_days: int
    """Automated backups of the accounting database."""
    database_deletion_protection: bool
    """RDS deletion protection on the accounting database."""
    detailed_monitoring: bool
    """Per-minute EC2 metrics on every cluster node: worth their cost where someone is paged."""
    retain_cluster_logs: bool
    """Keep the cluster's CloudWatch logs (an audit trail) when the cluster is deleted."""
    policy_enforcement: EnforcementLevel
    """Enforcement level of the policy pack (`policy/config/<environment>.json` says the same)."""
    requires_notification_emails: bool
    """Alarms must reach someone: the stack must list notification e-mails."""
    requires_persistent_customer_key: bool
    """Persistent Lustre must use a customer-managed KMS key (the policy pack rejects it otherwise)."""
    requires_audit_trail: bool
    """The policy pack's `audit-trail` requires a CloudTrail trail and a Config recorder in the
    stack, or the declared `hpc:audit.mode: existing` naming the organization's."""

    def __post_init__(self) -> None:
        for field, value, (low, high) in (
            ("kms_deletion_window_days", self.kms_deletion_window_days, KMS_DELETION_WINDOW_RANGE_DAYS),
            (
                "secret_recovery_window_days",
                self.secret_recovery_window_days,
                SECRET_RECOVERY_WINDOW_RANGE_DAYS,
            ),
        ):
            if not low <= value <= high:
                raise ValueError(f"{self.name}: {field} is {value}; AWS accepts {low} to {high} days")


PROFILES: dict[Environment, EnvironmentProfile] = {
    "dev": EnvironmentProfile(
        name="dev",
        name_prefix="hpc-dev",
        protect_data=False,
        final_backups=False,
        kms_deletion_window_days=KMS_DEFAULT_DELETION_WINDOW_DAYS,
        secret_recovery_window_days=7,
        database_backup_retention_days=7,
        database_deletion_protection=False,
        detailed_monitoring=False,
        retain_cluster_logs=False,
        policy_enforcement="advisory",
        requires_notification_emails=False,
        requires_persistent_customer_key=False,
        requires_audit_trail=False,
    ),
    "staging": EnvironmentProfile(
        name="staging",
        name_prefix="hpc-staging",
        protect_data=False,
        final_backups=False,
        kms_deletion_window_days=KMS_DEFAULT_DELETION_WINDOW_DAYS,
        secret_recovery_window_days=7,
        database_backup_retention_days=7,
        database_deletion_protection=False,
        detailed_monitoring=False,
        retain_cluster_logs=False,
        policy_enforcement="mandatory",
        requires_notification_emails=False,
        requires_persistent_customer_key=True,
        requires_audit_trail=True,
    ),
    "prod": EnvironmentProfile(
        name="prod",
        name_prefix="hpc-prod",
        protect_data=True,
        final_backups=True,
        kms_deletion_window_days=KMS_DEFAULT_DELETION_WINDOW_DAYS,
        secret_recovery_window_days=30,
        database_backup_retention_days=30,
        database_deletion_protection=True,
        detailed_monitoring=True,
        retain_cluster_logs=True,
        policy_enforcement="mandatory",
        requires_notification_emails=True,
        requires_persistent_customer_key=True,
        requires_audit_trail=True,
    ),
}


def profile(environment: Environment) -> EnvironmentProfile:
    return PROFILES[environment]
