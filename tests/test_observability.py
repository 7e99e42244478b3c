"""Observability: properties of every stack's offline plan; of the component wired from a stack's
config with known ids (so FSx and head node alarms are tested whatever the storage and cluster
components do); and of the component used alone, as a library, from its args."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components.observability import TYPE_TOKEN, MonitoredLustre, Observability, ObservabilityArgs
from components.observability_dashboard import dashboard_body
from hpc_platform.app import wiring
from hpc_platform.app.offline import plan_stack_file, run_offline
from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.config.loader import model_input, parse_config
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import (
    BUDGET_MAX_NOTIFICATIONS,
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_PERSISTENT_2,
    REQUIRED_TAG_KEYS,
)
from hpc_platform.domain.metrics import SLURM_NAMESPACE, SLURM_PENDING_JOBS
from tests.support.component_queries import component_queries
from tests.support.stacks import STACKS, planned

TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
KEY = "aws:kms/key:Key"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUDGET = "aws:budgets/budget:Budget"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
AMP = "aws:amp/workspace:Workspace"
GRAFANA = "aws:grafana/workspace:Workspace"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
GIB = 1024**3

WriteStack = Callable[[dict[str, Any], str], Path]
LoadStack = Callable[[str], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------------
component, subtree, of_type, named = component_queries(TYPE_TOKEN)


def one(plan: Plan, token: str) -> PlannedResource:
    (resource,) = of_type(plan, token)
    return resource


def alarms(plan: Plan) -> dict[str, dict[str, Any]]:
    """Alarm name (physical) → inputs."""
    return {r.inputs["name"]: r.inputs for r in of_type(plan, ALARM)}


def topic_arn(plan: Plan) -> str:
    arn = one(plan, TOPIC).outputs["arn"]
    assert isinstance(arn, str) and arn.startswith("arn:aws:sns:")
    return arn


def key_arn(plan: Plan) -> str:
    arn = one(plan, KEY).outputs["arn"]
    assert isinstance(arn, str) and arn.startswith("arn:aws:kms:")
    return arn


def config_of(stack: str) -> StackConfig:
    return planned(stack).loaded.config


SCRATCH_ID = "fs-0123456789abcdef0"
PERSISTENT_ID = "fs-0fedcba9876543210"
EFS_ID = "fs-0aaaabbbbccccdddd"
HEAD_NODE_ID = "i-0123456789abcdef0"


def wired_args(config: StackConfig, *, scratch: bool = True, persistent: bool = True) -> ObservabilityArgs:
    """The wiring's args for `config`, given known ids instead of the storage and cluster components."""
    return wiring.observability_args(
        config,
        scratch_file_system_id=pulumi.Output.from_input(SCRATCH_ID) if scratch else None,
        persistent_file_system_id=pulumi.Output.from_input(PERSISTENT_ID) if persistent else None,
        efs_file_system_id=pulumi.Output.from_input(EFS_ID),
        cluster_name=pulumi.Output.from_input(config.cluster.name),
        head_node_instance_id=pulumi.Output.from_input(HEAD_NODE_ID),
    )


def plan_with_components(config: StackConfig, *, scratch: bool = True, persistent: bool = True) -> Plan:
    """Plan only the Observability component, wired from `config` with known ids."""

    def program() -> None:
        Observability("obs", wired_args(config, scratch=scratch, persistent=persistent))

    return run_offline(program, stack="unit", config={}, region=config.region)


def plan_alone(args: ObservabilityArgs, name: str = "watch", region: str = "eu-west-1") -> Plan:
    """Plan Observability built directly from its args: no stack file, no wiring, no tag transform."""

    def program() -> None:
        Observability(name, args)

    return run_offline(program, stack="lib", config={}, region=region)


_COMPONENT_PLANS: dict[str, Plan] = {}


def wired(stack: str) -> Plan:
    if stack not in _COMPONENT_PLANS:
        _COMPONENT_PLANS[stack] = plan_with_components(config_of(stack))
    return _COMPONENT_PLANS[stack]


