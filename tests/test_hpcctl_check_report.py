"""What `hpcctl check` tells its reader: the counts line, violations grouped by policy and cause,
every message once, and `--format github` (workflow annotations at the stack file's line, the
Markdown job summary, the change against a base plan)."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpc_platform.app.plan_diff import compare_plans
from hpc_platform.app.policy_check import Violation, check_run, group, report
from hpc_platform.domain.config.errors import key_path
from hpc_platform.domain.config.loader import load_stack_file, read_stack_file
from hpc_platform.domain.config.yaml_lines import key_line
from hpc_platform.domain.pricing import estimate_monthly_cost
from hpcctl.cli import EXIT_INVALID, EXIT_OK, EXIT_VIOLATIONS, main
from hpcctl.github import SUMMARY_ENV, annotation
from policy.hpc_policies.pack import policies
from tests.support.stacks import REPO_ROOT, planned, stack_file

CLUSTER_URN = "urn:pulumi:prod::hpc-platform::hpc:cluster:ParallelCluster$pulumi-python:dynamic:Resource::"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def write(directory: Path, config: dict[str, Any], name: str = "Pulumi.prod.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def prod_config() -> dict[str, Any]:
    return copy.deepcopy(read_stack_file(stack_file("prod")))


@pytest.fixture(scope="module")
def confidential_prod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prod labelled `confidential`: the tagging policy fails every taggable resource alike."""
    config = prod_config()
    config["hpc:compliance"]["data_classification"] = "confidential"
    return write(tmp_path_factory.mktemp("confidential"), config)


@pytest.fixture(scope="module")
def half_spot_prod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prod with half its Spot-eligible capacity on Spot: a config warning and a policy violation."""
    config = prod_config()
    counts = {"compute-spot": 323, "compute-od": 300, "memory-spot": 12, "memory-od": 12, "debug": 15}
    for queue in config["hpc:cluster"]["queues"]:
        if queue["name"] in counts:
            queue["compute_resources"][0]["max_count"] = counts[queue["name"]]
    return write(tmp_path_factory.mktemp("half-spot"), config)


# --- the counts line ------------------------------------------------------------------------------
def test_counts_line_names_the_policies_and_resources_checked() -> None:
    code, out, _ = run("check", "--stack", "dev", "--project-dir", str(REPO_ROOT))
    resources = len(planned("dev").plan.resources) + 1  # every registration, the stack included
    assert code == EXIT_OK
    assert out == f"{len(policies())} policies checked {resources} resources: no policy violations\n"


def test_counts_leave_out_disabled_policies(tmp_path: Path) -> None:
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"spot-ratio": "disabled"}))
    assert check_run(planned("dev"), config).policies == len(policies()) - 1


# --- grouping -------------------------------------------------------------------------------------
def test_repeated_violations_are_one_line_per_policy_and_cause(confidential_prod: Path) -> None:
    report = confidential_prod.with_name("violations.json")  # the JSON to a file, the text on stdout
    code, text, _ = run("check", "--stack-file", str(confidential_prod), "--json", str(report))
    urns = [v["urn"] for v in json.loads(report.read_text())["violations"]]
    assert code == EXIT_VIOLATIONS and len(urns) > 100 and len(set(urns)) == len(urns)

    tagging = [line for line in text.splitlines() if "nist-800-171-tagging" in line]
    assert tagging == [
        f"[mandatory] nist-800-171-tagging: {len(urns)} resources: DataClassification 'confidential' "
        "is not allowed in this environment; set hpc:compliance.data_classification to one of cui, "
        "restricted."
    ]
    assert not any(urn in text for urn in urns)
    assert text.splitlines()[-1].endswith(
        f"{len(urns)} violation(s) in 1 group(s), {len(urns)} mandatory, 0 advisory"
    )

    code, verbose, _ = run("check", "--stack-file", str(confidential_prod), "--verbose")
    listed = [line.strip() for line in verbose.splitlines() if line.startswith("    ")]
    assert sorted(listed) == sorted(urns)


def test_cause_leaves_out_the_resource_name() -> None:
    """Policies that name the resource (`S3 bucket NAME has …`) still group by cause; a name that is
    only a prefix of another word is left alone."""
    names = ["hpc-prod-data-bucket", "hpc-prod-data-access-logs"]
    violations = [
        Violation("s3-encryption", "mandatory", f"urn:pulumi:prod::p::aws:s3/bucket:Bucket::{n}", m)
        for n in names
        for m in (f"S3 bucket {n} uses SSE-S3 (AES256); use aws:kms", f"S3 bucket {n}-x is off")
    ]
    groups = group(violations)
    assert [(g.message, len(g.urns)) for g in groups] == [
        ("S3 bucket <resource> uses SSE-S3 (AES256); use aws:kms", 2),
        (violations[1].message, 1),
        (violations[3].message, 1),
    ]


def test_the_same_finding_twice_is_reported_once() -> None:
    from hpc_platform.app.policy_check import PolicyRun, _sorted

    twice = Violation("spot-ratio", "mandatory", CLUSTER_URN + "c", "too little Spot")
    text = report(PolicyRun(16, 10, _sorted([twice, twice])))
    assert text.count("too little Spot") == 1 and "1 violation(s)" in text


# --- every message once ---------------------------------------------------------------------------
def test_every_message_appears_once(half_spot_prod: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Spot warning was printed twice: by hpcctl from the loaded config and, because the
    program logs config warnings through the engine, by the mock engine's handler-less logger."""
    code, out, err = run("check", "--stack-file", str(half_spot_prod))
    captured = capsys.readouterr()
    lines = [line for line in (out + err + captured.out + captured.err).splitlines() if line.strip()]
    assert code == EXIT_VIOLATIONS
    assert len(lines) == len(set(lines)), lines
    warning = load_stack_file(half_spot_prod).warning_lines()
    assert warning and all(lines.count(w) == 1 for w in warning)


