"""The wiring: the validated stack config, mapped to each component's args.

The only place that reads `StackConfig` on behalf of the components. Each function takes the
config (and the components built before, for references between them) and returns the args of
one component; environment-dependent values come from the stack's row of the environment table
(`hpc_platform.domain.environments`), never from comparing environment names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs
from components.lustre_fs import DataRepositoryAssociationArgs, LustreFs, LustreFsArgs
from components.observability import ObservabilityArgs
from components.parallel_cluster import ParallelCluster, ParallelClusterArgs
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.models import DataRepositoryAssociationConfig, StackConfig
from hpc_platform.domain.environments import profile
from hpc_platform.domain.performance import MB_PER_GB, throughput_model


def network_args(config: StackConfig, catalog: InstanceCatalog) -> EfaNetworkArgs:
    return EfaNetworkArgs.from_config(config, catalog)


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
    config: StackConfig, *, network: EfaNetwork, data: DataRepository, lustre: LustreFs
) -> ParallelClusterArgs:
    return ParallelClusterArgs.from_config(config, network=network, data=data, storage=[lustre, data])


def observability_args(
    config: StackConfig, *, lustre: LustreFs, data: DataRepository, cluster: ParallelCluster
) -> ObservabilityArgs:
    return ObservabilityArgs.from_config(config, lustre=lustre, data=data, cluster=cluster)
