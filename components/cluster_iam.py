"""IAM policy documents of a ParallelCluster cluster's roles: pure functions, no Pulumi.

The API's default policies run ParallelCluster in restricted IAM mode: it may not create roles,
so the cluster config names a head-node role, a compute role and the role of the cluster stack's
Lambda functions, all created by `ParallelCluster`. ParallelCluster adds no permissions to roles
it is given, so each carries what ParallelCluster grants its own roles (both DynamoDB tables, the
cluster stacks, the DNS zone, artifacts), scoped to this cluster; the node roles also read the
bootstrap scripts, the head node the accounting-database secret, and both may publish metrics
only into the Slurm namespace. `tests/test_pcluster_iam.py` holds them to ParallelCluster's own.
"""

from collections.abc import Sequence
from typing import Any

from hpc_platform.domain import metrics

IAM_PATH = "/parallelcluster/"
"""Roles and instance profiles under this path: the ParallelCluster API may pass them to EC2."""
# AWS managed policy → the child-name suffix of its attachment.
MANAGED_POLICIES = {
    "AmazonSSMManagedInstanceCore": "ssm-core",
    "CloudWatchAgentServerPolicy": "cloudwatch-agent",
}
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


def prometheus_remote_write_policy(workspace_arn: str) -> dict[str, Any]:
    """The head node's metrics collector may write to this one Managed Prometheus workspace, and
    list the instances its EC2 discovery reads (Describe* calls take no resource-level
    permissions)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RemoteWriteToTheWorkspace",
                "Effect": "Allow",
                "Action": "aps:RemoteWrite",
                "Resource": workspace_arn,
            },
            {
                "Sid": "DiscoverClusterNodes",
                "Effect": "Allow",
                "Action": ["ec2:DescribeInstances", "ec2:DescribeAvailabilityZones"],
                "Resource": "*",
            },
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