def test_program_messages_join_the_config_warnings_once(half_spot_prod: Path) -> None:
    """The program logs the config warnings through the engine: they are not repeated; anything
    else it logs at warning or error level is added once; info is left out."""
    from hpc_platform.app.offline import Plan, StackPlan

    loaded = load_stack_file(half_spot_prod)
    config = loaded.warning_lines()
    assert config  # the fixture has a config warning
    messages = [*(("warning", line) for line in config), ("info", "i"), ("error", "e"), ("warning", "e")]
    plan = Plan("prod", "hpc-platform", messages=messages)
    assert StackPlan(plan, loaded).warning_lines() == [*config, "e"]


# --- --format github ------------------------------------------------------------------------------
def test_annotation_escapes_data_and_properties() -> None:
    assert (
        annotation("error", "50% of\nit", file="a,b:c.yaml", line=3, title="t")
        == "::error file=a%2Cb%3Ac.yaml,line=3,title=t::50%25 of%0Ait"
    )


def test_key_line_finds_the_key_of_a_finding() -> None:
    text = (
        "config:\n"
        "  aws:region: us-east-2\n"
        "  hpc:cluster:\n"
        "    name: c\n"
        "    queues:\n"
        "      - name: a\n"
        "      - name: B\n"
        "        compute_resources: []\n"
    )
    assert key_line(text, ("region",)) == 2
    assert key_line(text, ("cluster", "queues", 1, "name")) == 7
    assert key_line(text, ("cluster", "queues", 1)) == 7
    assert key_line(text, ("cluster", "queues", 1, "max_count")) == 7  # absent: its parent
    assert key_line(text, ("storage",)) == 1  # no such section: `config:`
    assert key_line("{not yaml", ("cluster",)) is None


def test_config_error_annotation_points_at_the_offending_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = prod_config()
    config["hpc:cluster"]["queues"][1]["name"] = "Compute-OD"
    path = write(tmp_path, config)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "Compute-OD" in text)
    monkeypatch.chdir(tmp_path)  # annotations name the file relative to the checkout
    monkeypatch.setenv(SUMMARY_ENV, str(tmp_path / "summary.md"))
    code, out, err = run("check", "--stack-file", str(path), "--format", "github")
    assert code == EXIT_INVALID and err == ""
    key = key_path(("cluster", "queues", 1, "name"))
    assert out.startswith(
        f"::error file=Pulumi.prod.yaml,line={line},title=stack config::Pulumi.prod.yaml: {key}: "
    )
    assert "'Compute-OD' is not a valid ParallelCluster queue" in out
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### hpcctl check `prod`: :x: invalid config")
    assert f"{key}: 'Compute-OD'" in summary


