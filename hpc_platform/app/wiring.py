"""The wiring: the validated stack config, mapped to each component's args.

The only place that reads `StackConfig` on behalf of the components. Each function takes the
config (and the components built before, for references between them) and returns the args of
one component; environment-dependent values come from the stack's row of the environment table
(`hpc_platform.domain.environments`), never from comparing environment names.
"""

from __future__ import annotations

from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs
from components.lustre_fs import LustreFs, LustreFsArgs
from components.observability import ObservabilityArgs
from components.parallel_cluster import ParallelCluster, ParallelClusterArgs
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.models import StackConfig


def network_args(config: StackConfig, catalog: InstanceCatalog) -> EfaNetworkArgs:
    return EfaNetworkArgs.from_config(config, catalog)


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
