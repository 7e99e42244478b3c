"""A stand-in for the `pulumi` CLI: it answers the calls `pulumi.automation` makes for the portal's
operations, so the SDK's own code runs for real and only the binary is replaced.

What it does, as the real CLI does with a file backend (`PULUMI_BACKEND_URL=file://DIR`):
- keeps stacks, their resources, outputs and update history under `DIR/.pulumi/`, so separate
  processes see the same stacks; stack config lives in `Pulumi.<stack>.yaml` in the working
  directory (secret values as `secure:` ciphertext under the stack's `encryptionsalt`);
- needs `PULUMI_CONFIG_PASSPHRASE` or `PULUMI_CONFIG_PASSPHRASE_FILE`, and refuses a wrong one;
- takes a lock file per stack for `up`/`destroy`/`refresh` (not for previews) and answers a held
  lock with the CLI's text ("the stack is currently locked by N lock(s)");
- streams engine events to `--event-log` (a `tcp://` address: the gRPC `Events` service the SDK
  serves for CLI versions after 3.205; or a file path: JSON lines), with sequence numbers;
- `preview --save-plan` writes an update plan; `up --plan` refuses to do anything the plan did not
  allow;
- on SIGINT, stops between resource steps, saves what it finished, releases the lock, writes a
  cancel event and exits non-zero with "update canceled".

What it is not: it does not run the program. Its resources are derived from the stack config (the
stack, the AWS provider, one resource per component, and one `standin:cluster:Queue` per queue),
so a config change shows up as an update of the matching resource. Its "encryption" is a keyed XOR
stream, enough to keep plaintext out of files, not a cipher to rely on.

Failures, slow runs and extra outputs are selected by rules in `DIR/.pulumi/standin-control.json`
(written by `tests.support.pulumi_standin.control`):
`{"rules": [{"operation": "up", "stack": "*", "fail": "exit" | "no-summary" | "crash",
"delay_seconds": 0.5, "secret_outputs": {"name": "value"}, "times": 1}]}`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
SECRET_SENTINEL = "[secret]"
OPERATIONS = ("preview", "up", "destroy", "refresh")


def cli_version() -> str:
    """The version of the SDK installed beside us: a real install keeps the CLI and SDK in step."""
    try:
        from importlib.metadata import version

        return version("pulumi")
    except Exception:  # the metadata may be missing on an odd interpreter; any 3.x after 3.205 works
        return "3.272.0"


class CliError(Exception):
    def __init__(self, message: str, code: int = 255) -> None:
        super().__init__(message)
        self.code = code


# --- arguments ----------------------------------------------------------------------------------
VALUE_FLAGS = {
    "--stack",
    "-s",
    "--save-plan",
    "--plan",
    "--policy-pack",
    "--policy-pack-config",
    "--event-log",
    "--exec-kind",
    "--message",
    "-m",
    "--secrets-provider",
    "--page-size",
    "--page",
    "--parallel",
    "--color",
    "--client",
    "--config-file",
}


class Args:
    def __init__(self, argv: list[str]) -> None:
        self.words: list[str] = []
        self.flags: dict[str, list[str]] = {}
        self.pairs: list[tuple[str, str]] = []  # config set-all: (--plaintext|--secret, key=value)
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                self.words.extend(argv[i + 1 :])
                break
            if arg in ("--plaintext", "--secret") and i + 1 < len(argv) and "=" in argv[i + 1]:
                self.pairs.append((arg, argv[i + 1]))
                i += 2
                continue
            if arg.startswith("-"):
                name, eq, value = arg.partition("=")
                if eq:
                    self.flags.setdefault(name, []).append(value)
                elif name in VALUE_FLAGS and i + 1 < len(argv):
                    self.flags.setdefault(name, []).append(argv[i + 1])
                    i += 1
                else:
                    self.flags.setdefault(name, []).append("true")
            else:
                self.words.append(arg)
            i += 1

    def get(self, *names: str) -> str | None:
        for name in names:
            if name in self.flags:
                return self.flags[name][-1]
        return None

    def all(self, name: str) -> list[str]:
        return self.flags.get(name, [])

    def has(self, name: str) -> bool:
        return name in self.flags and self.flags[name][-1] not in ("false", "0")


# --- backend state ------------------------------------------------------------------------------
def backend_dir() -> Path:
    url = os.environ.get("PULUMI_BACKEND_URL", "")
    if not url.startswith("file://"):
        raise CliError(
            f"error: the stand-in only serves file:// backends; PULUMI_BACKEND_URL is {url or 'unset'!r}"
        )
    path = Path(url.removeprefix("file://")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def project_settings() -> dict[str, Any]:
    path = Path.cwd() / "Pulumi.yaml"
    if not path.is_file():
        raise CliError(
            "error: no Pulumi.yaml project file found (searching upwards from "
            f"{Path.cwd()}). If you have not created a project yet, use `pulumi new` to do so"
        )
    settings = yaml.safe_load(path.read_text()) or {}
    if not settings.get("name") or not settings.get("runtime"):
        raise CliError(f"error: {path}: a project needs a name and a runtime")
    return dict(settings)


def project_name() -> str:
    return str(project_settings()["name"])


def stack_path(project: str, stack: str) -> Path:
    return backend_dir() / ".pulumi" / "stacks" / project / f"{stack}.json"


def locks_dir(project: str, stack: str) -> Path:
    return backend_dir() / ".pulumi" / "locks" / "organization" / project / stack


def load_stack(project: str, stack: str) -> dict[str, Any]:
    path = stack_path(project, stack)
    if not path.is_file():
        raise CliError(f"error: no stack named '{stack}' found")
    return dict(json.loads(path.read_text()))


def save_stack(project: str, stack: str, state: dict[str, Any]) -> None:
    path = stack_path(project, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


def now() -> str:
    return datetime.now(UTC).strftime(DATETIME_FORMAT)


# --- secrets (passphrase provider) --------------------------------------------------------------
def passphrase() -> str:
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            return Path(path).read_text().rstrip("\n")
        except OSError as exc:
            raise CliError(f"error: unable to read PULUMI_CONFIG_PASSPHRASE_FILE: {exc.strerror}") from None
    raise CliError(
        'error: constructing secrets manager of type "passphrase": passphrase must be set with '
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
    )


def _check(secret: str, salt: str) -> str:
    return hmac.new(secret.encode(), f"check:{salt}".encode(), hashlib.sha256).hexdigest()[:16]


def new_encryption_salt() -> str:
    salt = base64.b64encode(os.urandom(12)).decode()
    return f"v1:{salt}:{_check(passphrase(), salt)}"


def verified_key(encryption_salt: str) -> bytes:
    _, salt, check = encryption_salt.split(":")
    secret = passphrase()
    if not hmac.compare_digest(_check(secret, salt), check):
        raise CliError(
            "error: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE to the correct passphrase"
        )
    return hashlib.sha256(f"{secret}:{salt}".encode()).digest()


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(key + nonce + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def encrypt(key: bytes, plaintext: str) -> str:
    nonce = os.urandom(12)
    data = plaintext.encode()
    cipher = bytes(a ^ b for a, b in zip(data, _stream(key, nonce, len(data)), strict=True))
    return "v1:" + base64.b64encode(nonce + cipher).decode()


def decrypt(key: bytes, ciphertext: str) -> str:
    raw = base64.b64decode(ciphertext.removeprefix("v1:"))
    nonce, cipher = raw[:12], raw[12:]
    return bytes(a ^ b for a, b in zip(cipher, _stream(key, nonce, len(cipher)), strict=True)).decode()


# --- stack config (Pulumi.<stack>.yaml in the working directory) --------------------------------
def stack_file(stack: str) -> Path:
    return Path.cwd() / f"Pulumi.{stack}.yaml"


def read_stack_file(stack: str) -> dict[str, Any]:
    path = stack_file(stack)
    return dict(yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def encryption_salt(stack: str, state: dict[str, Any]) -> str:
    """The stack file's salt, else the one kept in the stack's state (a fresh work dir has none)."""
    return str(read_stack_file(stack).get("encryptionsalt") or state["encryptionsalt"])


def stack_config(project: str, stack: str) -> dict[str, dict[str, Any]]:
    """key -> {"value": plaintext, "secret": bool}."""
    state = load_stack(project, stack)
    document = read_stack_file(stack)
    key = None
    config: dict[str, dict[str, Any]] = {}
    for name, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            key = key or verified_key(encryption_salt(stack, state))
            config[name] = {"value": decrypt(key, value["secure"]), "secret": True}
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            config[name] = {"value": text, "secret": False}
    return config


# --- resources derived from the config ----------------------------------------------------------
def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def desired_resources(
    project: str, stack: str, config: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    def value(key: str) -> Any:
        entry = config.get(key)
        return _json(entry["value"]) if entry else None

    def urn(type_: str, name: str) -> str:
        return f"urn:pulumi:{stack}::{project}::{type_}::{name}"

    resources: dict[str, dict[str, Any]] = {}

    def add(type_: str, name: str, inputs: Any) -> None:
        resources[urn(type_, name)] = {"type": type_, "inputs": inputs if isinstance(inputs, dict) else {}}

    add("pulumi:pulumi:Stack", f"{project}-{stack}", {})
    add("pulumi:providers:aws", "default", {"region": value("aws:region")})
    for key, type_, role in (
        ("hpc:network", "hpc:network:EfaNetwork", "network"),
        ("hpc:storage", "hpc:storage:DataRepository", "data"),
        ("hpc:storage", "hpc:storage:LustreFs", "lustre"),
        ("hpc:observability", "hpc:observability:Observability", "observability"),
    ):
        if value(key) is not None:
            add(type_, f"{stack}-{role}", value(key))
    cluster = value("hpc:cluster")
    if isinstance(cluster, dict):
        add(
            "hpc:cluster:ParallelCluster",
            f"{stack}-cluster",
            {k: v for k, v in cluster.items() if k != "queues"},
        )
        for queue_ in cluster.get("queues") or []:
            if isinstance(queue_, dict) and queue_.get("name"):
                add("standin:cluster:Queue", f"{stack}-cluster-{queue_['name']}", queue_)
    return resources


def desired_outputs(config: dict[str, dict[str, Any]], rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the program exports that the config alone determines; a value read from a secret
    config key is a secret output, as Pulumi propagates secretness."""

    def output(key: str, pick: Any = None) -> dict[str, Any] | None:
        entry = config.get(key)
        if entry is None:
            return None
        value = _json(entry["value"])
        if pick is not None:
            value = value.get(pick) if isinstance(value, dict) else None
        return {"value": value, "secret": bool(entry["secret"])}

    outputs = {
        "environment": output("hpc:environment"),
        "region": output("aws:region"),
        "cluster_name": output("hpc:cluster", "name"),
    }
    result = {name: out for name, out in outputs.items() if out is not None and out["value"] is not None}
    for name, value in (rule.get("secret_outputs") or {}).items():
        result[name] = {"value": value, "secret": True}
    return result


