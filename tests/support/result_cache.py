"""Results of ParallelCluster-venv runs, kept between test runs when nothing they depend on changed.

Only the fast loop uses it (`scripts/test --fast` sets HPC_TEST_RESULT_CACHE to a directory); the
full run always runs ParallelCluster's code. A result is keyed by everything the run reads: the
code, each argument (the contents of an argument that names a file, the file name alone of one that
the run creates), the environment it is given, the ParallelCluster venv (its packages and
interpreter) and every file of tests/support/ and the integration harness that a run may execute.
Change any of them and the run is made again. Failed runs are never kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
SOURCES = (SUPPORT, SUPPORT.parent / "integration" / "harness")
ENV_VARIABLE = "HPC_TEST_RESULT_CACHE"


def cache_directory() -> Path | None:
    value = os.environ.get(ENV_VARIABLE)
    return Path(value) if value else None


def _source_digest(roots: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # text too long to be a file name (a JSON argument)
        return False


def run_key(
    code: str,
    args: Sequence[str],
    env: Mapping[str, str] | None,
    interpreter: str,
    roots: Sequence[Path] = SOURCES,
) -> str:
    """What a run depends on, as one digest."""
    parts: list[object] = [code, interpreter, sorted((env or {}).items()), _source_digest(roots)]
    for arg in args:
        path = Path(arg)
        if _is_file(path):
            parts.append(["file", hashlib.sha256(path.read_bytes()).hexdigest()])
        elif path.parent.is_dir() and path.is_absolute():
            parts.append(["created", path.name])
        else:
            parts.append(["text", arg])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cached_run(
    directory: Path,
    key: str,
    args: Sequence[str],
    run: Callable[[], subprocess.CompletedProcess[str]],
) -> subprocess.CompletedProcess[str]:
    """`run()`'s result, from `directory` when a successful run with this key was kept. Files
    the run created among `args` are kept too and written back on a hit."""
    entry = directory / f"{key}.json"
    created = [a for a in args if Path(a).is_absolute() and not Path(a).exists()]
    if entry.is_file():
        kept = json.loads(entry.read_text())
        for name, text in kept["files"].items():
            Path(created[int(name)]).write_text(text)
        return subprocess.CompletedProcess(kept["args"], 0, kept["stdout"], kept["stderr"])
    result = run()
    if result.returncode == 0:
        files = {str(i): Path(a).read_text() for i, a in enumerate(created) if Path(a).is_file()}
        document = {
            "args": list(result.args),
            "stdout": result.stdout,
            "stderr": result.stderr,
            "files": files,
        }
        directory.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed: another worker never reads half an entry.
        with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
            json.dump(document, handle)
        os.replace(handle.name, entry)
    return result
