"""The runnable examples: each plans offline, without the platform's stack files or schema."""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

from hpc_platform.app.offline import run_offline
from hpc_platform.app.offline.engine import Plan
from hpc_platform.app.tagging import is_taggable
from tests.support.stacks import REPO_ROOT

SCRATCH_STORAGE = REPO_ROOT / "examples" / "scratch_storage" / "__main__.py"
REGION = "us-east-2"


def load(path: Path) -> ModuleType:
    """Import an example's `__main__.py` without running it (its `program()` runs under `__main__`)."""
    spec = importlib.util.spec_from_file_location(f"example_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def plan_scratch_storage() -> Plan:
    return run_offline(
        load(SCRATCH_STORAGE).program, stack="example", config={"aws:region": REGION}, region=REGION
    )


def test_scratch_storage_uses_only_pulumi_and_the_component_library() -> None:
    modules = imported_modules(SCRATCH_STORAGE)
    assert {"components.data_repository", "components.lustre_fs"} <= modules
    assert {m.split(".")[0] for m in modules} <= {"pulumi", "pulumi_aws", "components"}


def test_scratch_storage_plans_a_bucket_and_a_scratch_file_system_linked_to_it() -> None:
    plan = plan_scratch_storage()
    components = Counter(r.type for r in plan.resources if not r.custom)
    assert components["hpc:storage:DataRepository"] == components["hpc:storage:LustreFs"] == 1
    (file_system,) = plan.of_type("aws:fsx/lustreFileSystem:LustreFileSystem")
    subnet = plan.by_name("scratch-storage")
    group = plan.by_name("scratch-lustre-sg")
    assert file_system.inputs["deploymentType"] == "SCRATCH_2"
    assert (file_system.inputs["subnetIds"], file_system.inputs["securityGroupIds"]) == (
        subnet.id,
        [group.id],
    )
    (association,) = plan.of_type("aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation")
    bucket = plan.by_name("scratch-data-bucket")
    assert association.inputs["fileSystemId"] == file_system.id
    assert association.inputs["dataRepositoryPath"] == f"s3://{bucket.id}/datasets/"
    assert "autoExportPolicy" not in association.inputs["s3"]
    assert not plan.of_type("aws:efs/fileSystem:FileSystem")
    assert plan.outputs["scratch_file_system_id"] == file_system.id
    assert plan.outputs["data_bucket_name"] == bucket.id


def test_scratch_storage_tags_and_key_windows_come_from_its_own_args() -> None:
    plan = plan_scratch_storage()
    taggable = [r for r in plan.resources if r.custom and is_taggable(r.type)]
    assert len(taggable) > 10
    for resource in taggable:
        assert resource.inputs["tags"]["Project"] == plan.project, resource.name
    assert {key.inputs["deletionWindowInDays"] for key in plan.of_type("aws:kms/key:Key")} == {7}