def steps_for(
    operation: str, state: dict[str, Any], desired: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    current: dict[str, dict[str, Any]] = state.get("resources", {})
    steps: list[dict[str, Any]] = []
    if operation == "destroy":
        for urn, res in reversed(list(current.items())):
            steps.append({"op": "delete", "urn": urn, "type": res["type"], "old": res["inputs"], "new": None})
        return steps
    if operation == "refresh":
        for urn, res in current.items():
            steps.append(
                {"op": "refresh", "urn": urn, "type": res["type"], "old": res["inputs"], "new": res["inputs"]}
            )
        return steps
    for urn, res in desired.items():
        old = current.get(urn)
        if old is None:
            op = "create"
        elif old["inputs"] != res["inputs"]:
            op = "update"
        else:
            op = "same"
        steps.append(
            {
                "op": op,
                "urn": urn,
                "type": res["type"],
                "old": old["inputs"] if old else None,
                "new": res["inputs"],
            }
        )
    for urn, res in reversed(list(current.items())):
        if urn not in desired:
            steps.append({"op": "delete", "urn": urn, "type": res["type"], "old": res["inputs"], "new": None})
    return steps


def change_counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        op = "same" if step["op"] == "refresh" else step["op"]
        counts[op] = counts.get(op, 0) + 1
    return counts


# --- control rules ------------------------------------------------------------------------------
def control_rule(operation: str, stack: str) -> dict[str, Any]:
    path = backend_dir() / ".pulumi" / "standin-control.json"
    if not path.is_file():
        return {}
    with open(path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        document = json.loads(handle.read() or "{}")
        rules = document.get("rules", [])
        for rule in rules:
            if rule.get("operation", "*") in ("*", operation) and rule.get("stack", "*") in ("*", stack):
                if "times" in rule:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        rules.remove(rule)
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps(document))
                return dict(rule)
    return {}


# --- engine events ------------------------------------------------------------------------------
class EventLog:
    """Engine events with sequence numbers, to the SDK's gRPC `Events` service or a file."""

    def __init__(self, target: str | None) -> None:
        self.sequence = 0
        self.target = target
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._file = None
        self._error: BaseException | None = None
        if target and target.startswith("tcp://"):
            self._thread = threading.Thread(target=self._stream, args=(target.removeprefix("tcp://"),))
            self._thread.start()
        elif target:
            self._file = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _stream(self, address: str) -> None:
        try:
            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc
        except ImportError as exc:  # pragma: no cover - a misconfigured interpreter
            self._error = exc
            return

        def requests() -> Any:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                yield events_pb2.EventRequest(event=item)

        try:
            with grpc.insecure_channel(address) as channel:
                events_pb2_grpc.EventsStub(channel).StreamEvents(requests())
        except Exception as exc:
            self._error = exc

    def emit(self, kind: str, body: dict[str, Any]) -> None:
        event = {"sequence": self.sequence, "timestamp": int(time.time()), kind: body}
        self.sequence += 1
        line = json.dumps(event)
        if self._thread is not None:
            self._queue.put(line)
        elif self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            if self._error is not None:
                print(f"warning: could not stream engine events: {self._error}", file=sys.stderr)
        if self._file is not None:
            self._file.close()


def step_metadata(step: dict[str, Any], stack: str, project: str) -> dict[str, Any]:
    def state(inputs: dict[str, Any] | None) -> dict[str, Any] | None:
        if inputs is None:
            return None
        return {
            "urn": step["urn"],
            "type": step["type"],
            "custom": step["type"].startswith(("pulumi:providers", "standin:")),
            "inputs": inputs,
            "outputs": inputs,
        }

    diffs = sorted(
        k
        for k in set(step["old"] or {}) | set(step["new"] or {})
        if (step["old"] or {}).get(k) != (step["new"] or {}).get(k)
    )
    return {
        "op": step["op"],
        "urn": step["urn"],
        "type": step["type"],
        "provider": f"urn:pulumi:{stack}::{project}::pulumi:providers:aws::default",
        "old": state(step["old"]),
        "new": state(step["new"]),
        "diffs": diffs if step["op"] == "update" else [],
        "logical": True,
    }


# --- locks --------------------------------------------------------------------------------------
@contextlib.contextmanager
def stack_lock(project: str, stack: str) -> Any:
    directory = locks_dir(project, stack)
    directory.mkdir(parents=True, exist_ok=True)
    mine = directory / f"{uuid.uuid4()}.json"
    mine.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "username": getpass.getuser(),
                "hostname": socket.gethostname(),
                "timestamp": now(),
            }
        )
    )
    others = [p for p in directory.glob("*.json") if p != mine]
    if others:
        mine.unlink()
        lines = []
        for path in others:
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(path.read_text())
                lines.append(
                    f"  {path.as_uri()}: created by {info['username']}@{info['hostname']} "
                    f"(pid {info['pid']}) at {info['timestamp']}"
                )
        raise CliError(
            f"error: the stack is currently locked by {len(others)} lock(s). Either wait for the other "
            "process(es) to end or delete the lock file with `pulumi cancel`.\n" + "\n".join(lines)
        )
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            mine.unlink()


