"""The Pulumi program: one function that the real engine, the offline engine and the
Automation API all run.

It reads and validates the stack config before declaring anything, registers the compliance-tag
transform, then declares the components in dependency order and exports their outputs.
"""

from __future__ import annotations

import pulumi

from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs
from components.lustre_fs import LustreFs, LustreFsArgs
from hpc_platform.catalog import default_catalog
from hpc_platform.config import ConfigError, LoadedConfig, load_pulumi_config
from hpc_platform.tagging import register_compliance_tags


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
    prefix = f"hpc-{config.environment}"

    # 1. network
    network = EfaNetwork(f"{prefix}-network", EfaNetworkArgs.from_config(config, catalog))
    for key, value in network.outputs().items():
        pulumi.export(key, value)

    # 2. data: S3 data repository and EFS home, then Lustre (its associations need the bucket)
    data = DataRepository(f"{prefix}-data", DataRepositoryArgs.from_config(config, network))
    lustre = LustreFs(f"{prefix}-lustre", LustreFsArgs.from_config(config, network, data))
    for key, value in {**data.outputs(), **lustre.outputs()}.items():
        pulumi.export(key, value)

    # 3. cluster
    from components.parallel_cluster import ParallelCluster, ParallelClusterArgs

    cluster = ParallelCluster(
        f"{prefix}-cluster",
        ParallelClusterArgs.from_config(config, network=network, data=data, storage=[lustre, data]),
    )
    for key, value in cluster.outputs().items():
        pulumi.export(key, value)
    # The Spot target the policy pack checks the rendered queues against.
    pulumi.export("spot_min_share", config.cluster.spot.min_share)

    # 4. observability
    from components.observability import Observability, ObservabilityArgs

    observability = Observability(
        f"{prefix}-observability",
        ObservabilityArgs.from_config(config, lustre=lustre, data=data, cluster=cluster),
    )
    for key, value in observability.outputs().items():
        pulumi.export(key, value)

    pulumi.export("environment", config.environment)
    pulumi.export("region", config.region)
    pulumi.export("cluster_name", config.cluster.name)
