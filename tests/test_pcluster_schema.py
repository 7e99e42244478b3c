"""Schema tier: ParallelCluster's own code (pinned version, its own venv) judges what we render.

- every stack's cluster config, taken from the offline plan's cluster resource (the real
  program's output), loads through `ClusterSchema` and passes the ParallelCluster validators that
  need no AWS calls (EFA placement group / single AZ, custom Slurm settings deny-list, cluster
  name length with accounting);
- a deliberately broken config fails there, so these tests can fail;
- the update-policy table in `hpc_platform.pcluster.update_policy` matches the `update_policy`
  metadata of ParallelCluster's schema, and every key we render exists in that schema.

The first run builds the ParallelCluster venv (network to PyPI); later runs reuse it.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpc_platform.pcluster.update_policy import (
    KEYED_LISTS,
    PCLUSTER_POLICY_NAMES,
    UPDATE_POLICY_TABLE,
    WHOLE_VALUES,
    generic_path,
)
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned

LOAD_AND_VALIDATE = r"""
import json, sys
from marshmallow import ValidationError
from pcluster.schemas.cluster_schema import ClusterSchema
from pcluster.validators.cluster_validators import (
    ClusterNameValidator, EfaMultiAzValidator, EfaPlacementGroupValidator,
)
from pcluster.validators.slurm_settings_validator import (
    SLURM_SETTINGS_DENY_LIST, CustomSlurmSettingLevel, CustomSlurmSettingsValidator,
)

def offline_validators(cluster):
    failures = []
    def run(validator, **kwargs):
        for result in validator().execute(**kwargs):
            failures.append({"level": str(result.level.name), "message": result.message})
    run(ClusterNameValidator, name=cluster.cluster_name, scheduling=cluster.scheduling)
    settings = cluster.scheduling.settings
    if settings.custom_slurm_settings:
        run(CustomSlurmSettingsValidator, custom_settings=settings.custom_slurm_settings,
            deny_list=SLURM_SETTINGS_DENY_LIST["SlurmConf"]["Global"],
            settings_level=CustomSlurmSettingLevel.SLURM_CONF)
        if settings.database:
            run(CustomSlurmSettingsValidator, custom_settings=settings.custom_slurm_settings,
                deny_list=SLURM_SETTINGS_DENY_LIST["SlurmConf"]["Accounting"],
                settings_level=CustomSlurmSettingLevel.SLURM_CONF)
    for queue in cluster.scheduling.queues:
        # ParallelCluster derives multi-AZ from the subnets' AZs (an AWS call); one AZ per subnet here.
        multi_az = len(queue.networking.subnet_ids) > 1
        for resource in queue.compute_resources:
            run(EfaMultiAzValidator, queue_name=queue.name, multi_az_enabled=multi_az,
                compute_resource_name=resource.name, compute_resource_efa_enabled=resource.efa.enabled)
            chosen = queue.get_chosen_placement_group_setting_for_compute_resource(resource)
            run(EfaPlacementGroupValidator, efa_enabled=resource.efa.enabled,
                placement_group_key=queue.get_placement_group_settings_for_compute_resource(resource).get("key"),
                placement_group_disabled=chosen.enabled is False, multi_az_enabled=multi_az,
                capacity_type=queue.capacity_type, queue_name=queue.name)
    return failures

cases = json.load(open(sys.argv[1]))
results = {}
for key, case in cases.items():
    try:
        cluster = ClusterSchema(cluster_name=case["cluster_name"]).load(case["config"])
    except ValidationError as error:
        results[key] = {"loaded": False, "errors": error.messages, "failures": []}
        continue
    results[key] = {
        "loaded": True,
        "errors": None,
        "failures": offline_validators(cluster),
        "queues": [queue.name for queue in cluster.scheduling.queues],
        "shared_storage": [storage.name for storage in cluster.shared_storage or []],
    }
print(json.dumps(results))
"""

DUMP_UPDATE_POLICIES = r"""
import json
from marshmallow import fields
from pcluster.schemas.cluster_schema import ClusterSchema

policies = {}

def walk(schema, prefix):
    for field in schema.declared_fields.values():
        key = field.data_key
        path = f"{prefix}.{key}" if prefix else key
        policy = field.metadata.get("update_policy")
        policies[path] = policy.name if policy is not None else "UNSUPPORTED"
        nested = getattr(field, "schema", None) if isinstance(field, fields.Nested) else None
        if nested is not None:
            walk(nested, f"{path}[]" if field.many else path)
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            walk(field.inner.schema, f"{path}[]")

