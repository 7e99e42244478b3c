"""Observability rules: notification e-mails, budgets, and the nodes the metrics collector runs on."""

from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import METRICS_COLLECTOR_ARCHITECTURE, METRICS_COLLECTOR_MIN_GLIBC, OS_GLIBC
from hpc_platform.domain.rules import budget_alert_thresholds_problem, budget_threshold_problem


class ObservabilityValidator(Validator):
    name = "observability"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        if profile(config.environment).requires_notification_emails and not (
            config.observability.notification_emails
        ):
            yield Finding(
                ("observability", "notification_emails"),
                f"{config.environment} has nobody to notify; alarms will only show in the console",
                "WARNING",
            )


class BudgetThresholdsValidator(Validator):
    """Each alert threshold is one AWS Budgets notification, within a per-budget limit."""

    name = "budget-thresholds"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        budget = config.observability.budget
        if budget is None:
            return
        loc = ("observability", "budget", "alert_thresholds_percent")
        too_many = budget_alert_thresholds_problem(len(budget.alert_thresholds_percent))
        if too_many is not None:
            yield Finding(loc, too_many)
        for index, threshold in enumerate(budget.alert_thresholds_percent):
            problem = budget_threshold_problem(threshold)
            if problem is not None:
                yield Finding((*loc, index), problem)


class BudgetResearchGroupValidator(Validator):
    """A group budget filters on the ResearchGroup tag: the group must own something tagged with
    it (queues with that `research_group`, or the whole stack), or the budget stays at $0."""

    name = "budget-research-group"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        budget = config.observability.budget
        if budget is None:
            return
        owners = {q.research_group for q in config.cluster.queues if q.research_group is not None}
        owners.add(config.compliance.research_group)
        for group in budget.per_research_group:
            if group not in owners:
                yield Finding(
                    ("observability", "budget", "per_research_group", group),
                    f"no queue belongs to research group '{group}'; set research_group: {group} on "
                    "the queues it pays for, or remove the budget",
                )


class MetricsCollectorValidator(Validator):
    """With Managed Prometheus on, every node runs the pinned node_exporter and the head node the
    Prometheus agent: x86_64 builds linked against glibc ≥ 2.34."""

    name = "metrics-collector"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        if not config.observability.enable_managed_prometheus:
            return
        cluster = config.cluster
        head = catalog.get(cluster.head_node.instance_type)
        if head is not None and head.architecture != METRICS_COLLECTOR_ARCHITECTURE:
            yield Finding(
                ("cluster", "head_node", "instance_type"),
                f"{head.name} is {head.architecture}, but the metrics collector and node_exporter "
                f"installed with enable_managed_prometheus are {METRICS_COLLECTOR_ARCHITECTURE} "
                f"builds; use an {METRICS_COLLECTOR_ARCHITECTURE} cluster or turn Prometheus off",
            )
        glibc = OS_GLIBC.get(cluster.os)
        if glibc is not None and glibc < METRICS_COLLECTOR_MIN_GLIBC:
            need = ".".join(str(v) for v in METRICS_COLLECTOR_MIN_GLIBC)
            fit = [name for name, version in OS_GLIBC.items() if version >= METRICS_COLLECTOR_MIN_GLIBC]
            yield Finding(
                ("cluster", "os"),
                f"{cluster.os} has glibc {'.'.join(str(v) for v in glibc)}, but the metrics "
                f"collector installed with enable_managed_prometheus needs glibc ≥ {need}; use "
                f"{or_join(fit)}, or turn Prometheus off",
            )


VALIDATORS: tuple[Validator, ...] = (
    ObservabilityValidator(),
    MetricsCollectorValidator(),
    BudgetThresholdsValidator(),
    BudgetResearchGroupValidator(),
)
