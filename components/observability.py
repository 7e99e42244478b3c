"""Observability: where the platform tells people something is wrong or getting expensive.

One KMS key (rotation on) encrypts an SNS alerts topic, the log groups this component owns and
the Managed Prometheus workspace. Alarms (Lustre free capacity, head node status and CPU, Slurm
queue depth, Spot interruption rate) and AWS Budgets (a monthly limit, one per research group)
publish to the topic; the topic fans out to the given e-mail addresses. A CloudWatch dashboard
(`components.observability_dashboard`) shows the same signals; Managed Prometheus and Managed
Grafana come when enabled, and with a Grafana token the Slurm, node and Lustre dashboards of
`components/dashboards/` are provisioned in Grafana as code.

The component is a library: its args are plain values and Pulumi inputs (ids, names, thresholds),
never the stack config. What exists elsewhere (the Lustre file systems, the EFS home, the head
node, the cluster's queues) is handed over as ids by whoever composes the stack.

Spot interruptions are counted from EventBridge (`EC2 Spot Instance Interruption Warning`), not
from the head node's agent: the warning arrives two minutes before the node goes, it does not
depend on the head node being healthy, and every event is kept in a log group for post-mortems.
The alarm fires on the hourly count (`AWS/Events MatchedEvents` of the rule) instead of one e-mail
per event, which would flood inboxes when a Spot pool reclaims hundreds of nodes at once.
The rule sees every Spot interruption in the account and region (the event carries no tags), so
the account is assumed to be dedicated to this environment.

Log groups the cluster writes (ParallelCluster's `/aws/parallelcluster/...`) and VPC flow logs
belong to their components; this one owns only the Spot-event and Prometheus log groups.
"""

# No `from __future__ import annotations`: Pulumi's component analyzer reads these annotations as
# live types to build the package schema.
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.grafana_dashboards import (
    DASHBOARDS,
    PROMETHEUS_DASHBOARDS,
    cloudwatch_data_source_json,
    dashboard_json,
    prometheus_data_source_json,
)
from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from components.observability_dashboard import dashboard_body
from hpc_platform.domain.limits import (
    ALARM_FSX_FREE_CAPACITY_PERCENT_DEFAULT,
    ALARM_HEAD_NODE_CPU_PERCENT_DEFAULT,
    ALARM_QUEUE_PENDING_JOBS_DEFAULT,
    ALARM_SPOT_INTERRUPTIONS_PER_HOUR_DEFAULT,
    BUDGET_ALERT_THRESHOLDS_PERCENT_DEFAULT,
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_SCRATCH_2,
    OBSERVABILITY_LOG_RETENTION_DAYS_DEFAULT,
    RESEARCH_GROUP_TAG,
)
from hpc_platform.domain.metrics import SLURM_NAMESPACE, SLURM_PENDING_JOBS
from hpc_platform.domain.rules import budget_alert_thresholds_problem

if TYPE_CHECKING:
    import pulumi_aws as aws
    import pulumiverse_grafana as grafana
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:observability:Observability"

