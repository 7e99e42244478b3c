"""Reserved capacity and Spot requeue, end to end without AWS: a compute resource naming an On-Demand
Capacity Reservation, a reservation resource group or a Capacity Block is rendered into the
ParallelCluster config that ParallelCluster's own schema and offline validators accept; a Capacity
Block queue gets no placement group of ours; the cost estimate pays for reserved instances all
month; `JobRequeue` follows the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app import wiring
from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.config.loader import model_input, parse_config, read_stack_file
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.pricing import default_prices, estimate_monthly_cost, render_cost
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import stack_file
from tests.support.validator_cases import Mutation
from tests.test_pcluster_render import full_config, queues_by_name
from tests.test_validators_capacity import GPU, GROUP_ARN, ODCR, capacity_block, set_value

VARIANTS: dict[str, Mutation] = {
    "odcr": set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "instance_count": 16}),
    "resource-group": set_value(
        f"{GPU}.compute_resources.0.capacity_reservation", {"resource_group_arn": GROUP_ARN}
    ),
    "capacity-block": capacity_block(count=4, hourly_usd_per_instance=31.464),
    "no-requeue": set_value("hpc:cluster.slurm.enable_job_requeue", False),
}


def prod_variant(name: str) -> StackConfig:
    raw = read_stack_file(stack_file("prod"))
    VARIANTS[name](raw)
    return parse_config(model_input(raw), "Pulumi.prod.yaml").config


def gpu_queue(config: StackConfig) -> dict[str, Any]:
    return queues_by_name(full_config(config))["gpu"]


# --- rendering ------------------------------------------------------------------------------
def test_odcr_is_the_compute_resources_reservation_target() -> None:
    queue = gpu_queue(prod_variant("odcr"))
    assert queue["CapacityType"] == "ONDEMAND"
    assert queue["ComputeResources"][0]["CapacityReservationTarget"] == {"CapacityReservationId": ODCR}


def test_resource_group_is_the_compute_resources_reservation_target() -> None:
    queue = gpu_queue(prod_variant("resource-group"))
    assert queue["ComputeResources"][0]["CapacityReservationTarget"] == {
        "CapacityReservationResourceGroupArn": GROUP_ARN
    }


def test_capacity_block_queue_has_no_allocation_strategy_and_no_placement_group() -> None:
    config = prod_variant("capacity-block")
    queue = gpu_queue(config)
    assert queue["CapacityType"] == "CAPACITY_BLOCK"
    assert "AllocationStrategy" not in queue
    assert "PlacementGroup" not in queue["Networking"]
    resource = queue["ComputeResources"][0]
    assert (resource["MinCount"], resource["MaxCount"]) == (4, 4)
    assert resource["CapacityReservationTarget"] == {"CapacityReservationId": ODCR}
    # ...and the network makes no placement group for it (the other EFA queues keep theirs).
    groups = wiring.network_args(config, default_catalog()).placement_group_queues
    assert "gpu" not in groups and "mpi-hpc6a" in groups


def test_queues_without_reservations_render_no_target() -> None:
    out = full_config(prod_variant("no-requeue"))
    targets = [r for q in out["Scheduling"]["SlurmQueues"] for r in q["ComputeResources"]]
    assert all("CapacityReservationTarget" not in r for r in targets)


def test_job_requeue_follows_the_config() -> None:
    on = full_config(prod_variant("odcr"))["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"]
    off = full_config(prod_variant("no-requeue"))["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"]
    assert on[0] == {"JobRequeue": "1"} and off[0] == {"JobRequeue": "0"}


# --- ParallelCluster's own code judges the rendering ----------------------------------------------
PCLUSTER_CHECK = r"""
import json, sys
from marshmallow import ValidationError
from pcluster.schemas.cluster_schema import ClusterSchema
from pcluster.validators.cluster_validators import ComputeResourceSizeValidator, EfaPlacementGroupValidator
from pcluster.validators.ec2_validators import PlacementGroupCapacityTypeValidator
from pcluster.validators.slurm_settings_validator import (
    SLURM_SETTINGS_DENY_LIST, CustomSlurmSettingLevel, CustomSlurmSettingsValidator,
)

results = {}
for key, case in json.load(open(sys.argv[1])).items():
    try:
        cluster = ClusterSchema(cluster_name=case["cluster_name"]).load(case["config"])
    except ValidationError as error:
        results[key] = {"loaded": False, "errors": error.messages, "failures": []}
        continue
    failures = []
    def run(validator, **kwargs):
        failures.extend(f"{r.level.name}: {r.message}" for r in validator().execute(**kwargs))
    run(CustomSlurmSettingsValidator, custom_settings=cluster.scheduling.settings.custom_slurm_settings,
        deny_list=SLURM_SETTINGS_DENY_LIST["SlurmConf"]["Global"],
        settings_level=CustomSlurmSettingLevel.SLURM_CONF)
    targets = []
    for queue in cluster.scheduling.queues:
        for resource in queue.compute_resources:
            run(ComputeResourceSizeValidator, min_count=resource.min_count, max_count=resource.max_count,
                capacity_type=queue.capacity_type)
            chosen = queue.get_chosen_placement_group_setting_for_compute_resource(resource)
            run(EfaPlacementGroupValidator, efa_enabled=resource.efa.enabled,
                placement_group_key=queue.get_placement_group_settings_for_compute_resource(resource).get("key"),
                placement_group_disabled=chosen.enabled is False,
                multi_az_enabled=len(queue.networking.subnet_ids) > 1,
                capacity_type=queue.capacity_type, queue_name=queue.name)
            run(PlacementGroupCapacityTypeValidator, capacity_type=queue.capacity_type,
                placement_group_enabled=queue.is_placement_group_enabled_for_compute_resource(resource))
            target = resource.capacity_reservation_target
            if target is not None:
                targets.append([queue.name, queue.capacity_type.value, target.capacity_reservation_id,
                                target.capacity_reservation_resource_group_arn])
    results[key] = {"loaded": True, "errors": None, "failures": failures, "targets": targets}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def pcluster_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cases = {}
    for name in VARIANTS:
        config = prod_variant(name)
        cases[name] = {"cluster_name": config.cluster.name, "config": full_config(config)}
    # What ParallelCluster must refuse: a Capacity Block queue that scales, with a strategy.
    broken = json.loads(json.dumps(cases["capacity-block"]))
    gpu = next(q for q in broken["config"]["Scheduling"]["SlurmQueues"] if q["Name"] == "gpu")
    gpu["ComputeResources"][0]["MinCount"] = 0
    cases["capacity-block-scaling"] = broken
    path = Path(tmp_path_factory.mktemp("reserved")) / "cases.json"
    path.write_text(json.dumps(cases))
    result = run_pcluster_python(PCLUSTER_CHECK, str(path))
    assert result.returncode == 0, result.stderr[-4000:]
    results: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parallelclusters_schema_and_validators_accept_the_rendering(
    variant: str, pcluster_results: dict[str, Any]
) -> None:
    result = pcluster_results[variant]
    assert result["loaded"], json.dumps(result["errors"], indent=2)
    assert result["failures"] == []


