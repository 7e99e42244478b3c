"""Run one Pulumi operation (preview, up, destroy, refresh) for a portal job, through the Automation
API, in the job's own directory.

- The workspace is the job's `work_dir`, with a generated `Pulumi.yaml` (the project's name and
  runtime, `main` pointing at the program, the project's `.venv` when present). The CLI writes the
  stack's `Pulumi.<stack>.yaml` there, so the repository's stack files are never touched.
- The config is validated again with the CLI's models and set with `set_all_config`; the policy pack
  and the environment's policy config ride along on preview and up.
- `preview` saves an update plan and `up` applies it (the CLI refuses anything the plan did not
  allow); `refresh` can be preview-only (a drift check) and `destroy` can be previewed too.
- Engine events come through the SDK's `on_event`, with the engine's sequence numbers, in the CLI's
  JSON shape.
- `run_in_subprocess` runs all of that in a child process that leads its own process group: cancel
  is `os.killpg(pgid, SIGINT)`, which reaches the child and the Pulumi CLI alike. The CLI cancels
  its update itself (the Python SDK cannot cancel a running operation); the child waits for it and
  reports a cancelled result.

The secrets passphrase (`PULUMI_CONFIG_PASSPHRASE` or `PULUMI_CONFIG_PASSPHRASE_FILE`) is inherited
from the environment, never passed as an argument, logged or written by this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from hpc_platform.app.automation import config_values, validated_request
from hpc_platform.domain.config import ConfigError

Operation = Literal["preview", "up", "destroy", "refresh"]
OPERATIONS: tuple[Operation, ...] = ("preview", "up", "destroy", "refresh")
OnEvent = Callable[[int, dict[str, Any]], None]

SECRET_MASK = "[secret]"
# Pulumi's own rule for stack names; the name also becomes a file name in the work dir.
STACK_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
PULUMI_LOG = "pulumi.log"
"""The CLI's own output (secrets masked by the CLI), in the job's work dir, for operators."""


@dataclass(frozen=True)
class OperationSpec:
    stack: str
    operation: Operation
    config: dict[str, Any]
    """The stack-file `config:` map (what `requests.config` holds)."""
    work_dir: Path
    """This job's own directory (created here)."""
    project_dir: Path
    """The program: the directory with `Pulumi.yaml` and `__main__.py`."""
    backend_url: str
    pulumi_root: Path | None
    """A directory with `bin/pulumi`; None runs the `pulumi` on PATH."""
    plan_path: Path | None = None
    """preview: save the update plan here; up: apply this plan (required to exist)."""
    preview_only_refresh: bool = False
    """refresh: `refresh --preview-only`, a drift check that changes nothing."""
    policy_pack: bool = True
    """preview and up: run `policy/` with `policy/config/<environment>.json`."""
    preview_only_destroy: bool = False
    """destroy: preview the destroy (what an approver reviews) without doing it."""
    pulumi_home: Path | None = None
    """PULUMI_HOME (plugins, workspace settings); default: `.pulumi-home` beside the job work dirs,
    so jobs share downloaded plugins."""

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationSpec:
        paths = {"work_dir", "project_dir", "pulumi_root", "plan_path", "pulumi_home"}
        values: dict[str, Any] = {
            k: (Path(v) if k in paths and v is not None else v) for k, v in data.items()
        }
        return cls(**values)


@dataclass(frozen=True)
class OperationResult:
    ok: bool
    summary: dict[str, Any]
    """Change counts by operation (create/update/delete/same/replace...)."""
    outputs: dict[str, Any]
    """Stack outputs after up/destroy/refresh, secrets masked as "[secret]"; {} for previews."""
    stack_version: int | None
    """The stack's last update version after the operation (None: never updated)."""
    plan_sha256: str | None
    """Of the saved plan, for a preview with `plan_path`."""
    error: str | None
    """One clear line when not ok."""
    cancelled: bool = False
    """The operation was interrupted by SIGINT/SIGTERM (then `ok` is False)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationResult:
        return cls(**data)


class ConcurrentUpdate(Exception):
    """The backend's lock for the stack is held by another update: requeue with backoff."""


