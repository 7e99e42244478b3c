"""The Pulumi program that runs the portal itself on AWS (`deploy/portal/`, project `hpc-portal`).

What it declares, and why each piece is built the way it is:
- an Application Load Balancer (awsx) with an HTTPS listener on the stack's ACM certificate and an
  HTTP listener that only redirects to HTTPS; its target group health-checks the portal's `/healthz`;
- the portal as an ECS Fargate service (awsx) in private subnets, reachable only from the load
  balancer; the task runs `hpc-portal serve` (API plus an in-process worker);
- RDS PostgreSQL in private subnets: KMS-encrypted, never public, backed up, deletion-protected
  where the environment table says so. RDS generates and keeps the master password in Secrets
  Manager (`manage_master_user_password`), so no password passes through this program or its state;
  the task gets it as `PGPASSWORD` by ECS secret injection, and `HPC_PORTAL_DATABASE_URL` carries
  no password (libpq reads `PGPASSWORD`);
- the Pulumi state bucket the portal deploys with (`HPC_PORTAL_BACKEND_URL`): versioned, SSE-KMS,
  TLS only, no public access; and a generated secrets passphrase for it, injected the same way;
- an IAM task role that may read and write that bucket and assume the deployment roles the stack
  lists, nothing else: the HPC program's own permissions belong to those roles.

The load balancer and the service are awsx's remote (multi-language) components: their children
(load balancer, listeners, target group, task definition, ECS service) are created by awsx's
provider plugin at deploy time. The offline plan records each component with its inputs, which is
what the tests check; the children are not in it. Everything else is plain pulumi-aws and is.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_random as random
from pydantic import AfterValidator, Field, StringConstraints, ValidationError, field_validator

from components.efa_network import flow_logs_delivery_policy, flow_logs_trust_policy
from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from components.secure_bucket import deny_insecure_transport, harden_bucket
from hpc_platform.app.tagging import register_compliance_tags
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.domain.config.models import AzName, ComplianceConfig, Model
from hpc_platform.domain.environments import Environment, profile
from hpc_platform.domain.limits import (
    CLOUDWATCH_RETENTION_DAYS,
    FARGATE_TASK_MEMORY_MIB,
    IAM_ROLE_ARN_PATTERN,
)

PROJECT = "hpc-portal"
"""The Pulumi project of `deploy/portal/Pulumi.yaml` (URNs and the offline plan use it)."""
NAMESPACE = "portal"
"""Config namespace of this program's keys (`portal:service`, …); the region is `aws:region`."""
CONTAINER_NAME = "portal"
DATABASE_NAME = "portal"
DATABASE_USER = "portal"
POSTGRES_PORT = 5432
# libpq (under psycopg) reads the password from this variable when the URL has none.
DATABASE_PASSWORD_ENV = "PGPASSWORD"
PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"
# The event stream (SSE) holds a request open; the ALB closes idle connections after this long.
ALB_IDLE_TIMEOUT_SECONDS = 300
# ECS sends SIGTERM, then SIGKILL after this: time for the worker to record where a job stands.
CONTAINER_STOP_TIMEOUT_SECONDS = 120
# What an ALB listener should offer: TLS 1.3 and 1.2 only (AWS's recommended policy).
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"

SUBNET_ID_PATTERN = r"^subnet-[0-9a-f]{8,17}$"
VPC_ID_PATTERN = r"^vpc-[0-9a-f]{8,17}$"
CERTIFICATE_ARN_PATTERN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$"
# Human wording for the schema's patterns (the rest keep pydantic's message).
PATTERN_DESCRIPTIONS = {
    SUBNET_ID_PATTERN: "is not a subnet id (subnet-0123456789abcdef0)",
    VPC_ID_PATTERN: "is not a VPC id (vpc-0123456789abcdef0)",
    CERTIFICATE_ARN_PATTERN: "is not an ACM certificate ARN "
    "(arn:aws:acm:<region>:<account>:certificate/<id>)",
    IAM_ROLE_ARN_PATTERN: "is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
}
SubnetId = Annotated[str, StringConstraints(pattern=SUBNET_ID_PATTERN)]
CertificateArn = Annotated[str, StringConstraints(pattern=CERTIFICATE_ARN_PATTERN)]
RoleArn = Annotated[str, StringConstraints(pattern=IAM_ROLE_ARN_PATTERN)]
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+)(:[\w.-]+|@sha256:[0-9a-f]{64})$"
)


