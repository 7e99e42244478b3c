"""pulumi-policy is pinned exactly: `hpcctl check` drives its analyzer servicer in-process.

The servicer (`pulumi_policy.policy._PolicyAnalyzerServicer`), its constructor arguments and the
protobuf messages it takes are private API. When the pin moves, re-check
`hpc_platform/app/policy_check.py` against the new version (how `PolicyPack.__init__` builds the
servicer, and `Configure`, `Analyze`, `AnalyzeStack`, `GetAnalyzerInfo`), then move every pin
together.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version

from tests.support.stacks import REPO_ROOT

PACKAGE = "pulumi-policy"


def _pyproject_pin() -> str:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in dependencies:
        if re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0].lower() == PACKAGE:
            assert "==" in requirement, f"{PACKAGE} must be pinned exactly (==), found {requirement!r}"
            return requirement.split("==", 1)[1].strip()
    raise AssertionError(f"{PACKAGE} is not declared in pyproject.toml [project] dependencies")


def test_installed_pulumi_policy_is_the_pinned_one() -> None:
    pinned, installed = _pyproject_pin(), version(PACKAGE)
    assert installed == pinned, (
        f"{PACKAGE} {installed} is installed but pyproject.toml pins {pinned}: hpcctl check reaches "
        f"into {PACKAGE}'s private analyzer servicer; re-check hpc_platform/app/policy_check.py "
        f"against {installed}, "
        "then move the pin (pyproject.toml and policy/requirements.txt)"
    )


def test_the_policy_pack_requirements_pin_the_same_version() -> None:
    lines = (REPO_ROOT / "policy" / "requirements.txt").read_text().splitlines()
    pins = [line.split("==", 1)[1].strip() for line in lines if line.startswith(f"{PACKAGE}==")]
    assert pins == [_pyproject_pin()], f"policy/requirements.txt pins {pins}, pyproject {_pyproject_pin()}"


def test_the_private_servicer_api_we_use_is_still_there() -> None:
    from pulumi_policy import policy

    servicer = policy._PolicyAnalyzerServicer
    for method in ("GetAnalyzerInfo", "Configure", "ConfigureStack", "Analyze", "AnalyzeStack"):
        assert callable(getattr(servicer, method, None)), f"_PolicyAnalyzerServicer.{method} is gone"
    parameters = list(inspect.signature(servicer.__init__).parameters)
    assert parameters[:7] == [
        "self",
        "name",
        "version",
        "policies",
        "enforcement_level",
        "initial_config",
        "description",
    ], f"_PolicyAnalyzerServicer's constructor changed: {parameters}"
    # PolicyPack still builds the servicer this way (hpcctl mirrors it without the gRPC server).
    assert "_PolicyAnalyzerServicer(" in inspect.getsource(policy.PolicyPack.__init__)
