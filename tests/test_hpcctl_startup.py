"""How hpcctl runs a command: the collector's thresholds while it runs, and after."""

from __future__ import annotations

import argparse
import gc
import io
from typing import TextIO

import pytest

from hpcctl import cli

PYTHON_DEFAULT = (700, 10, 10)
"""CPython's collection thresholds."""


def test_a_command_runs_with_rare_collections_and_the_callers_thresholds_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int, int]] = []

    def validate(_args: argparse.Namespace, _out: TextIO, _err: TextIO) -> int:
        seen.append(gc.get_threshold())
        return cli.EXIT_OK

    monkeypatch.setitem(cli.COMMANDS, "validate", validate)
    test_process = gc.get_threshold()  # the suite's own (tests/conftest.py)
    gc.set_threshold(*PYTHON_DEFAULT)  # a caller with Python's defaults, as `hpcctl` starts
    try:
        assert cli.main(["validate", "--stack", "dev"], io.StringIO(), io.StringIO()) == cli.EXIT_OK
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*test_process)
    assert seen and seen[0][0] > 10 * PYTHON_DEFAULT[0]
    assert after == PYTHON_DEFAULT
