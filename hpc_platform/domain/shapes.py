"""The shapes of stack config the derivations read, as read-only protocols.

The derivations (`placement`, `spot`) take plain values first; their convenience wrappers take
anything of these shapes. The config models (`hpc_platform.domain.config.models`) fit them, and so
does any other object with the same attributes: the derivations never import the stack schema, so
the component library and the ParallelCluster layer may call them (the import contract forbids
those layers the schema, even indirectly).
"""

from collections.abc import Sequence
from typing import Protocol


class ComputeResourceShape(Protocol):
    @property
    def instance_type(self) -> str: ...

    @property
    def max_count(self) -> int: ...

    @property
    def enable_efa(self) -> bool | None: ...


class QueueShape(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def capacity_type(self) -> str: ...

    @property
    def enable_efa(self) -> bool: ...

    @property
    def availability_zone(self) -> str | None: ...

    @property
    def job_exclusive_allocation(self) -> bool | None: ...

    @property
    def compute_resources(self) -> Sequence[ComputeResourceShape]: ...


class NetworkShape(Protocol):
    @property
    def availability_zones(self) -> Sequence[str]: ...


class ClusterShape(Protocol):
    @property
    def queues(self) -> Sequence[QueueShape]: ...


class StackShape(Protocol):
    @property
    def region(self) -> str: ...

    @property
    def network(self) -> NetworkShape: ...

    @property
    def cluster(self) -> ClusterShape: ...
