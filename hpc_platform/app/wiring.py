"""The wiring: the validated stack config, mapped to each component's args.

The only place that reads `StackConfig` on behalf of the components. Each function takes the
config (and the components built before, for references between them) and returns the args of
one component; environment-dependent values come from the stack's row of the environment table
(`hpc_platform.domain.environments`), never from comparing environment names.
"""

from __future__ import annotations

from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs, NatGateways
from components.lustre_fs import LustreFs, LustreFsArgs
from components.observability import ObservabilityArgs
from components.parallel_cluster import ParallelCluster, ParallelClusterArgs
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.environments import profile
from hpc_platform.domain.placement import queue_placements


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
        placement_group_queues=[queue.name for queue in config.cluster.queues if queue.enable_efa],
    )


def data_repository_args(config: StackConfig, network: EfaNetwork) -> DataRepositoryArgs:
    return DataRepositoryArgs.from_config(config, network)


def lustre_args(config: StackConfig, network: EfaNetwork, data: DataRepository) -> LustreFsArgs:
    return LustreFsArgs.from_config(config, network, data)


def cluster_args(
    config: StackConfig, *, network: EfaNetwork, data: DataRepository, lustre: LustreFs
) -> ParallelClusterArgs:
    return ParallelClusterArgs.from_config(config, network=network, data=data, storage=[lustre, data])


def observability_args(
    config: StackConfig, *, lustre: LustreFs, data: DataRepository, cluster: ParallelCluster
) -> ObservabilityArgs:
    return ObservabilityArgs.from_config(config, lustre=lustre, data=data, cluster=cluster)
