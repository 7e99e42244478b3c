"""Where the portal keeps its database, Pulumi backend, job work dirs and plans: one data dir by
default (`./.portal`), each overridable by an environment variable for a real deployment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# The program's directory: where Pulumi.yaml and __main__.py are (the repository root).
PROJECT_DIR = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = Path(".portal")
MAX_BODY_BYTES = 256 * 1024
PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in {"off", "none", "0"}:
        return None
    return float(raw)


@dataclass(frozen=True)
class PortalSettings:
    data_dir: Path
    database_url: str
    backend_url: str
    pulumi_root: Path | None = None
    project_dir: Path = PROJECT_DIR
    auto_approve_dev: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    heartbeat_seconds: float = 5.0
    orphan_after_seconds: float = 30.0
    poll_seconds: float = 1.0
    # Drift checks (refresh --preview-only) per applied environment; None switches them off.
    drift_interval_seconds: float | None = 24 * 3600.0
    ttl_sweep_seconds: float = 60.0
    # Backoff for a job requeued after the backend reported a concurrent update.
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 300.0
    max_attempts: int = 8

    @property
    def work_root(self) -> Path:
        return self.data_dir / "work"

    @property
    def plans_dir(self) -> Path:
        return self.data_dir / "plans"

    @classmethod
    def from_env(cls, data_dir: Path | str | None = None) -> PortalSettings:
        """Settings from `HPC_PORTAL_*`; everything not set lives under `data_dir`."""
        root = Path(data_dir or os.environ.get("HPC_PORTAL_DATA_DIR") or DEFAULT_DATA_DIR).absolute()
        pulumi_root = os.environ.get("HPC_PORTAL_PULUMI_ROOT")
        return cls(
            data_dir=root,
            database_url=os.environ.get("HPC_PORTAL_DATABASE_URL") or f"sqlite:///{root / 'portal.db'}",
            backend_url=os.environ.get("HPC_PORTAL_BACKEND_URL") or f"file://{root / 'state'}",
            pulumi_root=Path(pulumi_root) if pulumi_root else None,
            auto_approve_dev=_flag("HPC_PORTAL_AUTO_APPROVE_DEV"),
            heartbeat_seconds=_seconds("HPC_PORTAL_HEARTBEAT_SECONDS", 5.0) or 5.0,
            orphan_after_seconds=_seconds("HPC_PORTAL_ORPHAN_AFTER_SECONDS", 30.0) or 30.0,
            drift_interval_seconds=_seconds("HPC_PORTAL_DRIFT_INTERVAL_SECONDS", 24 * 3600.0),
            ttl_sweep_seconds=_seconds("HPC_PORTAL_TTL_SWEEP_SECONDS", 60.0) or 60.0,
        )

    def prepare(self) -> None:
        """Create the data dir and its subdirs (owner-only: it holds state and the passphrase)."""
        for path in (self.data_dir, self.work_root, self.plans_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.backend_url.startswith("file://"):
            Path(self.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True, mode=0o700)

    def passphrase(self) -> str:
        """The secrets passphrase for the file backend: from the environment, else a generated file
        (0600) in the data dir. Never logged and never stored in the database."""
        given = os.environ.get(PASSPHRASE_ENV)
        if given:
            return given
        path = self.data_dir / "passphrase"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def export_passphrase(self) -> None:
        """Put the passphrase where the Pulumi CLI (run by the runner's child process) reads it."""
        os.environ[PASSPHRASE_ENV] = self.passphrase()
