"""`hpcctl`: validate, plan and check stacks offline; verify a deployed cluster; refresh the instance catalog.

Exit codes (a contract other tools rely on): 0 success; 1 policy violations (`check`) or a
missed target (`verify`); 2 invalid config or usage; 3 internal error; 4 the cluster cannot be
reached (`verify`: no head node, SSM refused, no credentials).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from hpcctl.preview import PLAN_EPILOG, add_plan_arguments
from hpcctl.progress import step

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
EXIT_UNREACHABLE = 4


class UsageError(Exception):
    """A problem with how hpcctl was called; printed as one line, exit 2."""


# --- argument parsing ---------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        print(f"hpcctl {package_version()}")
        parser.exit(EXIT_OK)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpc-platform")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", "-s", metavar="NAME", help="stack name: reads Pulumi.NAME.yaml")
    target.add_argument("--stack-file", metavar="PATH", type=Path, help="path to a stack file")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where Pulumi.NAME.yaml lives (default: the current directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpcctl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction, help="print hpcctl's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser(
        "validate", help="validate a stack's config; prints 'valid' or one line per problem"
    )
    _add_stack_arguments(validate)

    plan = commands.add_parser(
        "plan",
        help="preview a stack offline (Pulumi mock engine; no AWS credentials)",
        epilog=PLAN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_stack_arguments(plan)
    plan.add_argument(
        "--json", metavar="PATH", help="also write the plan as JSON to PATH ('-' for stdout only)"
    )
    add_plan_arguments(plan)

    check = commands.add_parser(
        "check", help="plan a stack offline and run the policy pack on it (exit 1 on mandatory violations)"
    )
    _add_stack_arguments(check)
    check.add_argument(
        "--json", metavar="PATH", help="also write the violations as JSON to PATH ('-' for stdout only)"
    )
    check.add_argument(
        "--policy-config",
        metavar="PATH",
        type=Path,
        help="policy pack config (--policy-pack-config format; default: policy/config/<environment>.json)",
    )
    check.add_argument(
        "--verbose", "-v", action="store_true", help="list the resources of each grouped violation"
    )
    check.add_argument(
        "--format",
        choices=("text", "github"),
        default="text",
        help="github: workflow annotations on stdout and a Markdown summary in $GITHUB_STEP_SUMMARY",
    )
    check.add_argument(
        "--base",
        metavar="PLAN.json",
        type=Path,
        help="the base branch's `hpcctl plan --json`: the summary shows what the change does (github)",
    )
    check.add_argument(
        "--base-stack-file",
        metavar="PATH",
        type=Path,
        help="the base branch's stack file, for the base's cost estimate (with --base)",
    )

    diagram = commands.add_parser(
        "diagram", help="draw a stack's architecture from its offline plan (.svg/.png via Graphviz, or .mmd)"
    )
    _add_stack_arguments(diagram)
    diagram.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="FILE.svg, FILE.png or FILE.mmd"
    )

    verify = commands.add_parser(
        "verify",
        help="run acceptance jobs on the deployed cluster (SSM on its head node); exit 1 on a missed target",
        description=VERIFY_DESCRIPTION,
        epilog=verify_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_stack_arguments(verify)
    verify.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (schema hpcctl-verify/1) instead of text",
    )
    verify.add_argument(
        "--queue", action="append", metavar="Q", help="only this queue (repeatable; default: every queue)"
    )
    verify.add_argument(
        "--skip", action="append", metavar="CHECK", default=[], help="skip a check (repeatable): see below"
    )
    verify.add_argument(
        "--timeout",
        type=int,
        metavar="S",
        default=None,
        help="seconds each command on the head node may take (default: 1800)",
    )

    catalog = commands.add_parser("catalog", help="the bundled EC2 instance catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, parser_class=_Parser)
    refresh = catalog_commands.add_parser("refresh", help="rebuild it from EC2 (needs AWS credentials)")
    refresh.add_argument("--regions", nargs="+", metavar="REGION", help="regions to record AZ offerings for")
    refresh.add_argument(
        "--output", type=Path, metavar="PATH", help="where to write (default: the bundled snapshot)"
    )
    catalog_commands.add_parser("show", help="print the snapshot's version, source and regions")
    return parser


# --- commands -----------------------------------------------------------------------------------
def stack_path(args: argparse.Namespace) -> Path:
    if args.stack_file is not None:
        path: Path = args.stack_file
    else:
        from hpc_platform.domain.config.loader import stack_file_for

        path = stack_file_for(args.stack, args.project_dir)
    if not path.is_file():
        if args.stack_file is None:
            raise UsageError(f"{path}: no such stack file; {_stacks_in(path.parent)}")
        raise UsageError(f"{path}: no such stack file")
    return path


def _stacks_in(directory: Path) -> str:
    """The stacks that exist beside a missing one, for the message."""
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))
    if not stacks:
        return f"{directory} has no Pulumi.<stack>.yaml (use --project-dir or --stack-file)"
    return f"stacks in {directory}: {', '.join(stacks)}"


def check_output_path(target: str | Path | None) -> None:
    """Fail before any work when an output file cannot be written where asked ('-' is stdout)."""
    if target is None or str(target) == "-":
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{path}: no such directory {parent}; create it first")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: directory {parent} is not writable")


def _stack_label(args: argparse.Namespace, path: Path) -> str:
    return str(args.stack) if args.stack is not None else path.name


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hpc_platform.domain.config.loader import load_stack_file

    loaded = load_stack_file(stack_path(args))
    for line in loaded.warning_lines():
        print(line, file=err)
    print(f"{loaded.source}: valid", file=out)
    return EXIT_OK


def _write_json(document: dict[str, Any], target: str, out: TextIO) -> None:
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    if target == "-":
        out.write(text)
    else:
        Path(target).write_text(text)


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hpc_platform.app.offline import plan_stack_file
    from hpc_platform.app.plan_diff import PlanFileError, read_plan
    from hpc_platform.app.preview import ResourceNotFound, find_resource, render_against, render_resource
    from hpc_platform.app.report import render_plan

    check_output_path(args.json)
    try:  # the earlier plan is read and checked before this one is made
        previous = read_plan(args.against) if args.against is not None else None
    except PlanFileError as exc:
        raise UsageError(str(exc)) from None
    path = stack_path(args)
    with step(err, f"planning {_stack_label(args, path)}…"):
        stack_plan = plan_stack_file(path)
    for line in stack_plan.loaded.warning_lines():
        print(line, file=err)
    if args.show is not None:
        try:
            out.write(render_resource(stack_plan.plan, find_resource(stack_plan.plan, args.show)))
        except ResourceNotFound as exc:
            raise UsageError(f"--show: {exc}") from None
        return EXIT_OK
    if args.json is not None:
        _write_json(stack_plan.plan.to_json(), args.json, out)
    if args.json != "-":
        out.write(render_plan(stack_plan))
        if previous is not None:
            lines = render_against(stack_plan.plan, previous, str(args.against))
            out.write("\n" + "\n".join(lines) + "\n")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hpcctl.check_command import CheckOptions, run_check

    if args.policy_config is not None and not args.policy_config.is_file():
        raise UsageError(f"{args.policy_config}: no such policy config file")
    check_output_path(args.json)
    path = stack_path(args)
    options = CheckOptions(
        stack_file=path,
        stack_label=_stack_label(args, path),
        step=step,
        policy_config=args.policy_config,
        json_target=args.json,
        format=args.format,
        verbose=args.verbose,
        base_plan=args.base,
        base_stack_file=args.base_stack_file,
    )
    return run_check(options, out, err, _write_json)


def cmd_diagram(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hpc_platform.app.diagram import SUFFIXES, GraphvizMissing, build_diagram, require_dot, write_diagram
    from hpc_platform.app.offline import plan_stack_file

    output: Path = args.output
    # Checked before planning: a bad path or a missing `dot` should not cost a plan.
    if output.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{output}: unsupported diagram format; use {', '.join(SUFFIXES)}")
    if not output.parent.is_dir():
        raise UsageError(f"{output}: no such directory {output.parent}")
    try:
        require_dot(output)
        stack_plan = plan_stack_file(stack_path(args))
        for line in stack_plan.loaded.warning_lines():
            print(line, file=err)
        write_diagram(build_diagram(stack_plan.plan), output)
    except GraphvizMissing as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {output}", file=out)
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from hpc_platform.domain.catalog import SNAPSHOT_PATH, default_catalog

    if args.catalog_command == "show":
        catalog = default_catalog()
        regions = ", ".join(catalog.regions)
        print(f"instance catalog {catalog.version}: {len(catalog.types)} types, regions {regions}", file=out)
        print(f"source: {catalog.source or 'not recorded'}", file=out)
        return EXIT_OK
    import boto3
    import botocore.exceptions

    from hpc_platform.domain.catalog.refresh import DEFAULT_REGIONS, build_snapshot, write_snapshot

    try:
        snapshot = build_snapshot(boto3.Session(), regions=args.regions or DEFAULT_REGIONS)
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.ClientError) as exc:
        raise UsageError(f"cannot read EC2 instance data: {exc}") from None
    target = args.output or SNAPSHOT_PATH
    write_snapshot(snapshot, target)
    print(f"wrote {len(snapshot['instance_types'])} instance types to {target}", file=out)
    return EXIT_OK


VERIFY_DESCRIPTION = """\
Run acceptance jobs on a deployed cluster and compare each measurement with its target from the
stack's hpc:performance keys (and storage.target_aggregate_throughput_gbps). The jobs are Slurm
jobs submitted as the cluster's default user, through SSM Run Command (AWS-RunShellScript) on the
head node, found by ParallelCluster's tags on the running instance of the stack's cluster.