def _cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block ({exc})") from None
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]


# ---------------------------------------------------------------------------------------------
# Config: `Pulumi.<stack>.yaml` of deploy/portal
# ---------------------------------------------------------------------------------------------
class PortalNetworkConfig(Model):
    """Where the portal runs: a new VPC (awsx), or an existing one given by `vpc_id`."""

    allowed_cidrs: list[Cidr] = Field(min_length=1)
    """Who may reach the portal over HTTPS (and be redirected from HTTP): the institution's
    networks. Required: there is no safe default."""
    internal: bool = False
    """An internal load balancer (in the private subnets, reachable only from inside the VPC and
    what is routed to it); omitted: internet-facing in the public subnets."""
    vpc_id: Annotated[str, StringConstraints(pattern=VPC_ID_PATTERN)] | None = None
    """An existing VPC; omitted: the program creates one (awsx.ec2.Vpc) from `vpc_cidr` and
    `availability_zones`."""
    public_subnet_ids: list[SubnetId] = Field(default_factory=list)
    """With `vpc_id`: the load balancer's subnets (two AZs at least); not needed when `internal`."""
    private_subnet_ids: list[SubnetId] = Field(default_factory=list)
    """With `vpc_id`: the tasks' and the database's subnets (two AZs at least), with a route to
    the internet or VPC endpoints (ECR, Secrets Manager, CloudWatch Logs, STS, S3)."""
    vpc_cidr: Cidr = "10.90.0.0/16"
    """A new VPC's address range."""
    availability_zones: list[AzName] = Field(default_factory=list, max_length=6)
    """A new VPC's AZs (two at least: the load balancer and the database need two); omitted: the
    region's `a` and `b` zones."""
    nat_gateways: Literal["Single", "OnePerAz"] = "OnePerAz"
    """A new VPC's NAT gateways (awsx's strategy): one per AZ survives the loss of an AZ."""


class PortalServiceConfig(Model):
    """The Fargate service and its load balancer."""

    image: Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^\S+$")]
    """The portal's container image (an ECR image by digest is best: the task definition then
    names exactly what was reviewed). It must hold the project and the Pulumi CLI."""
    certificate_arn: CertificateArn
    """The ACM certificate of the HTTPS listener, in the stack's region."""
    ssl_policy: Annotated[str, StringConstraints(pattern=r"^ELBSecurityPolicy-[\w-]+$")] = DEFAULT_SSL_POLICY
    """The HTTPS listener's TLS policy."""
    container_port: int = Field(default=8080, ge=1024, le=65535)
    """The port `hpc-portal serve` listens on inside the task."""
    health_check_path: Annotated[str, StringConstraints(pattern=r"^/[\w./-]*$")] = "/healthz"
    """What the load balancer and the container health check request (it must answer 200)."""
    cpu: int = 1024
    """Fargate CPU units of a task (1024 = one vCPU): the worker runs `pulumi` and the HPC program."""
    memory_mib: int = 4096
    """Fargate memory of a task; must be a size Fargate offers with `cpu`."""
    desired_count: int = Field(default=2, ge=1, le=10)
    """Tasks behind the load balancer; every task also runs a worker (they share the queue)."""
    log_retention_days: int = 365
    """CloudWatch Logs retention of the tasks' logs."""

    @field_validator("cpu")
    @classmethod
    def _known_cpu(cls, value: int) -> int:
        if value not in FARGATE_TASK_MEMORY_MIB:
            allowed = ", ".join(str(v) for v in FARGATE_TASK_MEMORY_MIB)
            raise ValueError(f"{value} is not a Fargate CPU size; use one of {allowed}")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            allowed = ", ".join(str(v) for v in CLOUDWATCH_RETENTION_DAYS)
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; use one of {allowed}")
        return value