def test_github_format_annotates_warnings_at_their_line_and_violations_at_the_file(
    half_spot_prod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(half_spot_prod.parent)
    monkeypatch.delenv(SUMMARY_ENV, raising=False)
    code, out, _ = run("check", "--stack-file", str(half_spot_prod), "--format", "github")
    assert code == EXIT_VIOLATIONS
    lines = out.splitlines()
    min_share = key_line(half_spot_prod.read_text(), ("cluster", "spot", "min_share"))
    assert half_spot_prod.read_text().splitlines()[min_share - 1].strip().startswith("min_share:")
    assert lines[0].startswith(
        f"::warning file=Pulumi.prod.yaml,line={min_share},title=stack config::Pulumi.prod.yaml: "
        "hpc:cluster.spot.min_share: warning: the queues put 50%25 of Spot-eligible"
    )
    assert lines[1].startswith(
        "::error file=Pulumi.prod.yaml,title=policy spot-ratio (mandatory)::hpc-prod-cluster-cluster: "
    )
    assert re.fullmatch(r"\d+ policies checked \d+ resources: 1 violation\(s\) in 1 group\(s\).*", lines[2])
    assert len(lines) == 3


def test_github_summary_has_the_verdict_and_the_grouped_violations(
    confidential_prod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv(SUMMARY_ENV, str(summary))
    violations = tmp_path / "violations.json"
    argv = ["--format", "github", "--json", str(violations)]
    code, out, _ = run("check", "--stack-file", str(confidential_prod), *argv)
    assert code == EXIT_VIOLATIONS
    count = len(json.loads(violations.read_text())["violations"])
    *annotations, counts = out.splitlines()
    assert len(annotations) == 1 and annotations[0].startswith("::error file=")
    assert f"({count} resources: " in annotations[0]
    text = summary.read_text()
    assert text.startswith("earlier step\n### hpcctl check `prod`: :x: fails (mandatory violations)\n")
    assert counts.split(":")[0] in text  # "N policies checked M resources"
    assert f"**{count} mandatory**, 0 advisory violation(s)." in text
    row = next(line for line in text.splitlines() if line.startswith("| mandatory |"))
    assert row.startswith("| mandatory | `nist-800-171-tagging` | DataClassification 'confidential' is not")
    assert f"| {count}: `" in row


def test_github_summary_of_a_passing_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv(SUMMARY_ENV, str(summary))
    code, _, _ = run("check", "--stack", "dev", "--project-dir", str(REPO_ROOT), "--format", "github")
    assert code == EXIT_OK
    text = summary.read_text()
    assert text.startswith("### hpcctl check `dev`: :white_check_mark: passes\n")
    assert "**0 mandatory**, 0 advisory" in text and "| level |" not in text


# --- against a base plan --------------------------------------------------------------------------
def test_base_plan_section_shows_the_change_and_the_cost(
    half_spot_prod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps(planned("prod").plan.to_json()))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv(SUMMARY_ENV, str(summary))
    argv = ["check", "--stack-file", str(half_spot_prod), "--format", "github", "--base", str(base)]
    code, _, _ = run(*argv, "--base-stack-file", str(stack_file("prod")))
    assert code == EXIT_VIOLATIONS
    section = summary.read_text().split("#### Against the base branch\n", 1)[1]
    assert "**0 to add, 1 to change, 0 to remove (or replace under a new name), 0 to move.**" in section
    assert "- Change (1): `hpc-prod-cluster-cluster`" in section
    # 323 → fewer Spot nodes in compute-spot: shrinking capacity needs the fleet stopped
    assert "needs a **compute-fleet stop**" in section
    assert "Scheduling.SlurmQueues[compute-spot].ComputeResources[" in section
    before = estimate_monthly_cost(load_stack_file(stack_file("prod")).config).monthly_usd
    after = estimate_monthly_cost(load_stack_file(half_spot_prod).config).monthly_usd
    assert f"Cost estimate: ${before:,.0f} → ${after:,.0f} / month" in section

    code, _, _ = run(*argv)  # no base stack file: the base's cost is unknown, and says why
    assert "the base's is unknown (give the base branch's stack file with --base-stack-file)" in (
        summary.read_text()
    )


def test_compare_plans_matches_by_urn_then_by_type_and_name() -> None:
    def plan(*resources: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "resources": [
                {"urn": f"urn:pulumi:s::p::{parent}$t::{name}", "type": "t", "name": name, "inputs": inputs}
                for parent, name, inputs in ((*urn.split("/"), inputs) for urn, inputs in resources)
            ]
        }

    before = plan(("P/a", {"x": 1}), ("P/b", {"x": 1}), ("P/m", {}))
    after = plan(("P/b", {"x": 2}), ("P/c", {}), ("Q/m", {}))  # m moved to another parent
    diff = compare_plans(before, after)
    assert diff.added == ["urn:pulumi:s::p::P$t::c"]
    assert diff.removed == ["urn:pulumi:s::p::P$t::a"]
    assert diff.changed == ["urn:pulumi:s::p::P$t::b"] and diff.cluster == {}
    assert diff.moved == ["urn:pulumi:s::p::Q$t::m"]
    assert compare_plans(plan(("P/a", {"x": 1.0})), plan(("P/a", {"x": 1}))).unchanged


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--base", "{missing}"], "cannot read the plan"),
        (["--base-stack-file", "{stack}"], "--base-stack-file needs --base PLAN.json"),
        (["--format", "text", "--base", "{stack}"], "use it with --format github"),
        (["--format", "github", "--base", "{stack}"], "not valid JSON"),
        (["--format", "github", "--json", "-"], "give --json a file"),
    ],
)
def test_base_and_format_usage_errors_before_planning(
    tmp_path: Path, extra: list[str], expected: str
) -> None:
    stack = str(stack_file("dev"))
    argv = [a.format(missing=tmp_path / "none.json", stack=stack) for a in extra]
    if "--format" not in argv:
        argv += ["--format", "github"]
    code, out, err = run("check", "--stack-file", stack, *argv)
    assert code == EXIT_INVALID and out == "" and expected in err