GRAFANA_AUTHENTICATION_PROVIDERS = ("AWS_SSO", "SAML")
GRAFANA_DATA_SOURCES = ("CLOUDWATCH", "PROMETHEUS")
SPOT_INTERRUPTION_EVENT = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Spot Instance Interruption Warning"],
}
GIB = 1024**3


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MonitoredLustre:
    """One FSx for Lustre file system to chart and alarm on."""

    name: str
    """Short name, e.g. `scratch` or `persistent`: part of the alarm's child and physical names."""
    file_system_id: pulumi.Input[str]
    """The file system's id (`fs-...`)."""
    capacity_gib: int
    """Provisioned storage capacity: the free-capacity alarm is a share of it."""
    deployment_type: str = LUSTRE_SCRATCH_2
    """FSx deployment type, named in the alarm text. Omitted: SCRATCH_2."""


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """What Observability watches and whom it tells. Only `cluster_name` is required."""

    cluster_name: pulumi.Input[str]
    """Slurm cluster name: the `ClusterName` dimension of the head node's custom metrics."""
    region: pulumi.Input[str] | None = None
    """Region of the alarms and dashboard widgets. Omitted: the AWS provider's region."""
    resource_prefix: str | None = None
    """Prefix of physical names (alarms, topic, dashboard, budgets, log groups, workspaces), e.g.
    `hpc-prod`. Omitted: the component's name."""
    queue_names: Sequence[str] = ()
    """Slurm queues: one pending-jobs alarm and dashboard line each. Omitted: none."""
    head_node_instance_id: pulumi.Input[str | None] | None = None
    """Head node instance. Omitted (no cluster yet): no head node alarms or charts."""
    lustre_file_systems: Sequence[MonitoredLustre] = ()
    """Lustre file systems: one free-capacity alarm and throughput chart each. Omitted: none."""
    efs_file_system_id: pulumi.Input[str] | None = None
    """EFS file system (home directories) for the dashboard. Omitted: no EFS charts."""
    notification_emails: Sequence[str] = ()
    """Alarm and budget notifications go to these addresses (each must confirm the SNS
    subscription). Omitted: nobody is e-mailed; alarms show in the console only."""
    fsx_free_capacity_percent: float = ALARM_FSX_FREE_CAPACITY_PERCENT_DEFAULT
    """Alarm when a Lustre file system has less than this share free."""
    queue_pending_jobs: int = ALARM_QUEUE_PENDING_JOBS_DEFAULT
    """Alarm when a queue has more pending jobs than this for 15 minutes."""
    head_node_cpu_percent: float = ALARM_HEAD_NODE_CPU_PERCENT_DEFAULT
    """Alarm when the head node's CPU stays above this for 15 minutes."""
    spot_interruptions_per_hour: int = ALARM_SPOT_INTERRUPTIONS_PER_HOUR_DEFAULT
    """Alarm when this many Spot interruption warnings arrive in an hour."""
    monthly_budget_usd: float | None = None
    """AWS Budget on the account's monthly cost. Omitted: no monthly budget."""
    research_group_budgets_usd: Mapping[str, float] = field(default_factory=dict)
    """Monthly budgets filtered on the research-group cost-allocation tag (group → USD).
    Omitted: none."""
    budget_alert_thresholds_percent: Sequence[float] = BUDGET_ALERT_THRESHOLDS_PERCENT_DEFAULT
    """Every budget notifies at these percentages of actual spend, and when the month's forecast
    exceeds 100 %. At most one fewer than AWS Budgets' notifications per budget."""
    research_group_tag_key: str = RESEARCH_GROUP_TAG
    """Cost-allocation tag the research-group budgets filter on."""
    log_retention_days: int = OBSERVABILITY_LOG_RETENTION_DAYS_DEFAULT
    """Retention of this component's log groups; a value CloudWatch Logs accepts."""
    enable_managed_prometheus: bool = False
    """Create an Amazon Managed Service for Prometheus workspace."""
    enable_managed_grafana: bool = False
    """Create an Amazon Managed Grafana workspace (reads CloudWatch and Prometheus)."""
    grafana_auth: pulumi.Input[str] | None = None
    """A service-account token of the Managed Grafana workspace (keep it a Pulumi secret). With
    it, the Prometheus and CloudWatch data sources and the dashboards in `components/dashboards/`
    are provisioned as code through Grafana's API. Omitted: import them by hand
    (docs/grafana.md). Ignored without `enable_managed_grafana`."""
    grafana_authentication_providers: Sequence[str] = ("AWS_SSO",)
    """Managed Grafana sign-in: `AWS_SSO` (IAM Identity Center must be enabled) or `SAML`."""
    kms_deletion_window_days: int | None = None
    """Days before the deleted observability key is gone (7–30). Omitted: AWS's default (30)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child (each also gets a `Name`). Omitted: only the `Name`."""

    def __post_init__(self) -> None:
        # Guards for direct library use; a stack's values are checked by the config validators.
        problem = budget_alert_thresholds_problem(len(self.budget_alert_thresholds_percent))
        if problem is not None:
            raise ValueError(f"budget_alert_thresholds_percent: {problem}")
        for provider in self.grafana_authentication_providers:
            if provider not in GRAFANA_AUTHENTICATION_PROVIDERS:
                raise ValueError(
                    f"grafana_authentication_providers: {provider!r} is not a Managed Grafana "
                    "authentication provider; use AWS_SSO or SAML"
                )
        names = [fs.name for fs in self.lustre_file_systems]
        if len(set(names)) != len(names):
            raise ValueError(
                f"lustre_file_systems: names must be unique, got {', '.join(names)}; name each file "
                "system differently"
            )


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------
class Observability(pulumi.ComponentResource):
    """Alerts topic, alarms, dashboard, budgets, log groups, optional Prometheus and Grafana.

    Python users also get the children: `key`, `topic`, `dashboard`, `alarms` (role →
    MetricAlarm), `budgets` (role → Budget), `log_groups` (role → LogGroup),
    `prometheus_workspace` and `grafana_workspace` (None unless enabled).
    """

    alerts_topic_arn: pulumi.Output[str]
    """SNS topic the alarms and budgets publish to; subscribe more endpoints to it."""
    dashboard_name: pulumi.Output[str]
    """Name of the CloudWatch dashboard."""
    prometheus_endpoint: pulumi.Output[str] | None
    """Managed Prometheus endpoint; None unless `enable_managed_prometheus`."""
    grafana_endpoint: pulumi.Output[str] | None
    """Managed Grafana endpoint; None unless `enable_managed_grafana`."""

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self.args = args
        self._prefix = args.resource_prefix or name
        self._child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke)
        self._partition = partition.partition
        self._dns_suffix = partition.dns_suffix
        self._region: pulumi.Output[str] = (
            pulumi.Output.from_input(args.region)
            if args.region is not None
            else aws.get_region_output(opts=invoke).region
        )
        self._spot_rule_name = f"{self._prefix}-spot-interruptions"
        self._spot_log_group_name = f"/aws/events/{self._spot_rule_name}"
        self._prometheus_log_group_name = f"/aws/vendedlogs/prometheus/{self._prefix}"

        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self.budgets: dict[str, aws.budgets.Budget] = {}
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        self.prometheus_workspace: aws.amp.Workspace | None = None
        self.grafana_workspace: aws.grafana.Workspace | None = None
        self.grafana_role: aws.iam.Role | None = None

        self._key()
        self._topic()
        self._spot_interruptions()
        self._lustre_alarms()
        self._head_node_alarms()
        self._queue_alarms()
        self._budgets()
        if args.enable_managed_prometheus:
            self._prometheus()
        self.grafana_dashboards: dict[str, grafana.oss.Dashboard] = {}
        if args.enable_managed_grafana:
            self._grafana()
            if args.grafana_auth is not None:
                self._grafana_dashboards(args.grafana_auth)
        self._dashboard()

        self.alerts_topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.prometheus_endpoint = (
            self.prometheus_workspace.prometheus_endpoint if self.prometheus_workspace is not None else None
        )
        self.grafana_endpoint = (
            self.grafana_workspace.endpoint if self.grafana_workspace is not None else None
        )
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; a program may export the same values."""
        outputs: dict[str, Any] = {
            "alerts_topic_arn": self.alerts_topic_arn,
            "dashboard_name": self.dashboard_name,
        }
        if self.prometheus_endpoint is not None:
            outputs["prometheus_endpoint"] = self.prometheus_endpoint
        if self.grafana_endpoint is not None:
            outputs["grafana_endpoint"] = self.grafana_endpoint
        return outputs

    # --- helpers -------------------------------------------------------------------------------
    def _tags(self, role: str) -> dict[str, str]:
        return {**self.args.tags, "Name": f"{self._prefix}-{role}"}

    def _alarm(self, role: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}",
            name=f"{self._prefix}-{role}",
            alarm_description=description,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags=self._tags(role),
            opts=self._child,
            **kwargs,
        )
        self.alarms[role] = alarm
        return alarm

    # --- encryption and alerts topic -----------------------------------------------------------
    def _key(self) -> None:
        log_groups = [self._spot_log_group_name]
        if self.args.enable_managed_prometheus:
            log_groups.append(self._prometheus_log_group_name)
        policy = pulumi.Output.all(self._account, self._partition, self._dns_suffix, self._region).apply(
            lambda v: _key_policy(
                account=v[0], partition=v[1], dns_suffix=v[2], region=v[3], log_group_names=log_groups
            )
        )
        self.key = aws.kms.Key(
            f"{self._name}-key",
            description=f"{self._prefix}: alerts topic, observability log groups, Prometheus",
            enable_key_rotation=True,
            deletion_window_in_days=self.args.kms_deletion_window_days,
            policy=policy,
            tags=self._tags("observability"),
            opts=self._child,
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/{self._prefix}-observability",
            target_key_id=self.key.key_id,
            opts=self._child,
        )

    def _topic(self) -> None:
        prefix = self._prefix
        self.topic = aws.sns.Topic(
            f"{self._name}-alerts",
            name=f"{prefix}-alerts",
            display_name=f"{prefix} HPC alerts",
            kms_master_key_id=self.key.arn,
            tags=self._tags("alerts"),
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{self._name}-alerts-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, self._account, self._partition, self._region).apply(
                lambda v: _topic_policy(topic_arn=v[0], account=v[1], partition=v[2], region=v[3])
            ),
            opts=self._child,
        )
        for email in dict.fromkeys(self.args.notification_emails):
            aws.sns.TopicSubscription(
                f"{self._name}-alerts-email-{_slug(email.replace('@', '-at-'))}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=self._child,
            )

    # --- alarms ----------------------------------------------------------------------------------
    def _spot_interruptions(self) -> None:
        prefix = self._prefix
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-spot-events",
            name=self._spot_log_group_name,
            retention_in_days=self.args.log_retention_days,
            kms_key_id=self.key.arn,
            tags=self._tags("spot-events"),
            opts=self._child,
        )
        self.log_groups["spot-events"] = log_group
        rule_name = self._spot_rule_name
        self.spot_rule = aws.cloudwatch.EventRule(
            f"{self._name}-spot-interruptions",
            name=rule_name,
            description="EC2 Spot Instance Interruption Warnings (two minutes' notice), counted and kept",
            event_pattern=json.dumps(SPOT_INTERRUPTION_EVENT),
            tags=self._tags("spot-interruptions"),
            opts=self._child,
        )
        resource_policy = aws.cloudwatch.LogResourcePolicy(
            f"{self._name}-spot-events-delivery",
            policy_name=f"{prefix}-spot-interruption-events",
            policy_document=pulumi.Output.all(log_group.arn, self.spot_rule.arn).apply(
                lambda v: _events_to_logs_policy(log_group_arn=v[0], rule_arn=v[1])
            ),
            opts=self._child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-spot-events-target",
            rule=self.spot_rule.name,
            target_id="spot-interruption-log",
            arn=log_group.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[resource_policy]),
        )
        per_hour = self.args.spot_interruptions_per_hour
        self._alarm(
            "spot-interruptions",
            f"{per_hour} or more EC2 Spot interruption warnings in an hour: Spot capacity is being "
            "reclaimed; consider shifting work to the On-Demand queues or other instance types",
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions={"RuleName": rule_name},
            statistic="Sum",
            period=3600,
            evaluation_periods=1,
            threshold=per_hour,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
        )

    def _lustre_alarms(self) -> None:
        percent = self.args.fsx_free_capacity_percent
        for fs in self.args.lustre_file_systems:
            capacity_bytes = fs.capacity_gib * GIB
            self._alarm(
                f"fsx-{fs.name}-free-capacity",
                f"Lustre {fs.name} ({fs.deployment_type}, {fs.capacity_gib} GiB) has less than "
                f"{percent:g} % free: clean up or grow the file system "
                f"(in {LUSTRE_CAPACITY_INCREMENT_GIB} GiB steps)",
                metric_queries=[
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="free",
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace="AWS/FSx",
                            metric_name="FreeDataStorageCapacity",
                            dimensions={"FileSystemId": fs.file_system_id},
                            stat="Minimum",
                            period=300,
                        ),
                        return_data=False,
                    ),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="free_percent",
                        expression=f"100 * free / {capacity_bytes}",
                        label=f"{fs.name} free capacity (%)",
                        return_data=True,
                    ),
                ],
                evaluation_periods=3,
                datapoints_to_alarm=2,
                threshold=percent,
                comparison_operator="LessThanThreshold",
                treat_missing_data="missing",
            )

    def _head_node_alarms(self) -> None:
        instance_id = self.args.head_node_instance_id
        if instance_id is None:
            return
        self._alarm(
            "head-node-status",
            "The head node failed an EC2 status check (or stopped reporting): Slurm scheduling is "
            "down; check the instance in the EC2 console and its system log",
            namespace="AWS/EC2",
            metric_name="StatusCheckFailed",
            dimensions={"InstanceId": instance_id},
            statistic="Maximum",
            period=300,
            evaluation_periods=2,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="breaching",
        )
        cpu = self.args.head_node_cpu_percent
        self._alarm(
            "head-node-cpu",
            f"Head node CPU above {cpu:g} % for 15 minutes: slurmctld may be slow to schedule; "
            "consider a larger head node instance type",
            namespace="AWS/EC2",
            metric_name="CPUUtilization",
            dimensions={"InstanceId": instance_id},
            statistic="Average",
            period=300,
            evaluation_periods=3,
            threshold=cpu,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="missing",
        )

    def _queue_alarms(self) -> None:
        pending = self.args.queue_pending_jobs
        for queue in self.args.queue_names:
            self._alarm(
                f"queue-{queue}-pending",
                f"More than {pending} jobs pending in Slurm queue {queue} for 15 minutes: the queue "
                "may be at MaxCount, short of capacity or blocked; check `squeue -p` and the reasons",
                namespace=SLURM_NAMESPACE,
                metric_name=SLURM_PENDING_JOBS,
                dimensions={"ClusterName": self.args.cluster_name, "Queue": queue},
                statistic="Maximum",
                period=300,
                evaluation_periods=3,
                threshold=pending,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
            )

    # --- budgets ---------------------------------------------------------------------------------
    def _budgets(self) -> None:
        args = self.args
        prefix = self._prefix
        thresholds = args.budget_alert_thresholds_percent
        if args.monthly_budget_usd is not None:
            self._budget("monthly", f"{prefix}-monthly", args.monthly_budget_usd, thresholds)
        for group, limit in sorted(args.research_group_budgets_usd.items()):
            self._budget(
                f"group-{_slug(group)}",
                f"{prefix}-group-{group}",
                limit,
                thresholds,
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue", values=[f"user:{args.research_group_tag_key}${group}"]
                    )
                ],
            )

    def _budget(
        self,
        role: str,
        budget_name: str,
        limit_usd: float,
        thresholds: Sequence[float],
        cost_filters: Sequence[aws.budgets.BudgetCostFilterArgs] | None = None,
    ) -> None:
        notifications = [
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type="ACTUAL",
                threshold=threshold,
                threshold_type="PERCENTAGE",
                subscriber_sns_topic_arns=[self.topic.arn],
            )
            for threshold in sorted(set(thresholds))
        ]
        # Warn before the money is spent: forecast to exceed the whole budget this month.
        notifications.append(
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type="FORECASTED",
                threshold=100,
                threshold_type="PERCENTAGE",
                subscriber_sns_topic_arns=[self.topic.arn],
            )
        )
        self.budgets[role] = aws.budgets.Budget(
            f"{self._name}-budget-{role}",
            name=budget_name,
            budget_type="COST",
            limit_amount=f"{limit_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=list(cost_filters or []),
            notifications=notifications,
            tags=self._tags(f"budget-{role}"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.topic]),
        )

    # --- Managed Prometheus and Grafana ----------------------------------------------------------
    def _prometheus(self) -> None:
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-prometheus-logs",
            name=self._prometheus_log_group_name,
            retention_in_days=self.args.log_retention_days,
            kms_key_id=self.key.arn,
            tags=self._tags("prometheus"),
            opts=self._child,
        )
        self.log_groups["prometheus"] = log_group
        self.prometheus_workspace = aws.amp.Workspace(
            f"{self._name}-prometheus",
            alias=f"{self._prefix}-prometheus",
            kms_key_arn=self.key.arn,
            logging_configuration=aws.amp.WorkspaceLoggingConfigurationArgs(
                log_group_arn=log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tags=self._tags("prometheus"),
            opts=self._child,
        )

    def _grafana(self) -> None:
        prefix = self._prefix
        assume_role = pulumi.Output.all(self._account, self._partition, self._region).apply(
            lambda v: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "grafana.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": v[0]},
                                "ArnLike": {
                                    "aws:SourceArn": f"arn:{v[1]}:grafana:{v[2]}:{v[0]}:/workspaces/*"
                                },
                            },
                        }
                    ],
                }
            )
        )
        self.grafana_role = aws.iam.Role(
            f"{self._name}-grafana-role",
            name=f"{prefix}-grafana",
            description=f"{prefix}: Managed Grafana reads CloudWatch and Prometheus, notifies SNS",
            assume_role_policy=assume_role,
            tags=self._tags("grafana"),
            opts=self._child,
        )
        prometheus_arn: pulumi.Input[str | None] = (
            self.prometheus_workspace.arn if self.prometheus_workspace is not None else None
        )
        role_policy = aws.iam.RolePolicy(
            f"{self._name}-grafana-policy",
            role=self.grafana_role.id,
            policy=pulumi.Output.all(self.topic.arn, self.key.arn, prometheus_arn, self._region).apply(
                lambda v: _grafana_policy(topic_arn=v[0], key_arn=v[1], prometheus_arn=v[2], region=v[3])
            ),
            opts=self._child,
        )
        self.grafana_workspace = aws.grafana.Workspace(
            f"{self._name}-grafana",
            name=f"{prefix}-grafana",
            description=f"{prefix}: HPC cluster, storage and cost dashboards",
            account_access_type="CURRENT_ACCOUNT",
            authentication_providers=list(self.args.grafana_authentication_providers),
            permission_type="CUSTOMER_MANAGED",
            role_arn=self.grafana_role.arn,
            data_sources=list(GRAFANA_DATA_SOURCES),
            notification_destinations=["SNS"],
            tags=self._tags("grafana"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

    def _grafana_dashboards(self, auth: pulumi.Input[str]) -> None:
        """Data sources and dashboards in the managed workspace, through Grafana's API as the
        token's service account. The Slurm and node dashboards need the Prometheus workspace."""
        # Loaded only when a token is configured: most stacks never provision Grafana as code.
        import pulumiverse_grafana as grafana

        assert self.grafana_workspace is not None
        child = pulumi.ResourceOptions(parent=self)
        provider = grafana.Provider(
            f"{self._name}-grafana-api",
            url=self.grafana_workspace.endpoint.apply(lambda endpoint: f"https://{endpoint}"),
            auth=pulumi.Output.secret(auth),
            opts=child,
        )
        via = pulumi.ResourceOptions(parent=self, provider=provider)
        grafana.oss.DataSource(
            f"{self._name}-grafana-cloudwatch",
            name="CloudWatch",
            type="cloudwatch",
            uid=f"{self._prefix}-cloudwatch",
            json_data_encoded=self._region.apply(cloudwatch_data_source_json),
            opts=via,
        )
        names = list(DASHBOARDS)
        if self.prometheus_workspace is not None:
            grafana.oss.DataSource(
                f"{self._name}-grafana-prometheus",
                name="Amazon Managed Prometheus",
                type="prometheus",
                uid=f"{self._prefix}-prometheus",
                url=self.prometheus_workspace.prometheus_endpoint,
                is_default=True,
                json_data_encoded=self._region.apply(prometheus_data_source_json),
                opts=via,
            )
        else:
            names = [n for n in names if n not in PROMETHEUS_DASHBOARDS]
        folder = grafana.oss.Folder(
            f"{self._name}-grafana-folder", title="HPC platform", uid=f"{self._prefix}-hpc", opts=via
        )
        for dashboard in names:
            self.grafana_dashboards[dashboard] = grafana.oss.Dashboard(
                f"{self._name}-grafana-dashboard-{dashboard}",
                config_json=dashboard_json(dashboard),
                folder=folder.uid,
                overwrite=True,
                opts=via,
            )

    # --- dashboard -------------------------------------------------------------------------------
    def _dashboard(self) -> None:
        args = self.args
        lustre = args.lustre_file_systems
        alarm_arns = [alarm.arn for alarm in self.alarms.values()]
        body = pulumi.Output.all(
            region=self._region,
            cluster_name=args.cluster_name,
            head_node=args.head_node_instance_id,
            efs=args.efs_file_system_id,
            lustre=pulumi.Output.all(*[fs.file_system_id for fs in lustre]),
            alarms=pulumi.Output.all(*alarm_arns),
        ).apply(
            lambda v: json.dumps(
                dashboard_body(
                    region=v["region"],
                    cluster_name=v["cluster_name"],
                    queue_names=args.queue_names,
                    head_node_instance_id=v["head_node"],
                    lustre=[(fs.name, fs_id) for fs, fs_id in zip(lustre, v["lustre"], strict=True)],
                    efs_file_system_id=v["efs"],
                    spot_rule_name=self._spot_rule_name,
                    alarm_arns=list(v["alarms"]),
                )
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=f"{self._prefix}-overview",
            dashboard_body=body,
            opts=self._child,
        )


# ---------------------------------------------------------------------------------------------
# Documents (pure functions: tested directly)
# ---------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def _key_policy(
    *, account: str, partition: str, dns_suffix: str, region: str, log_group_names: Sequence[str]
) -> str:
    log_group_arns = [log_group_arn(partition, region, account, name) for name in log_group_names]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_root_statement(partition, account, sid="AccountAdministers"),
                {
                    "Sid": "AlarmsAndBudgetsPublishToEncryptedTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
                cloudwatch_logs_statement(
                    region=region,
                    dns_suffix=dns_suffix,
                    log_group_arns=log_group_arns,
                    sid="CloudWatchLogsEncryptsTheseLogGroups",
                ),
            ],
        }
    )


