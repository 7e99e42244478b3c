"""What a fresh process loads: only the pulumi-aws modules the program uses, and no Pulumi for
`hpcctl validate`. Nothing here is timed; `benchmarks/bench_cold_start.py` measures the time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.stacks import planned

ROOT = Path(__file__).resolve().parents[1]
# Modules of a service package shared by its resources (argument, output and enum types).
SHARED = {"_inputs", "outputs", "_enums"}


def fresh(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter from the repository root; it prints one JSON document."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def used_names() -> dict[str, set[str]]:
    """`aws.<service>.<Name>` references of the component sources, by service."""
    names: dict[str, set[str]] = {}
    for source in (ROOT / "components").glob("*.py"):
        for service, name in re.findall(r"\baws\.([a-z0-9]+)\.([A-Za-z_][A-Za-z0-9_]*)", source.read_text()):
            names.setdefault(service, set()).add(name)
    return names


def test_a_plan_loads_only_the_pulumi_aws_modules_the_components_use(deferred_prod: dict[str, Any]) -> None:
    result = deferred_prod["modules"]
    used = used_names()
    loaded: list[str] = result["loaded"]
    defined: dict[str, list[str]] = result["defined"]
    assert any(m.startswith("pulumi_aws.ec2.") for m in loaded), "the plan builds EC2 resources"
    unused = [
        module
        for module in loaded
        if module.split(".")[2] not in SHARED
        and not used.get(module.split(".")[1], set()) & set(defined[module])
    ]
    assert unused == [], f"pulumi-aws modules loaded that define nothing the components use: {unused}"
    # No service package ran its `__init__` (which imports every module of the service).
    packages = sorted({m.split(".")[1] for m in loaded})
    assert result["deferred"] == packages
    assert result["same"] is True and result["whole"] is True
    assert result["module"] == "pulumi_aws.ec2.vpc"


def test_validate_loads_no_pulumi() -> None:
    result = fresh(
        "import json, sys\n"
        "from hpcctl.cli import main\n"
        "code = main(['validate', '--stack', 'prod'])\n"
        "print(json.dumps({'code': code, 'pulumi': sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'pulumi_random', 'grpc'))}))"
    )
    assert result == {"code": 0, "pulumi": []}


PROD = """
import importlib, json, sys
from pathlib import Path
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from hpc_platform.app.offline.engine import run_offline
from hpc_platform.app.program import program
from hpc_platform.domain.config.loader import read_stack_file
refs = REFS  # type -> URN, from the test process's plan of prod
if FULL:  # every service package's own __init__, as `import pulumi_aws.<service>` runs it
    for service in sorted({t.split(":")[1].split("/")[0] for t in refs}):
        vars(importlib.import_module(f"pulumi_aws.{service}"))
        getattr(sys.modules[f"pulumi_aws.{service}"], "__all__", None)
path = Path("Pulumi.prod.yaml")
found, modules = {}, {}
def loaded_modules():
    loaded = sorted(m for m in sys.modules if m.startswith("pulumi_aws.") and m.count(".") == 2)
    packages = {m.split(".")[1] for m in loaded}
    return {
        "loaded": loaded,
        "defined": {m: sorted(k for k in vars(sys.modules[m]) if not k.startswith("_")) for m in loaded},
        "deferred": sorted(p for p in packages if "__getattr__" in vars(sys.modules[f"pulumi_aws.{p}"])),
    }
def rehydrating():
    program()
    modules.update(loaded_modules())  # what the plan loaded, before the references below
    for type_, urn in sorted(refs.items()):
        ref = struct_pb2.Struct()
        ref.update({rpc._special_sig_key: rpc._special_resource_sig, "urn": urn})
        value = rpc.deserialize_property(ref)  # what the SDK does with a resource reference
        found[type_] = f"{type(value).__module__}.{type(value).__qualname__}"
try:
    run_offline(rehydrating, stack="prod", config=read_stack_file(path), region="us-east-2")
except Exception:
    pass  # the mock engine's lookup of a reference may run before the resource registered
# Anyone asking the package itself still gets the whole package, with the same classes.
import pulumi_aws
from components._aws import aws
modules["same"] = aws.ec2.Vpc is pulumi_aws.ec2.Vpc is pulumi_aws.ec2.vpc.Vpc
modules["whole"] = hasattr(pulumi_aws.ec2, "Instance") and "pulumi_aws.ec2.ami" in sys.modules
modules["module"] = pulumi_aws.ec2.Vpc.__module__
print(json.dumps({"found": found, "modules": modules}))
"""


def _fresh_prod(full: bool) -> dict[str, Any]:
    """A fresh process plans prod (with the service packages' `__init__` deferred, or `full`) and
    turns a resource reference of every pulumi-aws type the plan has back into a resource."""
    # The references are the test process's plan (shared with other tests).
    plan = planned("prod").plan
    refs = {r.type: r.urn for r in plan.resources if r.custom and r.type.startswith("aws:")}
    return fresh(PROD.replace("REFS", repr(refs)).replace("if FULL:", f"if {full}:"))


@pytest.fixture(scope="module")
def deferred_prod() -> dict[str, Any]:
    """The fresh process that plans prod, once for the tests that read it (scripts/test runs a
    test file's tests on one worker, one after the other)."""
    return _fresh_prod(full=False)


def test_resource_references_rehydrate_as_with_the_whole_package(deferred_prod: dict[str, Any]) -> None:
    """pulumi_aws registers every resource module for resource-reference rehydration; with the
    service packages' `__init__` deferred, a reference of every type the prod program creates still
    becomes the same pulumi-aws class as when the whole packages are loaded."""
    deferred, full = deferred_prod["found"], _fresh_prod(full=True)["found"]
    assert len(deferred) > 40 and all(str(v).startswith("pulumi_aws.") for v in deferred.values())
    assert deferred == full