Needs AWS credentials for the stack's account (region from the stack file) allowed
ec2:DescribeInstances, ssm:SendCommand, ssm:GetCommandInvocation and ssm:CancelCommand, and the
SSM agent on the head node (its role has AmazonSSMManagedInstanceCore)."""


def verify_epilog() -> str:
    import textwrap

    from hpc_platform.domain.verification import CHECKS

    checks = "\n".join(
        textwrap.fill(what, 96, initial_indent=f"  {name:<9}", subsequent_indent=" " * 11)
        for name, what in CHECKS.items()
    )
    return (
        f"checks (in the order they run; --skip NAME leaves one out):\n{checks}\n\n"
        "exit: 0 every target met; 1 a target missed or a measurement failed; 2 usage or config;\n"
        "4 the cluster cannot be reached. --json prints {schema, stack, cluster, head_node, passed,\n"
        "results: [{check, metric, subject, value, unit, target, bound, status, detail, error}],\n"
        "skipped: [{check, subject, reason}]}; see README.md, 'Verifying a deployed cluster'."
    )


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import boto3
    import botocore.exceptions

    from hpc_platform.app.verify import DEFAULT_TIMEOUT_SECONDS, VerifyError, lustre_mounts, verify
    from hpc_platform.domain.config.loader import load_stack_file
    from hpc_platform.domain.verification import plan_checks, render_report

    if args.timeout is not None and args.timeout < 30:
        raise UsageError(f"--timeout {args.timeout}: give at least 30 seconds")
    path = stack_path(args)
    loaded = load_stack_file(path)
    for line in loaded.warning_lines():
        print(line, file=err)
    config = loaded.config
    try:
        plan = plan_checks(config, lustre_mounts(config), queues=args.queue, skip=args.skip)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        report = verify(
            _stack_label(args, path),
            config,
            plan,
            boto3.Session(),
            timeout_seconds=args.timeout or DEFAULT_TIMEOUT_SECONDS,
            progress=lambda message: print(message, file=err),
        )
    except VerifyError as exc:
        print(f"hpcctl: {exc}", file=err)
        return EXIT_UNREACHABLE
    except botocore.exceptions.BotoCoreError as exc:  # no credentials, no endpoint, ...
        print(f"hpcctl: cannot reach AWS: {exc}", file=err)
        return EXIT_UNREACHABLE
    if args.json:
        _write_json(report.to_json(), "-", out)
    else:
        out.write("\n".join(render_report(report)) + "\n")
    return EXIT_OK if report.passed else EXIT_VIOLATIONS


COMMANDS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "check": cmd_check,
    "diagram": cmd_diagram,
    "verify": cmd_verify,
    "catalog": cmd_catalog,
}


@contextmanager
def _few_collections() -> Iterator[None]:
    """A command builds a few hundred thousand objects that live until it exits (modules, config
    models, the plan); with the default thresholds the cyclic collector went over them about 600
    times, a fifth of a check's time. Collect rarely while a command runs (about 3 MiB more at
    peak); the thresholds are restored for whoever called `main`."""
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    with _few_collections():
        return _run(argv, out, err)


def _run(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    args = build_parser().parse_args(argv)
    # Loaded here, inside `_few_collections` (the config models are most of hpcctl's own start-up).
    from hpc_platform.domain.config import ConfigError

    try:
        return COMMANDS[args.command](args, out, err)
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=err)
        return EXIT_INVALID
    except UsageError as exc:
        print(f"hpcctl: {exc}", file=err)
        return EXIT_INVALID
    except Exception as exc:
        if os.environ.get("HPCCTL_DEBUG"):
            raise
        print(
            f"hpcctl: internal error: {type(exc).__name__}: {exc} (set HPCCTL_DEBUG=1 for a traceback)",
            file=err,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