# --- alerts topic and key ------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_topic_is_encrypted_with_the_rotating_customer_key(stack: str) -> None:
    plan = planned(stack).plan
    key = one(plan, KEY)
    assert key.inputs["enableKeyRotation"] is True
    assert one(plan, TOPIC).inputs["kmsMasterKeyId"] == key_arn(plan)


@pytest.mark.parametrize("stack", STACKS)
def test_one_email_subscription_per_configured_address(stack: str) -> None:
    plan = planned(stack).plan
    subscriptions = of_type(plan, SUBSCRIPTION)
    emails = config_of(stack).observability.notification_emails
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(emails)
    assert len(subscriptions) == len(emails) > 0
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}
    assert {s.inputs["topic"] for s in subscriptions} == {topic_arn(plan)}


@pytest.mark.parametrize("stack", STACKS)
def test_topic_policy_lets_cloudwatch_and_budgets_publish(stack: str) -> None:
    plan = planned(stack).plan
    policy = one(plan, TOPIC_POLICY)
    assert policy.inputs["arn"] == topic_arn(plan)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    publishers = {
        s["Principal"]["Service"]
        for s in statements
        if s["Effect"] == "Allow" and s["Action"] == "sns:Publish" and "Service" in s["Principal"]
    }
    assert publishers == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    for statement in statements:
        if statement["Effect"] == "Allow" and "Service" in statement["Principal"]:
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


@pytest.mark.parametrize("stack", STACKS)
def test_key_policy_lets_publishers_use_the_key(stack: str) -> None:
    statements = json.loads(one(planned(stack).plan, KEY).inputs["policy"])["Statement"]
    services: set[str] = set()
    for statement in statements:
        principal = statement["Principal"].get("Service", [])
        services.update([principal] if isinstance(principal, str) else principal)
    assert {"cloudwatch.amazonaws.com", "budgets.amazonaws.com", "logs.us-east-2.amazonaws.com"} <= services
    logs = next(s for s in statements if s["Sid"] == "CloudWatchLogsEncryptsTheseLogGroups")
    allowed = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    names = {r.inputs["name"] for r in of_type(planned(stack).plan, LOG_GROUP)}
    assert {arn.split("log-group:", 1)[1] for arn in allowed} == names


# --- alarms --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_alarm_notifies_the_topic(stack: str) -> None:
    plan = planned(stack).plan
    found = alarms(plan)
    assert found
    for name, alarm in found.items():
        assert alarm["alarmActions"] == [topic_arn(plan)], name
        assert alarm["okActions"] == [topic_arn(plan)], name


@pytest.mark.parametrize("stack", STACKS)
def test_fsx_free_capacity_alarm_per_enabled_lustre_file_system(stack: str) -> None:
    config = config_of(stack)
    plan = planned(stack).plan
    expected = {
        f"hpc-{stack}-fsx-{role}-free-capacity"
        for role, fs in (("scratch", config.storage.scratch), ("persistent", config.storage.persistent))
        if fs.enabled
    }
    lustre = {r.id for r in plan.of_type("aws:fsx/lustreFileSystem:LustreFileSystem")}
    found = {name: a for name, a in alarms(plan).items() if "-fsx-" in name}
    assert set(found) == expected
    for alarm in found.values():
        (metric,) = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
        assert metric["dimensions"]["FileSystemId"] in lustre
        assert alarm["threshold"] == config.observability.alarm_thresholds.fsx_free_capacity_percent