walk(ClusterSchema(cluster_name="x"), "")
print(json.dumps(policies))
"""


def run_pcluster(code: str, tmp_path: Path, payload: dict[str, Any] | None = None) -> Any:
    args: list[str] = []
    if payload is not None:
        path = tmp_path / "cases.json"
        path.write_text(json.dumps(payload))
        args.append(str(path))
    result = run_pcluster_python(code, *args)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def cluster_resource_inputs(stack: str) -> dict[str, Any]:
    matches = [r for r in planned(stack).plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    assert len(matches) == 1, f"{stack}: expected one ParallelCluster resource, found {len(matches)}"
    return matches[0].inputs


def planned_cases() -> dict[str, dict[str, Any]]:
    cases = {}
    for stack in STACKS:
        inputs = cluster_resource_inputs(stack)
        assert isinstance(inputs["cluster_config"], dict), f"{stack}: cluster_config is not a plain mapping"
        cases[stack] = {"cluster_name": inputs["cluster_name"], "config": inputs["cluster_config"]}
    return cases


@cache
def _schema_results(tmp: str) -> dict[str, Any]:
    cases = planned_cases()
    broken = copy.deepcopy(cases["dev"])
    config = broken["config"]
    # Three mistakes ParallelCluster must reject: an unknown key, a bad enum value, a missing
    # required field.
    config["HeadNode"]["InstanceTypo"] = config["HeadNode"].pop("InstanceType")
    config["Scheduling"]["SlurmQueues"][0]["CapacityType"] = "CHEAP"
    del config["Scheduling"]["SlurmSettings"]["Database"]["PasswordSecretArn"]
    cases["broken"] = broken
    # Placement group omitted on an EFA queue: loads, but the EFA validator rejects it.
    no_pg = copy.deepcopy(cases["dev"])
    for queue in no_pg["config"]["Scheduling"]["SlurmQueues"]:
        queue["Networking"].pop("PlacementGroup", None)
    cases["efa-without-placement-group"] = no_pg
    # Accounting with a 41-character cluster name.
    long_name = copy.deepcopy(cases["dev"])
    long_name["cluster_name"] = "c" * 41
    cases["long-name-with-accounting"] = long_name
    return dict(run_pcluster(LOAD_AND_VALIDATE, Path(tmp), cases))


@pytest.fixture(scope="module")
def schema_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _schema_results(str(tmp_path_factory.mktemp("pcluster-schema")))


@pytest.fixture(scope="module")
def pcluster_policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    policies: dict[str, str] = run_pcluster(
        DUMP_UPDATE_POLICIES, tmp_path_factory.mktemp("pcluster-policies")
    )
    return policies


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_rendered_config_loads_in_parallelcluster_schema(stack: str, schema_results: dict[str, Any]) -> None:
    result = schema_results[stack]
    assert result["loaded"], json.dumps(result["errors"], indent=2)
    inputs = cluster_resource_inputs(stack)
    assert result["queues"] == [q["Name"] for q in inputs["cluster_config"]["Scheduling"]["SlurmQueues"]]
    assert result["shared_storage"] == [s["Name"] for s in inputs["cluster_config"].get("SharedStorage", [])]


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_config_passes_offline_validators(stack: str, schema_results: dict[str, Any]) -> None:
    failures = [f for f in schema_results[stack]["failures"] if f["level"] in ("ERROR", "WARNING")]
    assert failures == []


def test_fails_broken_config_in_parallelcluster_schema(schema_results: dict[str, Any]) -> None:
    result = schema_results["broken"]
    assert not result["loaded"]
    errors = json.dumps(result["errors"])
    assert "InstanceTypo" in errors
    assert "CapacityType" in errors
    assert "PasswordSecretArn" in errors


def test_fails_efa_queue_without_placement_group(schema_results: dict[str, Any]) -> None:
    result = schema_results["efa-without-placement-group"]
    assert result["loaded"]
    messages = [f["message"] for f in result["failures"] if f["level"] == "ERROR"]
    assert any("placement group for EFA-enabled compute resources" in m for m in messages), messages


def test_fails_long_cluster_name_with_accounting(schema_results: dict[str, Any]) -> None:
    messages = [f["message"] for f in schema_results["long-name-with-accounting"]["failures"]]
    assert any("Slurm accounting" in m for m in messages), messages


# --- update-policy table against ParallelCluster's schema ---------------------------------------------
def test_update_policy_table_matches_parallelcluster(pcluster_policies: dict[str, str]) -> None:
    mismatches = []
    for path, policy in UPDATE_POLICY_TABLE.items():
        if path == "Tags[]":
            continue  # a list item: judged by the list's policy (`Tags`)
        theirs = pcluster_policies.get(path)
        if theirs is None:
            mismatches.append(f"{path}: not in ParallelCluster's schema")
        elif theirs not in PCLUSTER_POLICY_NAMES[policy]:
            mismatches.append(f"{path}: ours {policy.value}, ParallelCluster {theirs}")
    assert mismatches == []


def test_keyed_lists_are_lists_in_parallelcluster(pcluster_policies: dict[str, str]) -> None:
    for path in KEYED_LISTS:
        assert any(key.startswith(f"{path}[].") for key in pcluster_policies), path


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_key_is_in_parallelcluster_schema_and_table(
    stack: str, pcluster_policies: dict[str, str]
) -> None:
    config = cluster_resource_inputs(stack)["cluster_config"]
    unknown, untabled = [], []
    for path in sorted(set(_leaf_paths(config))):
        if path not in pcluster_policies:
            unknown.append(path)
        if not _covered(path):
            untabled.append(path)
    assert unknown == [], "rendered keys ParallelCluster does not know"
    assert untabled == [], "rendered keys without an update policy in our table"


def _leaf_paths(value: Any, path: str = "") -> list[str]:
    if path in WHOLE_VALUES:
        return [path]
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            out += _leaf_paths(item, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and path in KEYED_LISTS:
        return [p for item in value for p in _leaf_paths(item, f"{path}[]")]
    return [generic_path(path)]


def _covered(path: str) -> bool:
    candidate = path
    while candidate:
        if candidate in UPDATE_POLICY_TABLE:
            return True
        candidate = candidate[:-2] if candidate.endswith("[]") else re.sub(r"\.?[^.]*$", "", candidate)
    return False


# --- classify_change against ParallelCluster's own update check (ConfigPatch) -------------------------
CHECK_PATCHES = r"""
import json, sys
from pcluster.config.config_patch import ConfigPatch

