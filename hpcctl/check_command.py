"""`hpcctl check` as a command: plan, run the pack, and report as text or as GitHub annotations
plus a job summary (with the change against a base plan)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hpc_platform.domain.config import ConfigError

if TYPE_CHECKING:  # the plan engine loads pulumi: imported only when a check runs
    from hpc_platform.app.offline import StackPlan
    from hpcctl.github import BaseComparison

FORMATS = ("text", "github")


@contextmanager
def _no_progress(_stream: TextIO, _message: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class CheckOptions:
    stack_file: Path
    policy_config: Path | None = None
    json_target: str | None = None
    format: str = "text"
    verbose: bool = False
    base_plan: Path | None = None
    base_stack_file: Path | None = None
    stack_label: str = ""
    """How progress messages name the stack (`planning prod…`); the file name when empty."""
    step: Callable[[TextIO, str], AbstractContextManager[Any]] = _no_progress
    """Shows a slow step's progress on a terminal (`hpcctl.progress.step`)."""


def _validate(options: CheckOptions) -> dict[str, Any] | None:
    """Problems with the arguments, found before the plan runs; the base plan, read."""
    from hpc_platform.app.plan_diff import PlanFileError, read_plan
    from hpcctl.cli import UsageError

    if options.format not in FORMATS:
        raise UsageError(f"--format: {options.format!r}; use one of {', '.join(FORMATS)}")
    if options.format == "github" and options.json_target == "-":
        raise UsageError("--json - and --format github both write to stdout; give --json a file")
    if options.base_plan is None:
        if options.base_stack_file is not None:
            raise UsageError("--base-stack-file needs --base PLAN.json")
        return None
    if options.format != "github":
        raise UsageError("--base goes into the job summary: use it with --format github")
    if options.base_stack_file is not None and not options.base_stack_file.is_file():
        raise UsageError(f"{options.base_stack_file}: no such stack file")
    try:
        return read_plan(options.base_plan)
    except PlanFileError as exc:
        raise UsageError(str(exc)) from None


def _base_comparison(
    options: CheckOptions, base_plan: dict[str, Any], stack_plan: StackPlan
) -> BaseComparison:
    from hpc_platform.app.plan_diff import compare_plans
    from hpc_platform.domain.config.loader import load_stack_file
    from hpc_platform.domain.pricing import estimate_monthly_cost
    from hpcctl.github import BaseComparison

    base_cost, note = None, "give the base branch's stack file with --base-stack-file"
    if options.base_stack_file is not None:
        try:
            base_cost = estimate_monthly_cost(load_stack_file(options.base_stack_file).config)
        except ConfigError as exc:
            note = f"the base stack file does not load with this change's schema: {exc.lines[0]}"
    return BaseComparison(
        diff=compare_plans(base_plan, stack_plan.plan.to_json()),
        base_cost=base_cost,
        cost=estimate_monthly_cost(stack_plan.loaded.config),
        base_cost_note=note,
    )


def run_check(
    options: CheckOptions,
    out: TextIO,
    err: TextIO,
    write_json: Callable[[dict[str, Any], str, TextIO], None],
) -> int:
    """The exit code (hpcctl.cli's contract). In text format a `ConfigError` propagates to the CLI;
    in github format it becomes annotations and a summary section."""
    from hpc_platform.app.offline import plan_stack_file, stack_name_for
    from hpc_platform.app.policy_check import (
        check_run,
        counts_line,
        has_mandatory,
        report,
        to_json,
        validate_policy_config,
    )
    from hpcctl import github
    from hpcctl.cli import EXIT_INVALID, EXIT_OK, EXIT_VIOLATIONS

    base_plan = _validate(options)
    path = options.stack_file
    planning = f"planning {options.stack_label or path.name}…"
    checking = "checking policies…"
    if options.format == "text":
        if options.policy_config is not None:
            validate_policy_config(options.policy_config)  # fail fast, before the plan
        with options.step(err, planning):
            stack_plan = plan_stack_file(path)
        for line in stack_plan.warning_lines():
            print(line, file=err)
        with options.step(err, checking):
            run = check_run(stack_plan, options.policy_config)
        if options.json_target is not None:
            write_json(to_json(run.violations), options.json_target, out)
        if options.json_target != "-":
            out.write(report(run, options.verbose))
        return EXIT_VIOLATIONS if has_mandatory(run.violations) else EXIT_OK

    stack = stack_name_for(path)
    try:
        if options.policy_config is not None:
            validate_policy_config(options.policy_config)
        with options.step(err, planning):
            stack_plan = plan_stack_file(path)
        with options.step(err, checking):
            run = check_run(stack_plan, options.policy_config)
    except ConfigError as exc:
        for line in github.config_error_annotations(exc, path):
            print(line, file=out)
        github.append_summary(github.summary_markdown(stack, path, None, config_error=exc))
        return EXIT_INVALID
    warnings = stack_plan.warning_lines()
    config_warnings = set(stack_plan.loaded.warning_lines())
    annotations = github.finding_annotations(stack_plan.loaded.warnings, path, stack_plan.loaded.source)
    annotations += [
        github.annotation("warning", w, file=github.display_path(path))
        for w in warnings
        if w not in config_warnings
    ]
    annotations += github.violation_annotations(run, path)
    for line in annotations:
        print(line, file=out)
    print(counts_line(run), file=out)
    comparison = _base_comparison(options, base_plan, stack_plan) if base_plan is not None else None
    github.append_summary(github.summary_markdown(stack, path, run, warnings=warnings, base=comparison))
    if options.json_target is not None:
        write_json(to_json(run.violations), options.json_target, out)
    return EXIT_VIOLATIONS if has_mandatory(run.violations) else EXIT_OK


__all__ = ["FORMATS", "CheckOptions", "run_check"]
