"""ParallelCluster: the Slurm cluster and what it needs that ParallelCluster does not create.

- IAM: a head-node and a compute role with instance profiles, and the role of the cluster stack's
  Lambda functions (path `/parallelcluster/`, which the ParallelCluster API may pass). The API's
  default policies run ParallelCluster in restricted IAM mode: it may not create roles, so the
  cluster config names all three. ParallelCluster adds no permissions to roles it is given, so
  each carries what ParallelCluster grants its own roles (both DynamoDB tables, the cluster
  stacks, the DNS zone, artifacts), scoped to this cluster; the node roles also get the two AWS
  managed policies nodes need (SSM, CloudWatch agent), read access to the bootstrap scripts, the
  accounting-database secret (head node only) and `cloudwatch:PutMetricData` limited to the
  Slurm metrics namespace. `tests/test_pcluster_iam.py` holds them to ParallelCluster's own.
- Slurm accounting (optional): Aurora MySQL Serverless v2, encrypted with a customer KMS key, in
  the private subnets, reachable on 3306 only from the cluster-nodes security group. Its password
  is generated (`RandomPassword`) into a KMS-encrypted Secrets Manager secret, or taken from an
  existing secret; ParallelCluster only ever gets the secret's ARN.
- Bootstrap scripts (EFA check, node tuning, Slurm metrics agent) as KMS-encrypted objects in the
  data bucket.
- The ParallelCluster API: the official CloudFormation stack of the pinned version (`deploy`), or
  an existing endpoint.
- The cluster itself: the rendered config (`hpc_platform.pcluster.render`) applied through the
  API by the `ParallelClusterCluster` dynamic resource, carrying this stack's marker.

Reading order: args → resources → outputs → `register_outputs`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.mounts import SharedStorageMount
from hpc_platform.domain import metrics
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.limits import SLURMDBD_PASSWORD_SPECIALS
from hpc_platform.pcluster import bootstrap
from hpc_platform.pcluster.api_access import API_INVOKE_URL_OUTPUT, API_USER_ROLE_OUTPUT
from hpc_platform.pcluster.render import (
    SLURMDBD_PORT,
    ClusterRefs,
    DatabaseRef,
    ResolvedMount,
    ScriptRef,
    render_cluster_config,
)
from hpc_platform.pcluster.resource import ClusterResourceArgs, ParallelClusterCluster

TYPE_TOKEN = "hpc:cluster:ParallelCluster"

IAM_PATH = "/parallelcluster/"
"""Roles and instance profiles under this path: the ParallelCluster API may pass them to EC2."""
# AWS managed policy → the child-name suffix of its attachment.
MANAGED_POLICIES = {
    "AmazonSSMManagedInstanceCore": "ssm-core",
    "CloudWatchAgentServerPolicy": "cloudwatch-agent",
}
BOOTSTRAP_PREFIX = "bootstrap"
BOOTSTRAP_SCRIPTS = {
    "efa_check": bootstrap.EFA_CHECK,
    "node_tuning": bootstrap.NODE_TUNING,
    "slurm_metrics": bootstrap.SLURM_METRICS_AGENT,
}
METRICS_INTERVAL_SECONDS = 60
DB_MASTER_USERNAME = "slurmdbd"
DB_ENGINE = aws.rds.EngineType.AURORA_MYSQL
# Safe in slurmdbd's config, the cookbook's scripts and RDS (see the models).
DB_PASSWORD_SPECIALS = SLURMDBD_PASSWORD_SPECIALS
DB_PASSWORD_LENGTH = 32
API_TEMPLATE_URL = (
    "https://{region}-aws-parallelcluster.s3.{region}.amazonaws.com/parallelcluster/{version}/api/"
    "parallelcluster-api.yaml"
)
# ParallelCluster's DynamoDB tables and tags are named after the cluster.
PCLUSTER_DYNAMODB_PREFIX = "parallelcluster-"
PCLUSTER_SLURM_DYNAMODB_PREFIX = "parallelcluster-slurm-"
PCLUSTER_CLUSTER_NAME_TAG = "parallelcluster:cluster-name"
# The cluster's private hosted zone is `<cluster name, lower case>.pcluster.`.
PCLUSTER_DNS_DOMAIN = "pcluster"
# Lambda functions of the cluster stack that run with Iam.Roles.LambdaFunctionsRole; their names
# (and log groups) are `pcluster-<id>-<stack id suffix>`.
PCLUSTER_LAMBDA_PREFIX = "pcluster-"
PCLUSTER_LAMBDA_FUNCTIONS = ("CleanupResources", "CleanupRoute53")


# ---------------------------------------------------------------------------------------------
# What the cluster needs from other components (structural: EfaNetwork, DataRepository, LustreFs)
# ---------------------------------------------------------------------------------------------
class ClusterNetwork(Protocol):
    @property
    def vpc_id(self) -> pulumi.Output[str]: ...
    @property
    def head_node_subnet_id(self) -> pulumi.Output[str]: ...
    @property
    def private_subnet_ids(self) -> list[pulumi.Output[str]]: ...
    @property
    def queue_subnet_ids(self) -> dict[str, list[pulumi.Output[str]]]: ...
    @property
    def placement_group_names(self) -> dict[str, pulumi.Output[str]]: ...
    @property
    def efa_security_group_id(self) -> pulumi.Output[str]: ...
    @property
    def head_node_security_group_id(self) -> pulumi.Output[str]: ...


class ClusterDataRepository(Protocol):
    @property
    def bucket_name(self) -> pulumi.Output[str]: ...
    @property
    def bucket_arn(self) -> pulumi.Output[str]: ...
    @property
    def kms_key_arn(self) -> pulumi.Output[str]: ...


class SharedStorage(Protocol):
    def mounts(self) -> list[SharedStorageMount]: ...


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ParallelClusterArgs:
    config: StackConfig
    """The stack config: `cluster` drives the cluster; region, environment, observability
    (log retention) and compliance tags are read from it too."""
    network: ClusterNetwork
    """Subnets per queue, head-node subnet, security groups, placement groups (EfaNetwork)."""
    data: ClusterDataRepository
    """The data bucket and its KMS key: bootstrap scripts are stored there (DataRepository)."""
    storage: Sequence[SharedStorage] = ()
    """Components whose `mounts()` the cluster mounts by id (DataRepository's /home, LustreFs)."""
    stack_marker: str
    """`<project>/<stack>`: tags the cluster so a re-create adopts it instead of failing."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags for every taggable child and the cluster (compliance tags are added stack-wide)."""

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        *,
        network: ClusterNetwork,
        data: ClusterDataRepository,
        storage: Sequence[SharedStorage] = (),
        stack_marker: str | None = None,
    ) -> ParallelClusterArgs:
        marker = stack_marker or f"{pulumi.get_project()}/{pulumi.get_stack()}"
        return cls(config=config, network=network, data=data, storage=storage, stack_marker=marker)


