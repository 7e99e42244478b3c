"""hpcctl's contracts: exit codes, one line per problem, JSON shape, no tracebacks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpcctl.cli import EXIT_INVALID, EXIT_OK, main
from tests.support.stacks import REPO_ROOT, stack_file

WriteStack = Callable[..., Path]
LoadStack = Callable[[str], dict[str, Any]]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_validate_committed_stacks(stack: str) -> None:
    code, out, err = run("validate", "--stack", stack, "--project-dir", str(REPO_ROOT))
    assert (code, out) == (EXIT_OK, f"Pulumi.{stack}.yaml: valid\n")
    assert err == ""


def test_validate_by_stack_file() -> None:
    assert run("validate", "--stack-file", str(stack_file("prod")))[0] == EXIT_OK


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda c: c["hpc:cluster"]["queues"][3]["compute_resources"][0].update(
                instance_type="x2iezn.32xlarge"
            ),
            "Pulumi.prod.yaml: hpc:cluster.queues[3].compute_resources[0].instance_type: "
            "x2iezn.32xlarge is not an EC2 instance type; did you mean x2iezn.12xlarge or x2iedn.32xlarge?\n",
        ),
        (
            lambda c: c["hpc:cluster"]["queues"][0].update(capacity_type="SPOT"),
            "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: "
            "hpc6a.48xlarge is not sold as Spot (On-Demand only); "
            "put it in an ONDEMAND queue or choose a Spot-capable type\n",
        ),
        (
            lambda c: c["hpc:storage"]["scratch"].update(capacity_gib=1000),
            "Pulumi.prod.yaml: hpc:storage.scratch.capacity_gib: "
            "1000 is not a valid SCRATCH_2 size; use 1200, 2400 or a multiple of 2400\n",
        ),
        (
            lambda c: c["hpc:network"]["availability_zones"].__setitem__(1, "us-east-2z"),
            "Pulumi.prod.yaml: hpc:network.availability_zones[1]: us-east-2z is not an availability zone of "
            "us-east-2 (the instance catalog lists us-east-2a, us-east-2b, us-east-2c); use one of those\n",
        ),
    ],
    ids=["unknown-type", "hpc6a-spot", "fsx-1000", "unknown-az"],
)
def test_fails_validate_with_one_line_per_problem(
    mutate: Callable[[dict[str, Any]], None], expected: str, stack_config: LoadStack, write_stack: WriteStack
) -> None:
    config = stack_config("prod")
    mutate(config)
    path = write_stack(config, "Pulumi.prod.yaml")
    for command in ("validate", "plan"):
        code, out, err = run(command, "--stack-file", str(path))
        assert (code, out, err) == (EXIT_INVALID, "", expected)


def test_fails_validate_listing_every_problem(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("prod")
    config["hpc:storage"]["scratch"]["capacity_gib"] = 1000
    config["hpc:cluster"]["queues"][0]["capacity_type"] = "SPOT"
    code, _, err = run("validate", "--stack-file", str(write_stack(config)))
    assert code == EXIT_INVALID
    assert len(err.splitlines()) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "config: [",
            "Pulumi.bad.yaml: not valid YAML at line 1, column "
            "10: expected the node content, but found '<stream end>'\n",
        ),
        ("- a\n- b\n", "Pulumi.bad.yaml: a stack file is a mapping with a `config:` mapping\n"),
    ],
)
def test_fails_on_broken_yaml(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    assert run("validate", "--stack-file", str(path)) == (EXIT_INVALID, "", expected)


def test_fails_on_missing_stack_file(tmp_path: Path) -> None:
    code, _, err = run("validate", "--stack", "nope", "--project-dir", str(tmp_path))
    assert code == EXIT_INVALID
    assert err == (
        f"hpcctl: {tmp_path / 'Pulumi.nope.yaml'}: no such stack file; {tmp_path} has no "
        "Pulumi.<stack>.yaml (use --project-dir or --stack-file)\n"
    )


def test_fails_on_bad_usage_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpcctl", "validate"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == EXIT_INVALID
    assert "Traceback" not in result.stderr
    assert "one of the arguments --stack/-s --stack-file is required" in result.stderr


def test_plan_json_to_stdout_is_only_json() -> None:
    code, out, _ = run("plan", "--stack-file", str(stack_file("dev")), "--json", "-")
    assert code == EXIT_OK
    document = json.loads(out)
    assert set(document) == {"stack", "project", "changeSummary", "resources", "outputs"}
    assert (document["stack"], document["project"]) == ("dev", "hpc-platform")
    for resource in document["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "custom", "inputs"}
    assert document["outputs"]["cluster_name"] == "hpc-dev"


def test_plan_json_to_file_and_tree_to_stdout(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    code, out, _ = run("plan", "--stack-file", str(stack_file("dev")), "--json", str(target))
    assert code == EXIT_OK
    assert out.startswith("Previewing stack dev (project hpc-platform) offline")
    assert json.loads(target.read_text())["stack"] == "dev"


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpcctl", "validate", "--stack", "dev"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert (result.returncode, result.stdout) == (EXIT_OK, "Pulumi.dev.yaml: valid\n")


def test_warnings_go_to_stderr_and_do_not_fail(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("prod")
    config["hpc:observability"]["notification_emails"] = []
    code, out, err = run("validate", "--stack-file", str(write_stack(config)))
    assert code == EXIT_OK
    assert out.endswith(": valid\n")
    assert "warning: prod has nobody to notify" in err


def test_plan_json_is_the_same_on_every_run() -> None:
    first = run("plan", "--stack-file", str(stack_file("prod")), "--json", "-")[1]
    second = run("plan", "--stack-file", str(stack_file("prod")), "--json", "-")[1]
    assert first == second