# --- commands -----------------------------------------------------------------------------------
def require_stack(args: Args) -> str:
    stack = args.get("--stack", "-s")
    if not stack:
        raise CliError("error: no stack selected; please use `pulumi stack select` to choose one")
    return stack


def cmd_stack(args: Args) -> None:
    sub = args.words[1] if len(args.words) > 1 else ""
    project = project_name()
    if sub == "select" or sub == "":
        stack = require_stack(args)
        load_stack(project, stack)
        home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
        (home / "workspaces").mkdir(parents=True, exist_ok=True)
        (home / "workspaces" / f"{project}-workspace.json").write_text(json.dumps({"stack": stack}))
    elif sub == "init":
        stack = args.words[2] if len(args.words) > 2 else require_stack(args)
        if stack_path(project, stack).exists():
            raise CliError(f"error: stack '{stack}' already exists")
        salt = new_encryption_salt()
        save_stack(project, stack, {"encryptionsalt": salt, "resources": {}, "outputs": {}, "history": []})
        document = read_stack_file(stack)
        document["encryptionsalt"] = salt
        stack_file(stack).write_text(yaml.safe_dump(document, sort_keys=False))
        print(f"Created stack '{stack}'")
    elif sub == "ls":
        stacks = sorted((backend_dir() / ".pulumi" / "stacks" / project).glob("*.json"))
        print(json.dumps([{"name": p.stem, "current": False, "url": p.as_uri()} for p in stacks]))
    elif sub == "output":
        state = load_stack(project, require_stack(args))
        show = args.has("--show-secrets")
        print(
            json.dumps(
                {
                    k: (o["value"] if show or not o["secret"] else SECRET_SENTINEL)
                    for k, o in state["outputs"].items()
                }
            )
        )
    elif sub == "history":
        state = load_stack(project, require_stack(args))
        history = list(reversed(state["history"]))
        size = args.get("--page-size")
        if size:
            page = int(args.get("--page") or 1)
            history = history[(page - 1) * int(size) : page * int(size)]
        if not args.has("--show-secrets"):
            history = [
                {**h, "config": {k: ({"secret": True} if c["secret"] else c) for k, c in h["config"].items()}}
                for h in history
            ]
        print(json.dumps(history))
    else:
        raise CliError(f'error: unknown command "{sub}" for "pulumi stack"')


