"""`hpc_platform.app.plan_diff`, the one comparison of two offline plans: `hpcctl plan --against`,
the `check --format github` base section and `scripts/compare_plans.py` all render its result, so
they match resources alike (URN, then type and name) and agree on what moved and what changed."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hpc_platform.app.offline.engine import UNKNOWN_PLACEHOLDER, Plan, PlannedResource
from hpc_platform.app.plan_diff import compare_plans
from hpc_platform.app.preview import render_against
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.stacks import REPO_ROOT, planned

VPC = "hpc-dev-network-vpc"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_plans", REPO_ROOT / "scripts" / "compare_plans.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(tmp_path: Path, before: dict[str, Any], after: dict[str, Any]) -> tuple[int, str, str]:
    paths = [tmp_path / "before.json", tmp_path / "after.json"]
    for path, document in zip(paths, (before, after), strict=True):
        path.write_text(json.dumps(document))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = _script().main([str(p) for p in paths])
    return code, out.getvalue(), err.getvalue()


def _doc(*resources: tuple[str, str, str, dict[str, Any]]) -> dict[str, Any]:
    """A plan document: (parent URN, type, name, inputs) per resource, URNs as Pulumi forms them."""
    rows = []
    for parent, type_, name, inputs in resources:
        parent_type = parent.split("::")[-2] if parent else ""
        chain = f"{parent_type}${type_}" if parent_type else type_
        urn = f"urn:pulumi:s::p::{chain}::{name}"
        rows.append({"urn": urn, "type": type_, "name": name, "parent": parent, "inputs": inputs})
    return {"resources": rows}


def test_a_resource_under_a_new_parent_is_one_move_in_every_view(tmp_path: Path) -> None:
    """`plan --against` matched by URN and showed a moved resource as one create and one delete;
    the GitHub summary and the script matched by type and name and called it a move. Pulumi
    replaces it unless it has an alias, and the change is the same resource's, so all say "move"."""
    plan = planned("dev").plan
    current = plan.to_json()
    base = copy.deepcopy(current)
    (vpc,) = [r for r in base["resources"] if r["name"] == VPC]
    new_urn = vpc["urn"]
    vpc["urn"] = new_urn.replace("$aws:ec2/vpc:Vpc::", "$hpc:network:Old$aws:ec2/vpc:Vpc::")

    lines = render_against(plan, base, "base.json")
    assert lines[1:5] == [
        "    + 0 to create",
        "    - 0 to delete",
        "    ~ 0 to update",
        "    > 1 to move to a new parent (replaced unless it has an alias)",
    ]
    assert lines[5] == f"        {vpc['urn']} → {new_urn}"
    assert lines[6] == f"      {len(current['resources']) - 2} unchanged"  # the stack and the VPC

    diff = compare_plans(base, current)
    assert (diff.added, diff.removed, diff.changed, diff.moved) == ([], [], [], [new_urn])

    code, out, _ = _run_script(tmp_path, base, current)
    assert (code, out) == (0, f"~ aws:ec2/vpc:Vpc {VPC}: moved {vpc['urn']} → {new_urn}\n")


def test_the_same_type_and_name_under_parents_of_other_types_are_two_resources() -> None:
    """Pulumi allows it (the URN holds the parents' types); matching by type and name alone kept
    one of the two and missed the other's change."""
    a, b = "urn:pulumi:s::p::A::a", "urn:pulumi:s::p::B::b"
    before = _doc((a, "t", "x", {"v": 1}), (b, "t", "x", {"v": 1}))
    after = _doc((a, "t", "x", {"v": 2}), (b, "t", "x", {"v": 1}))
    diff = compare_plans(before, after)
    assert (diff.added, diff.removed, diff.moved) == ([], [], [])
    assert diff.changed == ["urn:pulumi:s::p::A$t::x"]


