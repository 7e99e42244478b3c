"""`hpcctl check --format github`: the verdict where a pull request shows it.

- Workflow commands (`::error file=…,line=…::…`) on stdout become annotations on the PR's diff:
  config problems point at the stack file's line of the offending key, policy violations (one per
  policy and cause) at the stack file.
- A Markdown job summary, appended to the file `$GITHUB_STEP_SUMMARY` names: the verdict per
  stack, the counts and the grouped violations and, given a base plan, what the change adds,
  removes and changes, what the cluster update needs, and how the cost estimate moves.

Formats: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpc_platform.app.plan_diff import PlanDiff
from hpc_platform.app.policy_check import PolicyRun, ViolationGroup, group, resource_name
from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.yaml_lines import key_line
from hpc_platform.domain.pricing import CostEstimate

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
LIST_LIMIT = 50
"""Resources listed per group or change kind in the summary; the rest are counted."""


# --- workflow commands ----------------------------------------------------------------------------
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    kind: str, message: str, file: str | None = None, line: int | None = None, title: str | None = None
) -> str:
    """One workflow command: `::error file=F,line=N,title=T::message` (kind: error, warning, notice)."""
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
    if line:
        properties.append(f"line={line}")
    if title:
        properties.append(f"title={_escape_property(title)}")
    head = f"::{kind} {','.join(properties)}" if properties else f"::{kind}"
    return f"{head}::{_escape_data(message)}"


def display_path(path: Path) -> str:
    """The path annotations name: relative to the working directory (the checkout) when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_KINDS = {"ERROR": "error", "WARNING": "warning", "INFO": "notice"}


def finding_annotations(findings: Sequence[Finding], stack_file: Path, source: str) -> list[str]:
    """Config findings (errors or warnings) at the line of their key in the stack file."""
    try:
        text = stack_file.read_text()
    except OSError:
        text = ""
    lines = []
    for finding in findings:
        line = key_line(text, finding.loc) if text else None
        lines.append(
            annotation(
                _KINDS[finding.level],
                finding.render(source),
                file=display_path(stack_file),
                line=line,
                title="stack config",
            )
        )
    return lines


def config_error_annotations(error: ConfigError, stack_file: Path) -> list[str]:
    """A `ConfigError` of the stack file (with lines) or of another file (the policy config)."""
    if error.source == stack_file.name:
        return finding_annotations(error.findings, stack_file, error.source)
    return [annotation("error", line, file=error.source, title="hpcctl check") for line in error.lines]


def violation_annotations(run: PolicyRun, stack_file: Path) -> list[str]:
    """One per policy and cause, at the stack file: the config that produced the plan."""
    return [
        annotation(
            "error" if g.level == "mandatory" else "warning",
            _group_text(g),
            file=display_path(stack_file),
            title=f"policy {g.policy} ({g.level})",
        )
        for g in group(run.violations)
    ]


def _group_text(g: ViolationGroup) -> str:
    names = [resource_name(u) for u in g.urns]
    if len(names) == 1:
        return f"{names[0]}: {g.message}"
    shown = ", ".join(names[:LIST_LIMIT]) + (
        f", … {len(names) - LIST_LIMIT} more" if len(names) > LIST_LIMIT else ""
    )
    return f"{g.message} ({len(names)} resources: {shown})"


