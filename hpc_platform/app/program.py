"""The Pulumi program: one function that the real engine, the offline engine and the
Automation API all run.

It reads and validates the stack config before declaring anything, registers the compliance-tag
transform, then declares the components in dependency order and exports their outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.audit_trail import AuditTrail
from components.data_repository import DataRepository
from components.efa_network import EfaNetwork
from components.lustre_fs import LustreFs
from components.observability import Observability
from components.parallel_cluster import ParallelCluster
from hpc_platform.app import wiring
from hpc_platform.app.tagging import register_compliance_tags
from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.loader import LoadedConfig, load_pulumi_config
from hpc_platform.domain.environments import profile

GRAFANA_NAMESPACE = "grafana"
GRAFANA_AUTH_KEY = "auth"
"""`grafana:auth`: the Grafana provider's token key, set with `pulumi config set --secret`."""


def load_config_or_fail() -> LoadedConfig:
    """Parse the stack config; a bad value stops the program with one line per problem."""
    try:
        loaded = load_pulumi_config()
    except ConfigError as exc:
        # RunError: the engine prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for line in loaded.warning_lines():
        pulumi.log.warn(line)
    return loaded


def program() -> None:
    loaded = load_config_or_fail()
    config = loaded.config
    catalog = default_catalog()
    register_compliance_tags(config.tags)
    prefix = profile(config.environment).name_prefix

    # 1. network
    network = EfaNetwork(f"{prefix}-network", wiring.network_args(config, catalog))
    for key, value in network.outputs().items():
        pulumi.export(key, value)

    # 2. data: S3 data repository and EFS home, then Lustre (its associations need the bucket)
    data = DataRepository(f"{prefix}-data", wiring.data_repository_args(config, network))
    lustre = LustreFs(f"{prefix}-lustre", wiring.lustre_args(config, network, data))
    for key, value in {
        **data.outputs(),
        **lustre.outputs(),
        **wiring.lustre_throughput_outputs(config),
    }.items():
        pulumi.export(key, value)

    # 3. cluster. Its collector writes to the Prometheus workspace that Observability (step 4)
    # creates, while Observability watches the cluster's head node: the workspace's ARN and
    # endpoint reach the cluster as deferred outputs, resolved once Observability exists.
    workspace_arn: pulumi.Output[str] | None = None
    endpoint: pulumi.Output[str] | None = None
    resolve_workspace_arn: Callable[[pulumi.Output[str]], None] | None = None
    resolve_endpoint: Callable[[pulumi.Output[str]], None] | None = None
    if config.observability.enable_managed_prometheus:
        workspace_arn, resolve_workspace_arn = pulumi.deferred_output()
        endpoint, resolve_endpoint = pulumi.deferred_output()
    cluster = ParallelCluster(
        f"{prefix}-cluster",
        wiring.cluster_args(
            config,
            network=network,
            data=data,
            lustre=lustre,
            prometheus_workspace_arn=workspace_arn,
            prometheus_endpoint=endpoint,
        ),
    )
    for key, value in cluster.outputs().items():
        pulumi.export(key, value)
    # The Spot target the policy pack checks the rendered queues against.
    pulumi.export("spot_min_share", config.cluster.spot.min_share)

    # 4. observability. A Grafana service-account token, when set as the secret `grafana:auth`
    # (the Grafana provider's own key), provisions the dashboards; it never enters the stack schema.
    grafana_auth = pulumi.Config(GRAFANA_NAMESPACE).get_secret(GRAFANA_AUTH_KEY)
    if grafana_auth is not None and not config.observability.enable_managed_grafana:
        pulumi.log.warn(
            f"{loaded.source}: {GRAFANA_NAMESPACE}:{GRAFANA_AUTH_KEY}: is set but "
            "hpc:observability.enable_managed_grafana is off, so no dashboards are provisioned; "
            "turn Managed Grafana on or remove the token"
        )
    observability = Observability(
        f"{prefix}-observability",
        wiring.observability_args(
            config,
            scratch_file_system_id=lustre.scratch_file_system_id,
            persistent_file_system_id=lustre.persistent_file_system_id,
            efs_file_system_id=data.efs_file_system_id,
            cluster_name=cluster.cluster_name,
            head_node_instance_id=cluster.head_node_instance_id,
            grafana_auth=grafana_auth,
        ),
    )
    for key, value in observability.outputs().items():
        pulumi.export(key, value)
    if resolve_workspace_arn is not None and resolve_endpoint is not None:
        workspace = observability.prometheus_workspace
        if workspace is None:
            raise pulumi.RunError("Managed Prometheus is enabled but Observability made no workspace")
        resolve_workspace_arn(workspace.arn)
        resolve_endpoint(workspace.prometheus_endpoint)

    # 5. audit trail: CloudTrail, AWS Config and its rules (or the organization's, declared)
    audit = AuditTrail(f"{prefix}-audit", wiring.audit_args(config))
    for key, value in audit.outputs().items():
        pulumi.export(key, value)

    pulumi.export("environment", config.environment)
    pulumi.export("region", config.region)
    pulumi.export("cluster_name", config.cluster.name)