# ---------------------------------------------------------------------------------------------
# Pure helpers: ARNs and policy documents (tested directly)
# ---------------------------------------------------------------------------------------------
def partition_of(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def assume_role_policy(partition: str) -> dict[str, Any]:
    """EC2 may assume the role (node roles)."""
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return _service_trust(f"ec2.{suffix}")


def lambda_assume_role_policy() -> dict[str, Any]:
    """Lambda may assume the role (the cluster stack's functions; the same principal in every
    partition)."""
    return _service_trust("lambda.amazonaws.com")


def _service_trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def bootstrap_read_policy(bucket_arn: str, prefix: str, kms_key_arn: str, region: str) -> dict[str, Any]:
    """Read the bootstrap scripts (and decrypt them through S3 only)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadBootstrapScripts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{bucket_arn}/{prefix}/*",
            },
            {
                "Sid": "DecryptBootstrapScriptsViaS3",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
        ],
    }


def database_secret_policy(secret_arn: str, kms_key_arn: str | None, region: str) -> dict[str, Any]:
    """Read the Slurm accounting password (head node: slurmdbd)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadSlurmdbdPassword",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn,
        }
    ]
    if kms_key_arn:
        statements.append(
            {
                "Sid": "DecryptSlurmdbdPasswordViaSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def metrics_policy(namespace: str = metrics.SLURM_NAMESPACE) -> dict[str, Any]:
    """Publish the Slurm metrics, and only into their namespace."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublishSlurmMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
            }
        ],
    }


def head_node_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    cluster_name: str,
    version: str,
    compute_subnet_ids: Sequence[str],
    compute_role_arn: str,
    key_name: str | None,
) -> dict[str, Any]:
    """What ParallelCluster gives a head-node role it creates itself, scoped to this cluster:
    launch and terminate compute nodes, read its stack, tables and artifacts, write the nodes' DNS
    records, pass the compute role."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    run_resources = [f"{ec2}:subnet/{subnet}" for subnet in compute_subnet_ids] + [
        f"{ec2}:{kind}/*"
        for kind in (
            "fleet",
            "network-interface",
            "instance",
            "volume",
            "security-group",
            "launch-template",
            "placement-group",
        )
    ]
    run_resources.append(f"arn:{partition}:ec2:{region}::image/*")
    if key_name:
        run_resources.append(f"{ec2}:key-pair/{key_name}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Ec2Describe",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:DescribeInstanceAttribute",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeVolumes",
                    "ec2:DescribeCapacityReservations",
                ],
                # EC2 Describe* calls support no resource-level permissions.
                "Resource": "*",
            },
            {
                "Sid": "Ec2TagsAndVolumes",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:CreateTags", "ec2:DetachVolume"],
                "Resource": [f"{ec2}:instance/*", f"{ec2}:volume/*"],
            },
            {
                "Sid": "Ec2RunInstancesCreateFleet",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": run_resources,
            },
            _terminate_cluster_instances(ec2, cluster_name, sid="Ec2TerminateOwnNodes"),
            {
                "Sid": "Ec2ConsoleOutputOfOwnNodes",
                "Effect": "Allow",
                "Action": "ec2:GetConsoleOutput",
                "Resource": f"{ec2}:instance/*",
                # The condition key ParallelCluster's own statement uses.
                "Condition": {"StringEquals": {f"aws:ResourceTag/{PCLUSTER_CLUSTER_NAME_TAG}": cluster_name}},
            },
            {
                "Sid": "PassComputeRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": compute_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            {
                "Sid": "ClusterStack",
                "Effect": "Allow",
                "Action": [
                    "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackResource",
                    "cloudformation:SignalResource",
                ],
                "Resource": f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{cluster_name}/*",
            },
            {
                "Sid": "ClusterTable",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                ],
                "Resource": _table_arn(partition, region, account_id, PCLUSTER_DYNAMODB_PREFIX, cluster_name),
            },
            {
                # Slurm node name ↔ instance mapping (clustermgtd writes it, compute nodes query it).
                "Sid": "SlurmTable",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                ],
                "Resource": _table_arn(
                    partition, region, account_id, PCLUSTER_SLURM_DYNAMODB_PREFIX, cluster_name
                ),
            },
            _cluster_dns_records(
                partition, cluster_name, ["route53:ChangeResourceRecordSets"], "ClusterDnsRecords"
            ),
            *_artifact_statements(partition, region, cluster_name, version, head=True),
        ],
    }


def compute_node_policy(
    *, partition: str, region: str, account_id: str, cluster_name: str, version: str
) -> dict[str, Any]:
    """What ParallelCluster gives a compute role it creates itself, scoped to this cluster."""
    stack = f"arn:{partition}:cloudformation:{region}:{account_id}:stack"
    slurm_table = _table_arn(partition, region, account_id, PCLUSTER_SLURM_DYNAMODB_PREFIX, cluster_name)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Ec2DescribeInstanceAttribute",
                "Effect": "Allow",
                "Action": "ec2:DescribeInstanceAttribute",
                "Resource": "*",
            },
            {
                # Compute nodes read their launch template's metadata from the queues stack, which
                # is nested: CloudFormation names it `<cluster>-<logical id>-<suffix>`.
                "Sid": "ClusterStack",
                "Effect": "Allow",
                "Action": "cloudformation:DescribeStackResource",
                "Resource": [f"{stack}/{cluster_name}/*", f"{stack}/{cluster_name}-*/*"],
            },
            {
                "Sid": "ClusterTable",
                "Effect": "Allow",
                "Action": ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem"],
                "Resource": _table_arn(partition, region, account_id, PCLUSTER_DYNAMODB_PREFIX, cluster_name),
            },
            {
                # A starting node finds its Slurm name by querying the InstanceId index.
                "Sid": "SlurmTableQuery",
                "Effect": "Allow",
                "Action": "dynamodb:Query",
                "Resource": [slurm_table, f"{slurm_table}/index/*"],
            },
            *_artifact_statements(partition, region, cluster_name, version, head=False),
        ],
    }


