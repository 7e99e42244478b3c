"""ParallelCluster component: pure helpers, and properties of every stack's offline plan."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components import slurm_accounting
from components.cluster_iam import (
    IAM_PATH,
    MANAGED_POLICIES,
    compute_node_policy,
    head_node_policy,
    lambda_functions_policy,
    metrics_policy,
    partition_of,
)
from components.parallel_cluster import (
    API_TEMPLATE_URL,
    TYPE_TOKEN,
    ParallelCluster,
    ParallelClusterArgs,
    api_template_url,
)
from hpc_platform.app.offline import plan_stack_file, run_offline
from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER, Plan, PlannedResource, plain
from hpc_platform.app.offline.mocks import PlanMocks
from hpc_platform.domain import metrics
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import PCLUSTER_DEFAULT_VERSION
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE, STACK_MARKER_TAG
from hpc_platform.pcluster.api_access import API_USER_ROLE_NAME_PREFIX, API_USER_ROLE_OUTPUT
from tests.support.stacks import REPO_ROOT, STACKS, planned

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
DB_CLUSTER = "aws:rds/cluster:Cluster"
DB_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
DB_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
KMS_KEY = "aws:kms/key:Key"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
CFN_STACK = "aws:cloudformation/stack:Stack"
PLAINTEXT_PASSWORD = "Plaintext-Sentinel-Password-0123456789"


# --- helpers ---------------------------------------------------------------------------------------
def component(plan: Plan) -> PlannedResource:
    (found,) = plan.of_type(TYPE_TOKEN)
    return found


def children(plan: Plan, token: str) -> list[PlannedResource]:
    """The component's resources of one type, its child components' included."""
    return [r for r in plan.descendants_of(component(plan).urn) if r.type == token]


def only(plan: Plan, token: str) -> PlannedResource:
    (found,) = children(plan, token)
    return found


def cluster_resource(plan: Plan) -> PlannedResource:
    (found,) = [r for r in plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    return found


def _prometheus(stack: str) -> bool:
    """Whether the stack turns Managed Prometheus on (the metrics collector then ships)."""
    return planned(stack).loaded.config.observability.enable_managed_prometheus


def statements(document: Any) -> Iterator[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    body = parsed["Statement"]
    yield from [body] if isinstance(body, dict) else body


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_named(plan: Plan, suffix: str) -> PlannedResource:
    (found,) = [r for r in children(plan, ROLE) if r.name.endswith(f"-{suffix}-role")]
    return found


def policies_of(plan: Plan, role_key: str) -> dict[str, PlannedResource]:
    return {
        r.inputs["name"]: r
        for r in children(plan, ROLE_POLICY)
        if r.name.startswith(f"{component(plan).name}-{role_key}-")
    }


# --- pure helpers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "partition"), [("us-east-2", "aws"), ("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)
def test_partition_of(region: str, partition: str) -> None:
    assert partition_of(region) == partition


def test_api_template_url_is_the_official_one_for_the_pinned_version() -> None:
    assert api_template_url("us-east-2", "3.16.1") == (
        "https://us-east-2-aws-parallelcluster.s3.us-east-2.amazonaws.com/parallelcluster/3.16.1/api/"
        "parallelcluster-api.yaml"
    )
    assert "{version}" in API_TEMPLATE_URL


def test_metrics_policy_is_limited_to_the_slurm_namespace() -> None:
    (statement,) = statements(metrics_policy())
    assert statement["Action"] == "cloudwatch:PutMetricData"
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": metrics.SLURM_NAMESPACE}}


def test_head_node_policy_is_scoped_to_the_cluster() -> None:
    document = head_node_policy(
        partition="aws",
        region="us-east-2",
        account_id="123456789012",
        cluster_name="hpc-x",
        version="3.16.1",
        compute_subnet_ids=["subnet-1"],
        compute_role_arn="arn:aws:iam::123456789012:role/parallelcluster/compute",
        key_name=None,
    )
    by_sid = {s["Sid"]: s for s in statements(document)}
    assert by_sid["PassComputeRole"]["Resource"] == "arn:aws:iam::123456789012:role/parallelcluster/compute"
    assert by_sid["ClusterTable"]["Resource"].endswith(":table/parallelcluster-hpc-x")
    assert by_sid["ClusterStack"]["Resource"].endswith(":stack/hpc-x/*")
    assert by_sid["Ec2TerminateOwnNodes"]["Condition"] == {
        "StringEquals": {"ec2:ResourceTag/parallelcluster:cluster-name": "hpc-x"}
    }
    assert (
        "arn:aws:ec2:us-east-2:123456789012:subnet/subnet-1"
        in by_sid["Ec2RunInstancesCreateFleet"]["Resource"]
    )
    assert not any("key-pair" in r for r in by_sid["Ec2RunInstancesCreateFleet"]["Resource"])
    assert by_sid["ClusterDnsRecords"]["Condition"] == {
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["*.hpc-x.pcluster"]
        }
    }


def test_compute_node_policy_cannot_launch_or_pass_roles() -> None:
    document = compute_node_policy(
        partition="aws", region="us-east-2", account_id="123456789012", cluster_name="hpc-x", version="3.16.1"
    )
    actions = {a for s in statements(document) for a in as_list(s["Action"])}
    assert not actions & {"ec2:RunInstances", "ec2:CreateFleet", "iam:PassRole", "ec2:TerminateInstances"}


def test_node_roles_reach_the_slurm_table() -> None:
    """ParallelCluster 3.16 keeps Slurm node names in `parallelcluster-slurm-<cluster>`: the head
    node writes them, a starting compute node queries its own by the InstanceId index."""
    where = {"partition": "aws", "region": "us-east-2", "account_id": "123456789012", "cluster_name": "hpc-x"}
    table = "arn:aws:dynamodb:us-east-2:123456789012:table/parallelcluster-slurm-hpc-x"
    head = head_node_policy(
        **where,
        version="3.16.1",
        compute_subnet_ids=["subnet-1"],
        compute_role_arn="arn:aws:iam::123456789012:role/parallelcluster/compute",
        key_name=None,
    )
    compute = compute_node_policy(**where, version="3.16.1")

    def grants(document: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (action, resource)
            for s in statements(document)
            for action in as_list(s["Action"])
            for resource in as_list(s["Resource"])
        }

    assert {
        (a, table)
        for a in ("dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:BatchGetItem")
    } <= grants(head)
    assert {("dynamodb:Query", table), ("dynamodb:Query", f"{table}/index/*")} <= grants(compute)


def test_compute_nodes_read_the_nested_queues_stack() -> None:
    """The compute launch templates live in the queues stack, nested in the cluster stack and
    named `<cluster>-<logical id>-<suffix>` by CloudFormation."""
    document = compute_node_policy(
        partition="aws", region="us-east-2", account_id="123456789012", cluster_name="hpc-x", version="3.16.1"
    )
    (stack,) = [s for s in statements(document) if s["Sid"] == "ClusterStack"]
    assert stack["Resource"] == [
        "arn:aws:cloudformation:us-east-2:123456789012:stack/hpc-x/*",
        "arn:aws:cloudformation:us-east-2:123456789012:stack/hpc-x-*/*",
    ]


def test_lambda_functions_policy_is_scoped_to_the_cluster() -> None:
    document = lambda_functions_policy(
        partition="aws", region="us-east-2", account_id="123456789012", cluster_name="HPC-X", version="3.16.1"
    )
    by_sid = {s["Sid"]: s for s in statements(document)}
    assert by_sid["Ec2TerminateClusterInstances"]["Condition"] == {
        "StringEquals": {"ec2:ResourceTag/parallelcluster:cluster-name": "HPC-X"}
    }
    # ParallelCluster lower-cases the cluster name in its artifact directory and DNS domain.
    assert by_sid["DeleteClusterArtifacts"]["Resource"][1].endswith(
        "/parallelcluster/3.16.1/clusters/hpc-x-*"
    )
    assert by_sid["DeleteClusterDnsRecords"]["Condition"] == {
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["*.hpc-x.pcluster"]
        }
    }
    assert by_sid["FunctionLogs"]["Resource"] == [
        "arn:aws:logs:us-east-2:123456789012:log-group:/aws/lambda/pcluster-CleanupResources-*",
        "arn:aws:logs:us-east-2:123456789012:log-group:/aws/lambda/pcluster-CleanupRoute53-*",
    ]


# --- the plan -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_cluster_stack_functions_run_with_a_lambda_role_we_create(stack: str) -> None:
    """Restricted IAM mode: the config names the functions' role, so the cluster stack has none."""
    plan = planned(stack).plan
    role = role_named(plan, "lambda")
    assert role.inputs["path"] == IAM_PATH
    (trust,) = statements(role.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert set(policies_of(plan, "lambda")) == {"parallelcluster-lambda"}
    config = cluster_resource(plan).inputs["cluster_config"]
    assert config["Iam"] == {"Roles": {"LambdaFunctionsRole": role.outputs["arn"]}}


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_resource_carries_marker_and_rendered_config(stack: str) -> None:
    plan = planned(stack).plan
    cluster = cluster_resource(plan)
    inputs = cluster.inputs
    assert cluster.parent == component(plan).urn
    assert inputs["stack_marker"] == f"hpc-platform/{stack}"
    assert inputs["parallelcluster_version"] == PCLUSTER_DEFAULT_VERSION
    config = inputs["cluster_config"]
    assert isinstance(config, dict), "the rendered config must be a plain (non-secret) mapping"
    tags = {t["Key"]: t["Value"] for t in config["Tags"]}
    assert tags[STACK_MARKER_TAG] == f"hpc-platform/{stack}"
    assert config["Region"] == planned(stack).loaded.config.region
    assert inputs["cluster_name"] == planned(stack).loaded.config.cluster.name


@pytest.mark.parametrize("stack", STACKS)
def test_slurm_conf_values_survive_the_engine_as_text(stack: str) -> None:
    """Numbers cross Pulumi's property protocol as floats; slurm.conf must not get `10000.0`."""
    config = cluster_resource(planned(stack).plan).inputs["cluster_config"]
    custom = config["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"]
    assert custom
    for entry in custom:
        for value in entry.values():
            assert isinstance(value, str) and not value.endswith(".0"), entry


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_config_references_the_planned_resources(stack: str) -> None:
    plan = planned(stack).plan
    config = cluster_resource(plan).inputs["cluster_config"]
    profiles = {r.name.rsplit("-", 2)[-2]: r for r in children(plan, PROFILE)}
    assert config["HeadNode"]["Iam"]["InstanceProfile"].endswith(f"instance-profile/{profiles['head'].id}")
    for queue in config["Scheduling"]["SlurmQueues"]:
        assert queue["Iam"]["InstanceProfile"].endswith(f"instance-profile/{profiles['compute'].id}")
    subnet_ids = {r.id for r in plan.of_type(SUBNET)}
    assert config["HeadNode"]["Networking"]["SubnetId"] in subnet_ids
    for queue in config["Scheduling"]["SlurmQueues"]:
        assert set(queue["Networking"]["SubnetIds"]) <= subnet_ids
    secret_arn = config["Scheduling"]["SlurmSettings"]["Database"]["PasswordSecretArn"]
    assert secret_arn.startswith("arn:aws:secretsmanager:")
    endpoint = cluster_endpoint(plan)
    assert config["Scheduling"]["SlurmSettings"]["Database"]["Uri"] == f"{endpoint}:3306"
    objects = {r.inputs["key"] for r in children(plan, OBJECT)}
    scripts = [
        s["Script"]
        for q in config["Scheduling"]["SlurmQueues"]
        for s in q["CustomActions"]["OnNodeConfigured"]["Sequence"]
    ]
    assert {script.split("/", 3)[3] for script in scripts} <= objects


def cluster_endpoint(plan: Plan) -> str:
    endpoint: str = only(plan, DB_CLUSTER).outputs["endpoint"]
    return endpoint


@pytest.mark.parametrize("stack", STACKS)
def test_iam_policies_have_no_wildcard_action_on_wildcard_resource(stack: str) -> None:
    plan = planned(stack).plan
    documents = [r.inputs["policy"] for r in children(plan, ROLE_POLICY)]
    documents += [r.inputs["assumeRolePolicy"] for r in children(plan, ROLE)]
    assert len(documents) >= 7
    for document in documents:
        for statement in statements(document):
            actions = as_list(statement.get("Action", []))
            resources = as_list(statement.get("Resource", []))
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement
            if "*" in resources:
                assert all(":Describe" in a or a == "cloudwatch:PutMetricData" for a in actions), statement
                if actions == ["cloudwatch:PutMetricData"]:
                    assert "Condition" in statement


@pytest.mark.parametrize("stack", STACKS)
def test_roles_get_managed_and_scoped_inline_policies(stack: str) -> None:
    plan = planned(stack).plan
    for role_key in ("head", "compute"):
        role = role_named(plan, role_key)
        assert role.inputs["path"] == IAM_PATH
        attached = {
            r.inputs["policyArn"].rsplit("/", 1)[-1]
            for r in children(plan, ATTACHMENT)
            if r.name.startswith(f"{component(plan).name}-{role_key}-")
        }
        assert attached == set(MANAGED_POLICIES)
    head = policies_of(plan, "head")
    compute = policies_of(plan, "compute")
    prometheus = {"prometheus-remote-write"} if _prometheus(stack) else set()
    assert set(head) == {
        "bootstrap-read",
        "parallelcluster-head",
        "slurm-metrics",
        "slurmdb-secret",
        *prometheus,
    }
    assert set(compute) == {"bootstrap-read", "parallelcluster-compute"}
    secret_actions = [
        a
        for policy in compute.values()
        for s in statements(policy.inputs["policy"])
        for a in as_list(s["Action"])
        if a.startswith("secretsmanager:")
    ]
    assert secret_actions == [], "compute nodes must not read the database secret"
    (secret,) = children(plan, SECRET)
    (read_secret,) = [
        s for s in statements(head["slurmdb-secret"].inputs["policy"]) if s["Sid"] == "ReadSlurmdbdPassword"
    ]
    assert read_secret["Resource"] == secret.outputs["arn"]
    bootstrap = [
        s for s in statements(head["bootstrap-read"].inputs["policy"]) if s["Action"] != "kms:Decrypt"
    ]
    assert all(
        s["Resource"].endswith("/bootstrap/" + planned(stack).loaded.config.cluster.name + "/*")
        for s in bootstrap
    )
    profiles = children(plan, PROFILE)
    assert len(profiles) == 2 and all(p.inputs["path"] == IAM_PATH for p in profiles)


@pytest.mark.parametrize("stack", STACKS)
def test_accounting_database_is_encrypted_in_private_subnets(stack: str) -> None:
    plan = planned(stack).plan
    loaded = planned(stack).loaded.config
    db = only(plan, DB_CLUSTER)
    inputs = db.inputs
    assert inputs["engine"] == "aurora-mysql"
    assert inputs["storageEncrypted"] is True
    key = only(plan, KMS_KEY)
    assert inputs["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert inputs["serverlessv2ScalingConfiguration"] == {
        "minCapacity": loaded.cluster.slurm.accounting.min_capacity_acu,
        "maxCapacity": loaded.cluster.slurm.accounting.max_capacity_acu,
    }
    environment = profile(loaded.environment)
    assert inputs["deletionProtection"] is environment.database_deletion_protection
    assert inputs["backupRetentionPeriod"] == environment.database_backup_retention_days
    assert inputs["skipFinalSnapshot"] is not environment.final_backups
    assert key.inputs["deletionWindowInDays"] == environment.kms_deletion_window_days
    assert only(plan, SECRET).inputs["recoveryWindowInDays"] == environment.secret_recovery_window_days
    assert plain(inputs["masterPassword"]) == SECRET_PLACEHOLDER
    instance = only(plan, DB_INSTANCE)
    assert instance.inputs["instanceClass"] == "db.serverless"
    assert instance.inputs["publiclyAccessible"] is False
    private = {r.id for r in plan.of_type(SUBNET) if r.inputs.get("tags", {}).get("Tier") == "private"}
    assert private
    assert set(only(plan, DB_SUBNETS).inputs["subnetIds"]) == private


@pytest.mark.parametrize("stack", STACKS)
def test_accounting_database_is_a_child_component_whose_resources_keep_their_names(stack: str) -> None:
    plan = planned(stack).plan
    parent = component(plan)
    (database,) = plan.of_type(slurm_accounting.TYPE_TOKEN)
    assert database.parent == parent.urn
    assert database.name == f"{parent.name}-db"
    assert {(r.type, r.name) for r in plan.children_of(database.urn)} == {
        (KMS_KEY, f"{parent.name}-db-key"),
        ("aws:kms/alias:Alias", f"{parent.name}-db-key-alias"),
        (PASSWORD, f"{parent.name}-db-password"),
        (SECRET, f"{parent.name}-db-secret"),
        (SECRET_VERSION, f"{parent.name}-db-secret-value"),
        (SECURITY_GROUP, f"{parent.name}-db-sg"),
        (INGRESS, f"{parent.name}-db-mysql-in-nodes"),
        (DB_SUBNETS, f"{parent.name}-db-subnets"),
        (DB_CLUSTER, f"{parent.name}-db"),
        (DB_INSTANCE, f"{parent.name}-db-1"),
    }
    # The head node's permission to read the password stays with the head node's role.
    assert "slurmdb-secret" in policies_of(plan, "head")


@pytest.mark.parametrize("stack", STACKS)
def test_database_accepts_mysql_only_from_cluster_nodes(stack: str) -> None:
    plan = planned(stack).plan
    db_sg = only(plan, SECURITY_GROUP)
    assert only(plan, DB_CLUSTER).inputs["vpcSecurityGroupIds"] == [db_sg.id]
    rules = [r for r in children(plan, INGRESS) if r.inputs["securityGroupId"] == db_sg.id]
    assert len(rules) == 1
    (rule,) = rules
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (3306, 3306, "tcp")
    assert "cidrIpv4" not in rule.inputs
    nodes_sg = [r for r in plan.of_type(SECURITY_GROUP) if r.name.endswith("-efa-sg")]
    assert rule.inputs["referencedSecurityGroupId"] == nodes_sg[0].id


@pytest.mark.parametrize("stack", STACKS)
def test_password_lives_in_a_kms_encrypted_secret(stack: str) -> None:
    plan = planned(stack).plan
    secret = only(plan, SECRET)
    assert secret.inputs["kmsKeyId"] == only(plan, KMS_KEY).outputs["arn"]
    version = only(plan, SECRET_VERSION)
    assert plain(version.inputs["secretString"]) == SECRET_PLACEHOLDER
    assert only(plan, PASSWORD).inputs["length"] >= 32


@pytest.mark.parametrize("stack", STACKS)
def test_bootstrap_scripts_are_kms_encrypted_objects_in_the_data_bucket(stack: str) -> None:
    plan = planned(stack).plan
    objects = children(plan, OBJECT)
    prometheus = (
        {"node-exporter.sh", "prometheus-agent.sh", "prometheus.yml"} if _prometheus(stack) else set()
    )
    assert {o.inputs["key"].rsplit("/", 1)[-1] for o in objects} == {
        "efa-check.sh",
        "node-tuning.sh",
        "slurm-metrics-agent.sh",
        *prometheus,
    }
    buckets = {r.id for r in plan.of_type("aws:s3/bucket:Bucket")}
    for obj in objects:
        assert obj.inputs["serverSideEncryption"] == "aws:kms"
        assert obj.inputs["kmsKeyId"].startswith("arn:aws:kms:")
        assert obj.inputs["bucket"] in buckets


@pytest.mark.parametrize("stack", STACKS)
def test_api_is_the_official_stack_of_the_pinned_version(stack: str) -> None:
    plan = planned(stack).plan
    api = only(plan, CFN_STACK)
    config = planned(stack).loaded.config
    assert api.inputs["templateUrl"] == api_template_url(
        config.region, config.cluster.parallelcluster_version
    )
    assert set(api.inputs["capabilities"]) == {"CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}
    url = api.outputs["outputs"]["ParallelClusterApiInvokeUrl"]
    assert cluster_resource(plan).inputs["api_url"] == url


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_calls_the_deployed_api_as_the_api_stacks_user_role(stack: str) -> None:
    """The API template's resource policy admits only its user role: the provider gets it."""
    plan = planned(stack).plan
    role = only(plan, CFN_STACK).outputs["outputs"][API_USER_ROLE_OUTPUT]
    assert role.split("/")[-1].startswith(API_USER_ROLE_NAME_PREFIX)
    assert cluster_resource(plan).inputs["api_role_arn"] == role


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs_hold_no_secrets(stack: str) -> None:
    outputs = json.dumps(planned(stack).plan.to_json()["outputs"])
    assert SECRET_PLACEHOLDER not in outputs
    assert "slurm_database_secret_arn" in outputs


def test_plan_json_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the password known to the engine, `hpcctl plan --json` still never prints it."""
    original = PlanMocks.new_resource

    def new_resource(
        self: PlanMocks, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = original(self, args)
        if args.typ == PASSWORD:
            outputs = {**outputs, "result": PLAINTEXT_PASSWORD}
        return resource_id, outputs

    monkeypatch.setattr(PlanMocks, "new_resource", new_resource)
    from hpcctl.cli import main

    # The engine does see the password (so the check below is not vacuous)...
    plan = plan_stack_file(REPO_ROOT / "Pulumi.prod.yaml").plan
    version = only(plan, SECRET_VERSION)
    assert version.inputs["secretString"]["value"] == PLAINTEXT_PASSWORD
    assert only(plan, DB_CLUSTER).inputs["masterPassword"]["value"] == PLAINTEXT_PASSWORD
    # ...and the plan document never shows it.

    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "--stack", "prod", "--project-dir", str(REPO_ROOT), "--json", "-"], out, err)
    assert code == 0, err.getvalue()
    text = out.getvalue()
    document = json.loads(text)
    assert PLAINTEXT_PASSWORD not in text
    assert PLAINTEXT_PASSWORD not in err.getvalue()
    versions = [r for r in document["resources"] if r["type"] == SECRET_VERSION]
    assert versions and all(v["inputs"]["secretString"] == SECRET_PLACEHOLDER for v in versions)


# --- variants: mutated stack files -------------------------------------------------------------------
def plan_variant(
    stack_config: Callable[[str], dict[str, Any]],
    write_stack: Callable[[dict[str, Any], str], Path],
    change: Callable[[dict[str, Any]], None],
) -> Plan:
    config = stack_config("dev")
    change(config["hpc:cluster"])
    return plan_stack_file(write_stack(config, "Pulumi.dev.yaml")).plan


def test_without_accounting_there_is_no_database_and_no_secret_access(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    def change(cluster: dict[str, Any]) -> None:
        cluster.setdefault("slurm", {})["accounting"] = {"enabled": False}
        cluster["slurm"]["fair_share"] = {"enabled": False}

    plan = plan_variant(stack_config, write_stack, change)
    for token in (DB_CLUSTER, DB_INSTANCE, DB_SUBNETS, SECRET, SECRET_VERSION, PASSWORD, KMS_KEY):
        assert children(plan, token) == [], token
    assert "slurmdb-secret" not in policies_of(plan, "head")
    settings = cluster_resource(plan).inputs["cluster_config"]["Scheduling"]["SlurmSettings"]
    assert "Database" not in settings
    assert settings["CustomSlurmSettings"] == [{"JobRequeue": "1"}]
    assert "slurm_database_secret_arn" not in plan.outputs


def test_existing_password_secret_is_used_instead_of_a_generated_one(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:team-slurmdb-AbCdEf"

    def change(cluster: dict[str, Any]) -> None:
        cluster.setdefault("slurm", {}).setdefault("accounting", {})["existing_password_secret_arn"] = arn

    plan = plan_variant(stack_config, write_stack, change)
    assert children(plan, PASSWORD) == [] and children(plan, SECRET) == []
    assert children(plan, DB_CLUSTER)
    database = cluster_resource(plan).inputs["cluster_config"]["Scheduling"]["SlurmSettings"]["Database"]
    assert database["PasswordSecretArn"] == arn
    (read,) = statements(policies_of(plan, "head")["slurmdb-secret"].inputs["policy"])
    assert read["Resource"] == arn


def test_existing_api_endpoint_deploys_no_api_stack(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    url = "https://abc123.execute-api.us-east-2.amazonaws.com/prod"

    def change(cluster: dict[str, Any]) -> None:
        cluster["api"] = {**cluster.get("api", {}), "mode": "existing", "endpoint": url}

    plan = plan_variant(stack_config, write_stack, change)
    assert children(plan, CFN_STACK) == []
    assert cluster_resource(plan).inputs["api_url"] == url
    assert cluster_resource(plan).inputs.get("api_role_arn") is None


def test_existing_api_is_called_as_the_configured_role(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    url = "https://abc123.execute-api.us-east-2.amazonaws.com/prod"
    role = "arn:aws:iam::123456789012:role/PCAPIUserRole-6f1c2d3e-0000-4000-8000-123456789abc"

    def change(cluster: dict[str, Any]) -> None:
        cluster["api"] = {**cluster.get("api", {}), "mode": "existing", "endpoint": url, "role_arn": role}

    plan = plan_variant(stack_config, write_stack, change)
    assert cluster_resource(plan).inputs["api_role_arn"] == role


def test_cluster_without_efa_queues_has_no_placement_groups(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    def change(cluster: dict[str, Any]) -> None:
        for queue in cluster["queues"]:
            queue["enable_efa"] = False

    plan = plan_variant(stack_config, write_stack, change)
    queues = cluster_resource(plan).inputs["cluster_config"]["Scheduling"]["SlurmQueues"]
    assert all("PlacementGroup" not in q["Networking"] for q in queues)
    assert all(r["Efa"] == {"Enabled": False} for q in queues for r in q["ComputeResources"])


def test_efs_home_is_mounted_through_the_data_repositorys_access_point() -> None:
    plan = planned("prod").plan
    (cluster,) = [r for r in plan.resources if r.inputs.get("hpc:kind") == "parallelcluster"]
    (home,) = [m for m in cluster.inputs["cluster_config"]["SharedStorage"] if m["StorageType"] == "Efs"]
    (access_point,) = plan.of_type("aws:efs/accessPoint:AccessPoint")
    assert home["EfsSettings"]["AccessPointId"] == access_point.id
    assert home["EfsSettings"]["EncryptionInTransit"] is True


# --- the component as a library ------------------------------------------------------------------------
def test_component_schema_analyzes() -> None:
    """Pulumi's component provider host can publish the component (and its database child)."""
    analysis = Analyzer("hpc").analyze([ParallelCluster, slurm_accounting.SlurmAccountingDatabase])
    definitions = analysis["component_definitions"]
    cluster = definitions["ParallelCluster"]
    assert {"clusterName", "clusterConfig", "slurmAccounting", "tags"} <= set(cluster.inputs)
    assert {"clusterName", "apiUrl", "headNodeRoleArn", "databaseSecretArn"} <= set(cluster.outputs)
    assert {"endpoint", "secretArn"} <= set(definitions["SlurmAccountingDatabase"].outputs)


LIBRARY_CONFIG: dict[str, Any] = {
    "Region": "eu-west-1",
    "Image": {"Os": "alinux2023"},
    "HeadNode": {
        "InstanceType": "c6i.xlarge",
        "Networking": {"SubnetId": "subnet-0123456789abcdef0"},
        "Ssh": {"KeyName": "ops"},
    },
    "Scheduling": {
        "Scheduler": "slurm",
        "SlurmQueues": [
            {
                "Name": "mpi",
                "CapacityType": "SPOT",
                "ComputeResources": [
                    {
                        "Name": "c5n",
                        "InstanceType": "c5n.18xlarge",
                        "MinCount": 0,
                        "MaxCount": 4,
                        "Efa": {"Enabled": True},
                    }
                ],
                "Networking": {"SubnetIds": ["subnet-0fedcba9876543210"]},
            },
            {
                "Name": "serial",
                "CapacityType": "ONDEMAND",
                "ComputeResources": [
                    {"Name": "m6i", "InstanceType": "m6i.large", "MinCount": 0, "MaxCount": 2}
                ],
                "Networking": {"SubnetIds": ["subnet-0fedcba9876543210", "subnet-0aaaabbbbccccdddd"]},
            },
        ],
    },
}


def test_component_plans_from_its_own_args_without_a_stack_file() -> None:
    """A library user's program: a hand-written config, literal ids, library defaults."""

    def program() -> None:
        ParallelCluster(
            "lib",
            ParallelClusterArgs(
                cluster_name="lib-cluster",
                region="eu-west-1",
                cluster_config=LIBRARY_CONFIG,
                data_bucket_name="lib-data",
                data_bucket_arn="arn:aws:s3:::lib-data",
                data_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                slurm_accounting=True,
                vpc_id="vpc-0123456789abcdef0",
                private_subnet_ids=["subnet-0fedcba9876543210", "subnet-0aaaabbbbccccdddd"],
                nodes_security_group_id="sg-0123456789abcdef0",
                stack_marker="lib/unit",
                tags={"Team": "hpc"},
            ),
        )

    plan = run_offline(program, stack="unit", config={}, region="eu-west-1")
    (cluster,) = [r for r in plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    config = cluster.inputs["cluster_config"]
    head_profile = plan.by_name("lib-head-profile")
    assert config["HeadNode"]["Iam"]["InstanceProfile"].endswith(f"instance-profile/{head_profile.id}")
    assert config["Iam"]["Roles"]["LambdaFunctionsRole"] == plan.by_name("lib-lambda-role").outputs["arn"]
    # EFA check only where a compute resource has EFA (no `efa_queues` given).
    sequences = {
        q["Name"]: [
            s["Script"].rsplit("/", 1)[-1] for s in q["CustomActions"]["OnNodeConfigured"]["Sequence"]
        ]
        for q in config["Scheduling"]["SlurmQueues"]
    }
    assert sequences == {"mpi": ["efa-check.sh", "node-tuning.sh"], "serial": ["node-tuning.sh"]}
    (agent,) = config["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Sequence"]
    assert agent["Args"] == ["lib-cluster", "eu-west-1", metrics.SLURM_NAMESPACE, "60", "mpi"]
    assert config["Scheduling"]["SlurmSettings"]["Database"]["Uri"].endswith(":3306")
    assert {t["Key"]: t["Value"] for t in config["Tags"]} == {"Team": "hpc", STACK_MARKER_TAG: "lib/unit"}
    # Head-node policy: the config's subnets and key pair, read from the config it was given.
    (run,) = [
        s
        for s in statements(plan.by_name("lib-head-parallelcluster-head").inputs["policy"])
        if s["Sid"] == "Ec2RunInstancesCreateFleet"
    ]
    assert {r for r in run["Resource"] if ":subnet/" in r or ":key-pair/" in r} == {
        "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0aaaabbbbccccdddd",
        "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0fedcba9876543210",
        "arn:aws:ec2:eu-west-1:123456789012:key-pair/ops",
    }
    (database,) = plan.of_type(DB_CLUSTER)
    assert database.inputs["deletionProtection"] is False and database.inputs["skipFinalSnapshot"] is True
    assert plan.by_name("lib-db-sg").inputs["tags"] == {"Team": "hpc", "Name": "lib-cluster-slurmdb-sg"}


def test_accounting_without_its_network_is_refused() -> None:
    def program() -> None:
        ParallelCluster(
            "lib",
            ParallelClusterArgs(
                cluster_name="lib-cluster",
                region="eu-west-1",
                cluster_config=LIBRARY_CONFIG,
                data_bucket_name="lib-data",
                data_bucket_arn="arn:aws:s3:::lib-data",
                data_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/x",
                slurm_accounting=True,
            ),
        )

    with pytest.raises(
        Exception, match=r"slurm_accounting needs vpc_id, private_subnet_ids, nodes_security_group_id"
    ):
        run_offline(program, stack="unit", config={}, region="eu-west-1")
