"""`hpcctl plan` reads like `pulumi preview`: a `+` tree, `N to create` equal to what the JSON lists,
no made-up ids, one resource in full with `--show`, and the change against an earlier plan."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER
from hpc_platform.app.preview import KNOWN_AFTER_DEPLOY, render_against
from hpcctl.cli import EXIT_INVALID, EXIT_OK, main
from tests.support.stacks import planned, stack_file

DEV_CLUSTER = "hpc-dev-cluster-cluster"
"""The ParallelCluster dynamic resource of the dev stack."""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def dev_preview(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """`hpcctl plan --stack-file Pulumi.dev.yaml --json PATH`: the text and the JSON of one run."""
    target = tmp_path_factory.mktemp("plan") / "dev.json"
    code, out, _ = run("plan", "--stack-file", str(stack_file("dev")), "--json", str(target))
    assert code == EXIT_OK
    return out, json.loads(target.read_text())


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_plan_prints_a_create_tree_and_counts_what_the_json_lists(dev_preview: tuple[str, Any]) -> None:
    text, document = dev_preview
    rows = [line for line in text.splitlines() if line.startswith(" +   ")]
    (count,) = re.findall(r"^    \+ (\d+) to create$", text, flags=re.MULTILINE)
    assert int(count) == len(document["resources"]) == document["changeSummary"]["create"] == len(rows)
    assert rows[0].split() == ["+", "pulumi:pulumi:Stack", "hpc-platform-dev"]
    # A custom resource sits under its component, one level deeper.
    network = next(i for i, row in enumerate(rows) if "hpc:network:EfaNetwork" in row)
    vpc = next(row for row in rows if row.endswith(" hpc-dev-network-vpc"))
    assert "aws:ec2/vpc:Vpc" in vpc
    assert vpc.index("aws:") > rows[network].index("hpc:")


def test_plan_shows_no_made_up_value_and_keeps_config_values(dev_preview: tuple[str, Any]) -> None:
    text, _ = dev_preview
    plan = planned("dev").plan
    vpc = plan.by_name("hpc-dev-network-vpc")
    assert vpc.id in plan.generated and vpc.outputs["arn"] in plan.generated
    assert [value for value in sorted(plan.generated) if value in text] == []
    assert re.search(r"^    vpc_id +: \(known after deploy\)$", text, flags=re.MULTILINE)
    assert re.search(r"^    cluster_name +: hpc-dev$", text, flags=re.MULTILINE)
    assert "…" not in text and "..." not in text


def test_plan_keeps_the_performance_model_and_cost_estimate(dev_preview: tuple[str, Any]) -> None:
    text, _ = dev_preview
    assert text.index("to create") < text.index("Performance model:") < text.index("Cost estimate")


def test_json_numbers_that_are_whole_are_ints(dev_preview: tuple[str, Any]) -> None:
    _, document = dev_preview
    assert [v for v in _walk(document) if isinstance(v, float) and v.is_integer()] == []
    (cluster,) = [r for r in document["resources"] if r["name"] == DEV_CLUSTER]
    queues = cluster["inputs"]["cluster_config"]["Scheduling"]["SlurmQueues"]
    assert {q["Name"]: q["ComputeResources"][0]["MaxCount"] for q in queues} == {
        "compute-spot": 4,
        "compute-od": 1,
        "debug": 2,
    }
    assert all(type(q["ComputeResources"][0]["MaxCount"]) is int for q in queues)


def test_show_prints_one_resource_inputs_in_full() -> None:
    code, out, _ = run("plan", "--stack-file", str(stack_file("dev")), "--show", DEV_CLUSTER)
    assert code == EXIT_OK
    document = yaml.safe_load(out)
    plan = planned("dev").plan
    resource = plan.by_name(DEV_CLUSTER)
    assert (document["urn"], document["id"]) == (resource.urn, KNOWN_AFTER_DEPLOY)
    inputs = document["inputs"]
    assert set(inputs) == set(resource.inputs)
    assert inputs["__provider"] == SECRET_PLACEHOLDER
    config = inputs["cluster_config"]
    types = [
        [cr["InstanceType"]] if "InstanceType" in cr else [i["InstanceType"] for i in cr["Instances"]]
        for q in config["Scheduling"]["SlurmQueues"]
        for cr in q["ComputeResources"]
    ]
    assert types == [["c5n.18xlarge"], ["c5n.18xlarge"], ["c6i.xlarge"]]
    # Subnet ids come from the mocks: unknown until deploy, never a made-up id.
    subnets = [s for q in config["Scheduling"]["SlurmQueues"] for s in q["Networking"]["SubnetIds"]]
    assert subnets and set(subnets) == {KNOWN_AFTER_DEPLOY}
    assert [value for value in sorted(plan.generated) if value in out] == []
    assert "…" not in out


def test_fails_show_of_a_name_no_resource_has() -> None:
    code, out, err = run("plan", "--stack-file", str(stack_file("dev")), "--show", "hpc-dev-network-vp")
    assert (code, out) == (EXIT_INVALID, "")
    assert "no resource has the URN or name 'hpc-dev-network-vp'" in err
    assert "hpc-dev-network-vpc" in err


def test_against_names_the_fleet_stop_of_an_instance_type_change(
    tmp_path: Path,
    stack_config: Callable[[str], dict[str, Any]],
    write_stack: Callable[[dict[str, Any], str], Path],
) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps(planned("dev").plan.to_json()))
    config = stack_config("dev")
    (debug,) = [q for q in config["hpc:cluster"]["queues"] if q["name"] == "debug"]
    debug["compute_resources"][0]["instance_type"] = "c6i.2xlarge"
    changed = write_stack(config, "Pulumi.dev.yaml")
    code, out, _ = run("plan", "--stack-file", str(changed), "--against", str(base))
    assert code == EXIT_OK
    against = out.split(f"Changes against {base}:\n", 1)[1]
    assert "    + 0 to create\n" in against and "    - 0 to delete\n" in against
    assert re.search(
        rf"^        pulumi-python:dynamic:Resource  {DEV_CLUSTER}  \[cluster_config\]$", against, re.M
    )
    assert f"ParallelCluster {DEV_CLUSTER}: the update needs a compute-fleet stop" in against
    # The renderer lists the type under `Instances`: the old type goes (fleet stop), the new one comes.
    debug_resource = "        Scheduling.SlurmQueues[debug].ComputeResources[c6i-xl]"
    fleet_stop = against.split("    needs a compute-fleet stop:\n", 1)[1]
    assert fleet_stop.startswith(
        f'{debug_resource}.Instances[c6i.xlarge]: {{"InstanceType": "c6i.xlarge"}} → (absent); removing it'
    )
    assert "    replace (" not in against


def test_against_the_same_plan_is_unchanged_even_from_float_json() -> None:
    plan = planned("dev").plan
    document = plan.to_json()

    def as_floats(value: Any) -> Any:
        """The JSON an earlier hpcctl wrote: every integer a float."""
        if isinstance(value, dict):
            return {k: as_floats(v) for k, v in value.items()}
        if isinstance(value, list):
            return [as_floats(v) for v in value]
        return float(value) if type(value) is int else value

    lines = render_against(plan, as_floats(document), "base.json")
    assert lines[1:4] == ["    + 0 to create", "    - 0 to delete", "    ~ 0 to update"]
    assert lines[4] == f"      {len(document['resources']) - 1} unchanged"
    assert f"ParallelCluster {DEV_CLUSTER}: unchanged" in lines


def test_fails_against_a_plan_with_a_resource_without_urn_before_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpc_platform.app.offline as offline

    def no_plan(*_: Any, **__: Any) -> None:
        raise AssertionError("planned before the earlier plan was checked")

    monkeypatch.setattr(offline, "plan_stack_file", no_plan)
    other = tmp_path / "base.json"
    other.write_text(json.dumps({"resources": [{"type": "aws:s3/bucket:Bucket", "name": "b"}]}))
    code, out, err = run("plan", "--stack-file", str(stack_file("dev")), "--against", str(other))
    assert (code, out) == (EXIT_INVALID, "")
    assert err.startswith(f"hpcctl: {other}: not a plan")


def test_fails_against_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    other = tmp_path / "violations.json"
    other.write_text('{"violations": []}')
    code, out, err = run("plan", "--stack-file", str(stack_file("dev")), "--against", str(other))
    assert (code, out) == (EXIT_INVALID, "")
    assert (
        err == f"hpcctl: {other}: not a plan (no resources list); write one with `hpcctl plan --json PATH`\n"
    )
