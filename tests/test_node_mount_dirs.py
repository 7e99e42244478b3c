"""Instance-store volumes and shared file systems never share a mount directory.

ParallelCluster 3.16.1 mounts a node's instance-store (NVMe) volumes at
`LocalStorage.EphemeralVolume.MountDir`, `/scratch` when omitted (`DEFAULT_EPHEMERAL_DIR`), and
warns (`DuplicateMountDirValidator`, `OverlappingMountDirValidator`) when a shared file system
uses the same or an enclosing directory: one of the two would hide the other on every node with
instance store (x2iedn, p4d, g5 …). The shared Lustre scratch is mounted at `/scratch`. These
tests load each stack's planned cluster config with ParallelCluster's own schema, so its defaults
apply, and compare the directories its config objects report.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned

MOUNT_DIRS_PARALLELCLUSTER_USES = r"""
import json, sys
from pcluster.constants import DEFAULT_EPHEMERAL_DIR
from pcluster.schemas.cluster_schema import ClusterSchema


def mount_dir(local_storage):
    # As ClusterConfig.local_mount_dir_instance_types_dict reads it.
    volume = local_storage.ephemeral_volume
    return volume.mount_dir if volume else DEFAULT_EPHEMERAL_DIR

cases = json.load(open(sys.argv[1]))
answer = {}
for stack, case in cases.items():
    config = ClusterSchema(cluster_name=case["cluster_name"]).load(case["config"])
    local = {"HeadNode": mount_dir(config.head_node.local_storage)}
    for queue in config.scheduling.queues:
        local[queue.name] = mount_dir(queue.compute_settings.local_storage)
    answer[stack] = {
        "local": local,
        "shared": {storage.name: storage.mount_dir for storage in config.shared_storage},
    }
print(json.dumps(answer))
"""


@pytest.fixture(scope="module")
def mount_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, str]]]:
    cases: dict[str, Any] = {}
    for stack in STACKS:
        (cluster,) = [r for r in planned(stack).plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
        cases[stack] = {
            "cluster_name": cluster.inputs["cluster_name"],
            "config": cluster.inputs["cluster_config"],
        }
    path = tmp_path_factory.mktemp("mount-dirs") / "cases.json"
    path.write_text(json.dumps(cases))
    result = run_pcluster_python(MOUNT_DIRS_PARALLELCLUSTER_USES, str(path))
    assert result.returncode == 0, result.stderr[-4000:]
    answer: dict[str, dict[str, dict[str, str]]] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def nested(a: str, b: str) -> bool:
    """The same directory, or one inside the other."""
    first, second = PurePosixPath(a), PurePosixPath(b)
    return first == second or first in second.parents or second in first.parents


@pytest.mark.parametrize("stack", STACKS)
def test_instance_store_never_mounts_over_a_shared_file_system(
    mount_dirs: dict[str, dict[str, dict[str, str]]], stack: str
) -> None:
    dirs = mount_dirs[stack]
    assert "scratch" in dirs["shared"], "the stacks mount a Lustre scratch file system"
    clashes = [
        f"{node} instance store at {local} vs {storage} at {shared}"
        for node, local in dirs["local"].items()
        for storage, shared in dirs["shared"].items()
        if nested(local, shared)
    ]
    assert clashes == [], f"{stack}: " + "; ".join(clashes)