def lambda_functions_policy(
    *, partition: str, region: str, account_id: str, cluster_name: str, version: str
) -> dict[str, Any]:
    """What ParallelCluster gives the roles of its cluster-stack Lambda functions when it creates
    them (restricted IAM mode makes us create one role for all of them), scoped to this cluster:
    on stack deletion they delete the cluster's artifacts and DNS records and terminate its
    remaining instances."""
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/lambda/{PCLUSTER_LAMBDA_PREFIX}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeleteClusterArtifacts",
                "Effect": "Allow",
                "Action": [
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                ],
                "Resource": _cluster_artifact_arns(partition, cluster_name, version),
            },
            {
                # The functions' log groups are created by the cluster stack.
                "Sid": "FunctionLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{logs}{function}-*" for function in PCLUSTER_LAMBDA_FUNCTIONS],
            },
            {
                "Sid": "Ec2DescribeInstances",
                "Effect": "Allow",
                "Action": "ec2:DescribeInstances",
                # EC2 Describe* calls support no resource-level permissions.
                "Resource": "*",
            },
            _terminate_cluster_instances(
                f"arn:{partition}:ec2:{region}:{account_id}", cluster_name, sid="Ec2TerminateClusterInstances"
            ),
            {
                # The zone is created by the cluster stack, so its id is unknown here.
                "Sid": "ListClusterDnsRecords",
                "Effect": "Allow",
                "Action": "route53:ListResourceRecordSets",
                "Resource": f"arn:{partition}:route53:::hostedzone/*",
            },
            _cluster_dns_records(
                partition, cluster_name, ["route53:ChangeResourceRecordSets"], "DeleteClusterDnsRecords"
            ),
        ],
    }