def cmd_config(args: Args) -> None:
    project = project_name()
    stack = require_stack(args)
    state = load_stack(project, stack)
    sub = args.words[1] if len(args.words) > 1 else ""
    if sub == "set-all":
        if args.has("--path"):
            raise CliError("error: the stand-in does not take --path; set whole values")
        document = read_stack_file(stack)
        document.setdefault("encryptionsalt", state["encryptionsalt"])
        config = dict(document.get("config") or {})
        key = None
        for kind, pair in args.pairs:
            name, _, value = pair.partition("=")
            if ":" not in name:
                name = f"{project}:{name}"
            if kind == "--secret":
                key = key or verified_key(encryption_salt(stack, state))
                config[name] = {"secure": encrypt(key, value)}
            else:
                config[name] = value
        document["config"] = config
        stack_file(stack).write_text(yaml.safe_dump(document, sort_keys=False))
    elif sub == "" and args.has("--json"):
        config = stack_config(project, stack)
        show = args.has("--show-secrets")
        print(
            json.dumps({k: (c if show or not c["secret"] else {"secret": True}) for k, c in config.items()})
        )
    else:
        raise CliError(f'error: the stand-in does not implement "pulumi config {sub}"')


def check_program(settings: dict[str, Any]) -> None:
    """What the language host would trip over before running the program."""
    main = Path.cwd() / str(settings.get("main") or ".")  # an absolute `main` replaces the cwd
    if not (main / "__main__.py").is_file():
        raise CliError(f"error: failed to find the program: {main / '__main__.py'} does not exist")
    venv = (
        ((settings.get("runtime") or {}).get("options") or {}).get("virtualenv")
        if isinstance(settings.get("runtime"), dict)
        else None
    )
    if venv and not Path(venv).is_absolute():
        venv = str(Path.cwd() / venv)
    if venv and not Path(venv).is_dir():
        raise CliError(
            f"error: The 'virtualenv' option in Pulumi.yaml is set to {venv!r}, but it does not exist"
        )


