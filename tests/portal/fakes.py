"""Test doubles for what cannot run in a unit test: the assessor (the offline planner, tested in
its own module) and the Pulumi operation (the runner and its stand-in CLI are used in the
end-to-end test). Both are injected the way the real ones are."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_platform.app.portal.runner import ConcurrentUpdate, OperationResult, OperationSpec


@dataclass(frozen=True)
class FakeAssessment:
    stack: str

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "verdict": {"passes": True}}


class FakeAssessor:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> FakeAssessment:
        self.calls.append(stack)
        return FakeAssessment(stack)


def simple_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    old = old or {}
    return [
        {"key": k, "old": old.get(k), "new": new.get(k)}
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]


def dev_config(name: str = "dev", **extra: Any) -> dict[str, Any]:
    return {"aws:region": "us-east-2", "hpc:environment": name, **extra}


@dataclass
class FakeOperations:
    """A `run_operation` stand-in: records each call, writes a plan on preview, counts versions."""

    versions: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    specs: list[OperationSpec] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    locked: int = 0
    on_run: Callable[[OperationSpec], None] | None = None

    def current_version(self, spec: OperationSpec) -> int | None:
        return self.versions.get(spec.stack)

    def __call__(
        self,
        spec: OperationSpec,
        on_event: Callable[[int, dict[str, Any]], None],
        on_started: Callable[[int], None],
    ) -> OperationResult:
        preview_only = spec.preview_only_destroy and spec.operation == "destroy"
        self.calls.append((spec.stack, "destroy --preview-only" if preview_only else spec.operation))
        self.specs.append(spec)
        on_started(0)
        if self.on_run is not None:
            self.on_run(spec)
        if self.locked > 0:
            self.locked -= 1
            raise ConcurrentUpdate("the stack is locked by another update")
        on_event(1, {"preludeEvent": {"config": {}}})
        on_event(2, {"summaryEvent": {"resourceChanges": {"create": 3}}})
        if spec.operation in self.fail:
            return OperationResult(
                False, {}, {}, self.versions.get(spec.stack), None, f"{spec.operation} failed"
            )
        plan_sha = None
        if spec.operation == "preview" and spec.plan_path is not None:
            spec.plan_path.parent.mkdir(parents=True, exist_ok=True)
            body = json.dumps({"stack": spec.stack, "config": spec.config, "t": time.time()}).encode()
            spec.plan_path.write_bytes(body)
            plan_sha = hashlib.sha256(body).hexdigest()
        elif spec.operation == "up":
            assert spec.plan_path is not None and spec.plan_path.is_file(), "up must apply the saved plan"
            self.versions[spec.stack] = self.versions.get(spec.stack, 0) + 1
        elif spec.operation == "destroy" and not preview_only:
            self.versions[spec.stack] = self.versions.get(spec.stack, 0) + 1
        summary = {"refresh": {"update": 1}, "destroy": {"delete": 3}}.get(spec.operation, {"create": 3})
        return OperationResult(True, summary, {"ok": 1}, self.versions.get(spec.stack), plan_sha, None)


def data_dir_settings(path: Path, **overrides: Any) -> Any:
    from dataclasses import replace

    from hpc_platform.app.portal.settings import PortalSettings

    base = PortalSettings.from_env(path)
    return replace(base, **overrides)


class WriteLockProbe(FakeAssessor):
    """An assessor that, while it "plans", tries to take the SQLite database's write lock from a
    second connection, as a worker's claim or heartbeat would: records whether it could."""

    def __init__(self, database: Path) -> None:
        super().__init__()
        self.database = database
        self.writable: list[bool] = []

    def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> FakeAssessment:
        import sqlite3

        other = sqlite3.connect(self.database, timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            self.writable.append(True)
        except sqlite3.OperationalError:  # "database is locked"
            self.writable.append(False)
        finally:
            other.close()
        return super().assess(stack, config, kind)