# --- cancellation -------------------------------------------------------------------------------
_cancel = threading.Event()


class _Cancelled(Exception):
    pass


def _check_cancel() -> None:
    if _cancel.is_set():
        raise _Cancelled


def _cancelled(operation: str, summary: dict[str, Any] | None = None) -> OperationResult:
    return OperationResult(
        ok=False,
        summary=summary or {},
        outputs={},
        stack_version=None,
        plan_sha256=None,
        error=f"cancelled: pulumi {operation} was interrupted; the stack keeps what finished before",
        cancelled=True,
    )


# --- the workspace ------------------------------------------------------------------------------
def project_settings(project_dir: Path) -> dict[str, Any]:
    """The job's `Pulumi.yaml`: the project's, with `main` at the program and the virtualenv
    resolved against the project (a relative one would resolve against the job's directory)."""
    source = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    runtime = source.get("runtime")
    runtime = dict(runtime) if isinstance(runtime, dict) else {"name": runtime}
    options = dict(runtime.get("options") or {})
    if "virtualenv" in options:
        venv = project_dir / str(options["virtualenv"])
        if venv.is_dir():
            options["virtualenv"] = str(venv.resolve())
        else:
            # No virtualenv yet: the language host uses the Python on PATH.
            del options["virtualenv"]
    runtime["options"] = options
    if not options:
        del runtime["options"]
    settings = {k: v for k, v in source.items() if k in ("name", "description", "config")}
    return {**settings, "runtime": runtime, "main": str(project_dir.resolve())}


def _pulumi_command(spec: OperationSpec) -> Any:
    import pulumi.automation as auto

    try:
        if spec.pulumi_root is not None:
            return auto.PulumiCommand(root=str(spec.pulumi_root))
        return auto.PulumiCommand()
    except (OSError, subprocess.CalledProcessError) as exc:
        where = f"{spec.pulumi_root}/bin/pulumi" if spec.pulumi_root else "`pulumi` on PATH"
        raise _Failure(f"the Pulumi CLI ({where}) could not run: {exc}; install it or set its root") from None