def test_parallelcluster_reads_each_kind_of_target(pcluster_results: dict[str, Any]) -> None:
    assert pcluster_results["odcr"]["targets"] == [["gpu", "ONDEMAND", ODCR, None]]
    assert pcluster_results["resource-group"]["targets"] == [["gpu", "ONDEMAND", None, GROUP_ARN]]
    assert pcluster_results["capacity-block"]["targets"] == [["gpu", "CAPACITY_BLOCK", ODCR, None]]


def test_fails_capacity_block_that_scales_in_parallelcluster(pcluster_results: dict[str, Any]) -> None:
    failures = pcluster_results["capacity-block-scaling"]["failures"]
    assert any("Capacity Block" in f and f.startswith("ERROR") for f in failures), failures


# --- cost ------------------------------------------------------------------------------------------
def test_reserved_instances_are_paid_all_month_at_on_demand_when_no_rate_is_given() -> None:
    prices = default_prices()
    plain = estimate_monthly_cost(prod_variant("no-requeue"), prices, utilization=0.25)
    odcr = estimate_monthly_cost(prod_variant("odcr"), prices, utilization=0.25)
    rate = prices.ec2_on_demand_hourly["p4d.24xlarge"]
    (line,) = [line for line in odcr.lines if line.item == "queue gpu (reserved)"]
    assert line.monthly_usd == pytest.approx(16 * rate * prices.hours_per_month)
    assert line.fixed_usd == line.monthly_usd == line.ceiling_usd
    # Without the reservation the 16 nodes cost a quarter of the month; with it, all of it.
    (open_line,) = [line for line in plain.lines if line.item == "queue gpu"]
    assert line.monthly_usd == pytest.approx(open_line.monthly_usd * 4)
    assert any("reserved capacity: every reserved instance is paid all month" in t for t in render_cost(odcr))
    assert not any("reserved capacity" in t for t in render_cost(plain))


def test_capacity_block_is_paid_at_its_declared_rate() -> None:
    prices = default_prices()
    estimate = estimate_monthly_cost(prod_variant("capacity-block"), prices)
    (line,) = [line for line in estimate.lines if line.item == "queue gpu (reserved)"]
    assert line.monthly_usd == pytest.approx(4 * 31.464 * prices.hours_per_month)
    assert "reservation rate" in line.detail


def test_nodes_above_a_smaller_reservation_are_open_on_demand() -> None:
    raw = read_stack_file(stack_file("prod"))
    set_value(
        f"{GPU}.compute_resources.0.capacity_reservation",
        {"resource_group_arn": GROUP_ARN, "instance_count": 4},
    )(raw)
    config = parse_config(model_input(raw), "Pulumi.prod.yaml").config
    prices = default_prices()
    estimate = estimate_monthly_cost(config, prices, utilization=0.5)
    (line,) = [line for line in estimate.lines if line.item == "queue gpu (reserved)"]
    rate, hours = prices.ec2_on_demand_hourly["p4d.24xlarge"], prices.hours_per_month
    assert line.fixed_usd == pytest.approx(4 * rate * hours)
    assert line.monthly_usd == pytest.approx((4 + 12 * 0.5) * rate * hours)
    assert line.ceiling_usd == pytest.approx(16 * rate * hours)


# --- the documented example ------------------------------------------------------------------------
def test_documented_capacity_block_example_is_valid_and_renders() -> None:
    """docs/reserved-capacity.md's stack-file excerpt, put in place of prod's gpu queue."""
    import yaml

    from tests.support.stacks import REPO_ROOT

    guide = (REPO_ROOT / "docs" / "reserved-capacity.md").read_text()
    excerpt = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    (queue,) = yaml.safe_load(excerpt)["hpc:cluster"]["queues"]
    raw = read_stack_file(stack_file("prod"))
    raw["hpc:cluster"]["queues"] = [q if q["name"] != "gpu" else queue for q in raw["hpc:cluster"]["queues"]]
    config = parse_config(model_input(raw), "Pulumi.prod.yaml").config
    rendered = gpu_queue(config)
    assert rendered["CapacityType"] == "CAPACITY_BLOCK"
    assert rendered["ComputeResources"][0]["CapacityReservationTarget"] == {"CapacityReservationId": ODCR}
