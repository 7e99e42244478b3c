"""The committed stack files and their offline plans, computed once per test process.

Test modules import these from here, never from `conftest` (pytest loads `tests/conftest.py` as
its own module; importing it again as `conftest` or `tests.conftest` made a second copy with a
second plan cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpc_platform.app.offline import StackPlan

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


_PLANS: dict[str, StackPlan] = {}


def planned(stack: str) -> StackPlan:
    """The offline plan of a committed stack file, computed once per test process."""
    from hpc_platform.app.offline import plan_stack_file  # not at import: conftest imports this

    if stack not in _PLANS:
        _PLANS[stack] = plan_stack_file(stack_file(stack))
    return _PLANS[stack]
