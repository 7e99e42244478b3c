"""`hpcctl check` end to end: real stack files (and mutated copies) → offline plan → the policy pack
through pulumi-policy's analyzer → exit code, report and JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app.offline import StackPlan
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.loader import load_stack_file
from hpc_platform.domain.spot import spot_share
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpcctl.cli import EXIT_INVALID, EXIT_OK, EXIT_VIOLATIONS, main
from tests.support.stacks import REPO_ROOT, planned

WriteStack = Callable[..., Path]
LoadStack = Callable[[str], dict[str, Any]]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def check_json(*argv: str) -> tuple[int, list[dict[str, str]], str]:
    code, out, err = run("check", *argv, "--json", "-")
    return code, json.loads(out)["violations"], err


def cluster_resources(stack_plan: StackPlan) -> list[Any]:
    return [r for r in stack_plan.plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]


def test_prod_plan_exposes_the_cluster_and_its_spot_target() -> None:
    """What the Spot policy reads: the cluster (by its marker) and the declared target."""
    prod = planned("prod")
    assert len(cluster_resources(prod)) == 1
    assert prod.plan.outputs["spot_min_share"] == prod.loaded.config.cluster.spot.min_share


# --- the committed stacks -------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_pass(stack: str, tmp_path: Path) -> None:
    target = tmp_path / "violations.json"  # the JSON to a file, the text report on stdout
    code, out, err = run("check", "--stack", stack, "--project-dir", str(REPO_ROOT), "--json", str(target))
    assert code == EXIT_OK, out + err
    assert json.loads(target.read_text()) == {"violations": []}
    assert out.endswith("no policy violations\n") and "[mandatory]" not in out


# --- acceptance: violations exit 1 and name the policy --------------------------------------------
def test_fails_prod_with_half_the_spot_eligible_capacity_on_spot(
    stack_config: LoadStack, write_stack: WriteStack, catalog: InstanceCatalog
) -> None:
    config = stack_config("prod")
    counts = {"compute-spot": 323, "compute-od": 300, "memory-spot": 12, "memory-od": 12, "debug": 15}
    for queue in config["hpc:cluster"]["queues"]:
        if queue["name"] in counts:
            queue["compute_resources"][0]["max_count"] = counts[queue["name"]]
    path = write_stack(config, "Pulumi.prod.yaml")
    assert spot_share(load_stack_file(path).config, catalog).share == 0.5  # the fixture is what it claims
    report = path.with_name("violations.json")  # the JSON to a file, the text report on stdout
    code, text, _ = run("check", "--stack-file", str(path), "--json", str(report))
    assert code == EXIT_VIOLATIONS
    spot = [v for v in json.loads(report.read_text())["violations"] if v["policy"] == "spot-ratio"]
    assert spot and spot[0]["level"] == "mandatory" and "50%" in spot[0]["message"]
    assert "[mandatory] spot-ratio:" in text


def test_fails_prod_declaring_a_spot_target_below_the_policy_minimum(
    stack_config: LoadStack, write_stack: WriteStack
) -> None:
    config = stack_config("prod")
    config["hpc:cluster"]["spot"]["min_share"] = 0.5
    code, violations, _ = check_json("--stack-file", str(write_stack(config, "Pulumi.prod.yaml")))
    assert code == EXIT_VIOLATIONS
    assert any(v["policy"] == "spot-ratio" and "min_share is 0.50" in v["message"] for v in violations)


def test_fails_prod_labelled_below_cui(stack_config: LoadStack, write_stack: WriteStack) -> None:
    """`confidential` passes the config schema (it is in DATA_CLASSIFICATIONS), but prod's policy
    config accepts only the CUI-grade labels, so the tagging policy stops it. `--json -`: stdout
    holds only the JSON document, in its documented shape."""
    config = stack_config("prod")
    config["hpc:compliance"]["data_classification"] = "confidential"
    path = write_stack(config, "Pulumi.prod.yaml")
    assert run("validate", "--stack-file", str(path))[0] == EXIT_OK
    code, out, _ = run("check", "--stack-file", str(path), "--json", "-")
    assert code == EXIT_VIOLATIONS
    document = json.loads(out)
    assert list(document) == ["violations"] and document["violations"]
    violations = document["violations"]
    for violation in violations:
        assert list(violation) == ["policy", "level", "urn", "message"]
        assert violation["urn"].startswith("urn:pulumi:prod::hpc-platform::")
        assert violation["level"] in ("advisory", "mandatory") and violation["message"].strip()
    tagging = [v for v in violations if v["policy"] == "nist-800-171-tagging"]
    assert tagging and all(v["level"] == "mandatory" for v in tagging)
    assert "DataClassification 'confidential' is not allowed" in tagging[0]["message"]
    assert {v["policy"] for v in violations} == {"nist-800-171-tagging"}


def test_dev_findings_are_advisory(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("dev")
    config["hpc:compliance"]["data_classification"] = "cui"  # dev should not hold CUI: advisory
    code, out, _ = run("check", "--stack-file", str(write_stack(config, "Pulumi.dev.yaml")))
    assert code == EXIT_OK
    assert "[advisory] nist-800-171-tagging:" in out and "0 mandatory" in out


def test_policy_config_override_makes_dev_findings_mandatory(
    stack_config: LoadStack, write_stack: WriteStack, tmp_path: Path
) -> None:
    config = stack_config("dev")
    config["hpc:compliance"]["data_classification"] = "cui"
    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps({"all": "mandatory", "nist-800-171-tagging": {"allowedDataClassifications": ["internal"]}})
    )
    path = write_stack(config, "Pulumi.dev.yaml")
    code, violations, _ = check_json("--stack-file", str(path), "--policy-config", str(strict))
    assert code == EXIT_VIOLATIONS
    assert {v["level"] for v in violations} == {"mandatory"}


# --- invalid input exits 2 with one line per problem ----------------------------------------------
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"all": "strict"}', "'strict' is not an enforcement level"),
        ('{"spot-ratios": {"minShare": 0.7}}', "spot-ratios: no such policy in the pack"),
        ('{"spot-ratio": {"minShare": 1.5}}', "spot-ratio.minShare: 1.5 is above the maximum 1"),
        ('{"spot-ratio": {"min_share": 0.7}}', "spot-ratio.min_share: unknown setting; settings: minShare"),
        (
            '{"nist-800-171-tagging": {"allowedDataClassifications": ["top-secret"]}}',
            "allowedDataClassifications: [0]: 'top-secret' is not one of public, internal",
        ),
        ('{"no-public-ingress": {"allowedPorts": "443"}}', "allowedPorts: '443' is not of type array"),
        ('["mandatory"]', "must be a JSON object"),
    ],
)
def test_fails_invalid_policy_config(tmp_path: Path, document: str, expected: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(document)
    code, out, err = run(
        "check", "--stack", "dev", "--project-dir", str(REPO_ROOT), "--policy-config", str(path)
    )
    assert code == EXIT_INVALID, out + err
    assert expected in err and "Traceback" not in err
    assert all(line.startswith(str(path)) for line in err.splitlines()), err
    # The problem is in the policy config, not at an `hpc:` stack key.
    assert f"{path}: hpc:" not in err


@pytest.mark.parametrize("output_format", ["text", "github"])
def test_fails_invalid_policy_config_before_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output_format: str
) -> None:
    """The pack's schemas decide a policy config's problems: reported before the plan's seconds."""
    import hpc_platform.app.offline

    def no_plan(*_: object, **__: object) -> None:
        raise AssertionError("planned before checking the policy config")

    monkeypatch.setattr(hpc_platform.app.offline, "plan_stack_file", no_plan)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    path = tmp_path / "policy.json"
    path.write_text('{"spot-ratio": {"minShare": 1.5}}')
    code, out, err = run(
        "check",
        "--stack",
        "dev",
        "--project-dir",
        str(REPO_ROOT),
        "--policy-config",
        str(path),
        "--format",
        output_format,
    )
    assert code == EXIT_INVALID, out + err
    assert "spot-ratio.minShare: 1.5 is above the maximum 1" in out + err


def test_fails_missing_policy_config(tmp_path: Path) -> None:
    code, _, err = run(
        "check",
        "--stack",
        "dev",
        "--project-dir",
        str(REPO_ROOT),
        "--policy-config",
        str(tmp_path / "none.json"),
    )
    assert code == EXIT_INVALID and "no such policy config file" in err


def test_fails_invalid_stack_config(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("prod")
    config["hpc:compliance"]["data_classification"] = "secret"
    code, out, err = run("check", "--stack-file", str(write_stack(config, "Pulumi.prod.yaml")))
    assert code == EXIT_INVALID and out == ""
    assert "hpc:compliance.data_classification" in err
