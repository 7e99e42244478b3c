"""How hpcctl runs a command: the collector's thresholds while it runs, and after."""

from __future__ import annotations

import argparse
import gc
import io
from typing import TextIO

import pytest

from hpcctl import cli


def test_a_command_runs_with_rare_collections_and_the_callers_thresholds_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int, int]] = []

    def validate(_args: argparse.Namespace, _out: TextIO, _err: TextIO) -> int:
        seen.append(gc.get_threshold())
        return cli.EXIT_OK

    monkeypatch.setitem(cli.COMMANDS, "validate", validate)
    before = gc.get_threshold()
    assert cli.main(["validate", "--stack", "dev"], io.StringIO(), io.StringIO()) == cli.EXIT_OK
    assert seen and seen[0][0] > 10 * before[0]
    assert gc.get_threshold() == before
