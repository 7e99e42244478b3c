"""Performance-target rules: targets `hpcctl verify` could never meet by construction."""

import re
from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.placement import resource_uses_efa
from hpc_platform.domain.verification import queue_max_nodes, storage_queue


def network_gbps(network_performance: str) -> float | None:
    """EC2's `NetworkPerformance` in Gbps: "100 Gigabit" → 100, "4x 100 Gigabit" → 400,
    "Up to 25 Gigabit" → 25 (the burst); the old words ("High") → None."""
    match = re.search(r"(?:(\d+)x\s*)?(\d+(?:\.\d+)?) Gigabit", network_performance)
    if match is None:
        return None
    return float(match.group(1) or 1) * float(match.group(2))


class JobStartTargetValidator(Validator):
    """A job on a node that is up cannot be allowed longer than one that waits for a node to boot."""

    name = "job-start-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        performance = config.performance
        if performance.max_job_start_seconds > performance.max_scale_up_seconds:
            yield Finding(
                ("performance", "max_job_start_seconds"),
                f"{performance.max_job_start_seconds:g} s is more than max_scale_up_seconds "
                f"({performance.max_scale_up_seconds:g} s), but a job on a node that is up starts "
                "before one that waits for a node to boot; lower it or raise max_scale_up_seconds",
            )


class NodeBandwidthTargetValidator(Validator):
    """osu_bw between two nodes cannot beat the instance type's network bandwidth."""

    name = "node-bandwidth-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        target = config.performance.min_node_bandwidth_gbps
        for queue in config.cluster.queues:
            for resource in queue.compute_resources:
                spec = catalog.get(resource.instance_type)
                if spec is None or not resource_uses_efa(queue, resource):
                    continue
                gbps = network_gbps(spec.network_performance)
                if gbps is not None and gbps < target:
                    yield Finding(
                        ("performance", "min_node_bandwidth_gbps"),
                        f"queue {queue.name} runs {resource.instance_type}, which has {gbps:g} Gbps of "
                        f"network bandwidth, below the {target:g} Gbps target, so `hpcctl verify` will "
                        "report it missed; lower the target or use an instance type with more bandwidth",
                        "WARNING",
                    )


class StorageTestNodesValidator(Validator):
    """IOR runs on one queue; it cannot use more nodes than that queue has."""

    name = "storage-test-nodes"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        nodes = config.performance.storage_test_nodes
        queue = storage_queue(config.cluster.queues)
        # Left at its default, the count is only a wish: `hpcctl verify` runs IOR on as many nodes
        # as the queue has, up to it. A count someone wrote down and the queue cannot reach is wrong.
        if queue is None or "storage_test_nodes" not in config.performance.model_fields_set:
            return
        most = queue_max_nodes(queue)
        if nodes > most:
            yield Finding(
                ("performance", "storage_test_nodes"),
                f"{nodes} nodes, but IOR runs on queue {queue.name}, which has at most {most}; lower it "
                f"to {most} or raise that queue's max_count",
            )


VALIDATORS: tuple[Validator, ...] = (
    JobStartTargetValidator(),
    NodeBandwidthTargetValidator(),
    StorageTestNodesValidator(),
)