# --- the job summary ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseComparison:
    """The change against the base branch: the plan diff and both cost estimates (None: unknown)."""

    diff: PlanDiff
    base_cost: CostEstimate | None
    cost: CostEstimate | None
    base_cost_note: str = ""
    """Why the base cost is unknown, when it is."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _names(urns: Sequence[str]) -> str:
    shown = ", ".join(f"`{resource_name(u)}`" for u in urns[:LIST_LIMIT])
    more = len(urns) - LIST_LIMIT
    return shown + (f", … {more} more" if more > 0 else "")


def summary_markdown(
    stack: str,
    stack_file: Path,
    run: PolicyRun | None,
    config_error: ConfigError | None = None,
    warnings: Sequence[str] = (),
    base: BaseComparison | None = None,
) -> str:
    """The verdict of one stack as a Markdown section."""
    lines: list[str] = []
    if config_error is not None:
        lines.append(f"### hpcctl check `{stack}`: :x: invalid config")
        lines.append("")
        lines.extend(f"- {_cell(line)}" for line in config_error.lines)
        return "\n".join(lines) + "\n\n"
    assert run is not None
    mandatory = sum(v.level == "mandatory" for v in run.violations)
    advisory = len(run.violations) - mandatory
    verdict = ":x: fails (mandatory violations)" if mandatory else ":white_check_mark: passes"
    lines.append(f"### hpcctl check `{stack}`: {verdict}")
    lines.append("")
    lines.append(
        f"{run.policies} policies checked {run.resources} resources of `{display_path(stack_file)}`: "
        f"**{mandatory} mandatory**, {advisory} advisory violation(s)."
    )
    if warnings:
        lines.append("")
        lines.extend(f"- :warning: {_cell(w)}" for w in warnings)
    groups = group(run.violations)
    if groups:
        lines += ["", "| level | policy | cause | resources |", "|---|---|---|---|"]
        for g in groups:
            lines.append(
                f"| {g.level} | `{g.policy}` | {_cell(g.message)} | {len(g.urns)}: {_cell(_names(g.urns))} |"
            )
    if base is not None:
        lines += ["", *base_section(base)]
    return "\n".join(lines) + "\n\n"


def _money(value: float) -> str:
    return f"${value:,.0f}"


def base_section(base: BaseComparison) -> list[str]:
    """What the change does against the base branch's plan."""
    diff = base.diff
    lines = ["#### Against the base branch", ""]
    if diff.unchanged:
        lines.append("No resource changes.")
    else:
        lines.append(
            f"**{len(diff.added)} to add, {len(diff.changed)} to change, {len(diff.removed)} to remove "
            f"(or replace under a new name), {len(diff.moved)} to move.**"
        )
        lines.append("")
        kinds = (
            ("Add", diff.added),
            ("Change", diff.changed),
            ("Remove", diff.removed),
            ("Move to a new parent (replaced unless it has an alias)", diff.moved),
        )
        for label, urns in kinds:
            if urns:
                lines.append(f"- {label} ({len(urns)}): {_names(urns)}")
    for urn, change in diff.cluster.items():
        name = f"`{resource_name(urn)}`"
        if change.requires_replacement:
            lines.append(f"- :rotating_light: cluster {name} must be **replaced** (a new cluster):")
            lines.extend(f"  - {_cell(r)}" for r in change.reasons("replace"))
        if change.requires_fleet_stop:
            lines.append(f"- :stop_sign: cluster {name} update needs a **compute-fleet stop**:")
            lines.extend(f"  - {_cell(r)}" for r in change.reasons("needs_fleet_stop"))
        if not (change.requires_replacement or change.requires_fleet_stop) and not change.unchanged:
            lines.append(f"- cluster {name} updates while the fleet runs ({len(change.changes)} change(s)).")
    lines.append("")
    if base.cost is None:
        lines.append("Cost estimate: unknown.")
    elif base.base_cost is None:
        note = f" ({base.base_cost_note})" if base.base_cost_note else ""
        lines.append(f"Cost estimate: {_money(base.cost.monthly_usd)} / month; the base's is unknown{note}.")
    else:
        before, after = base.base_cost.monthly_usd, base.cost.monthly_usd
        delta = after - before
        share = f" ({delta / before:+.0%})" if before else ""
        sign = "+" if delta >= 0 else "-"
        lines.append(
            f"Cost estimate: {_money(before)} → {_money(after)} / month, "
            f"{sign}{_money(abs(delta))}{share}; ceiling {_money(base.base_cost.ceiling_usd)} → "
            f"{_money(base.cost.ceiling_usd)} with every node running all month."
        )
    return lines


def append_summary(markdown: str, env: dict[str, str] | None = None) -> bool:
    """Append to `$GITHUB_STEP_SUMMARY`; False when it is not set (not in a workflow)."""
    target = (env if env is not None else os.environ).get(SUMMARY_ENV)
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown)
    return True


__all__ = [
    "BaseComparison",
    "annotation",
    "append_summary",
    "config_error_annotations",
    "finding_annotations",
    "summary_markdown",
    "violation_annotations",
]