@pytest.mark.parametrize("stack", STACKS)
def test_fsx_alarm_is_free_capacity_as_a_share_of_configured_capacity(stack: str) -> None:
    config = config_of(stack)
    found = alarms(wired(stack))
    for role, fs_id, capacity in (
        ("scratch", SCRATCH_ID, config.storage.scratch.capacity_gib),
        ("persistent", PERSISTENT_ID, config.storage.persistent.capacity_gib),
    ):
        alarm = found[f"hpc-{stack}-fsx-{role}-free-capacity"]
        queries = {q["id"]: q for q in alarm["metricQueries"]}
        metric = queries["free"]["metric"]
        assert (metric["namespace"], metric["metricName"]) == ("AWS/FSx", "FreeDataStorageCapacity")
        assert metric["dimensions"] == {"FileSystemId": fs_id}
        assert queries["free"]["returnData"] is False
        assert queries["free_percent"]["expression"] == f"100 * free / {capacity * GIB}"
        assert queries["free_percent"]["returnData"] is True
        assert alarm["comparisonOperator"] == "LessThanThreshold"
        assert alarm["threshold"] == config.observability.alarm_thresholds.fsx_free_capacity_percent


def test_fsx_alarm_only_for_file_systems_that_exist() -> None:
    plan = plan_with_components(config_of("dev"), scratch=False)
    assert sorted(n for n in alarms(plan) if "-fsx-" in n) == ["hpc-dev-fsx-persistent-free-capacity"]


def test_fsx_alarm_math_by_hand() -> None:
    # 1200 GiB = 1,288,490,188,800 bytes; 10 % free = 128,849,018,880 bytes.
    plan = wired("dev")
    alarm = alarms(plan)["hpc-dev-fsx-scratch-free-capacity"]
    expression = next(q["expression"] for q in alarm["metricQueries"] if "expression" in q)
    assert expression == "100 * free / 1288490188800"
    free = 128_849_018_880
    assert eval(expression, {"free": free}) == pytest.approx(10.0)


@pytest.mark.parametrize("stack", STACKS)
def test_queue_pending_jobs_alarm_per_queue(stack: str) -> None:
    config = config_of(stack)
    found = alarms(planned(stack).plan)
    for queue in config.cluster.queues:
        alarm = found[f"hpc-{stack}-queue-{queue.name}-pending"]
        assert (alarm["namespace"], alarm["metricName"]) == (SLURM_NAMESPACE, SLURM_PENDING_JOBS)
        assert alarm["dimensions"] == {"ClusterName": config.cluster.name, "Queue": queue.name}
        assert alarm["threshold"] == config.observability.alarm_thresholds.queue_pending_jobs
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert len([n for n in found if "-queue-" in n]) == len(config.cluster.queues)


@pytest.mark.parametrize("stack", STACKS)
def test_head_node_status_and_cpu_alarms_watch_the_head_node(stack: str) -> None:
    config = config_of(stack)
    found = alarms(wired(stack))
    status = found[f"hpc-{stack}-head-node-status"]
    assert (status["namespace"], status["metricName"]) == ("AWS/EC2", "StatusCheckFailed")
    assert status["dimensions"] == {"InstanceId": HEAD_NODE_ID}
    assert status["threshold"] == 1
    assert status["treatMissingData"] == "breaching"
    cpu = found[f"hpc-{stack}-head-node-cpu"]
    assert cpu["dimensions"] == {"InstanceId": HEAD_NODE_ID}
    assert cpu["threshold"] == config.observability.alarm_thresholds.head_node_cpu_percent


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_head_node_alarm_once_the_cluster_is_declared(stack: str) -> None:
    plan = planned(stack).plan
    has_cluster = any(
        r.type.startswith("hpc:cluster:") or r.type.startswith("hpc:pcluster:") for r in plan.resources
    )
    names = set(alarms(plan))
    if has_cluster:
        assert f"hpc-{stack}-head-node-status" in names
    else:
        assert not any("head-node" in n for n in names)