def test_a_new_parent_of_the_same_types_is_no_move(tmp_path: Path) -> None:
    """The URN names the parents' types only, so a parent of the same type under another name
    leaves the URN, and Pulumi's resource, as it was. The script called that a move (it compared
    parents too); the summary did not. Neither does the shared comparison."""
    before = _doc(("urn:pulumi:s::p::A::a1", "t", "x", {"v": 1}))
    after = _doc(("urn:pulumi:s::p::A::a2", "t", "x", {"v": 1}))
    assert before["resources"][0]["urn"] == after["resources"][0]["urn"]
    assert compare_plans(before, after).unchanged
    assert _run_script(tmp_path, before, after)[:2] == (0, "identical\n")


def test_script_exit_code_ignores_tags_but_not_inputs(tmp_path: Path) -> None:
    parent = "urn:pulumi:s::p::A::a"
    before = _doc((parent, "t", "x", {"tags": {"k": "1"}, "v": 1.0}))
    tagged = _doc((parent, "t", "x", {"tags": {"k": "2"}, "v": 1}))
    code, out, _ = _run_script(tmp_path, before, tagged)
    assert (code, out) == (0, '~ t x: tags tags.k: "1" → "2"\n')
    changed = _doc((parent, "t", "x", {"tags": {"k": "1"}, "v": 2}))
    code, out, _ = _run_script(tmp_path, before, changed)
    assert (code, out) == (1, "~ t x: input v: 1 → 2\n")  # the float base is read as the plan wrote it
    code, out, err = _run_script(tmp_path, before, {"violations": []})
    assert (code, out) == (2, "")
    assert err.endswith(
        "after.json: not a plan (no resources list); write one with `hpcctl plan --json PATH`\n"
    )


def _cluster_plan(subnet: str) -> Plan:
    config = {
        "HeadNode": {"InstanceType": "c6i.large", "Networking": {"SubnetId": subnet}},
        "Scheduling": {"Scheduler": "slurm"},
    }
    cluster = PlannedResource(
        urn="urn:pulumi:s::p::pulumi-python:dynamic:Resource::c",
        type="pulumi-python:dynamic:Resource",
        name="c",
        parent=None,
        custom=True,
        remote=False,
        provider=None,
        id=None,
        inputs={KIND_PROPERTY: KIND_VALUE, "cluster_config": config, "parallelcluster_version": "3.16.1"},
        outputs={},
    )
    return Plan(stack="s", project="p", resources=[cluster])


def test_identical_cluster_inputs_with_unknowns_are_unchanged() -> None:
    """`plan --against` classified every cluster, and an unknown on the new side counts as a
    change: the same plan, unknowns and all, showed a cluster change. The summary classified only
    clusters whose inputs differ; the shared comparison says such a cluster is unchanged."""
    plan = _cluster_plan(UNKNOWN_PLACEHOLDER)
    lines = render_against(plan, plan.to_json(), "base.json")
    assert "ParallelCluster c: unchanged" in lines
    (cluster,) = compare_plans(plan.to_json(), plan.to_json()).clusters
    assert cluster.outcome == "update" and cluster.change is not None and cluster.change.unchanged

    # Once the inputs differ, the unknown counts: it may be another subnet.
    known = _cluster_plan("subnet-1").to_json()
    (cluster,) = compare_plans(known, plan.to_json()).clusters
    assert cluster.change is not None
    assert [c.path for c in cluster.change.changes] == ["HeadNode.Networking.SubnetId"]


def test_created_and_deleted_clusters_are_named_by_every_view() -> None:
    plan = _cluster_plan("subnet-1")
    empty: dict[str, Any] = {"resources": []}
    diff = compare_plans(empty, plan.to_json())
    assert [(c.name, c.outcome) for c in diff.clusters] == [("c", "create")]
    assert diff.cluster == {}  # the summary lists it under "Add"
    assert "ParallelCluster c: created (a new cluster)" in render_against(plan, empty, "base.json")
    assert [(c.name, c.outcome) for c in compare_plans(plan.to_json(), empty).clusters] == [("c", "delete")]


@pytest.mark.parametrize("document", [{"resources": [{"type": "t"}]}, {"resources": "x"}, {}])
def test_fails_on_a_document_that_is_not_a_plan(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^base\.json: not a plan \(no resources list\)"):
        compare_plans(document, {"resources": []}, base_source="base.json")
