"""The portal's own deployment, planned offline from the example stack file.

awsx's load balancer and Fargate service are remote components: the plan holds each one with the
inputs this program gives it (what these tests read), not the children awsx's plugin creates at
deploy time. Everything else is a plain pulumi-aws resource and is checked as such.
"""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pulumi
import pytest

from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER, UNKNOWN_PLACEHOLDER, Plan, plain, run_offline
from hpc_platform.app.policy_check import read_policy_config, run_pack
from hpc_platform.app.portal import deploy
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.domain.environments import profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "portal" / "Pulumi.portal-prod.yaml"
PREFIX = "hpc-prod-portal"


def example() -> dict[str, Any]:
    return copy.deepcopy(read_stack_file(EXAMPLE))


def plan_of(config: dict[str, Any], program: Any = deploy.program) -> Plan:
    return run_offline(
        program, stack="portal-prod", config=config, region="us-east-2", project=deploy.PROJECT
    )


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_of(example())


def inputs(plan: Plan, name: str, token: str | None = None) -> dict[str, Any]:
    matches = [r for r in plan.resources if r.name == name and (token is None or r.type == token)]
    assert len(matches) == 1, f"{len(matches)} resources named {name}"
    result: dict[str, Any] = plain(matches[0].inputs)
    return result


def outputs(plan: Plan, name: str) -> dict[str, Any]:
    result: dict[str, Any] = plain(plan.by_name(name).outputs)
    return result


def container(plan: Plan) -> dict[str, Any]:
    result: dict[str, Any] = inputs(plan, f"{PREFIX}-service")["taskDefinitionArgs"]["container"]
    return result


