"""The component library of the HPC platform: one ComponentResource per module, each with its
own typed args. Nothing here reads the platform's stack files; `hpc_platform.app.wiring` maps
them to these args, and any other Pulumi program can build the args itself (see `examples/`)."""

from components.audit_trail import AuditTrail, AuditTrailArgs
from components.data_repository import DataRepository, DataRepositoryArgs
from components.efa_network import EfaNetwork, EfaNetworkArgs
from components.lustre_fs import LustreFs, LustreFsArgs
from components.observability import Observability, ObservabilityArgs
from components.parallel_cluster import ParallelCluster, ParallelClusterArgs
from components.slurm_accounting import SlurmAccountingDatabase, SlurmAccountingDatabaseArgs

__all__ = [
    "AuditTrail",
    "AuditTrailArgs",
    "DataRepository",
    "DataRepositoryArgs",
    "EfaNetwork",
    "EfaNetworkArgs",
    "LustreFs",
    "LustreFsArgs",
    "Observability",
    "ObservabilityArgs",
    "ParallelCluster",
    "ParallelClusterArgs",
    "SlurmAccountingDatabase",
    "SlurmAccountingDatabaseArgs",
]
