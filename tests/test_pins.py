"""Libraries whose private API we use are pinned exactly; these fail loudly when a pin moves.

- pulumi: the offline engine subclasses `pulumi.runtime.mocks.MockMonitor` and uses
  `_resolve_callbacks`, `MockSettings`, `settings.ROOT` and `rpc` internals, and an offline run
  replaces `pulumi.runtime.resource._get_stack_trace`.
- moto: the catalog snapshot and the integration harness depend on its recorded EC2 data/internals.
"""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version

import pytest

from tests.support.stacks import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _pin(name: str) -> str:
    requirements = PYPROJECT["project"]["dependencies"] + [
        r for group in PYPROJECT["project"]["optional-dependencies"].values() for r in group
    ]
    for requirement in requirements:
        base = requirement.split("==")[0].split("[")[0].strip()
        if base.lower() == name.lower():
            assert "==" in requirement, f"{name} must be pinned exactly (==), found {requirement!r}"
            return requirement.split("==")[1].strip()
    raise AssertionError(f"{name} is not declared in pyproject.toml")


@pytest.mark.parametrize("package", ["pulumi", "moto"])
def test_installed_version_is_the_pinned_one(package: str) -> None:
    pinned, installed = _pin(package), version(package)
    assert installed == pinned, (
        f"{package} {installed} is installed but pyproject pins {pinned}: the offline engine/harness "
        f"reaches into {package}'s private API; re-check it against the new version, then move the pin"
    )


def test_the_private_pulumi_api_we_use_is_still_there() -> None:
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

    assert callable(mocks._resolve_callbacks) and callable(_ensure_event_loop) and callable(_sync_await)
    assert hasattr(settings, "ROOT") and hasattr(mocks, "MockSettings")
    assert hasattr(rpc, "_special_sig_key") and hasattr(rpc, "_special_secret_sig")
    monitor = mocks.MockMonitor.__dict__
    for method in ("RegisterResource", "RegisterResourceOutputs", "make_urn"):
        assert method in monitor, f"MockMonitor.{method} is gone"
    # An offline run replaces the source-position walk the SDK calls at every registration.
    from pulumi.runtime import resource

    assert callable(resource._get_stack_trace)
    assert "_get_stack_trace()" in inspect.getsource(resource.register_resource)


def test_the_parallelcluster_venv_runs_the_pinned_versions() -> None:
    """The schema and integration tiers test ParallelCluster's own code at the version clusters
    are created with, next to the pinned moto."""
    from hpc_platform.domain.limits import PCLUSTER_DEFAULT_VERSION
    from tests.support.pcluster_venv import run_pcluster_python

    result = run_pcluster_python(
        "from importlib.metadata import version; print(version('aws-parallelcluster'), version('moto'))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [PCLUSTER_DEFAULT_VERSION, _pin("moto")]
