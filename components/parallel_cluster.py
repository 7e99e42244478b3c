"""ParallelCluster: the Slurm cluster and what it needs that ParallelCluster does not create.

- IAM: a head-node and a compute role with instance profiles, and the role of the cluster stack's
  Lambda functions (path `/parallelcluster/`, which the ParallelCluster API may pass), with the
  policy documents of `components.cluster_iam`, plus the two AWS managed policies nodes need (SSM,
  CloudWatch agent).
- Slurm accounting (optional): a `SlurmAccountingDatabase` child component; the head node's role
  may read its password secret.
- Bootstrap scripts (EFA check, node tuning, Slurm metrics agent) as KMS-encrypted objects in the
  data bucket; with a Managed Prometheus workspace, also node_exporter on every node, the Slurm
  exporter and the Prometheus agent on the head node with its rendered config
  (`hpc_platform.pcluster.prometheus`), and the head node's `aps:RemoteWrite` grant on that
  workspace only.
- The ParallelCluster API: the official CloudFormation stack of the pinned version (`deploy`), or
  an existing endpoint.
- The cluster itself: the caller's rendered config (`cluster_config`), completed with the keys
  this component owns (`hpc_platform.pcluster.completion`), applied through the API by the
  `ParallelClusterCluster` dynamic resource, carrying this stack's marker.

Reading order: args → resources → outputs → `register_outputs`.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.cluster_iam import (
    IAM_PATH,
    MANAGED_POLICIES,
    assume_role_policy,
    bootstrap_read_policy,
    compute_node_policy,
    database_secret_policy,
    head_node_policy,
    lambda_assume_role_policy,
    lambda_functions_policy,
    metrics_policy,
    partition_of,
    prometheus_remote_write_policy,
)
from components.slurm_accounting import SlurmAccountingDatabase, SlurmAccountingDatabaseArgs
from hpc_platform.domain import metrics
from hpc_platform.domain.limits import (
    API_TIMEOUT_DEFAULT_MINUTES,
    KMS_DEFAULT_DELETION_WINDOW_DAYS,
    PCLUSTER_DEFAULT_VERSION,
    SECRET_RECOVERY_WINDOW_RANGE_DAYS,
)
from hpc_platform.pcluster import bootstrap
from hpc_platform.pcluster.api_access import API_INVOKE_URL_OUTPUT, API_USER_ROLE_OUTPUT
from hpc_platform.pcluster.completion import (
    DatabaseRef,
    OwnedRefs,
    ScriptRef,
    complete_cluster_config,
    compute_subnet_ids,
    spot_queue_names,
    ssh_key_name,
)
from hpc_platform.pcluster.prometheus import (
    NODE_EXPORTER_PORT,
    SLURM_EXPORTER_PORT,
    SLURM_TEXTFILE_DIR,
    agent_config_yaml,
    pinned_script,
    remote_write_url,
)
from hpc_platform.pcluster.resource import ClusterResourceArgs, ParallelClusterCluster

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:cluster:ParallelCluster"

BOOTSTRAP_PREFIX = "bootstrap"
BOOTSTRAP_SCRIPTS = {
    "efa_check": bootstrap.EFA_CHECK,
    "node_tuning": bootstrap.NODE_TUNING,
    "slurm_metrics": bootstrap.SLURM_METRICS_AGENT,
}
# Only with a Managed Prometheus workspace.
PROMETHEUS_SCRIPTS = {
    "node_exporter": bootstrap.NODE_EXPORTER,
    "prometheus_agent": bootstrap.PROMETHEUS_AGENT,
}
PROMETHEUS_CONFIG = "prometheus.yml"
METRICS_INTERVAL_SECONDS = 60
API_TEMPLATE_URL = (
    "https://{region}-aws-parallelcluster.s3.{region}.amazonaws.com/parallelcluster/{version}/api/"
    "parallelcluster-api.yaml"
)
API_MODES = ("deploy", "existing")


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class ParallelClusterArgs:
    cluster_name: str
    """ParallelCluster cluster name (a letter, then letters, digits and hyphens; at most 60
    characters, 40 with accounting). Names the roles' scope, the scripts' prefix and the database;
    changing it replaces the cluster."""
    region: str
    """AWS region of the cluster (and of the API it is created through)."""
    cluster_config: pulumi.Input[Mapping[str, Any]]
    """The ParallelCluster cluster config (the YAML document as a mapping) without the keys this
    component sets itself: `HeadNode.Iam.InstanceProfile`, `SlurmQueues[].Iam.InstanceProfile`,
    `Iam.Roles.LambdaFunctionsRole`, `HeadNode.CustomActions`, `SlurmQueues[].CustomActions` and
    `Scheduling.SlurmSettings.Database` (see `hpc_platform.pcluster.completion`)."""
    parallelcluster_version: str = PCLUSTER_DEFAULT_VERSION
    """ParallelCluster (and API) version; changing it replaces the cluster."""
    data_bucket_name: pulumi.Input[str]
    """Bucket the bootstrap scripts are stored in (under `bootstrap/<cluster name>/`)."""
    data_bucket_arn: pulumi.Input[str]
    """ARN of that bucket: the node roles may read the scripts."""
    data_kms_key_arn: pulumi.Input[str]
    """KMS key the scripts are encrypted with (the node roles may decrypt through S3 only)."""
    efa_queues: Sequence[str] | None = None
    """Queues whose nodes run the EFA check before node tuning. None: every queue with a
    compute resource that has `Efa.Enabled`."""
    slurm_accounting: bool = False
    """Slurm accounting (slurmdbd) on an encrypted Aurora MySQL Serverless v2 database; needs
    `vpc_id`, `private_subnet_ids` and `nodes_security_group_id`."""
    vpc_id: pulumi.Input[str] | None = None
    """VPC of the accounting database."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Subnets of the accounting database (two Availability Zones at least)."""
    nodes_security_group_id: pulumi.Input[str] | None = None
    """The cluster nodes' security group: the only one that may reach the database."""
    accounting_min_capacity_acu: float = 0.5
    """Aurora Serverless v2 minimum capacity (ACUs)."""
    accounting_max_capacity_acu: float = 2
    """Aurora Serverless v2 maximum capacity (ACUs)."""
    accounting_password_secret_arn: str | None = None
    """An existing Secrets Manager secret with the database password (its plain string value);
    None: one is generated."""
    secret_recovery_window_days: int = SECRET_RECOVERY_WINDOW_RANGE_DAYS[0]
    """Waiting period before a deleted generated password secret is gone (AWS allows 7–30)."""
    database_backup_retention_days: int = 7
    """Automated backups of the accounting database."""
    database_deletion_protection: bool = False
    """RDS deletion protection on the accounting database."""
    database_final_snapshot: bool = False
    """A final snapshot of the accounting database when it is deleted."""
    kms_deletion_window_days: int = KMS_DEFAULT_DELETION_WINDOW_DAYS
    """Waiting period before the deleted accounting-database KMS key is gone (AWS allows 7–30)."""
    api_mode: str = "deploy"
    """`deploy`: the official ParallelCluster API stack of `parallelcluster_version`, called as the
    role it creates; `existing`: call `api_endpoint` (as `api_role_arn` when set)."""
    api_endpoint: pulumi.Input[str] | None = None
    """Invoke URL of an existing ParallelCluster API (mode `existing`)."""
    api_role_arn: pulumi.Input[str] | None = None
    """Role the provider assumes to call an existing API (mode `existing`)."""
    allow_fleet_stop: bool = False
    """Let an update stop (and restart) the compute fleet when ParallelCluster requires it."""
    dryrun_on_preview: bool = True
    """Validate the cluster config with a dry-run create/update during `pulumi preview`."""
    retain_on_delete: bool = False
    """Leave the cluster running when the resource is deleted."""
    create_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["create"]
    """How long `pulumi up` waits for CREATE_COMPLETE."""
    update_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["update"]
    """How long `pulumi up` waits for UPDATE_COMPLETE (and a fleet stop)."""
    delete_timeout_minutes: int = API_TIMEOUT_DEFAULT_MINUTES["delete"]
    """How long `pulumi destroy` waits for the cluster to disappear."""
    prometheus_workspace_arn: pulumi.Input[str] | None = None
    """Amazon Managed Prometheus workspace the head node's Prometheus agent remote-writes to (the
    head-node role may `aps:RemoteWrite` to it and nothing else). None: no collector, no
    exporters, no grant."""
    prometheus_endpoint: pulumi.Input[str] | None = None
    """That workspace's `prometheus_endpoint`; required with `prometheus_workspace_arn`."""
    stack_marker: str | None = None
    """Value of the cluster's `hpc-platform:stack` tag: a re-create adopts a cluster carrying it
    instead of failing. None: `<project>/<stack>` of the running program."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child, and cluster tags under the config's own `Tags`."""