def _topic_policy(*, topic_arn: str, account: str, partition: str, region: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountManagesTopic",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": [
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:AddPermission",
                        "sns:RemovePermission",
                        "sns:DeleteTopic",
                        "sns:Subscribe",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Publish",
                    ],
                    "Resource": topic_arn,
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"
                        },
                    },
                },
                {
                    "Sid": "BudgetsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "budgets.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": f"arn:{partition}:budgets::{account}:*"},
                    },
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


def _events_to_logs_policy(*, log_group_arn: str, rule_arn: str) -> str:
    stream_arn = log_group_arn if log_group_arn.endswith(":*") else f"{log_group_arn}:*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SpotInterruptionRuleWritesItsLogGroup",
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": stream_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )


def _grafana_policy(*, topic_arn: str, key_arn: str, prometheus_arn: str | None, region: str) -> str:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadCloudWatch",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:DescribeAlarmsForMetric",
                "cloudwatch:DescribeAlarmHistory",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricData",
                "cloudwatch:GetInsightRuleReport",
                "logs:DescribeLogGroups",
                "logs:GetLogGroupFields",
                "logs:StartQuery",
                "logs:StopQuery",
                "logs:GetQueryResults",
                "logs:GetLogEvents",
                "ec2:DescribeTags",
                "ec2:DescribeInstances",
                "ec2:DescribeRegions",
                "tag:GetResources",
            ],
            "Resource": "*",
        },
        {"Sid": "NotifyAlertsTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
        {
            "Sid": "UseObservabilityKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": key_arn,
            "Condition": {"StringLike": {"kms:ViaService": [f"sns.{region}.*", f"aps.{region}.*"]}},
        },
    ]
    if prometheus_arn:
        statements.append(
            {
                "Sid": "QueryPrometheus",
                "Effect": "Allow",
                "Action": [
                    "aps:QueryMetrics",
                    "aps:GetSeries",
                    "aps:GetLabels",
                    "aps:GetMetricMetadata",
                    "aps:DescribeWorkspace",
                ],
                "Resource": prometheus_arn,
            }
        )
        statements.append(
            {"Sid": "ListPrometheus", "Effect": "Allow", "Action": "aps:ListWorkspaces", "Resource": "*"}
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


__all__ = [
    "TYPE_TOKEN",
    "MonitoredLustre",
    "Observability",
    "ObservabilityArgs",
]
