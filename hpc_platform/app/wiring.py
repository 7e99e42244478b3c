"""The wiring: the validated stack config, mapped to each component's args.

The only place that reads `StackConfig` on behalf of the components. Each function takes the
config (and the components built before, for references between them) and returns the args of
one component; environment-dependent values come from the stack's row of the environment table
(`hpc_platform.domain.environments`), never from comparing environment names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from components.audit_trail import AuditMode, AuditTrailArgs
from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs, NatGateways
from components.lustre_fs import DataRepositoryAssociationArgs, LustreFs, LustreFsArgs
from components.observability import MonitoredLustre, ObservabilityArgs
from components.parallel_cluster import ParallelClusterArgs
from hpc_platform.app.cluster_config import ClusterRefs, ResolvedMount, render_cluster_config
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.compliance import MANAGED_RULES
from hpc_platform.domain.config.models import DataRepositoryAssociationConfig, StackConfig
from hpc_platform.domain.environments import profile
from hpc_platform.domain.limits import LUSTRE_PERSISTENT_2, LUSTRE_SCRATCH_2
from hpc_platform.domain.performance import MB_PER_GB, throughput_model
from hpc_platform.domain.placement import needs_placement_group, queue_placements


def network_args(config: StackConfig, catalog: InstanceCatalog) -> EfaNetworkArgs:
    """The stack's VPC; each queue in the AZs the domain placed it in, a cluster placement group
    per EFA queue. No extra tags: the stack transform adds the compliance tags."""
    network = config.network
    placements = queue_placements(config, catalog)
    return EfaNetworkArgs(
        region=config.region,
        availability_zones=list(network.availability_zones),
        public_subnet_cidrs=network.subnets.public,
        private_subnet_cidrs=network.subnets.private,
        compute_subnet_cidrs=network.subnets.compute,
        storage_subnet_cidrs=network.subnets.storage,
        vpc_cidr=network.vpc_cidr,
        nat_gateways=NatGateways(network.nat_gateways),
        interface_endpoints=list(network.interface_endpoints),
        enable_s3_gateway_endpoint=network.enable_s3_gateway_endpoint,
        enable_flow_logs=network.flow_logs.enabled,
        flow_log_traffic_type=network.flow_logs.traffic_type,
        flow_log_retention_days=network.flow_logs.retention_days,
        flow_log_key_deletion_window_days=profile(config.environment).kms_deletion_window_days,
        ssh_ingress_cidrs=list(network.ssh_ingress_cidrs),
        queue_availability_zones={queue: list(placement.azs) for queue, placement in placements.items()},
        placement_group_queues=[
            queue.name
            for queue in config.cluster.queues
            if needs_placement_group(queue.enable_efa, queue.capacity_type)
        ],
    )


def data_repository_args(config: StackConfig, network: EfaNetwork) -> DataRepositoryArgs:
    storage = config.storage
    lifecycle = storage.data_bucket.lifecycle
    efs = storage.efs_home
    environment = profile(config.environment)
    return DataRepositoryArgs(
        region=config.region,
        # EfaNetwork makes one private subnet per AZ, in `availability_zones` order; the AZ names
        # the mount target.
        efs_mount_subnet_ids=dict(
            zip(config.network.availability_zones, network.private_subnet_ids, strict=True)
        ),
        efs_security_group_ids=[network.efs_security_group_id],
        force_destroy=storage.data_bucket.force_destroy,
        access_logging=storage.data_bucket.enable_access_logging,
        access_log_retention_days=config.observability.log_retention_days,
        intelligent_tiering=lifecycle.enable_intelligent_tiering,
        warm_after_days=lifecycle.warm_after_days,
        cold_after_days=lifecycle.cold_after_days,
        archive_after_days=lifecycle.archive_after_days,
        archive_prefix=lifecycle.archive_prefix,
        noncurrent_version_expiration_days=lifecycle.noncurrent_version_expiration_days,
        abort_incomplete_multipart_days=lifecycle.abort_incomplete_multipart_days,
        efs_home=efs.enabled,
        efs_throughput_mode=efs.throughput_mode,
        efs_performance_mode=efs.performance_mode,
        efs_transition_to_ia=efs.transition_to_ia,
        efs_backup=efs.enable_backup,
        protect_data=environment.protect_data,
        kms_key_deletion_window_days=environment.kms_deletion_window_days,
    )


def _associations(
    associations: Sequence[DataRepositoryAssociationConfig],
) -> tuple[DataRepositoryAssociationArgs, ...]:
    return tuple(
        DataRepositoryAssociationArgs(
            file_system_path=association.file_system_path,
            bucket_prefix=association.bucket_prefix,
            import_events=tuple(association.import_events),
            export_events=tuple(association.export_events),
            batch_import_metadata_on_create=association.batch_import_metadata_on_create,
        )
        for association in associations
    )


def lustre_args(config: StackConfig, network: EfaNetwork, data: DataRepository) -> LustreFsArgs:
    storage = config.storage
    scratch, persistent = storage.scratch, storage.persistent
    environment = profile(config.environment)
    return LustreFsArgs(
        region=config.region,
        subnet_id=network.storage_subnet_id,
        security_group_ids=[network.lustre_security_group_id],
        data_bucket=data.bucket_name,
        scratch=scratch.enabled,
        scratch_capacity_gib=scratch.capacity_gib,
        scratch_data_compression=scratch.data_compression,
        scratch_import_path=scratch.import_path,
        scratch_export_path=scratch.export_path,
        scratch_associations=_associations(scratch.data_repository_associations),
        persistent=persistent.enabled,
        persistent_capacity_gib=persistent.capacity_gib,
        persistent_throughput_mbps_per_tib=persistent.throughput_mbps_per_tib,
        persistent_data_compression=persistent.data_compression,
        persistent_customer_kms_key=persistent.enable_customer_kms_key,
        persistent_backup_retention_days=persistent.automatic_backup_retention_days,
        persistent_root_squash=persistent.root_squash,
        persistent_associations=_associations(persistent.data_repository_associations),
        log_retention_days=config.observability.log_retention_days,
        protect_data=environment.protect_data,
        final_backup=environment.final_backups,
        kms_key_deletion_window_days=environment.kms_deletion_window_days,
    )


def lustre_throughput_outputs(config: StackConfig) -> dict[str, Any]:
    """Stack outputs that put the expected Lustre baselines (scratch, persistent, aggregate, in
    MB/s, rounded for people reading a plan) next to the design target. Read from the domain's
    performance model: LustreFs does not compute throughput."""
    model = throughput_model(config)
    by_role = {fs.role: fs.baseline_mbps for fs in model.file_systems}
    target_mbps = None if model.target_gbps is None else model.target_gbps * MB_PER_GB
    outputs: dict[str, Any] = {
        "lustre_throughput_mbps": {
            "scratch": round(float(by_role.get("scratch", 0.0)), 1),
            "persistent": round(float(by_role.get("persistent", 0.0)), 1),
            "aggregate": round(float(model.aggregate_mbps), 1),
            "target": None if target_mbps is None else round(target_mbps, 1),
        }
    }
    if model.meets_target is not None:
        outputs["lustre_throughput_meets_target"] = model.meets_target
    return outputs


def cluster_args(
    config: StackConfig,
    *,
    network: EfaNetwork,
    data: DataRepository,
    lustre: LustreFs,
    prometheus_workspace_arn: pulumi.Input[str] | None = None,
    prometheus_endpoint: pulumi.Input[str] | None = None,
) -> ParallelClusterArgs:
    """The cluster config rendered from the other components' outputs (the component adds what it
    creates itself: instance profiles, Lambda role, bootstrap scripts, accounting database). With
    Managed Prometheus on, the workspace the head node's collector writes to; off, none is passed,
    so no collector, exporter or grant is installed."""
    if not config.observability.enable_managed_prometheus:
        prometheus_workspace_arn = prometheus_endpoint = None
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
        prometheus_workspace_arn=prometheus_workspace_arn,
        prometheus_endpoint=prometheus_endpoint,
        stack_marker=f"{pulumi.get_project()}/{pulumi.get_stack()}",
    )


def observability_args(
    config: StackConfig,
    *,
    scratch_file_system_id: pulumi.Input[str] | None,
    persistent_file_system_id: pulumi.Input[str] | None,
    efs_file_system_id: pulumi.Input[str] | None,
    cluster_name: pulumi.Input[str],
    head_node_instance_id: pulumi.Input[str | None] | None,
    grafana_auth: pulumi.Input[str] | None = None,
) -> ObservabilityArgs:
    """Thresholds, budgets and switches from `hpc:observability`; ids from the components that own
    the resources. A Lustre file system is watched when the config enables it and LustreFs made it
    (its id is given); its capacity and deployment type come from `hpc:storage`."""
    settings = config.observability
    thresholds = settings.alarm_thresholds
    budget = settings.budget
    storage = config.storage
    lustre: list[MonitoredLustre] = []
    for name, fs_config, fs_id, deployment_type in (
        ("scratch", storage.scratch, scratch_file_system_id, LUSTRE_SCRATCH_2),
        ("persistent", storage.persistent, persistent_file_system_id, LUSTRE_PERSISTENT_2),
    ):
        if fs_config.enabled and fs_id is not None:
            lustre.append(
                MonitoredLustre(
                    name=name,
                    file_system_id=fs_id,
                    capacity_gib=fs_config.capacity_gib,
                    deployment_type=deployment_type,
                )
            )
    environment = profile(config.environment)
    return ObservabilityArgs(
        cluster_name=cluster_name,
        region=config.region,
        resource_prefix=environment.name_prefix,
        queue_names=[queue.name for queue in config.cluster.queues],
        head_node_instance_id=head_node_instance_id,
        lustre_file_systems=lustre,
        efs_file_system_id=efs_file_system_id,
        notification_emails=list(settings.notification_emails),
        fsx_free_capacity_percent=thresholds.fsx_free_capacity_percent,
        queue_pending_jobs=thresholds.queue_pending_jobs,
        head_node_cpu_percent=thresholds.head_node_cpu_percent,
        spot_interruptions_per_hour=thresholds.spot_interruptions_per_hour,
        monthly_budget_usd=budget.monthly_limit_usd if budget is not None else None,
        research_group_budgets_usd=dict(budget.per_research_group) if budget is not None else {},
        # No budget config: no budgets, so no thresholds to notify at.
        budget_alert_thresholds_percent=list(budget.alert_thresholds_percent) if budget is not None else [],
        log_retention_days=settings.log_retention_days,
        enable_managed_prometheus=settings.enable_managed_prometheus,
        enable_managed_grafana=settings.enable_managed_grafana,
        grafana_auth=grafana_auth if settings.enable_managed_grafana else None,
        kms_deletion_window_days=environment.kms_deletion_window_days,
        # Compliance tags come from the stack transform; nothing else is stack-wide here.
    )


def audit_args(config: StackConfig) -> AuditTrailArgs:
    """`hpc:audit` as the AuditTrail's args; the trail is named after the environment, and its
    bucket and key are protected like the environment's other data."""
    audit = config.audit
    environment = profile(config.environment)
    return AuditTrailArgs(
        region=config.region,
        trail_name=f"{environment.name_prefix}-trail",
        mode=AuditMode(audit.mode),
        existing_trail_arn=audit.existing_trail_arn,
        existing_config_recorder_name=audit.existing_config_recorder_name,
        log_retention_days=audit.log_retention_days,
        config_rules=MANAGED_RULES if audit.enable_managed_rules else (),
        protect_data=environment.protect_data,
        kms_key_deletion_window_days=environment.kms_deletion_window_days,
    )