def api_template_url(region: str, version: str) -> str:
    return API_TEMPLATE_URL.format(region=region, version=version)


def efa_queue_names(config: Mapping[str, Any]) -> list[str]:
    """Queues of a rendered config with a compute resource that has EFA enabled."""
    return [
        str(queue["Name"])
        for queue in (config.get("Scheduling") or {}).get("SlurmQueues") or []
        if any((resource.get("Efa") or {}).get("Enabled") for resource in queue.get("ComputeResources") or [])
    ]


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------
class ParallelCluster(pulumi.ComponentResource):
    """One ParallelCluster 3 Slurm cluster with its IAM, accounting database, scripts and API.

    `database_endpoint` and `database_secret_arn` are None without accounting (the password
    itself is never an output: only the ARN of its secret).
    """

    cluster_name: pulumi.Output[str]
    api_url: pulumi.Output[str]
    """Invoke URL of the ParallelCluster API the cluster is managed through."""
    api_role_arn: pulumi.Output[str | None]
    """The role that calls the API (None: the deployer's own credentials)."""
    rendered_config: pulumi.Output[dict[str, Any]]
    """The complete cluster config sent to ParallelCluster."""
    head_node_instance_id: pulumi.Output[str | None]
    head_node_ip: pulumi.Output[str | None]
    """Private IP address of the head node."""
    cluster_status: pulumi.Output[str]
    head_node_role_arn: pulumi.Output[str]
    compute_role_arn: pulumi.Output[str]
    database_endpoint: pulumi.Output[str] | None
    """Writer endpoint of the Slurm accounting database."""
    database_secret_arn: pulumi.Output[str] | None
    """ARN of the secret holding the accounting database password."""

    def __init__(
        self, name: str, args: ParallelClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        if args.api_mode not in API_MODES:
            raise ValueError(f"api_mode {args.api_mode!r} is not one of {', '.join(API_MODES)}")
        if args.api_mode == "existing" and not args.api_endpoint:
            raise ValueError(
                "api_endpoint is required when api_mode is 'existing'; set it to the ParallelCluster "
                "API invoke URL or use api_mode 'deploy'"
            )
        if (args.prometheus_workspace_arn is None) != (args.prometheus_endpoint is None):
            raise ValueError(
                "prometheus_workspace_arn and prometheus_endpoint go together: give both to install "
                "the metrics collector, or neither"
            )
        self._name = name
        cluster_name = args.cluster_name
        region = args.region
        version = args.parallelcluster_version
        partition = partition_of(region)
        self._tags = dict(args.tags)
        self._policies: list[aws.iam.RolePolicy] = []
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        config = pulumi.Output.from_input(args.cluster_config)

        # --- bootstrap scripts ---------------------------------------------------------------
        prefix = f"{BOOTSTRAP_PREFIX}/{cluster_name}"
        prometheus = args.prometheus_workspace_arn is not None
        scripts_to_ship = {**BOOTSTRAP_SCRIPTS, **(PROMETHEUS_SCRIPTS if prometheus else {})}
        self.bootstrap_objects: dict[str, aws.s3.BucketObjectv2] = {
            role: self._bootstrap_object(
                role,
                args,
                f"{prefix}/{filename}",
                # The metrics installers get their pinned downloads filled in.
                pinned_script(bootstrap.script(filename))
                if filename in PROMETHEUS_SCRIPTS.values()
                else bootstrap.script(filename),
                "text/x-shellscript",
            )
            for role, filename in scripts_to_ship.items()
        }
        self.prometheus_config: aws.s3.BucketObjectv2 | None = None
        if prometheus:
            # The agent's config, with the workspace's remote-write URL; the head node fetches it.
            self.prometheus_config = self._bootstrap_object(
                "prometheus_config",
                args,
                f"{prefix}/{PROMETHEUS_CONFIG}",
                pulumi.Output.from_input(args.prometheus_endpoint).apply(
                    lambda endpoint: agent_config_yaml(
                        cluster_name=cluster_name,
                        region=region,
                        remote_write=remote_write_url(str(endpoint)),
                    )
                ),
                "application/yaml",
            )
        # --- IAM -----------------------------------------------------------------------------
        self.head_node_role = self._role("head", "head node", partition)
        self.compute_role = self._role("compute", "compute nodes", partition)
        for role_key, role in (("head", self.head_node_role), ("compute", self.compute_role)):
            for managed, managed_key in MANAGED_POLICIES.items():
                aws.iam.RolePolicyAttachment(
                    f"{name}-{role_key}-{managed_key}",
                    role=role.name,
                    policy_arn=f"arn:{partition}:iam::aws:policy/{managed}",
                    opts=child,
                )
            self._inline(
                role_key,
                role,
                "bootstrap-read",
                pulumi.Output.all(args.data_bucket_arn, args.data_kms_key_arn).apply(
                    lambda v: bootstrap_read_policy(v[0], prefix, v[1], region)
                ),
            )
        self._inline(
            "head",
            self.head_node_role,
            "parallelcluster-head",
            pulumi.Output.all(account_id, config, self.compute_role.arn).apply(
                lambda v: head_node_policy(
                    partition=partition,
                    region=region,
                    account_id=v[0],
                    cluster_name=cluster_name,
                    version=version,
                    compute_subnet_ids=compute_subnet_ids(v[1]),
                    compute_role_arn=v[2],
                    key_name=ssh_key_name(v[1]),
                )
            ),
        )
        self._inline("head", self.head_node_role, "slurm-metrics", pulumi.Output.from_input(metrics_policy()))
        if prometheus:
            self._inline(
                "head",
                self.head_node_role,
                "prometheus-remote-write",
                pulumi.Output.from_input(args.prometheus_workspace_arn).apply(
                    lambda arn: prometheus_remote_write_policy(str(arn))
                ),
            )
        self._inline(
            "compute",
            self.compute_role,
            "parallelcluster-compute",
            account_id.apply(
                lambda account: compute_node_policy(
                    partition=partition,
                    region=region,
                    account_id=account,
                    cluster_name=cluster_name,
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
                    cluster_name=cluster_name,
                    version=version,
                )
            ),
        )

        # --- Slurm accounting database -------------------------------------------------------
        self.database: SlurmAccountingDatabase | None = None
        self.database_endpoint = None
        self.database_secret_arn = None
        database: pulumi.Output[DatabaseRef | None] = pulumi.Output.from_input(None)
        database_ready: list[pulumi.Resource] = []
        if args.slurm_accounting:
            self.database = self._database(args)
            database_ready = self.database.ready
            self.database_endpoint = self.database.endpoint
            self.database_secret_arn = self.database.secret_arn
            self._inline(
                "head",
                self.head_node_role,
                "slurmdb-secret",
                pulumi.Output.all(self.database.secret_arn, self.database.secret_kms_key_arn).apply(
                    lambda v: database_secret_policy(v[0], v[1], region)
                ),
            )
            database = pulumi.Output.all(
                self.database.endpoint, self.database.user_name, self.database.secret_arn
            ).apply(lambda v: DatabaseRef(host=v[0], user_name=v[1], password_secret_arn=v[2]))

        # --- ParallelCluster API ---------------------------------------------------------------
        if args.api_mode == "deploy":
            self.api_stack: aws.cloudformation.Stack | None = aws.cloudformation.Stack(
                f"{name}-api",
                name=f"{cluster_name}-pcluster-api",
                template_url=api_template_url(region, version),
                capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                # Restrict the API to this region (its default is every region).
                parameters={"Region": region},
                tags=self._tag(f"{cluster_name}-pcluster-api"),
                opts=child,
            )
            self.api_url = self.api_stack.outputs.apply(_invoke_url)
            # The template (CreateApiUserRole defaults to true) denies every caller but its own
            # user role; the provider assumes it (hpc_platform/pcluster/api_access.py).
            self.api_role_arn = self.api_stack.outputs.apply(_api_user_role)
        else:
            self.api_stack = None
            self.api_url = pulumi.Output.from_input(args.api_endpoint).apply(str)
            self.api_role_arn = pulumi.Output.from_input(args.api_role_arn)

        # --- the complete config ---------------------------------------------------------------
        marker = args.stack_marker or f"{pulumi.get_project()}/{pulumi.get_stack()}"
        shipped = dict(self.bootstrap_objects)
        if self.prometheus_config is not None:
            shipped["prometheus_config"] = self.prometheus_config
        scripts = {
            role: pulumi.Output.all(obj.bucket, obj.key).apply(lambda v: f"s3://{v[0]}/{v[1]}")
            for role, obj in shipped.items()
        }
        tags = dict(args.tags)
        efa_queues = None if args.efa_queues is None else tuple(args.efa_queues)

        def complete(values: dict[str, Any]) -> dict[str, Any]:
            rendered: Mapping[str, Any] = values["config"]
            urls = values["scripts"]
            metrics_args = (
                cluster_name,
                region,
                metrics.SLURM_NAMESPACE,
                str(METRICS_INTERVAL_SECONDS),
                ",".join(spot_queue_names(rendered)),
            )
            head_scripts = [ScriptRef(urls["slurm_metrics"], metrics_args)]
            compute_scripts = [ScriptRef(urls["node_tuning"])]
            if prometheus:
                exporter = (str(NODE_EXPORTER_PORT),)
                head_scripts = [
                    # node_exporter and the Slurm exporter first: the agent writes its text file
                    # into the exporter's directory, and the collector scrapes both.
                    ScriptRef(
                        urls["node_exporter"], (*exporter, str(SLURM_EXPORTER_PORT), SLURM_TEXTFILE_DIR)
                    ),
                    ScriptRef(urls["slurm_metrics"], (*metrics_args, SLURM_TEXTFILE_DIR)),
                    ScriptRef(urls["prometheus_agent"], (urls["prometheus_config"], region)),
                ]
                compute_scripts.append(ScriptRef(urls["node_exporter"], exporter))
            owned = OwnedRefs(
                head_node_instance_profile_arn=values["head_profile"],
                compute_instance_profile_arn=values["compute_profile"],
                lambda_functions_role_arn=values["lambda_role"],
                head_node_scripts=head_scripts,
                efa_compute_scripts=[ScriptRef(urls["efa_check"])],
                compute_scripts=compute_scripts,
                efa_queues=efa_queues if efa_queues is not None else efa_queue_names(rendered),
                database=values["database"],
                stack_marker=marker,
                tags=tags,
            )
            return complete_cluster_config(rendered, owned)

        self.rendered_config = pulumi.Output.all(
            config=config,
            head_profile=self.head_node_instance_profile.arn,
            compute_profile=self.compute_instance_profile.arn,
            lambda_role=self.lambda_functions_role.arn,
            scripts=pulumi.Output.all(**scripts),
            database=database,
        ).apply(complete)

        # --- the cluster -----------------------------------------------------------------------
        self.cluster = ParallelClusterCluster(
            f"{name}-cluster",
            ClusterResourceArgs(
                cluster_name=cluster_name,
                region=region,
                api_url=self.api_url,
                api_role_arn=self.api_role_arn,
                cluster_config=self.rendered_config,
                parallelcluster_version=version,
                stack_marker=marker,
                allow_fleet_stop=args.allow_fleet_stop,
                dryrun_on_preview=args.dryrun_on_preview,
                retain_on_delete=args.retain_on_delete,
                create_timeout_minutes=args.create_timeout_minutes,
                update_timeout_minutes=args.update_timeout_minutes,
                delete_timeout_minutes=args.delete_timeout_minutes,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Nodes read scripts, roles and the DB secret while the cluster is created (and
                # the stack's functions run with their role's policy).
                depends_on=[
                    *shipped.values(),
                    *self._policies,
                    self.head_node_instance_profile,
                    self.compute_instance_profile,
                    *database_ready,
                ],
            ),
        )

        # --- outputs -----------------------------------------------------------------------------
        self.cluster_name = pulumi.Output.from_input(cluster_name)
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

    def _bootstrap_object(
        self,
        role: str,
        args: ParallelClusterArgs,
        key: str,
        content: pulumi.Input[str],
        content_type: str,
    ) -> aws.s3.BucketObjectv2:
        """A KMS-encrypted object under the cluster's bootstrap prefix (the node roles read it)."""
        return aws.s3.BucketObjectv2(
            f"{self._name}-bootstrap-{role.replace('_', '-')}",
            bucket=args.data_bucket_name,
            key=key,
            content=content,
            content_type=content_type,
            server_side_encryption="aws:kms",
            kms_key_id=args.data_kms_key_arn,
            tags=self._tag(f"{args.cluster_name}-{key.rsplit('/', 1)[-1]}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

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

    def _database(self, args: ParallelClusterArgs) -> SlurmAccountingDatabase:
        missing = [
            key
            for key in ("vpc_id", "private_subnet_ids", "nodes_security_group_id")
            if getattr(args, key) is None
        ]
        if missing:
            raise ValueError(
                f"slurm_accounting needs {', '.join(missing)} (the database's network); pass them or "
                "turn accounting off"
            )
        assert args.vpc_id is not None and args.private_subnet_ids is not None
        assert args.nodes_security_group_id is not None
        return SlurmAccountingDatabase(
            f"{self._name}-db",
            SlurmAccountingDatabaseArgs(
                cluster_name=args.cluster_name,
                vpc_id=args.vpc_id,
                subnet_ids=args.private_subnet_ids,
                client_security_group_id=args.nodes_security_group_id,
                min_capacity_acu=args.accounting_min_capacity_acu,
                max_capacity_acu=args.accounting_max_capacity_acu,
                existing_password_secret_arn=args.accounting_password_secret_arn,
                secret_recovery_window_days=args.secret_recovery_window_days,
                backup_retention_days=args.database_backup_retention_days,
                deletion_protection=args.database_deletion_protection,
                final_snapshot=args.database_final_snapshot,
                kms_deletion_window_days=args.kms_deletion_window_days,
                tags=self._tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


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
