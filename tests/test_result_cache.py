"""The fast loop's cache of ParallelCluster-venv runs (tests/support/result_cache.py): a kept result
is reused only while everything the run reads is unchanged."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.result_cache import cached_run, run_key


def _sources(tmp_path: Path) -> Path:
    root = tmp_path / "support"
    root.mkdir()
    (root / "synth.py").write_text("print('v1')\n")
    return root


def test_the_key_changes_with_the_code_an_input_file_the_sources_and_the_interpreter(tmp_path: Path) -> None:
    root = _sources(tmp_path)
    cases = tmp_path / "cases.json"
    cases.write_text('{"dev": 1}')

    def key(code: str = "print(1)", interpreter: str = "python 1") -> str:
        return run_key(code, [str(cases), "--flag"], None, interpreter, roots=[root])

    first = key()
    assert key() == first
    long_text = '["' + "a" * 300 + '"]'  # an argument that is text, too long for a file name
    assert run_key("print(1)", [long_text], None, "python 1", roots=[root]) != first
    assert key(code="print(2)") != first
    assert key(interpreter="python 2") != first
    cases.write_text('{"dev": 2}')
    second = key()
    assert second != first
    (root / "synth.py").write_text("print('v2')\n")
    assert key() != second
    (root / "harness.json").write_text("{}")
    assert len({first, second, key()}) == 3


def test_a_kept_result_comes_back_with_the_files_the_run_created(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    runs: list[Path] = []

    def run_into(out: Path) -> subprocess.CompletedProcess[str]:
        def run() -> subprocess.CompletedProcess[str]:
            runs.append(out)
            out.write_text('{"templates": 1}')
            return subprocess.CompletedProcess(["python"], 0, "done\n", "")

        return cached_run(cache, "k", [str(out)], run)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_into(tmp_path / "a" / "out.json")
    assert first.stdout == "done\n"
    again = run_into(tmp_path / "b" / "out.json")
    assert len(runs) == 1, "the second run came from the cache"
    assert (again.returncode, again.stdout) == (0, "done\n")
    assert (tmp_path / "b" / "out.json").read_text() == '{"templates": 1}'


def test_a_failed_run_is_not_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    calls = 0

    def failing() -> subprocess.CompletedProcess[str]:
        nonlocal calls
        calls += 1
        return subprocess.CompletedProcess(["python"], 1, "", "boom")

    assert cached_run(cache, "k", [], failing).returncode == 1
    assert cached_run(cache, "k", [], failing).returncode == 1
    assert calls == 2
