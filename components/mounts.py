"""The shape storage components hand to the cluster: one mount per shared file system.

LustreFs and DataRepository return these from `mounts()`; the ParallelCluster config turns them
into `SharedStorage` entries that mount existing file systems by id.
"""

from dataclasses import dataclass
from typing import Literal

import pulumi

StorageType = Literal["FsxLustre", "Efs"]


@dataclass(frozen=True)
class SharedStorageMount:
    name: str
    """ParallelCluster SharedStorage name (unique per cluster)."""
    mount_dir: str
    """Where nodes mount it, e.g. `/scratch`, `/projects`, `/home`."""
    storage_type: StorageType
    file_system_id: pulumi.Output[str]
    """Id of the existing file system: ParallelCluster mounts it, never owns it."""
    access_point_id: pulumi.Output[str] | None = None
    """EFS only: mount through this access point (its root directory and owner) instead of `/`."""
