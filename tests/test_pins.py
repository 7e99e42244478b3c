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
from typing import Any

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
    from pulumi.runtime import mocks, resource, rpc, settings
    from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

    assert callable(mocks._resolve_callbacks) and callable(_ensure_event_loop) and callable(_sync_await)
    assert hasattr(settings, "ROOT") and hasattr(mocks, "MockSettings")
    assert hasattr(rpc, "_special_sig_key") and hasattr(rpc, "_special_secret_sig")
    monitor = mocks.MockMonitor.__dict__
    for method in ("RegisterResource", "RegisterResourceOutputs", "make_urn"):
        assert method in monitor, f"MockMonitor.{method} is gone"
    # CapturingMonitor.RegisterResource does what the base class does, with transforms in between:
    # if the base class starts doing more, ours must too.
    base = inspect.getsource(mocks.MockMonitor.RegisterResource)
    for step in (
        "rpc.deserialize_properties(request.object)",
        "MockResourceArgs(",
        "self.mocks.new_resource(resource_args)",
        "_sync_await(rpc.serialize_properties(state, {}))",
        "MockMonitor.ResourceRegistration(urn, id_, state)",
        "RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)",
    ):
        assert step in base, f"MockMonitor.RegisterResource no longer does {step}"
    # Offline, the SDK's monitor calls run inline: it must still send them to the loop's executor.
    assert "run_in_executor(" in inspect.getsource(resource.register_resource)
    # An offline run replaces the source-position walk the SDK calls at every registration.
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


def test_the_moto_ssm_internals_we_patch_are_still_there() -> None:
    """tests/support/moto_ssm.py answers Run Command through `Command.get_invocation`, because the
    pinned moto answers every invocation `Success` with empty output. When moto starts returning
    something else, or renames what we wrap, re-check the fake head node."""
    import inspect

    import boto3
    from moto import mock_aws
    from moto.ssm.models import Command

    assert list(inspect.signature(Command.get_invocation).parameters) == [
        "self",
        "instance_id",
        "plugin_name",
    ]
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-2")
        sent = ssm.send_command(
            InstanceIds=["i-0123456789abcdef0"],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["echo hello"]},
        )
        command_id = sent["Command"]["CommandId"]
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId="i-0123456789abcdef0")
        assert (invocation["Status"], invocation["StandardOutputContent"]) == ("Success", "")
        backend_command = next(
            c
            for c in _ssm_backend().get_commands_by_instance_id("i-0123456789abcdef0")
            if c.command_id == command_id
        )
        assert backend_command.parameters["commands"] == ["echo hello"]


def _ssm_backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import ssm_backends

    return ssm_backends[DEFAULT_ACCOUNT_ID]["us-east-2"]
