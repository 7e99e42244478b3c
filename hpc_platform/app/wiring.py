"""The wiring: the validated stack config, mapped to each component's args.

The only place that reads `StackConfig` on behalf of the components. Each function takes the
config (and the components built before, for references between them) and returns the args of
one component; environment-dependent values come from the stack's row of the environment table
(`hpc_platform.domain.environments`), never from comparing environment names.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs
from components.lustre_fs import LustreFs, LustreFsArgs
from components.observability import ObservabilityArgs
from components.parallel_cluster import ParallelCluster, ParallelClusterArgs
from hpc_platform.app.cluster_config import ClusterRefs, ResolvedMount, render_cluster_config
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.environments import profile


def network_args(config: StackConfig, catalog: InstanceCatalog) -> EfaNetworkArgs:
    return EfaNetworkArgs.from_config(config, catalog)


def data_repository_args(config: StackConfig, network: EfaNetwork) -> DataRepositoryArgs:
    return DataRepositoryArgs.from_config(config, network)


def lustre_args(config: StackConfig, network: EfaNetwork, data: DataRepository) -> LustreFsArgs:
    return LustreFsArgs.from_config(config, network, data)


def cluster_args(
    config: StackConfig, *, network: EfaNetwork, data: DataRepository, lustre: LustreFs
) -> ParallelClusterArgs:
    """The cluster config rendered from the other components' outputs (the component adds what it
    creates itself: instance profiles, Lambda role, bootstrap scripts, accounting database)."""
    cluster = config.cluster
    environment = profile(config.environment)
    mounts = [*lustre.mounts(), *data.mounts()]

    def render(values: dict[str, Any]) -> dict[str, Any]:
        refs = ClusterRefs(
            head_node_subnet_id=values["head_subnet"],
            queue_subnet_ids=values["queue_subnets"],
            head_node_security_group_ids=[values["head_sg"], values["nodes_sg"]],
            compute_security_group_ids=[values["nodes_sg"]],
            placement_group_names=dict(values["placement_groups"] or {}),
            shared_storage=[
                ResolvedMount(m.name, m.mount_dir, m.storage_type, file_system_id, access_point_id)
                for m, (file_system_id, access_point_id) in zip(mounts, values["mount_ids"], strict=True)
            ],
        )
        return render_cluster_config(config, refs, environment)

    rendered = pulumi.Output.all(
        head_subnet=network.head_node_subnet_id,
        queue_subnets=pulumi.Output.all(
            **{queue: pulumi.Output.all(*ids) for queue, ids in network.queue_subnet_ids.items()}
        ),
        placement_groups=pulumi.Output.all(**dict(network.placement_group_names)),
        head_sg=network.head_node_security_group_id,
        nodes_sg=network.efa_security_group_id,
        mount_ids=pulumi.Output.all(
            *[pulumi.Output.all(m.file_system_id, m.access_point_id) for m in mounts]
        ),
    ).apply(render)

    accounting = cluster.slurm.accounting
    api = cluster.api
    return ParallelClusterArgs(
        cluster_name=cluster.name,
        region=config.region,
        parallelcluster_version=cluster.parallelcluster_version,
        cluster_config=rendered,
        data_bucket_name=data.bucket_name,
        data_bucket_arn=data.bucket_arn,
        data_kms_key_arn=data.kms_key_arn,
        efa_queues=[queue.name for queue in cluster.queues if queue.enable_efa],
        slurm_accounting=accounting.enabled,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        nodes_security_group_id=network.efa_security_group_id,
        accounting_min_capacity_acu=accounting.min_capacity_acu,
        accounting_max_capacity_acu=accounting.max_capacity_acu,
        accounting_password_secret_arn=accounting.existing_password_secret_arn,
        secret_recovery_window_days=environment.secret_recovery_window_days,
        database_backup_retention_days=environment.database_backup_retention_days,
        database_deletion_protection=environment.database_deletion_protection,
        database_final_snapshot=environment.final_backups,
        kms_deletion_window_days=environment.kms_deletion_window_days,
        api_mode=api.mode,
        api_endpoint=api.endpoint,
        api_role_arn=api.role_arn,
        allow_fleet_stop=api.allow_fleet_stop,
        dryrun_on_preview=api.dryrun_on_preview,
        retain_on_delete=api.retain_on_delete,
        create_timeout_minutes=api.create_timeout_minutes,
        update_timeout_minutes=api.update_timeout_minutes,
        delete_timeout_minutes=api.delete_timeout_minutes,
        stack_marker=f"{pulumi.get_project()}/{pulumi.get_stack()}",
    )


def observability_args(
    config: StackConfig, *, lustre: LustreFs, data: DataRepository, cluster: ParallelCluster
) -> ObservabilityArgs:
    return ObservabilityArgs.from_config(config, lustre=lustre, data=data, cluster=cluster)