def _workspace(spec: OperationSpec) -> Any:
    import pulumi.automation as auto

    spec.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (spec.work_dir / "Pulumi.yaml").write_text(
        yaml.safe_dump(project_settings(spec.project_dir), sort_keys=False)
    )
    if spec.backend_url.startswith("file://"):
        Path(spec.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True, mode=0o700)
    home = spec.pulumi_home or spec.work_dir.parent / ".pulumi-home"
    return auto.LocalWorkspace(
        work_dir=str(spec.work_dir),
        pulumi_home=str(home),
        # Only what is not secret: the passphrase is inherited from the environment, so it never
        # shows in the workspace's repr or in an error.
        env_vars={"PULUMI_BACKEND_URL": spec.backend_url, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        pulumi_command=_pulumi_command(spec),
    )


# --- engine events ------------------------------------------------------------------------------
# The SDK's attribute names are its JSON names in snake case, except this one (PascalCase in the
# CLI's JSON for backwards compatibility, says the SDK).
_WIRE_NAMES = {"policy_packs": "PolicyPacks"}


def _camel(name: str) -> str:
    if name in _WIRE_NAMES:
        return _WIRE_NAMES[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _wire(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(_wire(k)): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    if hasattr(value, "__dict__"):
        return {_camel(k): _wire(v) for k, v in vars(value).items() if v is not None}
    return value


def event_body(event: Any) -> dict[str, Any]:
    """An `EngineEvent` back in the CLI's JSON shape (`{"sequence", "timestamp", "summaryEvent": …}`)."""
    return cast(dict[str, Any], _wire(event))


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(_wire(op)): int(n) for op, n in (changes or {}).items()}


# --- errors -------------------------------------------------------------------------------------
class _Failure(Exception):
    pass


def _one_line(operation: str, exc: BaseException) -> str:
    """The CLI's first `error:` line (else its last stderr line), with the exit code."""
    text = str(exc)
    code = re.search(r"^ code: (-?\d+)$", text, re.MULTILINE)
    stderr = text.split("\n stderr: ", 1)[1] if "\n stderr: " in text else text
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    reason = (errors or lines or ["no output"])[0]
    exit_code = f" (exit {code.group(1)})" if code else ""
    return f"pulumi {operation} failed{exit_code}: {reason}"


def _failed(error: str, summary: dict[str, Any] | None = None) -> OperationResult:
    return OperationResult(
        ok=False, summary=summary or {}, outputs={}, stack_version=None, plan_sha256=None, error=error
    )


# --- the operation ------------------------------------------------------------------------------
def _policy_options(spec: OperationSpec, environment: str) -> dict[str, Any]:
    if not spec.policy_pack:
        return {}
    pack = spec.project_dir / "policy"
    config = pack / "config" / f"{environment}.json"
    return {
        "policy_packs": [str(pack)],
        "policy_pack_configs": [str(config)] if config.is_file() else None,
    }


@contextlib.contextmanager
def _cli_log(work_dir: Path) -> Iterator[Callable[[str], None]]:
    with open(work_dir / PULUMI_LOG, "a", encoding="utf-8") as log:
        lock = threading.Lock()

        def write(line: str) -> None:
            with lock:
                log.write(line + "\n")
                log.flush()

        yield write


def _last_version(stack: Any) -> int | None:
    history = stack.history(page_size=1, show_secrets=False)
    return int(history[0].version) if history and history[0].version is not None else None


def _masked(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: (SECRET_MASK if out.secret else out.value) for name, out in outputs.items()}


def run_operation(spec: OperationSpec, on_event: OnEvent) -> OperationResult:
    """Validate the config, then run the operation with the real `pulumi.automation` SDK.

    Returns a failed result (one clear line) for a bad config, a CLI failure or a missing summary
    event; raises `ConcurrentUpdate` when the stack's lock is held. Cancellation by signal works in
    `run_in_subprocess`'s child; called directly, a SIGINT raises KeyboardInterrupt as usual."""
    import pulumi.automation as auto

    if spec.operation not in OPERATIONS:
        return _failed(f"unknown operation {spec.operation!r}; use one of {', '.join(OPERATIONS)}")
    if not STACK_NAME.match(spec.stack) or ".." in spec.stack:
        return _failed(f"{spec.stack!r} is not a valid stack name; use letters, digits, '-', '_' and '.'")
    try:
        loaded = validated_request(spec.stack, spec.config)
    except ConfigError as exc:
        return _failed("; ".join(exc.lines))

    summaries: list[dict[str, int]] = []

    def relay(event: Any) -> None:
        if event.summary_event is not None:
            summaries.append(_counts(event.summary_event.resource_changes))
        on_event(int(event.sequence), event_body(event))

    def summary() -> dict[str, int]:
        if not summaries:
            raise _Failure(
                f"pulumi {spec.operation} ended without a summary event: its outcome is unknown; "
                "check the stack (a refresh) before running it again"
            )
        return summaries[-1]

    operation = spec.operation
    try:
        _check_cancel()
        stack = auto.Stack.create_or_select(spec.stack, _workspace(spec))
        _check_cancel()
        stack.set_all_config(config_values(loaded.config))
        _check_cancel()
        with _cli_log(spec.work_dir) as log:
            common: dict[str, Any] = {"on_event": relay, "on_output": log, "on_error": log}
            policy = _policy_options(spec, loaded.config.environment)
            plan = str(spec.plan_path) if spec.plan_path is not None else None
            if operation == "preview":
                stack.preview(plan=plan, **policy, **common)
                plan_sha = hashlib.sha256(spec.plan_path.read_bytes()).hexdigest() if spec.plan_path else None
                return OperationResult(True, summary(), {}, _last_version(stack), plan_sha, None)
            if operation == "up":
                if spec.plan_path is not None and not spec.plan_path.is_file():
                    return _failed(f"the saved plan {spec.plan_path.name} is missing; preview again")
                up = stack.up(plan=plan, show_secrets=False, **policy, **common)
                return OperationResult(True, summary(), _masked(up.outputs), up.summary.version, None, None)
            if operation == "destroy":
                if spec.preview_only_destroy:
                    stack.preview_destroy(**common)
                    return OperationResult(True, summary(), {}, _last_version(stack), None, None)
                done = stack.destroy(show_secrets=False, **common)
                return OperationResult(True, summary(), {}, done.summary.version, None, None)
            if spec.preview_only_refresh:
                stack.preview_refresh(**common)
                return OperationResult(True, summary(), {}, _last_version(stack), None, None)
            refreshed = stack.refresh(show_secrets=False, **common)
            outputs = _masked(stack.outputs())
            return OperationResult(True, summary(), outputs, refreshed.summary.version, None, None)
    except _Cancelled:
        return _cancelled(operation)
    except auto.ConcurrentUpdateError as exc:
        raise ConcurrentUpdate(_one_line(operation, exc)) from None
    except auto.CommandError as exc:
        if _cancel.is_set():
            return _cancelled(operation, summaries[-1] if summaries else None)
        return _failed(_one_line(operation, exc), summaries[-1] if summaries else None)
    except _Failure as exc:
        return _failed(str(exc))
    except RuntimeError as exc:
        # The SDK's own check on previews ("summary event never found").
        if "summary event" in str(exc):
            return _failed(f"pulumi {operation} ended without a summary event: {exc}")
        raise


def stack_version(spec: OperationSpec) -> int | None:
    """The stack's last update version now (None: no such stack, or never updated): compared with
    the version an approval was bound to, to tell whether the stack changed since the preview."""
    import pulumi.automation as auto

    try:
        stack = auto.Stack.select(spec.stack, _workspace(spec))
    except auto.StackNotFoundError:
        return None
    return _last_version(stack)


# --- the child process --------------------------------------------------------------------------
def _child_environment() -> dict[str, str]:
    """The child imports this same code (a worktree or an install), whatever the cwd."""
    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def run_in_subprocess(
    spec: OperationSpec, on_event: OnEvent, on_started: Callable[[int], None]
) -> OperationResult:
    """`run_operation` in a child process that leads its own process group (its pid is the group
    id: cancel with `os.killpg(pid, signal.SIGINT)`). Events are relayed to `on_event` here, in
    order; `on_started(pid)` is called once the child exists. Raises `ConcurrentUpdate` as
    `run_operation` does."""
    spec.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    read_fd, write_fd = os.pipe()
    with open(spec.work_dir / "runner.log", "ab") as log:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "hpc_platform.app.portal.runner", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(write_fd,),
                start_new_session=True,
                env=_child_environment(),
                cwd=spec.work_dir,
            )
        finally:
            os.close(write_fd)
    on_started(child.pid)
    assert child.stdin is not None
    with child.stdin:
        child.stdin.write(json.dumps(spec.to_json()).encode())
    final: dict[str, Any] | None = None
    with os.fdopen(read_fd, encoding="utf-8") as messages:
        for line in messages:
            message = json.loads(line)
            if "event" in message:
                on_event(int(message["seq"]), message["event"])
            else:
                final = message
    code = child.wait()
    if final is not None and "concurrent_update" in final:
        raise ConcurrentUpdate(final["concurrent_update"])
    if final is not None and "result" in final:
        return OperationResult.from_json(final["result"])
    if final is not None and "crash" in final:
        return _failed(f"the runner failed: {final['crash']}")
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    return _failed(f"the runner process ended ({how}) without a result; see runner.log in its work dir")


def _child_main(channel_fd: int) -> int:
    def on_signal(_signum: int, _frame: Any) -> None:
        # The CLI got the same signal (same process group) and cancels its update; wait for it.
        _cancel.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    spec = OperationSpec.from_json(json.loads(sys.stdin.read()))
    lock = threading.Lock()
    with os.fdopen(channel_fd, "w", encoding="utf-8") as channel:

        def send(message: dict[str, Any]) -> None:
            with lock:
                channel.write(json.dumps(message) + "\n")
                channel.flush()

        try:
            result = run_operation(spec, lambda seq, body: send({"seq": seq, "event": body}))
        except ConcurrentUpdate as exc:
            send({"concurrent_update": str(exc)})
        except Exception as exc:
            send({"crash": f"{type(exc).__name__}: {exc}"})
            raise
        else:
            send({"result": result.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(int(sys.argv[1])))