class PortalDatabaseConfig(Model):
    """RDS PostgreSQL (the portal's database)."""

    instance_class: Annotated[str, StringConstraints(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.small"
    """RDS instance class."""
    engine_version: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?$")] = "16"
    """PostgreSQL version; a major version alone takes RDS's default minor, upgraded in the
    maintenance window."""
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    """Initial gp3 storage."""
    max_allocated_storage_gib: int = Field(default=100, ge=20, le=65536)
    """Storage autoscaling ceiling (≥ `allocated_storage_gib`)."""
    multi_az: bool = True
    """A standby in a second AZ (failover in minutes instead of a restore)."""


class PortalStackConfig(Model):
    """Everything a `deploy/portal` stack file configures (keys under `portal:`, region `aws:region`)."""

    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    """AWS region (`aws:region`)."""
    environment: Environment
    """Which row of the environment table applies: protection, backups, deletion windows."""
    network: PortalNetworkConfig
    service: PortalServiceConfig
    database: PortalDatabaseConfig = PortalDatabaseConfig()
    deployment_role_arns: list[RoleArn] = Field(min_length=1)
    """The roles the portal's workers assume to deploy HPC stacks (the only AWS permissions they
    get beyond the state bucket); each role's trust policy must admit the task role."""
    compliance: ComplianceConfig
    """The same labels as the HPC stacks (NIST 800-171 3.1.3/3.8)."""

    @property
    def tags(self) -> dict[str, str]:
        return {"Application": PROJECT, **self.compliance.tags(self.environment)}


Loc = tuple[str | int, ...]


def key_path(loc: Loc) -> str:
    """('service', 'cpu') → `portal:service.cpu`; ('region',) → `aws:region`."""
    head, *rest = loc
    text = "aws:region" if head == "region" else f"{NAMESPACE}:{head}"
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


class PortalConfigError(Exception):
    """The stack config is invalid; `str()` is one line per problem:
    `Pulumi.<stack>.yaml: portal:<key.path>: what is wrong; how to fix it`."""

    def __init__(self, source: str, problems: list[tuple[Loc, str]]):
        self.lines = [
            f"{source}: {key_path(loc)}: {message}" if loc else f"{source}: {message}"
            for loc, message in problems
        ]
        super().__init__("\n".join(self.lines))


def _allowed_keys(loc: Loc) -> list[str]:
    model: Any = PortalStackConfig
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        model = field.annotation if field else None
        if not (isinstance(model, type) and issubclass(model, Model)):
            return []
    return sorted(model.model_fields)


def _schema_problem(error: Mapping[str, Any]) -> tuple[Loc, str]:
    loc: Loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        return (
            loc,
            f"unknown key; did you mean {close[0]!r}?"
            if close
            else f"unknown key; known keys: {', '.join(allowed)}",
        )
    if error["type"] == "missing":
        return loc, "is required"
    described = PATTERN_DESCRIPTIONS.get(str(error.get("ctx", {}).get("pattern", "")))
    if error["type"] == "string_pattern_mismatch" and described:
        return loc, f"{error.get('input')!r} {described}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and not message.startswith(repr(value)):
        message = f"{value!r}: {message}"
    return loc, message


def cross_field_problems(config: PortalStackConfig) -> Iterator[tuple[Loc, str]]:
    """What the schema cannot see alone: values that must agree with each other."""
    service, network, database = config.service, config.network, config.database
    cert_region = service.certificate_arn.split(":")[3]
    if cert_region != config.region:
        yield (
            ("service", "certificate_arn"),
            f"the certificate is in {cert_region}, the load balancer in {config.region}; "
            f"request or import the certificate in ACM in {config.region}",
        )
    memory = FARGATE_TASK_MEMORY_MIB[service.cpu]
    if service.memory_mib not in memory:
        yield (
            ("service", "memory_mib"),
            f"Fargate does not offer {service.memory_mib} MiB with {service.cpu} CPU units; "
            f"use {memory[0]} to {memory[-1]} MiB"
            + (f" in steps of {memory[1] - memory[0]}" if len(memory) > 2 else ""),
        )
    if database.max_allocated_storage_gib < database.allocated_storage_gib:
        yield (
            ("database", "max_allocated_storage_gib"),
            f"{database.max_allocated_storage_gib} is below allocated_storage_gib "
            f"({database.allocated_storage_gib}); set it at or above that",
        )
    if network.vpc_id is None:
        for field in ("public_subnet_ids", "private_subnet_ids"):
            if field in network.model_fields_set:
                yield ("network", field), "is only read with vpc_id; set vpc_id or remove this key"
        for index, zone in enumerate(network.availability_zones):
            if not zone.startswith(config.region):
                yield ("network", "availability_zones", index), f"{zone!r} is not in {config.region}"
        if len(network.availability_zones) == 1:
            yield (
                ("network", "availability_zones"),
                "name two AZs at least: the load balancer and the database need two",
            )
    else:
        for field in ("vpc_cidr", "availability_zones", "nat_gateways"):
            if field in network.model_fields_set:
                yield ("network", field), "only applies to a new VPC; remove it or remove vpc_id"
        needed = ["private_subnet_ids"] + ([] if network.internal else ["public_subnet_ids"])
        for field in needed:
            if len(getattr(network, field)) < 2:
                yield (
                    ("network", field),
                    "list two subnets at least (in different AZs) with vpc_id: "
                    "the load balancer and the database need two AZs",
                )


def parse_portal_config(values: Mapping[str, Any], source: str) -> PortalStackConfig:
    """Schema, then the cross-field rules; raises `PortalConfigError` naming every problem."""
    try:
        config = PortalStackConfig.model_validate(dict(values))
    except ValidationError as exc:
        raise PortalConfigError(source, [_schema_problem(e) for e in exc.errors()]) from None
    problems = list(cross_field_problems(config))
    if problems:
        raise PortalConfigError(source, problems)
    return config


def model_input(stack_config: Mapping[str, Any]) -> dict[str, Any]:
    """`{'portal:service': …, 'aws:region': …}` → `{'service': …, 'region': …}`; other keys
    (another package's settings) are not ours to check."""
    values: dict[str, Any] = {}
    for key, value in stack_config.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            values["region"] = value
        elif namespace == NAMESPACE and name:
            values[name] = value
    return values


def load_portal_stack_file(path: Path) -> PortalStackConfig:
    return parse_portal_config(model_input(read_stack_file(path)), path.name)


def load_portal_pulumi_config() -> PortalStackConfig:
    """Inside the program: the same parse, from the engine's config for this stack."""
    values: dict[str, Any] = {}
    for field in PortalStackConfig.model_fields:
        if field == "region":
            raw = pulumi.Config("aws").get("region")
            if raw is not None:
                values[field] = raw
            continue
        raw = pulumi.Config(NAMESPACE).get(field)
        if raw is not None:
            # Objects and lists arrive as JSON text; a plain string is itself.
            try:
                values[field] = json.loads(raw)
            except json.JSONDecodeError:
                values[field] = raw
    return parse_portal_config(values, f"Pulumi.{pulumi.get_stack()}.yaml")


# ---------------------------------------------------------------------------------------------
# Plain values the program derives (pure, so tests read them directly)
# ---------------------------------------------------------------------------------------------
def database_url(host: str, port: int) -> str:
    """`HPC_PORTAL_DATABASE_URL`: user, host and database, never the password (`PGPASSWORD`)."""
    return f"postgresql+psycopg://{DATABASE_USER}@{host}:{port}/{DATABASE_NAME}?sslmode=require"


def backend_url(bucket: str, region: str) -> str:
    """`HPC_PORTAL_BACKEND_URL`: Pulumi's S3 backend in the state bucket."""
    return f"s3://{bucket}?region={region}"


def json_key(secret_arn: str, key: str) -> str:
    """ECS `valueFrom` for one key of a JSON secret (`arn:…:secret:name:key::`)."""
    return f"{secret_arn}:{key}::"


def managed_secret_arn(secrets: Sequence[Any]) -> str:
    """The ARN of the secret RDS keeps the master password in (`manage_master_user_password`)."""
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise ValueError("RDS reported no master user secret although it manages the password")
    return str(arn)


def ecr_repository_arn(image: str, partition: str = "aws") -> str | None:
    """The ECR repository an image is pulled from, or None for another registry."""
    match = ECR_IMAGE.match(image)
    if not match:
        return None
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


def ecs_tasks_trust(account_id: str, partition: str, region: str) -> dict[str, Any]:
    """Only ECS tasks of this account may assume the role (confused-deputy guard)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account_id}:*"},
                },
            }
        ],
    }


def execution_role_policy(
    *, image: str, log_group_arn: str, secret_arns: list[str], key_arn: str, partition: str
) -> dict[str, Any]:
    """What ECS needs to start the task: pull the image, write its logs, read its two secrets."""
    statements: list[dict[str, Any]] = []
    repository = ecr_repository_arn(image, partition)
    if repository:
        statements += [
            # GetAuthorizationToken has no resource-level permissions.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "PullImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": repository,
            },
        ]
    statements += [
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
        {
            "Sid": "InjectSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arns,
        },
        {"Sid": "DecryptSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def task_role_policy(*, bucket_arn: str, key_arn: str, deployment_role_arns: list[str]) -> dict[str, Any]:
    """What the portal itself may do: keep Pulumi state in its bucket and assume the deployment
    roles. Creating HPC resources is the deployment roles' business, never the task's."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
            {
                # Pulumi's S3 backend writes and deletes its lock and checkpoint objects.
                "Sid": "ReadWriteState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/*",
            },
            {
                "Sid": "StateEncryption",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
            },
            {
                "Sid": "AssumeDeploymentRoles",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Resource": list(deployment_role_arns),
            },
        ],
    }