def policy_packs(args: Args) -> dict[str, str]:
    packs: dict[str, str] = {}
    for pack in args.all("--policy-pack"):
        path = Path(pack)
        if not (path / "PulumiPolicy.yaml").is_file():
            raise CliError(f"error: {path}: no PulumiPolicy.yaml found; is this a policy pack?")
        version = str(
            (yaml.safe_load((path / "PulumiPolicy.yaml").read_text()) or {}).get("version", "0.0.0")
        )
        packs[path.name] = f"v{version}"
    for config in args.all("--policy-pack-config"):
        try:
            if not isinstance(json.loads(Path(config).read_text()), dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            raise CliError(f"error: loading policy pack config {config}: {exc}") from None
    return packs


class Cancelled(Exception):
    pass


def cmd_operation(operation: str, args: Args) -> None:
    settings = project_settings()
    project = str(settings["name"])
    stack = require_stack(args)
    state = load_stack(project, stack)
    preview_only = operation == "preview" or args.has("--preview-only")
    config = stack_config(project, stack)
    check_program(settings)
    packs = policy_packs(args)
    rule = control_rule(operation, stack)

    interrupted = threading.Event()

    def on_sigint(_signum: int, _frame: Any) -> None:
        if interrupted.is_set():
            os._exit(130)  # a second ^C ends at once, as the real CLI does
        interrupted.set()
        print(
            "^C received; cancelling. If you would like to terminate immediately, press ^C again.",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, on_sigint)

    desired = desired_resources(project, stack, config)
    steps = steps_for("refresh" if operation == "refresh" else operation, state, desired)
    plan_file = args.get("--plan")
    if plan_file and operation == "up":
        check_against_plan(Path(plan_file), steps)

    lock = contextlib.nullcontext() if preview_only else stack_lock(project, stack)
    events = EventLog(args.get("--event-log"))
    started = now()
    result = "succeeded"
    try:
        with lock:
            events.emit(
                "preludeEvent",
                {"config": {k: (SECRET_SENTINEL if c["secret"] else c["value"]) for k, c in config.items()}},
            )
            if rule.get("fail") == "crash":
                print(
                    "panic: runtime error: invalid memory address or nil pointer dereference", file=sys.stderr
                )
                raise CliError("error: an unhandled error occurred: the stand-in crashed as told", 2)
            done: list[dict[str, Any]] = []
            try:
                for step in steps:
                    if interrupted.is_set():
                        raise Cancelled
                    metadata = step_metadata(step, stack, project)
                    events.emit("resourcePreEvent", {"metadata": metadata, "planning": preview_only})
                    if rule.get("delay_seconds"):
                        interrupted.wait(float(rule["delay_seconds"]))
                    if not preview_only:
                        events.emit("resOutputsEvent", {"metadata": metadata, "planning": False})
                    done.append(step)
                if rule.get("fail") == "exit":
                    raise CliError(
                        f"error: {operation} failed: the stand-in was told to fail this {operation}"
                    )
            except (Cancelled, CliError):
                result = "failed"
                if not preview_only:
                    apply(state, done, desired, config, rule, operation, complete=False)
                raise
            finally:
                if not preview_only:
                    record(state, operation, result, started, config, change_counts(done))
                    save_stack(project, stack, state)
            events.emit(
                "diagnosticEvent",
                {
                    "urn": f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}",
                    "prefix": "",
                    "message": f"stand-in: {len(desired)} resources from the stack config\n",
                    "color": "never",
                    "severity": "info",
                },
            )
            if not preview_only:
                apply(state, done, desired, config, rule, operation, complete=True)
                save_stack(project, stack, state)
            if args.get("--save-plan"):
                save_plan(Path(str(args.get("--save-plan"))), steps)
            if rule.get("fail") != "no-summary":
                events.emit(
                    "summaryEvent",
                    {
                        "maybeCorrupt": False,
                        "durationSeconds": 0,
                        "resourceChanges": change_counts(steps),
                        "PolicyPacks": packs,
                    },
                )
            events.emit("cancelEvent", {})
    except Cancelled:
        events.emit("cancelEvent", {})
        events.close()
        raise CliError(f"error: {'preview' if preview_only else 'update'} canceled") from None
    except CliError:
        events.close()
        raise
    events.close()
    if args.has("--json"):
        print(json.dumps({"changeSummary": change_counts(steps)}))
    else:
        print(f"{'Previewing' if preview_only else 'Updating'} ({stack}):\nResources: {change_counts(steps)}")


