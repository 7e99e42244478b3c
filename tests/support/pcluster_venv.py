"""A separate virtualenv with ParallelCluster's own code (`aws-parallelcluster`).

ParallelCluster pins `packaging~=25` while pulumi needs >= 26, so its code cannot share our
environment; in real life it runs in its own Lambda anyway. The venv is built once per machine
(`.pcluster-venv/`, git-ignored), under a file lock so parallel test processes share one build.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

from hpc_platform.domain.limits import PCLUSTER_DEFAULT_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = Path(os.environ.get("HPC_PCLUSTER_VENV", REPO_ROOT / ".pcluster-venv"))
# The harness tests the ParallelCluster version the clusters are created with.
PCLUSTER_PACKAGE = f"aws-parallelcluster=={PCLUSTER_DEFAULT_VERSION}"


def _moto_package() -> str:
    """moto exactly as pinned in pyproject's dev dependencies: the integration harness runs a moto
    server next to ParallelCluster's API app in this venv and patches moto's internals."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    match = re.search(r'"(moto\[server\]==[^"]+)"', pyproject)
    if match is None:
        raise RuntimeError("pyproject.toml must pin moto[server]==<version> in the dev dependencies")
    return match.group(1)


PACKAGES = (PCLUSTER_PACKAGE, _moto_package())
_MARKER = VENV_DIR / ".installed"
_MARKER_TEXT = "\n".join(PACKAGES)


def pcluster_python() -> Path:
    """The interpreter of the ParallelCluster venv, building it on first use."""
    python = VENV_DIR / "bin" / "python"
    if _MARKER.is_file() and _MARKER.read_text().strip() == _MARKER_TEXT and python.exists():
        return python
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    lock_path = VENV_DIR.parent / ".pcluster-venv.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (_MARKER.is_file() and _MARKER.read_text().strip() == _MARKER_TEXT and python.exists()):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV_DIR)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *PACKAGES,
                ],
                check=True,
            )
            _MARKER.write_text(_MARKER_TEXT + "\n")
    return python


def run_pcluster_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `code` with the ParallelCluster venv's interpreter; stdout/stderr captured as text.

    In the fast loop a successful run's result is reused while nothing it depends on changed
    (tests/support/result_cache.py)."""
    from tests.support import result_cache

    python = pcluster_python()
    full_env = {
        **os.environ,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-2"),
        **(env or {}),
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-c", code, *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )

    directory = result_cache.cache_directory()
    if directory is None:
        return run()
    interpreter = f"{python.resolve()}\n{_MARKER_TEXT}\n{full_env['AWS_DEFAULT_REGION']}"
    key = result_cache.run_key(code, args, env, interpreter)
    return result_cache.cached_run(directory, key, args, run)
