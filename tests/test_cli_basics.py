"""hpcctl's small contracts: --version, stack discovery, output paths checked first, progress on a
terminal only, messages about a file (not a key) without an `hpc:` key path, the catalog's source."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.domain.catalog import SNAPSHOT_PATH
from hpcctl import progress
from hpcctl.cli import EXIT_INVALID, EXIT_OK, main
from tests.support.stacks import REPO_ROOT, stack_file


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), err if err is not None else io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_version_is_the_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpcctl", "--version"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout == f"hpcctl {version('hpc-platform')}\n"


def test_fails_unknown_stack_listing_the_stacks_that_exist(tmp_path: Path) -> None:
    for name in ("prod", "dev"):
        shutil.copy(stack_file(name), tmp_path / f"Pulumi.{name}.yaml")
    code, out, err = run("validate", "--stack", "prd", "--project-dir", str(tmp_path))
    assert (code, out) == (EXIT_INVALID, "")
    missing = tmp_path / "Pulumi.prd.yaml"
    assert err == f"hpcctl: {missing}: no such stack file; stacks in {tmp_path}: dev, prod\n"


@pytest.mark.parametrize("command", ["plan", "check"])
def test_fails_missing_output_directory_before_planning(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpc_platform.app.offline as offline

    def must_not_plan(*_: Any, **__: Any) -> Any:
        raise AssertionError("planned before checking the output path")

    monkeypatch.setattr(offline, "plan_stack_file", must_not_plan)
    target = tmp_path / "no" / "such" / "x.json"
    code, out, err = run(command, "--stack-file", str(stack_file("dev")), "--json", str(target))
    assert (code, out) == (EXIT_INVALID, "")
    assert err == f"hpcctl: {target}: no such directory {target.parent}; create it first\n"


def test_fails_output_path_that_is_a_directory(tmp_path: Path) -> None:
    code, _, err = run("plan", "--stack-file", str(stack_file("dev")), "--json", str(tmp_path))
    assert code == EXIT_INVALID
    assert err == f"hpcctl: {tmp_path}: is a directory; give a file path\n"


# --- progress -------------------------------------------------------------------------------------
def test_progress_shows_a_slow_step_on_a_terminal_and_clears_it() -> None:
    stream = FakeTerminal()
    with progress.step(stream, "planning prod…", delay=0.01) as current:
        assert current.shown.wait(5), "the message never showed"
    assert stream.getvalue() == "planning prod…\r\033[K"


def test_progress_stays_quiet_for_a_fast_step() -> None:
    stream = FakeTerminal()
    with progress.step(stream, "planning prod…", delay=60):
        pass
    time.sleep(0.05)
    assert stream.getvalue() == ""


def test_progress_stays_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with progress.step(stream, "planning prod…", delay=0) as current:
        time.sleep(0.05)
    assert not current.shown.is_set()
    assert stream.getvalue() == ""


def test_check_shows_its_steps_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_step = progress.step
    seen: list[str] = []

    def recording_step(stream: Any, message: str) -> Any:
        seen.append(message)
        return real_step(stream, message, delay=0.0)  # every step counts as slow

    import hpcctl.cli as cli

    monkeypatch.setattr(cli, "step", recording_step)
    terminal = FakeTerminal()
    code, _, err = run("check", "--stack", "dev", "--project-dir", str(REPO_ROOT), err=terminal)
    assert code == EXIT_OK
    assert seen == ["planning dev…", "checking policies…"]
    # Each message that showed is cleared; nothing is left on the line.
    assert err.count("\r\033[K") == sum(message in err for message in seen) >= 1
    code, _, err = run("check", "--stack", "dev", "--project-dir", str(REPO_ROOT))
    assert code == EXIT_OK
    assert "…" not in err and "\r" not in err


# --- messages about a file, not a key -------------------------------------------------------------
def test_yaml_error_has_no_key_path(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: [")
    code, _, err = run("validate", "--stack-file", str(path))
    assert code == EXIT_INVALID
    assert err.startswith("Pulumi.x.yaml: not valid YAML at line 1")


def test_policy_config_error_has_no_key_path(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"spot-ratio": {"minShare": 1.5}}')
    code, _, err = run(
        "check", "--stack", "dev", "--project-dir", str(REPO_ROOT), "--policy-config", str(path)
    )
    assert code == EXIT_INVALID
    assert err == f"{path}: spot-ratio.minShare: 1.5 is above the maximum 1.0\n"


def test_key_problems_keep_their_key_path(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  hpc:network: 5\n")
    code, _, err = run("validate", "--stack-file", str(path))
    assert code == EXIT_INVALID
    assert "Pulumi.x.yaml: hpc:network: 5: Input should be a valid dictionary" in err


# --- catalog --------------------------------------------------------------------------------------
def test_catalog_show_prints_the_snapshot_source() -> None:
    recorded = json.loads(SNAPSHOT_PATH.read_text())["source"]
    code, out, _ = run("catalog", "show")
    assert code == EXIT_OK
    assert out.splitlines()[1] == f"source: {recorded}"
    assert "DescribeInstanceTypes" in recorded