# ---------------------------------------------------------------------------------------------
# The program
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowLogTarget:
    """Where a new VPC's flow logs go (the portal's encrypted log group for them)."""

    log_group_arn: pulumi.Output[str]
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]


@dataclass(frozen=True)
class Network:
    vpc_id: pulumi.Output[str]
    load_balancer_subnet_ids: pulumi.Output[Sequence[str]]
    private_subnet_ids: pulumi.Output[Sequence[str]]


def network(prefix: str, config: PortalStackConfig, flow_logs: FlowLogTarget | None) -> Network:
    """An existing VPC as given, or a new one (awsx) with its flow log (`flow_logs`)."""
    settings = config.network
    if settings.vpc_id is not None:
        private = pulumi.Output.from_input(list(settings.private_subnet_ids))
        public = pulumi.Output.from_input(list(settings.public_subnet_ids))
        return Network(
            vpc_id=pulumi.Output.from_input(settings.vpc_id),
            load_balancer_subnet_ids=private if settings.internal else public,
            private_subnet_ids=private,
        )
    zones = settings.availability_zones or [f"{config.region}a", f"{config.region}b"]
    vpc = awsx.ec2.Vpc(
        f"{prefix}-vpc",
        cidr_block=settings.vpc_cidr,
        availability_zone_names=zones,
        nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
            strategy=awsx.ec2.NatGatewayStrategy(settings.nat_gateways)
        ),
        subnet_specs=[
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=24),
            awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=22),
        ],
        enable_dns_hostnames=True,
        tags={**config.tags, "Name": f"{prefix}-vpc"},
    )
    if flow_logs is None:
        raise ValueError("a new VPC needs its flow-log target")
    # Every VPC has a flow log (the policy pack's `vpc-flow-logs`; NIST 800-171 3.13.1, 3.14.6). An
    # existing VPC's flow logs are its owner's business.
    region = config.region
    trust = _json(
        pulumi.Output.all(flow_logs.account_id, flow_logs.partition).apply(
            lambda v: flow_logs_trust_policy(v[0], v[1], region)
        )
    )
    role = aws.iam.Role(f"{prefix}-flow-logs-role", assume_role_policy=trust)
    aws.iam.RolePolicy(
        f"{prefix}-flow-logs-policy",
        role=role.id,
        policy=_json(flow_logs.log_group_arn.apply(flow_logs_delivery_policy)),
    )
    aws.ec2.FlowLog(
        f"{prefix}-flow-log",
        vpc_id=vpc.vpc_id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=flow_logs.log_group_arn,
        iam_role_arn=role.arn,
    )
    private_ids: pulumi.Output[Sequence[str]] = vpc.private_subnet_ids
    public_ids: pulumi.Output[Sequence[str]] = vpc.public_subnet_ids
    return Network(
        vpc_id=vpc.vpc_id,
        load_balancer_subnet_ids=private_ids if settings.internal else public_ids,
        private_subnet_ids=private_ids,
    )


