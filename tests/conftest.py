"""Shared fixtures: the catalog, offline plans of the stack files (tests.support.stacks), stack-file
editing."""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.stacks import STACKS, planned, stack_file

# The project's modules load when a fixture needs them, not with this file: the xdist controller
# loads it too and starts the workers only after it (it runs no test itself).
if TYPE_CHECKING:
    from hpc_platform.app.offline import StackPlan
    from hpc_platform.domain.catalog import InstanceCatalog


# Test processes hold a large, long-lived heap (the program and its providers, the portal, moto,
# the plans they cache). With Python's thresholds, (700, 10, 10), the collector took 18-26 s of
# each worker's run in a fast loop, most of it full collections walking that heap again and
# again; with these, about 13 s, nearly all of it the young collection after each plan.
TEST_PROCESS_GC_THRESHOLDS = (10_000, 20, 100)


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*TEST_PROCESS_GC_THRESHOLDS)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collected: the modules the tests import (the program, the providers, the portal) are loaded
    and live until the process exits. Frozen, the cyclic collector stops walking them on each of
    its full collections during the run."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The process is about to exit. A worker holds a few million objects by then (plans, provider
    modules, their test data), and Python's collections at exit walked them all: seconds per
    worker between its last test and the end of the run. Frozen objects are not walked."""
    gc.freeze()


@pytest.fixture(scope="session")
def catalog() -> InstanceCatalog:
    from hpc_platform.domain.catalog import default_catalog

    return default_catalog()


@pytest.fixture(params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> StackPlan:
    return planned(request.param)


@pytest.fixture
def stack_config() -> Callable[[str], dict[str, Any]]:
    """A fresh, mutable copy of a stack file's `config:` mapping."""

    from hpc_platform.domain.config.loader import read_stack_file

    def load(stack: str) -> dict[str, Any]:
        return copy.deepcopy(read_stack_file(stack_file(stack)))

    return load


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a `config:` mapping as a stack file in a temp dir; returns its path."""
    import yaml

    def write(config: dict[str, Any], name: str = "Pulumi.test.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return path

    return write