def policy(plan: Plan, name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(inputs(plan, name)["policy"])["Statement"]
    return statements


def test_awsx_components_are_in_the_plan_as_remote_components_without_children(plan: Plan) -> None:
    for token in ("awsx:lb:ApplicationLoadBalancer", "awsx:ecs:FargateService", "awsx:ec2:Vpc"):
        (component,) = plan.of_type(token)
        assert (component.remote, component.custom) == (True, False)
        assert plan.children_of(component.urn) == []
    assert plan.by_name(f"{PREFIX}-alb").urn.startswith("urn:pulumi:portal-prod::hpc-portal::")


def test_the_entry_point_runs_this_program(plan: Plan) -> None:
    entry = plan_of(example(), lambda: runpy.run_path(str(ROOT / "deploy" / "portal" / "__main__.py")))
    assert sorted(r.urn for r in entry.resources) == sorted(r.urn for r in plan.resources)


def test_https_listener_serves_the_certificate_and_http_only_redirects(plan: Plan) -> None:
    alb = inputs(plan, f"{PREFIX}-alb")
    https, http = alb["listeners"]
    service = example()["portal:service"]
    assert (https["port"], https["protocol"], https["certificateArn"]) == (
        443,
        "HTTPS",
        service["certificate_arn"],
    )
    assert https["sslPolicy"] == deploy.DEFAULT_SSL_POLICY
    assert "defaultActions" not in https  # awsx forwards the first listener to the default target group
    assert (http["port"], http["protocol"]) == (80, "HTTP")
    assert http["defaultActions"] == [
        {"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}
    ]
    assert alb["dropInvalidHeaderFields"] is True and alb["internal"] is False
    assert alb["enableDeletionProtection"] is profile("prod").protect_data


def test_target_group_health_checks_the_container_port(plan: Plan) -> None:
    target_group = inputs(plan, f"{PREFIX}-alb")["defaultTargetGroup"]
    portal = container(plan)
    (mapping,) = portal["portMappings"]
    # Set in full: awsx would otherwise give the target group the first listener's 443/HTTPS.
    assert (target_group["port"], target_group["protocol"], target_group["targetType"]) == (
        mapping["containerPort"],
        "HTTP",
        "ip",
    )
    assert (
        target_group["healthCheck"]["path"] == "/healthz" and target_group["healthCheck"]["matcher"] == "200"
    )
    # The port mapping points at the ALB's target group, which awsx creates at deploy time.
    assert mapping["targetGroup"] == UNKNOWN_PLACEHOLDER
    assert f"127.0.0.1:{mapping['containerPort']}/healthz" in " ".join(portal["healthCheck"]["command"])
    assert portal["command"][:2] == ["hpc-portal", "serve"]
    assert portal["command"][portal["command"].index("--port") + 1] == str(mapping["containerPort"])


def test_database_is_encrypted_private_protected_and_backed_up(plan: Plan) -> None:
    db = inputs(plan, f"{PREFIX}-db")
    key_arn = outputs(plan, f"{PREFIX}-key")["arn"]
    prod = profile("prod")
    assert db["engine"] == "postgres"
    assert (db["storageEncrypted"], db["kmsKeyId"], db["masterUserSecretKmsKeyId"]) == (
        True,
        key_arn,
        key_arn,
    )
    assert db["publiclyAccessible"] is False
    assert db["deletionProtection"] is True and plan.by_name(f"{PREFIX}-db").protect
    assert db["backupRetentionPeriod"] == prod.database_backup_retention_days > 0
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"]
    assert db["manageMasterUserPassword"] is True and "password" not in db
    # In the private subnets, reachable from the portal tasks only.
    subnets = inputs(plan, f"{PREFIX}-db-subnets")
    assert db["dbSubnetGroupName"] == subnets["name"]
    assert subnets["subnetIds"] == outputs(plan, f"{PREFIX}-vpc")["privateSubnetIds"]
    db_sg = plan.by_name(f"{PREFIX}-db-sg").id
    rules = [
        r for r in plan.resources if "securityGroup" in r.type and r.inputs.get("securityGroupId") == db_sg
    ]
    assert [(r.type.rsplit(":", 1)[-1], plain(r.inputs)["fromPort"]) for r in rules] == [
        ("SecurityGroupIngressRule", 5432)
    ]
    assert rules[0].inputs["referencedSecurityGroupId"] == plan.by_name(f"{PREFIX}-task-sg").id


def test_no_password_or_passphrase_reaches_any_input_in_plain_text(plan: Plan) -> None:
    def walk(value: Any, path: str) -> list[str]:
        found: list[str] = []
        if isinstance(value, dict):
            for key, item in value.items():
                secretish = any(word in key.lower() for word in ("password", "passphrase", "secretstring"))
                if (
                    secretish
                    and isinstance(item, str)
                    and item not in (SECRET_PLACEHOLDER, UNKNOWN_PLACEHOLDER)
                ):
                    found.append(f"{path}.{key}")
                found += walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += walk(item, f"{path}[{index}]")
        return found

    document = plan.to_json()
    assert [p for r in document["resources"] for p in walk(r["inputs"], r["name"])] == []
    assert inputs(plan, f"{PREFIX}-passphrase-value")["secretString"] in (
        SECRET_PLACEHOLDER,
        UNKNOWN_PLACEHOLDER,
    )
    # Only names of variables and secret references go into the task definition.
    environment = {e["name"]: e["value"] for e in container(plan)["environment"]}
    assert not {"PGPASSWORD", "PULUMI_CONFIG_PASSPHRASE"} & set(environment)


def test_task_gets_the_database_url_without_password_and_its_secrets_from_secrets_manager(plan: Plan) -> None:
    portal = container(plan)
    environment = {e["name"]: e["value"] for e in portal["environment"]}
    url = urlsplit(environment["HPC_PORTAL_DATABASE_URL"])
    db = outputs(plan, f"{PREFIX}-db")
    assert (url.scheme, url.username, url.password) == ("postgresql+psycopg", "portal", None)
    assert (url.hostname, url.port, url.path) == (db["address"], 5432, "/portal")
    assert parse_qs(url.query) == {"sslmode": ["require"]}

    secrets = {s["name"]: s["valueFrom"] for s in portal["secrets"]}
    rds_secret = db["masterUserSecrets"][0]["secretArn"]
    assert secrets == {
        "PGPASSWORD": f"{rds_secret}:password::",
        "PULUMI_CONFIG_PASSPHRASE": outputs(plan, f"{PREFIX}-passphrase")["arn"],
    }
    assert all(v.startswith("arn:aws:secretsmanager:us-east-2:") for v in secrets.values())
    # The execution role (which injects them) may read exactly these two secrets and nothing else.
    (inject,) = [s for s in policy(plan, f"{PREFIX}-execution-policy") if s["Sid"] == "InjectSecrets"]
    assert sorted(inject["Resource"]) == sorted([rds_secret, secrets["PULUMI_CONFIG_PASSPHRASE"]])


def test_backend_is_a_versioned_encrypted_private_bucket(plan: Plan) -> None:
    environment = {e["name"]: e["value"] for e in container(plan)["environment"]}
    bucket = outputs(plan, f"{PREFIX}-state")["bucket"]
    assert environment["HPC_PORTAL_BACKEND_URL"] == f"s3://{bucket}?region=us-east-2"
    assert inputs(plan, f"{PREFIX}-state-versioning")["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = inputs(plan, f"{PREFIX}-state-encryption")["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert (default["sseAlgorithm"], default["kmsMasterKeyId"]) == (
        "aws:kms",
        outputs(plan, f"{PREFIX}-key")["arn"],
    )
    block = inputs(plan, f"{PREFIX}-state-public-access-block")
    assert all(
        block[k]
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert plan.by_name(f"{PREFIX}-state").protect


def test_task_role_may_use_its_state_and_assume_the_deployment_roles_only(plan: Plan) -> None:
    statements = policy(plan, f"{PREFIX}-task-policy")
    bucket_arn = outputs(plan, f"{PREFIX}-state")["arn"]
    granted = {
        action: statement["Resource"]
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted == {
        "s3:ListBucket": bucket_arn,
        "s3:GetObject": f"{bucket_arn}/*",
        "s3:PutObject": f"{bucket_arn}/*",
        "s3:DeleteObject": f"{bucket_arn}/*",
        "kms:Decrypt": outputs(plan, f"{PREFIX}-key")["arn"],
        "kms:GenerateDataKey": outputs(plan, f"{PREFIX}-key")["arn"],
        "sts:AssumeRole": example()["portal:deployment_role_arns"],
        "sts:TagSession": example()["portal:deployment_role_arns"],
    }
    assert all(
        s["Effect"] == "Allow" and "*" not in json.dumps(s["Resource"]).replace("/*", "") for s in statements
    )
    # Only ECS tasks of this account may take either role.
    for role in (f"{PREFIX}-task", f"{PREFIX}-execution"):
        (trust,) = json.loads(inputs(plan, role)["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    task_definition = inputs(plan, f"{PREFIX}-service")["taskDefinitionArgs"]
    assert task_definition["taskRole"]["roleArn"] == outputs(plan, f"{PREFIX}-task")["arn"]
    assert task_definition["executionRole"]["roleArn"] == outputs(plan, f"{PREFIX}-execution")["arn"]


def test_service_runs_in_private_subnets_reachable_only_through_the_load_balancer(plan: Plan) -> None:
    service = inputs(plan, f"{PREFIX}-service")
    network = service["networkConfiguration"]
    vpc = outputs(plan, f"{PREFIX}-vpc")
    task_sg, alb_sg = plan.by_name(f"{PREFIX}-task-sg").id, plan.by_name(f"{PREFIX}-alb-sg").id
    assert network == {
        "subnets": vpc["privateSubnetIds"],
        "securityGroups": [task_sg],
        "assignPublicIp": False,
    }
    assert inputs(plan, f"{PREFIX}-alb")["subnetIds"] == vpc["publicSubnetIds"]
    assert inputs(plan, f"{PREFIX}-alb")["securityGroups"] == [alb_sg]

    def ingress(group: str | None) -> list[tuple[Any, ...]]:
        return sorted(
            (
                r.inputs.get("cidrIpv4") or r.inputs.get("referencedSecurityGroupId"),
                plain(r.inputs)["fromPort"],
            )
            for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs["securityGroupId"] == group
        )

    assert ingress(task_sg) == [(alb_sg, 8080)]
    cidrs = example()["portal:network"]["allowed_cidrs"]
    assert ingress(alb_sg) == sorted((cidr, port) for cidr in cidrs for port in (80, 443))
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    # The new VPC has its flow log, to the portal's encrypted log group.
    (flow_log,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["vpcId"] == vpc["vpcId"]
    assert flow_log.inputs["logDestination"] == outputs(plan, f"{PREFIX}-flow-logs")["arn"]


def test_every_taggable_resource_and_awsx_component_carries_the_compliance_tags(plan: Plan) -> None:
    required = deploy.load_portal_stack_file(EXAMPLE).tags
    assert {"Owner", "DataClassification", "ComplianceFrameworks", "Environment", "ResearchGroup"} <= set(
        required
    )

    def tagged(tags: Any) -> bool:
        return isinstance(tags, dict) and required.items() <= tags.items()

    taggable = [r for r in plan.resources if r.custom and is_taggable(r.type)]
    assert len(taggable) > 15
    assert [r.name for r in taggable if not tagged(r.inputs.get("tags"))] == []
    # awsx's components pass `tags` on to what they create (and at deploy time the stack's tag
    # transform reaches their children too: transforms apply to packaged components' children).
    alb = inputs(plan, f"{PREFIX}-alb")
    service = inputs(plan, f"{PREFIX}-service")
    for tags in (
        alb["tags"],
        alb["defaultTargetGroup"]["tags"],
        *(listener["tags"] for listener in alb["listeners"]),
        service["tags"],
        service["taskDefinitionArgs"]["tags"],
        inputs(plan, f"{PREFIX}-vpc")["tags"],
    ):
        assert tagged(tags)


def test_an_existing_vpc_is_used_as_given() -> None:
    config = example()
    public = ["subnet-0a1b2c3d4e5f60718", "subnet-1a1b2c3d4e5f60718"]
    private = ["subnet-2a1b2c3d4e5f60718", "subnet-3a1b2c3d4e5f60718"]
    config["portal:network"] = {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "public_subnet_ids": public,
        "private_subnet_ids": private,
        "allowed_cidrs": ["198.51.100.0/24"],
    }
    plan = plan_of(config)
    assert plan.of_type("awsx:ec2:Vpc") == [] and plan.of_type("aws:ec2/flowLog:FlowLog") == []
    assert inputs(plan, f"{PREFIX}-alb")["subnetIds"] == public
    assert inputs(plan, f"{PREFIX}-service")["networkConfiguration"]["subnets"] == private
    assert inputs(plan, f"{PREFIX}-db-subnets")["subnetIds"] == private
    assert {r.inputs["vpcId"] for r in plan.of_type("aws:ec2/securityGroup:SecurityGroup")} == {
        "vpc-0a1b2c3d4e5f60718"
    }


def test_a_dev_portal_takes_its_protection_from_the_environment_table() -> None:
    config = example()
    config["portal:environment"] = "dev"
    plan = plan_of(config)
    dev = profile("dev")
    db = inputs(plan, "hpc-dev-portal-db")
    assert db["deletionProtection"] is dev.database_deletion_protection
    assert db["backupRetentionPeriod"] == dev.database_backup_retention_days > 0
    assert db["skipFinalSnapshot"] is (not dev.final_backups)
    assert db["storageEncrypted"] is True and db["publiclyAccessible"] is False


def test_the_policy_pack_passes_on_the_plain_resources() -> None:
    """The pack runs on this plan (tags, SSE-KMS, public access blocks, security-group ingress, flow
    logs of plain VPCs); what awsx creates at deploy time is outside it."""
    pack_config = read_policy_config(ROOT / "policy" / "config" / "prod.json")
    plan = plan_of(example())
    run = run_pack(plan, pack_config)
    assert run.resources == plan.resource_count and run.violations == []  # the stack too

    open_to_all = example()
    open_to_all["portal:network"]["allowed_cidrs"] = ["0.0.0.0/0"]
    violations = run_pack(plan_of(open_to_all), pack_config).violations
    assert {v.policy for v in violations} == {"no-public-ingress"}


def test_fails_with_one_line_per_problem_under_the_engine() -> None:
    config = example()
    config["portal:service"]["memory_mib"] = 1024
    with pytest.raises(pulumi.RunError) as raised:
        plan_of(config)
    assert str(raised.value) == (
        "Pulumi.portal-prod.yaml: portal:service.memory_mib: Fargate does not offer 1024 MiB with "
        "2048 CPU units; use 4096 to 16384 MiB in steps of 1024"
    )