def apply(
    state: dict[str, Any],
    done: list[dict[str, Any]],
    desired: dict[str, dict[str, Any]],
    config: dict[str, dict[str, Any]],
    rule: dict[str, Any],
    operation: str,
    complete: bool,
) -> None:
    resources: dict[str, dict[str, Any]] = state.setdefault("resources", {})
    for step in done:
        if step["op"] == "delete":
            resources.pop(step["urn"], None)
        elif step["op"] in ("create", "update", "same"):
            resources[step["urn"]] = desired[step["urn"]]
    if complete:
        state["outputs"] = (
            {}
            if operation == "destroy"
            else desired_outputs(config, rule)
            if operation == "up"
            else state.get("outputs", {})
        )


def record(
    state: dict[str, Any],
    operation: str,
    result: str,
    started: str,
    config: dict[str, dict[str, Any]],
    changes: dict[str, int],
) -> None:
    history: list[dict[str, Any]] = state.setdefault("history", [])
    history.append(
        {
            "version": len(history) + 1,
            "kind": {"up": "update"}.get(operation, operation),
            "result": result,
            "startTime": started,
            "endTime": now(),
            "message": "",
            "environment": {"exec.kind": "auto.local"},
            "config": config,
            "resourceChanges": changes,
        }
    )


def save_plan(path: Path, steps: list[dict[str, Any]]) -> None:
    plan = {
        "manifest": {"time": now(), "version": cli_version()},
        "resourcePlans": {s["urn"]: {"steps": [s["op"]], "goal": s["new"]} for s in steps},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2, sort_keys=True))


