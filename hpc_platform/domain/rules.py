"""Rules on plain values that more than one layer checks.

A config validator calls these and puts the stack-file key path in front of the message; a
component that keeps a guard for direct library use calls the same function, so a rule and its
wording live once. (The cluster-name rule is in `limits`, the Lustre rules in `lustre`.)
"""

from collections.abc import Iterable

from hpc_platform.domain.limits import (
    BUDGET_FORECAST_NOTIFICATIONS,
    BUDGET_MAX_ALERT_THRESHOLDS,
    BUDGET_MAX_NOTIFICATIONS,
    BUDGET_THRESHOLD_PERCENT_MAX,
    PCLUSTER_RESERVED_TAG_PREFIX,
)


def budget_alert_thresholds_problem(thresholds: int) -> str | None:
    """Too many alert thresholds for one budget (None: fine). Each threshold is one notification
    and the platform adds a forecast notification."""
    if thresholds <= BUDGET_MAX_ALERT_THRESHOLDS:
        return None
    return (
        f"{thresholds} thresholds; AWS Budgets allows {BUDGET_MAX_NOTIFICATIONS} notifications per "
        f"budget and {BUDGET_FORECAST_NOTIFICATIONS} is the forecast alert, so list at most "
        f"{BUDGET_MAX_ALERT_THRESHOLDS}"
    )


def budget_threshold_problem(percent: float) -> str | None:
    """A threshold outside what AWS Budgets accepts (None: fine)."""
    if 0 < percent <= BUDGET_THRESHOLD_PERCENT_MAX:
        return None
    return (
        f"{percent} is not a budget threshold; use a percentage between 0 and {BUDGET_THRESHOLD_PERCENT_MAX}"
    )


def reserved_tag_keys(keys: Iterable[str]) -> list[str]:
    """Tag keys ParallelCluster keeps for itself (it refuses a cluster config that sets them)."""
    return sorted(key for key in keys if key.startswith(PCLUSTER_RESERVED_TAG_PREFIX))


def reserved_tag_problem(key: str) -> str:
    return (
        f"the prefix {PCLUSTER_RESERVED_TAG_PREFIX!r} is reserved by ParallelCluster for its own tags; "
        "rename the tag"
    )
