"""The stand-in `pulumi` executable (`ROOT/bin/pulumi`, implemented in `standin.py`) and helpers to
steer it: pass `ROOT` as the runner's `pulumi_root` and put `environment()` in the process
environment (it names the interpreter the stand-in runs on).

The stand-in keeps its state under the file backend's directory, so the helpers take the backend
URL (`file://DIR`) the runner was given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
"""The directory with `bin/pulumi`: what `PulumiCommand(root=...)` takes."""


def environment() -> dict[str, str]:
    """Environment for processes that run the stand-in: this interpreter (it has grpcio, for the
    engine-event stream the SDK serves)."""
    return {"HPC_STANDIN_PYTHON": sys.executable}


def backend_dir(backend_url: str) -> Path:
    assert backend_url.startswith("file://"), backend_url
    return Path(backend_url.removeprefix("file://"))


def control(backend_url: str, *rules: dict[str, Any]) -> None:
    """Make the next matching stand-in runs fail, crawl or export secrets. Each rule may name
    `operation` (preview|up|destroy|refresh, default any), `stack` (default any), `times` (default:
    every run), and what to do: `fail` ("exit": non-zero exit with an error line; "no-summary":
    succeed without a summary event; "crash": exit 2 with a panic), `delay_seconds` per resource
    step, `secret_outputs` ({name: value}, exported as secrets by `up`)."""
    path = backend_dir(backend_url) / ".pulumi" / "standin-control.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rules": list(rules)}))


def hold_lock(backend_url: str, project: str, stack: str, pid: int = 424242) -> Path:
    """Leave a lock file for `stack` as another `pulumi up` would while it runs (or after it was
    killed); `pulumi cancel` or deleting the file releases it."""
    directory = backend_dir(backend_url) / ".pulumi" / "locks" / "organization" / project / stack
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "held-by-another-update.json"
    path.write_text(
        json.dumps(
            {"pid": pid, "username": "someone", "hostname": "elsewhere", "timestamp": "2025-01-01T00:00:00Z"}
        )
    )
    return path


def stack_state(backend_url: str, project: str, stack: str) -> dict[str, Any]:
    """The stand-in's record of a stack: resources, outputs, update history."""
    path = backend_dir(backend_url) / ".pulumi" / "stacks" / project / f"{stack}.json"
    return dict(json.loads(path.read_text()))


def running_locks(backend_url: str, project: str, stack: str) -> list[Path]:
    directory = backend_dir(backend_url) / ".pulumi" / "locks" / "organization" / project / stack
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


__all__ = ["ROOT", "backend_dir", "control", "environment", "hold_lock", "running_locks", "stack_state"]