def _table_arn(partition: str, region: str, account_id: str, prefix: str, cluster_name: str) -> str:
    return f"arn:{partition}:dynamodb:{region}:{account_id}:table/{prefix}{cluster_name}"


def _terminate_cluster_instances(ec2_arn: str, cluster_name: str, sid: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "ec2:TerminateInstances",
        "Resource": f"{ec2_arn}:instance/*",
        "Condition": {"StringEquals": {f"ec2:ResourceTag/{PCLUSTER_CLUSTER_NAME_TAG}": cluster_name}},
    }


def _cluster_dns_records(partition: str, cluster_name: str, actions: list[str], sid: str) -> dict[str, Any]:
    """Records in the cluster's private hosted zone. The zone is created by the cluster stack, so
    its id is unknown here: the grant is scoped by record name instead (nodes are named below the
    zone's domain)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": f"arn:{partition}:route53:::hostedzone/*",
        "Condition": {
            "ForAllValues:StringLike": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                    f"*.{cluster_name.lower()}.{PCLUSTER_DNS_DOMAIN}"
                ]
            }
        },
    }


def _cluster_artifact_arns(partition: str, cluster_name: str, version: str) -> list[str]:
    """ParallelCluster's per-account bucket and this cluster's artifact directory in it
    (`parallelcluster/<version>/clusters/<cluster name, lower case>-<random suffix>`)."""
    bucket = f"arn:{partition}:s3:::parallelcluster-*-v1-do-not-delete"
    return [bucket, f"{bucket}/parallelcluster/{version}/clusters/{cluster_name.lower()}-*"]


def _artifact_statements(
    partition: str, region: str, cluster_name: str, version: str, head: bool
) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ParallelClusterRegionalArtifacts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::{region}-aws-parallelcluster/*",
        }
    ]
    if head:
        # The cluster's artifacts in ParallelCluster's per-account bucket.
        statements.append(
            {
                "Sid": "ClusterArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": _cluster_artifact_arns(partition, cluster_name, version),
            }
        )
    return statements


def api_template_url(region: str, version: str) -> str:
    return API_TEMPLATE_URL.format(region=region, version=version)


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------
class ParallelCluster(pulumi.ComponentResource):
    """One ParallelCluster 3 Slurm cluster with its IAM, accounting database, scripts and API.

    Outputs worth knowing: `cluster_name`, `api_url`, `api_role_arn` (the role that calls the API),
    `head_node_instance_id`, `head_node_ip`,
    `cluster_status`, `head_node_role_arn`, `compute_role_arn`, `database_endpoint`,
    `database_secret_arn` (an ARN: the password itself is never an output).
    """

    cluster_name: pulumi.Output[str]
    api_url: pulumi.Output[str]
    api_role_arn: pulumi.Output[str | None]
    rendered_config: pulumi.Output[dict[str, Any]]
    head_node_role: aws.iam.Role
    compute_role: aws.iam.Role
    lambda_functions_role: aws.iam.Role
    head_node_instance_profile: aws.iam.InstanceProfile
    compute_instance_profile: aws.iam.InstanceProfile
    database_cluster: aws.rds.Cluster | None
    database_secret: aws.secretsmanager.Secret | None
    database_endpoint: pulumi.Output[str] | None
    database_secret_arn: pulumi.Output[str] | None
    cluster: ParallelClusterCluster
    head_node_instance_id: pulumi.Output[str | None]
    head_node_ip: pulumi.Output[str | None]
    cluster_status: pulumi.Output[str]
    head_node_role_arn: pulumi.Output[str]
    compute_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ParallelClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        config = args.config
        cluster = config.cluster
        region = config.region
        partition = partition_of(region)
        prod = config.environment == "prod"
        self._tags = dict(args.tags)
        self._policies: list[aws.iam.RolePolicy] = []
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        # --- bootstrap scripts ---------------------------------------------------------------
        prefix = f"{BOOTSTRAP_PREFIX}/{cluster.name}"
        self.bootstrap_objects: dict[str, aws.s3.BucketObjectv2] = {
            role: aws.s3.BucketObjectv2(
                f"{name}-bootstrap-{role.replace('_', '-')}",
                bucket=args.data.bucket_name,
                key=f"{prefix}/{filename}",
                content=bootstrap.script(filename),
                content_type="text/x-shellscript",
                server_side_encryption="aws:kms",
                kms_key_id=args.data.kms_key_arn,
                tags=self._tag(f"{cluster.name}-{filename}"),
                opts=child,
            )
            for role, filename in BOOTSTRAP_SCRIPTS.items()
        }
        # --- IAM -----------------------------------------------------------------------------
        self.head_node_role = self._role("head", "head node", partition)
        self.compute_role = self._role("compute", "compute nodes", partition)
        policy_opts = pulumi.ResourceOptions(parent=self)
        for role_key, role in (("head", self.head_node_role), ("compute", self.compute_role)):
            for managed, managed_key in MANAGED_POLICIES.items():
                aws.iam.RolePolicyAttachment(
                    f"{name}-{role_key}-{managed_key}",
                    role=role.name,
                    policy_arn=f"arn:{partition}:iam::aws:policy/{managed}",
                    opts=policy_opts,
                )
            self._inline(
                role_key,
                role,
                "bootstrap-read",
                pulumi.Output.all(args.data.bucket_arn, args.data.kms_key_arn).apply(
                    lambda v: bootstrap_read_policy(v[0], prefix, v[1], region)
                ),
            )
        compute_subnets = pulumi.Output.all(
            *[subnet for subnets in args.network.queue_subnet_ids.values() for subnet in subnets]
        )
        version = cluster.parallelcluster_version
        key_name = cluster.head_node.ssh_key_name
        self._inline(
            "head",
            self.head_node_role,
            "parallelcluster-head",
            pulumi.Output.all(account_id, compute_subnets, self.compute_role.arn).apply(
                lambda v: head_node_policy(
                    partition=partition,
                    region=region,
                    account_id=v[0],
                    cluster_name=cluster.name,
                    version=version,
                    compute_subnet_ids=sorted(set(v[1])),
                    compute_role_arn=v[2],
                    key_name=key_name,
                )
            ),
        )
        self._inline("head", self.head_node_role, "slurm-metrics", pulumi.Output.from_input(metrics_policy()))
        self._inline(
            "compute",
            self.compute_role,
            "parallelcluster-compute",
            account_id.apply(
                lambda account: compute_node_policy(
                    partition=partition,
                    region=region,
                    account_id=account,
                    cluster_name=cluster.name,
                    version=version,
                )
            ),
        )
        self.head_node_instance_profile = self._instance_profile("head", self.head_node_role)
        self.compute_instance_profile = self._instance_profile("compute", self.compute_role)
        # The cluster stack's Lambda functions: in restricted IAM mode (the API's default)
        # ParallelCluster may not create their role, so the config names this one.
        self.lambda_functions_role = self._role(
            "lambda", "cluster-stack Lambda functions", partition, trust=lambda_assume_role_policy()
        )
        self._inline(
            "lambda",
            self.lambda_functions_role,
            "parallelcluster-lambda",
            account_id.apply(
                lambda account: lambda_functions_policy(
                    partition=partition,
                    region=region,
                    account_id=account,
                    cluster_name=cluster.name,
                    version=version,
                )
            ),
        )

        # --- Slurm accounting database -------------------------------------------------------
        self.database_cluster = None
        self.database_secret = None
        self.database_endpoint = None
        self.database_secret_arn = None
        database: pulumi.Output[DatabaseRef | None] = pulumi.Output.from_input(None)
        database_ready: list[pulumi.Resource] = []
        if cluster.slurm.accounting.enabled:
            database, database_ready = self._database(args, prod)

        # --- ParallelCluster API ---------------------------------------------------------------
        if cluster.api.mode == "deploy":
            self.api_stack: aws.cloudformation.Stack | None = aws.cloudformation.Stack(
                f"{name}-api",
                name=f"{cluster.name}-pcluster-api",
                template_url=api_template_url(region, version),
                capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                # Restrict the API to this region (its default is every region).
                parameters={"Region": region},
                tags=self._tag(f"{cluster.name}-pcluster-api"),
                opts=child,
            )
            self.api_url = self.api_stack.outputs.apply(_invoke_url)
            # The template (CreateApiUserRole defaults to true) denies every caller but its own
            # user role; the provider assumes it (hpc_platform/pcluster/api_access.py).
            self.api_role_arn = self.api_stack.outputs.apply(_api_user_role)
        else:
            if not cluster.api.endpoint:
                raise ValueError(
                    "hpc:cluster.api.endpoint is required when hpc:cluster.api.mode is 'existing'; "
                    "set it to the ParallelCluster API invoke URL or use mode 'deploy'"
                )
            self.api_stack = None
            self.api_url = pulumi.Output.from_input(cluster.api.endpoint)
            self.api_role_arn = pulumi.Output.from_input(cluster.api.role_arn)

        # --- rendered config -------------------------------------------------------------------
        mounts = [mount for component in args.storage for mount in component.mounts()]
        marker = args.stack_marker
        extra_tags = dict(args.tags)
        scripts = {
            role: pulumi.Output.all(obj.bucket, obj.key).apply(lambda v: f"s3://{v[0]}/{v[1]}")
            for role, obj in self.bootstrap_objects.items()
        }
        spot_queues = ",".join(q.name for q in cluster.queues if q.capacity_type == "SPOT")

        def render(values: dict[str, Any]) -> dict[str, Any]:
            refs = ClusterRefs(
                head_node_subnet_id=values["head_subnet"],
                queue_subnet_ids=values["queue_subnets"],
                head_node_security_group_ids=[values["head_sg"], values["nodes_sg"]],
                compute_security_group_ids=[values["nodes_sg"]],
                placement_group_names=dict(values["placement_groups"] or {}),
                head_node_instance_profile_arn=values["head_profile"],
                compute_instance_profile_arn=values["compute_profile"],
                lambda_functions_role_arn=values["lambda_role"],
                shared_storage=[
                    ResolvedMount(m.name, m.mount_dir, m.storage_type, file_system_id, access_point_id)
                    for m, (file_system_id, access_point_id) in zip(mounts, values["mount_ids"], strict=True)
                ],
                head_node_scripts=[
                    ScriptRef(
                        values["scripts"]["slurm_metrics"],
                        (
                            cluster.name,
                            region,
                            metrics.SLURM_NAMESPACE,
                            str(METRICS_INTERVAL_SECONDS),
                            spot_queues,
                        ),
                    )
                ],
                efa_compute_scripts=[ScriptRef(values["scripts"]["efa_check"])],
                compute_scripts=[ScriptRef(values["scripts"]["node_tuning"])],
                database=values["database"],
                stack_marker=marker,
                extra_tags=extra_tags,
            )
            return render_cluster_config(config, refs)

        self.rendered_config = pulumi.Output.all(
            head_subnet=args.network.head_node_subnet_id,
            queue_subnets=pulumi.Output.all(
                **{queue: pulumi.Output.all(*ids) for queue, ids in args.network.queue_subnet_ids.items()}
            ),
            placement_groups=pulumi.Output.all(**dict(args.network.placement_group_names)),
            head_sg=args.network.head_node_security_group_id,
            nodes_sg=args.network.efa_security_group_id,
            head_profile=self.head_node_instance_profile.arn,
            compute_profile=self.compute_instance_profile.arn,
            lambda_role=self.lambda_functions_role.arn,
            mount_ids=pulumi.Output.all(
                *[pulumi.Output.all(m.file_system_id, m.access_point_id) for m in mounts]
            ),
            scripts=pulumi.Output.all(**scripts),
            database=database,
        ).apply(render)

        # --- the cluster -----------------------------------------------------------------------
        api = cluster.api
        self.cluster = ParallelClusterCluster(
            f"{name}-cluster",
            ClusterResourceArgs(
                cluster_name=cluster.name,
                region=region,
                api_url=self.api_url,
                api_role_arn=self.api_role_arn,
                cluster_config=self.rendered_config,
                parallelcluster_version=version,
                stack_marker=marker,
                allow_fleet_stop=api.allow_fleet_stop,
                dryrun_on_preview=api.dryrun_on_preview,
                retain_on_delete=api.retain_on_delete,
                create_timeout_minutes=api.create_timeout_minutes,
                update_timeout_minutes=api.update_timeout_minutes,
                delete_timeout_minutes=api.delete_timeout_minutes,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Nodes read scripts, roles and the DB secret while the cluster is created (and
                # the stack's functions run with their role's policy).
                depends_on=[
                    *self.bootstrap_objects.values(),
                    *self._policies,
                    self.head_node_instance_profile,
                    self.compute_instance_profile,
                    *database_ready,
                ],
            ),
        )

        # --- outputs -----------------------------------------------------------------------------
        self.cluster_name = pulumi.Output.from_input(cluster.name)
        self.head_node_instance_id = self.cluster.head_node_instance_id
        self.head_node_ip = self.cluster.head_node_ip
        self.cluster_status = self.cluster.cluster_status
        self.head_node_role_arn = self.head_node_role.arn
        self.compute_role_arn = self.compute_role.arn
        self.register_outputs(self.outputs())

    # --- outputs ---------------------------------------------------------------------------------
    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values (the cluster name is
        exported by the program itself). No secrets: the database password is only an ARN here."""
        outputs: dict[str, Any] = {
            "cluster_api_url": self.api_url,
            "cluster_status": self.cluster_status,
            "head_node_instance_id": self.head_node_instance_id,
            "head_node_ip": self.head_node_ip,
            "head_node_role_arn": self.head_node_role_arn,
            "compute_role_arn": self.compute_role_arn,
        }
        if self.database_endpoint is not None:
            outputs["slurm_database_endpoint"] = self.database_endpoint
        if self.database_secret_arn is not None:
            outputs["slurm_database_secret_arn"] = self.database_secret_arn
        return outputs

    # --- building blocks -------------------------------------------------------------------------
    def _tag(self, name: str) -> dict[str, str]:
        return {**self._tags, "Name": name}

    def _role(
        self, role_key: str, what: str, partition: str, trust: dict[str, Any] | None = None
    ) -> aws.iam.Role:
        return aws.iam.Role(
            f"{self._name}-{role_key}-role",
            path=IAM_PATH,
            description=f"ParallelCluster {what} ({self._name})",
            assume_role_policy=json.dumps(trust or assume_role_policy(partition)),
            max_session_duration=3600,
            tags=self._tag(f"{self._name}-{role_key}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _inline(
        self, role_key: str, role: aws.iam.Role, policy_name: str, document: pulumi.Output[dict[str, Any]]
    ) -> aws.iam.RolePolicy:
        policy = aws.iam.RolePolicy(
            f"{self._name}-{role_key}-{policy_name}",
            role=role.id,
            name=policy_name,
            policy=pulumi.Output.json_dumps(document),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._policies.append(policy)
        return policy

    def _instance_profile(self, role_key: str, role: aws.iam.Role) -> aws.iam.InstanceProfile:
        return aws.iam.InstanceProfile(
            f"{self._name}-{role_key}-profile",
            path=IAM_PATH,
            role=role.name,
            tags=self._tag(f"{self._name}-{role_key}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _database(
        self, args: ParallelClusterArgs, prod: bool
    ) -> tuple[pulumi.Output[DatabaseRef | None], list[pulumi.Resource]]:
        name = self._name
        config = args.config
        cluster = config.cluster
        accounting = cluster.slurm.accounting
        region = config.region
        child = pulumi.ResourceOptions(parent=self)
        identifier = f"{cluster.name.lower()}-slurmdb"

        key = aws.kms.Key(
            f"{name}-db-key",
            description=f"Slurm accounting database and its password ({cluster.name})",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tag(f"{identifier}-key"),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-db-key-alias", name=f"alias/{identifier}", target_key_id=key.key_id, opts=child
        )

        # Password: generated into a KMS-encrypted secret, or an existing secret.
        ready: list[pulumi.Resource] = []
        secret_kms_key_arn: pulumi.Output[str] | None
        if accounting.existing_password_secret_arn:
            secret_arn: pulumi.Output[str] = pulumi.Output.from_input(accounting.existing_password_secret_arn)
            secret_kms_key_arn = None
            master_password: pulumi.Output[str] = pulumi.Output.secret(
                aws.secretsmanager.get_secret_version_output(
                    secret_id=accounting.existing_password_secret_arn,
                    opts=pulumi.InvokeOutputOptions(parent=self),
                ).secret_string
            )
        else:
            password = random.RandomPassword(
                f"{name}-db-password",
                length=DB_PASSWORD_LENGTH,
                special=True,
                override_special=DB_PASSWORD_SPECIALS,
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                opts=child,
            )
            master_password = pulumi.Output.secret(password.result)
            self.database_secret = aws.secretsmanager.Secret(
                f"{name}-db-secret",
                name=f"{identifier}-password",
                description=f"Slurm accounting database password for {cluster.name} (slurmdbd)",
                kms_key_id=key.arn,
                recovery_window_in_days=30 if prod else 7,
                tags=self._tag(f"{identifier}-password"),
                opts=child,
            )
            version = aws.secretsmanager.SecretVersion(
                f"{name}-db-secret-value",
                secret_id=self.database_secret.id,
                # ParallelCluster reads the secret as the plain password (not JSON).
                secret_string=master_password,
                opts=child,
            )
            ready.append(version)
            secret_arn = self.database_secret.arn
            secret_kms_key_arn = key.arn

        self._inline(
            "head",
            self.head_node_role,
            "slurmdb-secret",
            pulumi.Output.all(secret_arn, secret_kms_key_arn).apply(
                lambda v: database_secret_policy(v[0], v[1], region)
            ),
        )

        security_group = aws.ec2.SecurityGroup(
            f"{name}-db-sg",
            vpc_id=args.network.vpc_id,
            description=f"Slurm accounting database ({cluster.name}): MySQL from cluster nodes only",
            tags=self._tag(f"{identifier}-sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-mysql-in-nodes",
            security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=SLURMDBD_PORT,
            to_port=SLURMDBD_PORT,
            referenced_security_group_id=args.network.efa_security_group_id,
            description="MySQL from cluster nodes (slurmdbd runs on the head node)",
            tags=self._tag(f"{identifier}-mysql-in"),
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            name=f"{identifier}-subnets",
            description=f"Private subnets of the Slurm accounting database ({cluster.name})",
            subnet_ids=args.network.private_subnet_ids,
            tags=self._tag(f"{identifier}-subnets"),
            opts=child,
        )
        self.database_cluster = aws.rds.Cluster(
            f"{name}-db",
            cluster_identifier=identifier,
            engine=DB_ENGINE,
            engine_mode="provisioned",
            master_username=DB_MASTER_USERNAME,
            master_password=master_password,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            storage_encrypted=True,
            kms_key_id=key.arn,
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=accounting.min_capacity_acu,
                max_capacity=accounting.max_capacity_acu,
            ),
            backup_retention_period=30 if prod else 7,
            preferred_backup_window="04:00-05:00",
            copy_tags_to_snapshot=True,
            deletion_protection=prod,
            skip_final_snapshot=not prod,
            final_snapshot_identifier=f"{identifier}-final" if prod else None,
            tags=self._tag(identifier),
            opts=child,
        )
        instance = aws.rds.ClusterInstance(
            f"{name}-db-1",
            identifier=f"{identifier}-1",
            cluster_identifier=self.database_cluster.id,
            instance_class="db.serverless",
            engine=DB_ENGINE,
            db_subnet_group_name=subnet_group.name,
            publicly_accessible=False,
            tags=self._tag(f"{identifier}-1"),
            opts=child,
        )
        ready.append(instance)
        self.database_endpoint = self.database_cluster.endpoint
        self.database_secret_arn = secret_arn
        database = pulumi.Output.all(self.database_cluster.endpoint, secret_arn).apply(
            lambda v: DatabaseRef(host=v[0], user_name=DB_MASTER_USERNAME, password_secret_arn=v[1])
        )
        return database, ready


def _api_user_role(outputs: Mapping[str, Any] | None) -> str:
    role = (outputs or {}).get(API_USER_ROLE_OUTPUT)
    if not role:
        raise ValueError(
            f"the ParallelCluster API stack has no {API_USER_ROLE_OUTPUT} output (it is created with "
            "CreateApiUserRole=true, the template's default)"
        )
    return str(role)


def _invoke_url(outputs: Mapping[str, Any] | None) -> str:
    url = (outputs or {}).get(API_INVOKE_URL_OUTPUT)
    if not url:
        raise ValueError(f"the ParallelCluster API stack has no {API_INVOKE_URL_OUTPUT} output")
    return str(url)
