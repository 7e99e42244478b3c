"""Observability: where the platform tells people something is wrong or getting expensive.

One KMS key (rotation on) encrypts an SNS alerts topic, the log groups this component owns and
the Managed Prometheus workspace. Alarms (Lustre free capacity, head node status and CPU, Slurm
queue depth, Spot interruption rate) and AWS Budgets (the stack's monthly limit, one per research
group) publish to the topic; the topic fans out to the configured e-mail addresses. A CloudWatch
dashboard shows the same signals; Managed Prometheus and Managed Grafana come when config enables
them.

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

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from hpc_platform.domain.config.models import ObservabilityConfig, StackConfig
from hpc_platform.domain.limits import (
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_PERSISTENT_2,
    LUSTRE_SCRATCH_2,
    RESEARCH_GROUP_TAG,
)
from hpc_platform.domain.metrics import (
    SLURM_ALLOCATED_NODES,
    SLURM_DOWN_NODES,
    SLURM_IDLE_NODES,
    SLURM_NAMESPACE,
    SLURM_PENDING_JOBS,
    SPOT_INTERRUPTIONS,
)

TYPE_TOKEN = "hpc:observability:Observability"

BUDGET_MAX_NOTIFICATIONS = 10
"""AWS Budgets: at most 10 notifications per budget (one is the 100 % forecast alert)."""
GRAFANA_DATA_SOURCES = ("CLOUDWATCH", "PROMETHEUS")
SPOT_INTERRUPTION_EVENT = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Spot Instance Interruption Warning"],
}
GIB = 1024**3
# CloudWatch billing metrics exist only in us-east-1.
BILLING_REGION = "us-east-1"


# ---------------------------------------------------------------------------------------------
# What Observability reads from the other components (structural: any object with these works)
# ---------------------------------------------------------------------------------------------
class LustreFsLike(Protocol):
    @property
    def scratch_file_system_id(self) -> pulumi.Output[str] | None: ...
    @property
    def persistent_file_system_id(self) -> pulumi.Output[str] | None: ...


class DataRepositoryLike(Protocol):
    @property
    def efs_file_system_id(self) -> pulumi.Output[str] | None: ...


class ClusterLike(Protocol):
    @property
    def cluster_name(self) -> pulumi.Output[str]: ...
    @property
    def head_node_instance_id(self) -> pulumi.Output[str | None]: ...


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MonitoredLustre:
    """One Lustre file system to chart and alarm on."""

    role: str
    """`scratch` or `persistent`: used in child and alarm names."""
    file_system_id: pulumi.Input[str]
    capacity_gib: int
    """Provisioned capacity; the free-capacity alarm is a share of it."""
    deployment_type: str = LUSTRE_SCRATCH_2


@dataclass(frozen=True)
class ObservabilityArgs:
    resource_prefix: str
    """Prefix of physical names (alarms, topic, dashboard, budgets), e.g. `hpc-prod`."""
    region: str
    settings: ObservabilityConfig
    """E-mails, alarm thresholds, budget, Prometheus/Grafana switches, log retention."""
    cluster_name: pulumi.Input[str]
    """Slurm cluster name: the `ClusterName` dimension of the head node's custom metrics."""
    queue_names: Sequence[str] = ()
    """Slurm queues: one pending-jobs alarm and dashboard line each."""
    lustre: Sequence[MonitoredLustre] = ()
    """Lustre file systems: one free-capacity alarm and throughput chart each. Omitted: none."""
    efs_file_system_id: pulumi.Input[str] | None = None
    """EFS home file system for the dashboard. Omitted: no EFS widget."""
    head_node_instance_id: pulumi.Input[str | None] | None = None
    """Head node instance; omitted (cluster not declared yet): no head node alarms or charts."""
    grafana_authentication_providers: Sequence[str] = ("AWS_SSO",)
    """Managed Grafana sign-in: `AWS_SSO` (IAM Identity Center must be enabled) or `SAML`."""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        budget = self.settings.budget
        if budget is not None and len(budget.alert_thresholds_percent) + 1 > BUDGET_MAX_NOTIFICATIONS:
            raise ValueError(
                f"hpc:observability.budget.alert_thresholds_percent: {len(budget.alert_thresholds_percent)} "
                f"thresholds; AWS Budgets allows {BUDGET_MAX_NOTIFICATIONS} notifications per budget and one "
                f"is the forecast alert, so list at most {BUDGET_MAX_NOTIFICATIONS - 1}"
            )
        for provider in self.grafana_authentication_providers:
            if provider not in ("AWS_SSO", "SAML"):
                raise ValueError(
                    f"grafana_authentication_providers: {provider!r} is not a Managed Grafana "
                    "authentication provider; use AWS_SSO or SAML"
                )
        roles = [fs.role for fs in self.lustre]
        if len(set(roles)) != len(roles):
            raise ValueError(f"lustre: roles must be unique, got {', '.join(roles)}")

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        lustre: LustreFsLike | None = None,
        data: DataRepositoryLike | None = None,
        cluster: ClusterLike | None = None,
        head_node_instance_id: pulumi.Input[str | None] | None = None,
    ) -> ObservabilityArgs:
        """Thresholds and capacities from config, ids from the components that own the resources."""
        storage = config.storage
        monitored: list[MonitoredLustre] = []
        if lustre is not None:
            scratch_id = lustre.scratch_file_system_id
            if storage.scratch.enabled and scratch_id is not None:
                monitored.append(MonitoredLustre("scratch", scratch_id, storage.scratch.capacity_gib))
            persistent_id = lustre.persistent_file_system_id
            if storage.persistent.enabled and persistent_id is not None:
                monitored.append(
                    MonitoredLustre(
                        "persistent", persistent_id, storage.persistent.capacity_gib, LUSTRE_PERSISTENT_2
                    )
                )
        if head_node_instance_id is None and cluster is not None:
            head_node_instance_id = cluster.head_node_instance_id
        return cls(
            resource_prefix=f"hpc-{config.environment}",
            region=config.region,
            settings=config.observability,
            cluster_name=cluster.cluster_name if cluster is not None else config.cluster.name,
            queue_names=[queue.name for queue in config.cluster.queues],
            lustre=monitored,
            efs_file_system_id=data.efs_file_system_id if data is not None else None,
            head_node_instance_id=head_node_instance_id,
            tags=config.tags,
        )


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------
class Observability(pulumi.ComponentResource):
    """Alerts topic, alarms, dashboard, budgets, log groups, optional Prometheus and Grafana.

    Attributes: `key`, `topic` (`alerts_topic_arn`), `dashboard` (`dashboard_name`), `alarms`
    (role → MetricAlarm), `budgets` (role → Budget), `log_groups` (role → LogGroup),
    `prometheus_workspace` and `grafana_workspace` (None unless enabled).
    """

    alerts_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self.args = args
        self._child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke)
        self._partition = partition.partition
        self._dns_suffix = partition.dns_suffix
        prefix = args.resource_prefix
        self._spot_log_group_name = f"/aws/events/{prefix}-spot-interruptions"
        self._prometheus_log_group_name = f"/aws/vendedlogs/prometheus/{prefix}"

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
        if args.settings.enable_managed_prometheus:
            self._prometheus()
        if args.settings.enable_managed_grafana:
            self._grafana()
        self._dashboard()

        self.alerts_topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values."""
        outputs: dict[str, Any] = {
            "alerts_topic_arn": self.alerts_topic_arn,
            "dashboard_name": self.dashboard_name,
        }
        if self.prometheus_workspace is not None:
            outputs["prometheus_endpoint"] = self.prometheus_workspace.prometheus_endpoint
        if self.grafana_workspace is not None:
            outputs["grafana_endpoint"] = self.grafana_workspace.endpoint
        return outputs

    # --- helpers -------------------------------------------------------------------------------
    def _tags(self, role: str) -> dict[str, str]:
        return {**self.args.tags, "Name": f"{self.args.resource_prefix}-{role}"}

    def _alarm(self, role: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{role}",
            name=f"{self.args.resource_prefix}-{role}",
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
        region = self.args.region
        log_groups = [self._spot_log_group_name]
        if self.args.settings.enable_managed_prometheus:
            log_groups.append(self._prometheus_log_group_name)
        policy = pulumi.Output.all(self._account, self._partition, self._dns_suffix).apply(
            lambda v: _key_policy(
                account=v[0], partition=v[1], dns_suffix=v[2], region=region, log_group_names=log_groups
            )
        )
        self.key = aws.kms.Key(
            f"{self._name}-key",
            description=f"{self.args.resource_prefix}: alerts topic, observability log groups, Prometheus",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
            tags=self._tags("observability"),
            opts=self._child,
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/{self.args.resource_prefix}-observability",
            target_key_id=self.key.key_id,
            opts=self._child,
        )

    def _topic(self) -> None:
        prefix = self.args.resource_prefix
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
            policy=pulumi.Output.all(self.topic.arn, self._account, self._partition).apply(
                lambda v: _topic_policy(topic_arn=v[0], account=v[1], partition=v[2], region=self.args.region)
            ),
            opts=self._child,
        )
        for email in dict.fromkeys(self.args.settings.notification_emails):
            aws.sns.TopicSubscription(
                f"{self._name}-alerts-email-{_slug(email.replace('@', '-at-'))}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=self._child,
            )

    # --- alarms ----------------------------------------------------------------------------------
    def _spot_interruptions(self) -> None:
        prefix = self.args.resource_prefix
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-spot-events",
            name=self._spot_log_group_name,
            retention_in_days=self.args.settings.log_retention_days,
            kms_key_id=self.key.arn,
            tags=self._tags("spot-events"),
            opts=self._child,
        )
        self.log_groups["spot-events"] = log_group
        rule_name = f"{prefix}-spot-interruptions"
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
        per_hour = self.args.settings.alarm_thresholds.spot_interruptions_per_hour
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
        percent = self.args.settings.alarm_thresholds.fsx_free_capacity_percent
        for fs in self.args.lustre:
            capacity_bytes = fs.capacity_gib * GIB
            self._alarm(
                f"fsx-{fs.role}-free-capacity",
                f"Lustre {fs.role} ({fs.deployment_type}, {fs.capacity_gib} GiB) has less than "
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
                        label=f"{fs.role} free capacity (%)",
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
        cpu = self.args.settings.alarm_thresholds.head_node_cpu_percent
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
        pending = self.args.settings.alarm_thresholds.queue_pending_jobs
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
        budget = self.args.settings.budget
        if budget is None:
            return
        prefix = self.args.resource_prefix
        self._budget(
            "monthly", f"{prefix}-monthly", budget.monthly_limit_usd, budget.alert_thresholds_percent
        )
        for group, limit in sorted(budget.per_research_group.items()):
            self._budget(
                f"group-{_slug(group)}",
                f"{prefix}-group-{group}",
                limit,
                budget.alert_thresholds_percent,
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(
                        name="TagKeyValue", values=[f"user:{RESEARCH_GROUP_TAG}${group}"]
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
            retention_in_days=self.args.settings.log_retention_days,
            kms_key_id=self.key.arn,
            tags=self._tags("prometheus"),
            opts=self._child,
        )
        self.log_groups["prometheus"] = log_group
        self.prometheus_workspace = aws.amp.Workspace(
            f"{self._name}-prometheus",
            alias=f"{self.args.resource_prefix}-prometheus",
            kms_key_arn=self.key.arn,
            logging_configuration=aws.amp.WorkspaceLoggingConfigurationArgs(
                log_group_arn=log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tags=self._tags("prometheus"),
            opts=self._child,
        )

    def _grafana(self) -> None:
        prefix = self.args.resource_prefix
        region = self.args.region
        assume_role = pulumi.Output.all(self._account, self._partition).apply(
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
                                    "aws:SourceArn": f"arn:{v[1]}:grafana:{region}:{v[0]}:/workspaces/*"
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
            policy=pulumi.Output.all(self.topic.arn, self.key.arn, prometheus_arn).apply(
                lambda v: _grafana_policy(topic_arn=v[0], key_arn=v[1], prometheus_arn=v[2], region=region)
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

    # --- dashboard -------------------------------------------------------------------------------
    def _dashboard(self) -> None:
        args = self.args
        lustre_ids = [fs.file_system_id for fs in args.lustre]
        alarm_arns = [alarm.arn for alarm in self.alarms.values()]
        body = pulumi.Output.all(
            cluster_name=args.cluster_name,
            head_node=args.head_node_instance_id,
            efs=args.efs_file_system_id,
            lustre=pulumi.Output.all(*lustre_ids),
            alarms=pulumi.Output.all(*alarm_arns),
        ).apply(
            lambda v: json.dumps(
                dashboard_body(
                    region=args.region,
                    cluster_name=v["cluster_name"],
                    queue_names=args.queue_names,
                    head_node_instance_id=v["head_node"],
                    lustre=[(fs.role, fs_id) for fs, fs_id in zip(args.lustre, v["lustre"], strict=True)],
                    efs_file_system_id=v["efs"],
                    spot_rule_name=f"{args.resource_prefix}-spot-interruptions",
                    alarm_arns=list(v["alarms"]),
                )
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=f"{args.resource_prefix}-overview",
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


def _metric_widget(
    title: str, metrics: list[list[Any]], region: str, *, x: int, y: int, width: int = 12, **props: Any
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {"title": title, "region": region, "view": "timeSeries", "metrics": metrics, **props},
    }


def dashboard_body(
    *,
    region: str,
    cluster_name: str,
    queue_names: Sequence[str],
    head_node_instance_id: str | None,
    lustre: Sequence[tuple[str, str]],
    efs_file_system_id: str | None,
    spot_rule_name: str,
    alarm_arns: Sequence[str],
) -> dict[str, Any]:
    """The CloudWatch dashboard: head node, Slurm queues, Lustre, EFS, Spot, estimated charges."""
    widgets: list[dict[str, Any]] = []
    y = 0

    def add(widget: dict[str, Any]) -> None:
        widgets.append(widget)

    add(
        {
            "type": "text",
            "x": 0,
            "y": y,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"# {cluster_name}\nSlurm metrics from namespace `{SLURM_NAMESPACE}` "
                "(published by the head node); Lustre, EFS, Spot and cost from AWS."
            },
        }
    )
    y += 2
    if alarm_arns:
        add(
            {
                "type": "alarm",
                "x": 0,
                "y": y,
                "width": 24,
                "height": 4,
                "properties": {"title": "Alarms", "alarms": sorted(alarm_arns)},
            }
        )
        y += 4
    if head_node_instance_id:
        add(
            _metric_widget(
                "Head node CPU (%)",
                [["AWS/EC2", "CPUUtilization", "InstanceId", head_node_instance_id]],
                region,
                x=0,
                y=y,
                stat="Average",
                period=300,
                yAxis={"left": {"min": 0, "max": 100}},
            )
        )
        add(
            _metric_widget(
                "Head node memory used (%)",
                [["CWAgent", "mem_used_percent", "InstanceId", head_node_instance_id]],
                region,
                x=12,
                y=y,
                stat="Average",
                period=300,
                yAxis={"left": {"min": 0, "max": 100}},
            )
        )
        y += 6
    pending = [
        [SLURM_NAMESPACE, SLURM_PENDING_JOBS, "ClusterName", cluster_name, "Queue", q, {"label": q}]
        for q in queue_names
    ]
    nodes: list[list[Any]] = []
    for q in queue_names:
        for metric in (SLURM_ALLOCATED_NODES, SLURM_IDLE_NODES):
            nodes.append(
                [SLURM_NAMESPACE, metric, "ClusterName", cluster_name, "Queue", q, {"label": f"{q} {metric}"}]
            )
    nodes.append(
        [SLURM_NAMESPACE, SLURM_DOWN_NODES, "ClusterName", cluster_name, {"label": "down (all queues)"}]
    )
    add(_metric_widget("Slurm pending jobs per queue", pending, region, x=0, y=y, stat="Maximum", period=300))
    add(
        _metric_widget(
            "Slurm nodes per queue", nodes, region, x=12, y=y, stat="Maximum", period=300, stacked=True
        )
    )
    y += 6
    if lustre:
        throughput: list[list[Any]] = []
        free: list[list[Any]] = []
        for index, (role, fs_id) in enumerate(lustre):
            for direction, metric in (("read", "DataReadBytes"), ("write", "DataWriteBytes")):
                metric_id = f"{direction[0]}{index}"
                throughput.append(
                    [
                        {
                            "expression": f"{metric_id} / PERIOD({metric_id}) / 1000000",
                            "label": f"{role} {direction} MB/s",
                        }
                    ]
                )
                throughput.append(
                    [
                        "AWS/FSx",
                        metric,
                        "FileSystemId",
                        fs_id,
                        {"id": metric_id, "stat": "Sum", "visible": False},
                    ]
                )
            free.append(
                ["AWS/FSx", "FreeDataStorageCapacity", "FileSystemId", fs_id, {"label": f"{role} free bytes"}]
            )
        add(_metric_widget("Lustre throughput (MB/s)", throughput, region, x=0, y=y, period=60))
        add(_metric_widget("Lustre free capacity", free, region, x=12, y=y, stat="Minimum", period=300))
        y += 6
    if efs_file_system_id:
        add(
            _metric_widget(
                "EFS home: I/O and connections",
                [
                    ["AWS/EFS", "TotalIOBytes", "FileSystemId", efs_file_system_id, {"stat": "Sum"}],
                    [
                        "AWS/EFS",
                        "ClientConnections",
                        "FileSystemId",
                        efs_file_system_id,
                        {"stat": "Sum", "yAxis": "right"},
                    ],
                ],
                region,
                x=0,
                y=y,
                period=300,
            )
        )
        add(
            _metric_widget(
                "EFS home: stored bytes",
                [["AWS/EFS", "StorageBytes", "FileSystemId", efs_file_system_id, "StorageClass", "Total"]],
                region,
                x=12,
                y=y,
                stat="Average",
                period=3600,
            )
        )
        y += 6
    add(
        _metric_widget(
            "Spot interruptions",
            [
                [
                    "AWS/Events",
                    "MatchedEvents",
                    "RuleName",
                    spot_rule_name,
                    {"label": "interruption warnings (EventBridge)"},
                ],
                [
                    SLURM_NAMESPACE,
                    SPOT_INTERRUPTIONS,
                    "ClusterName",
                    cluster_name,
                    {"label": "reported by Slurm"},
                ],
            ],
            region,
            x=0,
            y=y,
            stat="Sum",
            period=3600,
        )
    )
    add(
        _metric_widget(
            "Estimated charges this month (USD, account)",
            [["AWS/Billing", "EstimatedCharges", "Currency", "USD"]],
            BILLING_REGION,
            x=12,
            y=y,
            stat="Maximum",
            period=21600,
        )
    )
    return {"widgets": widgets}


__all__ = [
    "TYPE_TOKEN",
    "ClusterLike",
    "DataRepositoryLike",
    "LustreFsLike",
    "MonitoredLustre",
    "Observability",
    "ObservabilityArgs",
    "dashboard_body",
]