class Cluster:
    # What ConfigPatch.check() asks of an existing cluster: is its fleet running? (no login nodes)
    def __init__(self, running):
        self.running = running
        self.name = self.stack_name = "hpc-dev"
    def has_running_capacity(self):
        return self.running
    def has_running_login_nodes(self):
        return False

results = {}
for key, case in json.load(open(sys.argv[1])).items():
    results[key] = {}
    for state, running in (("running", True), ("stopped", False)):
        allowed, rows = ConfigPatch(Cluster(running), case["old"], case["new"]).check()
        results[key][state] = {"allowed": allowed, "checks": sorted({row[4] for row in rows[1:]})}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def patch_checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from test_update_policy import CASES, base

    cases = {}
    for case_id, mutate, strategy, expected in CASES:
        if case_id == "unknown-field":
            continue  # not in ParallelCluster's schema at all: its loader rejects it before any patch
        old = base(strategy)
        new = copy.deepcopy(old)
        mutate(new)
        cases[case_id] = {"old": old, "new": new, "expected": expected}
    results: dict[str, Any] = run_pcluster(CHECK_PATCHES, tmp_path_factory.mktemp("pcluster-patch"), cases)
    for case_id, case in cases.items():
        results[case_id]["expected"] = case["expected"]
    return results


def test_classify_change_agrees_with_parallelcluster_update_check(patch_checks: dict[str, Any]) -> None:
    """What we predict vs what ParallelCluster's update check says, with the fleet running and stopped:
    `live`/`rolling` pass while nodes run; `needs_fleet_stop` is refused while they run and passes
    once stopped; `replace` is refused either way."""
    disagreements = []
    for case_id, result in sorted(patch_checks.items()):
        expected, running, stopped = result["expected"], result["running"], result["stopped"]
        agrees = {
            "live": running["allowed"],
            "rolling": running["allowed"],
            "needs_fleet_stop": not running["allowed"] and stopped["allowed"],
            "replace": not running["allowed"] and not stopped["allowed"],
        }[expected]
        if not agrees:
            disagreements.append(f"{case_id}: ours {expected}, ParallelCluster {running} / {stopped}")
    assert disagreements == []