def _json(value: pulumi.Output[Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(value)


def program() -> None:
    try:
        config = load_portal_pulumi_config()
    except PortalConfigError as exc:
        # RunError: the engine prints the lines without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    env = profile(config.environment)
    prefix = f"{env.name_prefix}-portal"
    tags = config.tags
    register_compliance_tags(tags)
    durable = pulumi.ResourceOptions(protect=env.protect_data)
    service, db = config.service, config.database
    region = config.region

    caller = aws.get_caller_identity_output()
    partition = aws.get_partition_output()
    account_id, part, dns_suffix = caller.account_id, partition.partition, partition.dns_suffix

    # --- key, logs, state bucket ----------------------------------------------------------------
    log_group_name = f"/hpc/{prefix}"
    flow_log_group_name = f"{log_group_name}/flow-logs"
    key = aws.kms.Key(
        f"{prefix}-key",
        description=f"{prefix}: database, secrets, state bucket and logs",
        enable_key_rotation=True,
        deletion_window_in_days=env.kms_deletion_window_days,
        policy=_json(
            pulumi.Output.all(account_id, part, dns_suffix).apply(
                lambda v: {
                    "Version": "2012-10-17",
                    "Statement": [
                        account_root_statement(v[1], v[0]),
                        cloudwatch_logs_statement(
                            region=region,
                            dns_suffix=v[2],
                            log_group_arns=[
                                log_group_arn(v[1], region, v[0], name)
                                for name in (log_group_name, flow_log_group_name)
                            ],
                            sid="CloudWatchLogsEncryptsThePortalLogs",
                        ),
                    ],
                }
            )
        ),
        opts=durable,
    )
    aws.kms.Alias(f"{prefix}-key-alias", name=f"alias/{prefix}", target_key_id=key.key_id)
    logs = aws.cloudwatch.LogGroup(
        f"{prefix}-logs",
        name=log_group_name,
        retention_in_days=service.log_retention_days,
        kms_key_id=key.arn,
    )

    bucket = aws.s3.Bucket(f"{prefix}-state", opts=durable)
    harden_bucket(f"{prefix}-state", bucket, kms_key_arn=key.arn)
    aws.s3.BucketPolicy(
        f"{prefix}-state-policy",
        bucket=bucket.id,
        policy=_json(
            bucket.arn.apply(
                lambda arn: {"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn)]}
            )
        ),
    )

    # --- network and security groups --------------------------------------------------------------
    flow_logs: FlowLogTarget | None = None
    if config.network.vpc_id is None:
        flow_log_group = aws.cloudwatch.LogGroup(
            f"{prefix}-flow-logs",
            name=flow_log_group_name,
            retention_in_days=service.log_retention_days,
            kms_key_id=key.arn,
        )
        flow_logs = FlowLogTarget(flow_log_group.arn, account_id, part)
    net = network(prefix, config, flow_logs)
    alb_sg = aws.ec2.SecurityGroup(
        f"{prefix}-alb-sg",
        vpc_id=net.vpc_id,
        description=f"{prefix}: load balancer",
        tags={"Name": f"{prefix}-alb"},
    )
    task_sg = aws.ec2.SecurityGroup(
        f"{prefix}-task-sg",
        vpc_id=net.vpc_id,
        description=f"{prefix}: portal tasks",
        tags={"Name": f"{prefix}-task"},
    )
    db_sg = aws.ec2.SecurityGroup(
        f"{prefix}-db-sg", vpc_id=net.vpc_id, description=f"{prefix}: database", tags={"Name": f"{prefix}-db"}
    )
    for index, cidr in enumerate(config.network.allowed_cidrs):
        for port in (443, 80):
            aws.vpc.SecurityGroupIngressRule(
                f"{prefix}-alb-in-{port}-{index}",
                security_group_id=alb_sg.id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description="HTTPS" if port == 443 else "HTTP, redirected to HTTPS",
            )
    aws.vpc.SecurityGroupEgressRule(
        f"{prefix}-alb-to-task",
        security_group_id=alb_sg.id,
        referenced_security_group_id=task_sg.id,
        ip_protocol="tcp",
        from_port=service.container_port,
        to_port=service.container_port,
        description="to the portal tasks",
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{prefix}-task-from-alb",
        security_group_id=task_sg.id,
        referenced_security_group_id=alb_sg.id,
        ip_protocol="tcp",
        from_port=service.container_port,
        to_port=service.container_port,
        description="from the load balancer",
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{prefix}-task-https",
        security_group_id=task_sg.id,
        cidr_ipv4="0.0.0.0/0",
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        description="AWS APIs (ECR, Secrets Manager, STS, S3, the deployment roles' services)",
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{prefix}-task-to-db",
        security_group_id=task_sg.id,
        referenced_security_group_id=db_sg.id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        description="to the database",
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{prefix}-db-from-task",
        security_group_id=db_sg.id,
        referenced_security_group_id=task_sg.id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        description="from the portal tasks",
    )

    # --- database: RDS keeps the master password in Secrets Manager -------------------------------
    subnet_group = aws.rds.SubnetGroup(
        f"{prefix}-db-subnets",
        name=f"{prefix}-db",
        subnet_ids=net.private_subnet_ids,
        description=f"{prefix}: private subnets",
    )
    database = aws.rds.Instance(
        f"{prefix}-db",
        identifier=f"{prefix}-db",
        engine="postgres",
        engine_version=db.engine_version,
        instance_class=db.instance_class,
        allocated_storage=db.allocated_storage_gib,
        max_allocated_storage=db.max_allocated_storage_gib,
        storage_type="gp3",
        storage_encrypted=True,
        kms_key_id=key.arn,
        db_name=DATABASE_NAME,
        username=DATABASE_USER,
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        db_subnet_group_name=subnet_group.name,
        vpc_security_group_ids=[db_sg.id],
        publicly_accessible=False,
        multi_az=db.multi_az,
        backup_retention_period=env.database_backup_retention_days,
        deletion_protection=env.database_deletion_protection,
        skip_final_snapshot=not env.final_backups,
        final_snapshot_identifier=f"{prefix}-db-final" if env.final_backups else None,
        copy_tags_to_snapshot=True,
        auto_minor_version_upgrade=True,
        enabled_cloudwatch_logs_exports=["postgresql"],
        opts=durable,
    )
    db_secret_arn = database.master_user_secrets.apply(managed_secret_arn)

    # --- the state backend's secrets passphrase: generated, kept in Secrets Manager ----------------
    passphrase = random.RandomPassword(f"{prefix}-passphrase-random", length=48, special=False)
    passphrase_secret = aws.secretsmanager.Secret(
        f"{prefix}-passphrase",
        description=f"{prefix}: Pulumi secrets passphrase of the portal's stacks",
        kms_key_id=key.arn,
        recovery_window_in_days=env.secret_recovery_window_days,
        opts=durable,
    )
    aws.secretsmanager.SecretVersion(
        f"{prefix}-passphrase-value",
        secret_id=passphrase_secret.id,
        secret_string=passphrase.result,  # a secret output of RandomPassword
    )

    # --- IAM: the execution role starts the task; the task role is what the portal may do ----------
    trust = _json(pulumi.Output.all(account_id, part).apply(lambda v: ecs_tasks_trust(v[0], v[1], region)))
    execution_role = aws.iam.Role(f"{prefix}-execution", assume_role_policy=trust)
    aws.iam.RolePolicy(
        f"{prefix}-execution-policy",
        role=execution_role.id,
        policy=_json(
            pulumi.Output.all(logs.arn, db_secret_arn, passphrase_secret.arn, key.arn, part).apply(
                lambda v: execution_role_policy(
                    image=service.image,
                    log_group_arn=v[0],
                    secret_arns=[v[1], v[2]],
                    key_arn=v[3],
                    partition=v[4],
                )
            )
        ),
    )
    task_role = aws.iam.Role(f"{prefix}-task", assume_role_policy=trust)
    aws.iam.RolePolicy(
        f"{prefix}-task-policy",
        role=task_role.id,
        policy=_json(
            pulumi.Output.all(bucket.arn, key.arn).apply(
                lambda v: task_role_policy(
                    bucket_arn=v[0], key_arn=v[1], deployment_role_arns=list(config.deployment_role_arns)
                )
            )
        ),
    )

    # --- load balancer and service (awsx) ------------------------------------------------------------
    cluster = aws.ecs.Cluster(
        f"{prefix}-cluster",
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
    )
    alb = awsx.lb.ApplicationLoadBalancer(
        f"{prefix}-alb",
        subnet_ids=net.load_balancer_subnet_ids,
        security_groups=[alb_sg.id],
        internal=config.network.internal,
        drop_invalid_header_fields=True,
        idle_timeout=ALB_IDLE_TIMEOUT_SECONDS,
        enable_deletion_protection=env.protect_data,
        listeners=[
            # The first listener forwards to the default target group (awsx's default action).
            awsx.lb.ListenerArgs(
                port=443,
                protocol="HTTPS",
                certificate_arn=service.certificate_arn,
                ssl_policy=service.ssl_policy,
                tags=tags,
            ),
            awsx.lb.ListenerArgs(
                port=80,
                protocol="HTTP",
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(
                        type="redirect",
                        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                            port="443", protocol="HTTPS", status_code="HTTP_301"
                        ),
                    )
                ],
                tags=tags,
            ),
        ],
        # Set in full: awsx would otherwise copy the first listener's port and protocol (443, HTTPS).
        default_target_group=awsx.lb.TargetGroupArgs(
            port=service.container_port,
            protocol="HTTP",
            target_type="ip",
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=service.health_check_path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=tags,
        ),
        tags=tags,
    )

    environment: dict[str, pulumi.Input[str]] = {
        "HPC_PORTAL_DATABASE_URL": pulumi.Output.all(database.address, database.port).apply(
            lambda v: database_url(v[0], int(v[1]))
        ),
        "HPC_PORTAL_BACKEND_URL": bucket.bucket.apply(lambda b: backend_url(b, region)),
        "AWS_REGION": region,
    }
    health_url = f"http://127.0.0.1:{service.container_port}{service.health_check_path}"
    awsx.ecs.FargateService(
        f"{prefix}-service",
        cluster=cluster.arn,
        desired_count=service.desired_count,
        # Private subnets, no public IP, only the task security group: awsx's default network
        # configuration would use the default VPC with a security group open to the world.
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=net.private_subnet_ids, security_groups=[task_sg.id], assign_public_ip=False
        ),
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
        health_check_grace_period_seconds=60,
        enable_ecs_managed_tags=True,
        propagate_tags="SERVICE",
        enable_execute_command=False,
        tags=tags,
        task_definition_args=awsx.ecs.FargateServiceTaskDefinitionArgs(
            family=prefix,
            cpu=str(service.cpu),
            memory=str(service.memory_mib),
            execution_role=awsx.awsx.DefaultRoleWithPolicyArgs(role_arn=execution_role.arn),
            task_role=awsx.awsx.DefaultRoleWithPolicyArgs(role_arn=task_role.arn),
            log_group=awsx.awsx.DefaultLogGroupArgs(existing=awsx.awsx.ExistingLogGroupArgs(name=logs.name)),
            tags=tags,
            container=awsx.ecs.TaskDefinitionContainerDefinitionArgs(
                name=CONTAINER_NAME,
                image=service.image,
                essential=True,
                command=[
                    "hpc-portal",
                    "serve",
                    "--host",
                    # All interfaces: the load balancer reaches the task on its own address.
                    "0.0.0.0",
                    "--port",
                    # The data dir stays the default (`.portal` under the image's working directory):
                    # scratch only (job work dirs, PULUMI_HOME); durable state is in RDS and S3.
                    str(service.container_port),
                ],
                port_mappings=[
                    awsx.ecs.TaskDefinitionPortMappingArgs(
                        container_port=service.container_port,
                        protocol="tcp",
                        target_group=alb.default_target_group,
                    )
                ],
                environment=[
                    awsx.ecs.TaskDefinitionKeyValuePairArgs(name=name, value=value)
                    for name, value in environment.items()
                ],
                secrets=[
                    awsx.ecs.TaskDefinitionSecretArgs(
                        name=DATABASE_PASSWORD_ENV,
                        value_from=db_secret_arn.apply(lambda a: json_key(a, "password")),
                    ),
                    awsx.ecs.TaskDefinitionSecretArgs(name=PASSPHRASE_ENV, value_from=passphrase_secret.arn),
                ],
                health_check=awsx.ecs.TaskDefinitionHealthCheckArgs(
                    command=[
                        "CMD",
                        "python",
                        "-c",
                        f"import urllib.request; urllib.request.urlopen({health_url!r})",
                    ],
                    interval=30,
                    timeout=5,
                    retries=3,
                    start_period=60,
                ),
                # An init process reaps the runner's children (pulumi and its plugins) and passes
                # signals on, so a job cancelled with SIGINT stops its whole process group.
                linux_parameters=awsx.ecs.TaskDefinitionLinuxParametersArgs(init_process_enabled=True),
                stop_timeout=CONTAINER_STOP_TIMEOUT_SECONDS,
            ),
        ),
    )

    pulumi.export("url", alb.load_balancer.apply(lambda lb: pulumi.Output.concat("https://", lb.dns_name)))
    pulumi.export("load_balancer_dns_name", alb.load_balancer.apply(lambda lb: lb.dns_name))
    pulumi.export("database_endpoint", database.endpoint)
    pulumi.export("database_secret_arn", db_secret_arn)
    pulumi.export("backend_url", bucket.bucket.apply(lambda b: backend_url(b, region)))
    pulumi.export("state_bucket", bucket.bucket)
    pulumi.export("task_role_arn", task_role.arn)
    pulumi.export("log_group", logs.name)
