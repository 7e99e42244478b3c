"""AWS Budgets rules that both the config validator and the Observability component check."""

from hpc_platform.domain.limits import BUDGET_MAX_NOTIFICATIONS


def alert_thresholds_problem(count: int) -> str | None:
    """What is wrong with `count` actual-spend thresholds on one budget, or None.

    Observability adds a forecast notification to every budget, so one of AWS Budgets'
    notifications per budget is taken.
    """
    if count + 1 <= BUDGET_MAX_NOTIFICATIONS:
        return None
    return (
        f"{count} thresholds; AWS Budgets allows {BUDGET_MAX_NOTIFICATIONS} notifications per budget "
        f"and one is the forecast alert, so list at most {BUDGET_MAX_NOTIFICATIONS - 1}"
    )