def check_against_plan(path: Path, steps: list[dict[str, Any]]) -> None:
    try:
        plan = json.loads(path.read_text())["resourcePlans"]
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"error: could not read plan file {path}: {exc}") from None
    for step in steps:
        planned = plan.get(step["urn"])
        if planned is None:
            if step["op"] != "same":
                raise CliError(
                    f"error: {step['op']} is not allowed by the plan: no steps were expected for this "
                    f"resource\n  {step['urn']}"
                )
            continue
        if planned["steps"] != [step["op"]]:
            raise CliError(
                f"error: {step['op']} is not allowed by the plan: this resource is constrained to "
                f"{planned['steps']}\n  {step['urn']}"
            )
        if planned["goal"] != step["new"]:
            raise CliError(f"error: resource violates plan: properties changed\n  {step['urn']}")
    for urn in set(plan) - {s["urn"] for s in steps}:
        raise CliError(f"error: expected resource operations for {urn} but no operation was sent for it")


def cmd_cancel(args: Args) -> None:
    project = project_name()
    stack = require_stack(args)
    load_stack(project, stack)
    for path in locks_dir(project, stack).glob("*.json"):
        path.unlink()
    print(f"The currently running update for '{stack}' has been canceled!")


def main(argv: list[str]) -> int:
    args = Args(argv)
    command = args.words[0] if args.words else ""
    try:
        if command == "version":
            print(f"v{cli_version()}")
        elif command == "whoami":
            user = getpass.getuser()
            print(
                json.dumps({"user": user, "url": os.environ.get("PULUMI_BACKEND_URL", "")})
                if args.has("--json")
                else user
            )
        elif command == "stack":
            cmd_stack(args)
        elif command == "config":
            cmd_config(args)
        elif command in OPERATIONS:
            cmd_operation(command, args)
        elif command == "cancel":
            cmd_cancel(args)
        elif command == "plugin" and args.words[1:2] == ["ls"]:
            print("[]")
        else:
            raise CliError(f'error: unknown command "{command}" for "pulumi"')
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