@pytest.mark.parametrize("stack", STACKS)
def test_spot_interruptions_counted_from_eventbridge_with_the_configured_rate(stack: str) -> None:
    config = config_of(stack)
    plan = planned(stack).plan
    rule = one(plan, RULE)
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    }
    target = one(plan, TARGET)
    spot_log = next(r for r in of_type(plan, LOG_GROUP) if "spot" in r.inputs["name"])
    assert target.inputs["arn"] == spot_log.outputs["arn"]
    alarm = alarms(plan)[f"hpc-{stack}-spot-interruptions"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Events", "MatchedEvents")
    assert alarm["dimensions"] == {"RuleName": rule.inputs["name"]}
    assert alarm["period"] == 3600 and alarm["statistic"] == "Sum"
    assert alarm["threshold"] == config.observability.alarm_thresholds.spot_interruptions_per_hour


# --- budgets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_monthly_budget_notifies_at_the_configured_thresholds(stack: str) -> None:
    config = config_of(stack)
    budget_config = config.observability.budget
    assert budget_config is not None
    plan = planned(stack).plan
    budgets = {b.inputs["name"]: b.inputs for b in of_type(plan, BUDGET)}
    monthly = budgets[f"hpc-{stack}-monthly"]
    assert float(monthly["limitAmount"]) == budget_config.monthly_limit_usd
    assert (monthly["limitUnit"], monthly["timeUnit"], monthly["budgetType"]) == ("USD", "MONTHLY", "COST")
    actual = [n for n in monthly["notifications"] if n["notificationType"] == "ACTUAL"]
    assert [n["threshold"] for n in actual] == sorted(budget_config.alert_thresholds_percent)
    assert any(
        n["notificationType"] == "FORECASTED" and n["threshold"] == 100 for n in monthly["notifications"]
    )
    for notification in monthly["notifications"]:
        assert notification["subscriberSnsTopicArns"] == [topic_arn(plan)]
        assert notification["thresholdType"] == "PERCENTAGE"
    assert len(budgets) == 1 + len(budget_config.per_research_group)


def test_prod_has_a_budget_per_research_group_filtered_on_the_tag() -> None:
    plan = planned("prod").plan
    budgets = {b.inputs["name"]: b.inputs for b in of_type(plan, BUDGET)}
    assert budgets["hpc-prod-group-genomics"]["costFilters"] == [
        {"name": "TagKeyValue", "values": ["user:ResearchGroup$genomics"]}
    ]
    assert float(budgets["hpc-prod-group-genomics"]["limitAmount"]) == 100000
    assert budgets["hpc-prod-group-climate-modelling"]["costFilters"] == [
        {"name": "TagKeyValue", "values": ["user:ResearchGroup$climate-modelling"]}
    ]
    assert float(budgets["hpc-prod-group-climate-modelling"]["limitAmount"]) == 150000
    assert not budgets["hpc-prod-monthly"].get("costFilters")


def test_no_budget_without_budget_config(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("dev")
    del config["hpc:observability"]["budget"]
    plan = plan_stack_file(write_stack(config, "Pulumi.nobudget.yaml")).plan
    assert of_type(plan, BUDGET) == []
    assert of_type(plan, TOPIC) != []


# --- Prometheus and Grafana ----------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_managed_prometheus_and_grafana_only_when_enabled(stack: str) -> None:
    settings = config_of(stack).observability
    plan = planned(stack).plan
    assert len(of_type(plan, AMP)) == int(settings.enable_managed_prometheus)
    assert len(of_type(plan, GRAFANA)) == int(settings.enable_managed_grafana)
    expected = {"dev": False, "staging": True, "prod": True}[stack]
    assert settings.enable_managed_prometheus is expected and settings.enable_managed_grafana is expected


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_prometheus_is_kms_encrypted_and_grafana_reads_cloudwatch_and_prometheus(stack: str) -> None:
    plan = planned(stack).plan
    amp = one(plan, AMP)
    assert amp.inputs["kmsKeyArn"] == key_arn(plan)
    grafana = one(plan, GRAFANA)
    assert sorted(grafana.inputs["dataSources"]) == ["CLOUDWATCH", "PROMETHEUS"]
    assert grafana.inputs["authenticationProviders"] == ["AWS_SSO"]
    assert grafana.inputs["permissionType"] == "CUSTOMER_MANAGED"
    role = one(plan, "aws:iam/role:Role")
    assert grafana.inputs["roleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "grafana.amazonaws.com"}
    policy = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    prometheus = next(s for s in policy["Statement"] if s["Sid"] == "QueryPrometheus")
    assert prometheus["Resource"] == amp.outputs["arn"]


# --- log groups, tags, dashboard, exports --------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_log_groups_have_configured_retention_and_the_key(stack: str) -> None:
    settings = config_of(stack).observability
    plan = planned(stack).plan
    groups = of_type(plan, LOG_GROUP)
    assert len(groups) == 1 + int(settings.enable_managed_prometheus)
    for group in groups:
        assert group.inputs["retentionInDays"] == settings.log_retention_days
        assert group.inputs["kmsKeyId"] == key_arn(plan)


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_observability_resource_carries_compliance_tags(stack: str) -> None:
    plan = planned(stack).plan
    taggable = [r for r in subtree(plan) if r.custom and is_taggable(r.type)]
    assert {ALARM, BUDGET, TOPIC, KEY, LOG_GROUP, RULE} <= {r.type for r in taggable}
    missing = {
        r.name: sorted(set(REQUIRED_TAG_KEYS) - set(r.inputs.get("tags") or {}))
        for r in taggable
        if not set(REQUIRED_TAG_KEYS) <= set(r.inputs.get("tags") or {})
    }
    assert missing == {}
    tags = config_of(stack).tags
    for resource in taggable:
        assert {k: resource.inputs["tags"][k] for k in REQUIRED_TAG_KEYS} == {
            k: tags[k] for k in REQUIRED_TAG_KEYS
        }


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_charts_queues_lustre_efs_spot_and_cost(stack: str) -> None:
    config = config_of(stack)
    body = json.loads(one(wired(stack), DASHBOARD).inputs["dashboardBody"])
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    flat = [tuple(x for x in m if isinstance(x, str)) for m in metrics]
    for queue in config.cluster.queues:
        assert (
            SLURM_NAMESPACE,
            SLURM_PENDING_JOBS,
            "ClusterName",
            config.cluster.name,
            "Queue",
            queue.name,
        ) in flat
    for fs_id in (SCRATCH_ID, PERSISTENT_ID):
        assert ("AWS/FSx", "DataReadBytes", "FileSystemId", fs_id) in flat
        assert ("AWS/FSx", "DataWriteBytes", "FileSystemId", fs_id) in flat
        assert ("AWS/FSx", "FreeDataStorageCapacity", "FileSystemId", fs_id) in flat
    assert ("AWS/EFS", "TotalIOBytes", "FileSystemId", EFS_ID) in flat
    assert ("AWS/EC2", "CPUUtilization", "InstanceId", HEAD_NODE_ID) in flat
    assert ("CWAgent", "mem_used_percent", "InstanceId", HEAD_NODE_ID) in flat
    billing = next(
        w for w in body["widgets"] if w["type"] == "metric" and "AWS/Billing" in w["properties"]["metrics"][0]
    )
    assert billing["properties"]["region"] == "us-east-1"
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(of_type(wired(stack), ALARM))


def test_dashboard_without_optional_sources_has_no_empty_widgets() -> None:
    body = dashboard_body(
        region="us-east-2",
        cluster_name="c",
        queue_names=["q"],
        head_node_instance_id=None,
        lustre=[],
        efs_file_system_id=None,
        spot_rule_name="r",
        alarm_arns=[],
    )
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert not any(t and ("Lustre" in t or "EFS" in t or "Head node" in t) for t in titles)
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["metrics"]


@pytest.mark.parametrize("stack", STACKS)
def test_exports_topic_arn_and_dashboard_name(stack: str) -> None:
    plan = planned(stack).plan
    assert plan.outputs["alerts_topic_arn"] == topic_arn(plan)
    assert (
        plan.outputs["dashboard_name"]
        == one(plan, DASHBOARD).inputs["dashboardName"]
        == f"hpc-{stack}-overview"
    )


# --- the wiring ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_key_deletion_window_comes_from_the_environment_table(stack: str) -> None:
    key = one(planned(stack).plan, KEY)
    assert (
        key.inputs["deletionWindowInDays"] == profile(config_of(stack).environment).kms_deletion_window_days
    )


@pytest.mark.parametrize("stack", STACKS)
def test_wiring_does_not_resend_the_compliance_tags(stack: str) -> None:
    """The stack transform applies them (and the tag test above sees them): args carry none."""
    assert wired_args(config_of(stack)).tags == {}


def test_fsx_alarm_follows_config_when_a_file_system_is_disabled(stack_config: LoadStack) -> None:
    raw = stack_config("dev")
    raw["hpc:storage"]["scratch"] = {"enabled": False}
    config = parse_config(model_input(raw), "Pulumi.test.yaml").config
    plan = plan_with_components(config)  # the wiring is still handed a scratch id
    assert sorted(n for n in alarms(plan) if "-fsx-" in n) == ["hpc-dev-fsx-persistent-free-capacity"]


def test_fsx_alarm_text_names_the_lustre_capacity_step() -> None:
    description = alarms(wired("dev"))["hpc-dev-fsx-scratch-free-capacity"]["alarmDescription"]
    assert f"(in {LUSTRE_CAPACITY_INCREMENT_GIB} GiB steps)" in description


# --- the component alone, as a library -----------------------------------------------------------
def test_analyzer_builds_a_schema_for_the_component() -> None:
    result = Analyzer("hpc").analyze([Observability])
    definition = result["component_definitions"]["Observability"]
    assert not definition.inputs["clusterName"].optional
    assert definition.inputs["lustreFileSystems"].items.ref == "#/types/hpc:index:MonitoredLustre"
    assert {"alertsTopicArn", "dashboardName", "prometheusEndpoint", "grafanaEndpoint"} <= set(
        definition.outputs
    )


LIBRARY_ARGS = ObservabilityArgs(
    cluster_name="demo",
    queue_names=["batch"],
    lustre_file_systems=[
        MonitoredLustre(
            name="work", file_system_id=PERSISTENT_ID, capacity_gib=4800, deployment_type=LUSTRE_PERSISTENT_2
        )
    ],
    notification_emails=["ops@example.org"],
    monthly_budget_usd=2500,
    research_group_budgets_usd={"physics": 1000},
    research_group_tag_key="Lab",
    tags={"Team": "research-computing"},
)


def test_library_use_builds_alarms_budgets_and_dashboard_from_args_alone() -> None:
    plan = plan_alone(LIBRARY_ARGS)
    found = alarms(plan)
    # Omitted prefix: the component's name; omitted region: the provider's.
    assert set(found) == {
        "watch-spot-interruptions",
        "watch-fsx-work-free-capacity",
        "watch-queue-batch-pending",
    }
    work = found["watch-fsx-work-free-capacity"]
    assert "Lustre work (PERSISTENT_2, 4800 GiB)" in work["alarmDescription"]
    assert next(q for q in work["metricQueries"] if q["id"] == "free_percent")["expression"] == (
        f"100 * free / {4800 * GIB}"
    )
    budgets = {b.inputs["name"]: b.inputs for b in of_type(plan, BUDGET)}
    assert float(budgets["watch-monthly"]["limitAmount"]) == 2500
    assert budgets["watch-group-physics"]["costFilters"] == [
        {"name": "TagKeyValue", "values": ["user:Lab$physics"]}
    ]
    body = json.loads(one(plan, DASHBOARD).inputs["dashboardBody"])
    regions = {w["properties"]["region"] for w in body["widgets"] if w["type"] == "metric"}
    assert regions == {"eu-west-1", "us-east-1"}  # the provider's region, and billing's
    assert "deletionWindowInDays" not in one(plan, KEY).inputs  # omitted: AWS's default


def test_library_use_tags_every_taggable_child_with_the_given_tags() -> None:
    plan = plan_alone(LIBRARY_ARGS)
    taggable = [r for r in subtree(plan) if r.custom and is_taggable(r.type)]
    assert {ALARM, BUDGET, TOPIC, KEY, LOG_GROUP, RULE} <= {r.type for r in taggable}
    for resource in taggable:
        tags = resource.inputs["tags"]
        assert tags["Team"] == "research-computing", resource.name
        assert tags["Name"].startswith("watch-"), resource.name
        assert set(tags) == {"Team", "Name"}, resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_is_the_pure_body_of_the_planned_values(stack: str) -> None:
    config = config_of(stack)
    plan = wired(stack)
    body = json.loads(one(plan, DASHBOARD).inputs["dashboardBody"])
    assert body == dashboard_body(
        region=config.region,
        cluster_name=config.cluster.name,
        queue_names=[q.name for q in config.cluster.queues],
        head_node_instance_id=HEAD_NODE_ID,
        lustre=[
            (role, fs_id)
            for role, fs_id, fs in (
                ("scratch", SCRATCH_ID, config.storage.scratch),
                ("persistent", PERSISTENT_ID, config.storage.persistent),
            )
            if fs.enabled
        ],
        efs_file_system_id=EFS_ID,
        spot_rule_name=one(plan, RULE).inputs["name"],
        alarm_arns=[r.outputs["arn"] for r in of_type(plan, ALARM)],
    )


def test_dashboard_widgets_stay_on_the_grid_and_do_not_overlap() -> None:
    body = dashboard_body(
        region="us-east-2",
        cluster_name="c",
        queue_names=["a", "b"],
        head_node_instance_id="i-1",
        lustre=[("scratch", "fs-1"), ("persistent", "fs-2")],
        efs_file_system_id="fs-3",
        spot_rule_name="r",
        alarm_arns=["arn:2", "arn:1"],
    )
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, widget.get("properties", {}).get("title")
        cells |= area
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert alarm_widget["properties"]["alarms"] == ["arn:1", "arn:2"]


# --- failures ------------------------------------------------------------------------------------
def test_fails_too_many_budget_thresholds() -> None:
    with pytest.raises(ValueError, match=f"at most {BUDGET_MAX_NOTIFICATIONS - 1}"):
        ObservabilityArgs(
            cluster_name="c",
            budget_alert_thresholds_percent=[float(10 * i) for i in range(1, BUDGET_MAX_NOTIFICATIONS + 1)],
        )


def test_fails_unknown_grafana_authentication_provider() -> None:
    with pytest.raises(ValueError, match="use AWS_SSO or SAML"):
        ObservabilityArgs(cluster_name="c", grafana_authentication_providers=["OIDC"])


def test_fails_two_lustre_file_systems_with_one_name() -> None:
    fs = MonitoredLustre(name="scratch", file_system_id=SCRATCH_ID, capacity_gib=1200)
    with pytest.raises(ValueError, match="names must be unique"):
        ObservabilityArgs(cluster_name="c", lustre_file_systems=[fs, fs])


def test_child_names_are_stable() -> None:
    """Renaming a child replaces the cloud resource: these names are a contract."""
    plan = planned("prod").plan
    names = {r.name for r in subtree(plan)}
    assert {
        "hpc-prod-observability-key",
        "hpc-prod-observability-key-alias",
        "hpc-prod-observability-alerts",
        "hpc-prod-observability-alerts-policy",
        "hpc-prod-observability-alerts-email-hpc-oncall-at-example-org",
        "hpc-prod-observability-spot-interruptions",
        "hpc-prod-observability-spot-events",
        "hpc-prod-observability-dashboard",
        "hpc-prod-observability-budget-monthly",
        "hpc-prod-observability-budget-group-genomics",
        "hpc-prod-observability-prometheus",
        "hpc-prod-observability-grafana",
        "hpc-prod-observability-fsx-scratch-free-capacity",
        "hpc-prod-observability-queue-mpi-hpc6a-pending",
    } <= names
