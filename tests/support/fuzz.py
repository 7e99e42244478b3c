"""How many examples a property-based test runs: all of them in the full run, a fifth in the fast
loop (`scripts/test --fast` sets HPC_TEST_FAST=1), where the edit-and-rerun cycle matters more."""

from __future__ import annotations

import os

FAST_SHARE = 5
FAST_MINIMUM = 20


def examples(full: int) -> int:
    if os.environ.get("HPC_TEST_FAST") == "1":
        return max(full // FAST_SHARE, min(full, FAST_MINIMUM))
    return full
