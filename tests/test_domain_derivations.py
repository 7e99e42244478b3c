"""The derived facts have one home each in the domain layer, take plain values, and never load the
stack schema, so the component library and the ParallelCluster layer can read them.

- EFA use and whole-node allocation of a compute resource, and where each queue runs
  (`hpc_platform.domain.placement`);
- Lustre sizes and baseline throughput (`hpc_platform.domain.lustre`);
- the Spot share's threshold (`hpc_platform.domain.spot`);
- the stack-file key of each top-level field (`hpc_platform.domain.config.keys`);
- the environment table's windows stay within what AWS accepts.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from types import SimpleNamespace

import pytest

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import key_path
from hpc_platform.domain.config.keys import field_of, stack_key
from hpc_platform.domain.config.loader import model_input
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.environments import PROFILES
from hpc_platform.domain.limits import KMS_DELETION_WINDOW_RANGE_DAYS
from hpc_platform.domain.lustre import (
    SCRATCH,
    lustre_capacity_problem,
    lustre_throughput_model,
    persistent_throughput_problem,
)
from hpc_platform.domain.performance import throughput_model
from hpc_platform.domain.placement import (
    exclusive_allocation,
    head_node_az,
    place,
    queue_placements,
    uses_efa,
)
from hpc_platform.domain.spot import SpotShare
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.stacks import STACKS, planned

PURE_MODULES = (
    "hpc_platform.domain.limits",
    "hpc_platform.domain.environments",
    "hpc_platform.domain.shapes",
    "hpc_platform.domain.placement",
    "hpc_platform.domain.lustre",
    "hpc_platform.domain.spot",
    "hpc_platform.domain.rules",
)


def test_derivations_do_not_load_the_stack_schema() -> None:
    """A fresh interpreter imports every derivation module and has no `hpc_platform.domain.config`
    loaded afterwards (the library contract forbids components the schema, even indirectly)."""
    code = (
        "import importlib, sys\n"
        f"for name in {PURE_MODULES!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('hpc_platform.domain.config')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- EFA ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("queue_efa", "resource_efa", "expected"),
    [(True, None, True), (False, None, False), (True, False, False), (False, True, True)],
)
def test_a_compute_resource_uses_its_own_efa_setting_else_its_queues(
    queue_efa: bool, resource_efa: bool | None, expected: bool
) -> None:
    assert uses_efa(queue_efa, resource_efa) is expected


@pytest.mark.parametrize(
    ("queue_efa", "configured", "expected"),
    [(True, None, True), (False, None, False), (True, False, False), (False, True, True)],
)
def test_efa_queues_allocate_whole_nodes_unless_told_otherwise(
    queue_efa: bool, configured: bool | None, expected: bool
) -> None:
    assert exclusive_allocation(queue_efa, configured) is expected


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_efa_is_the_domains(stack: str) -> None:
    """The ParallelCluster config the program renders says what `uses_efa` says, per resource."""
    plan = planned(stack)
    config = plan.loaded.config
    (cluster,) = [r for r in plan.plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    rendered = {
        (q["Name"], r["Name"]): r["Efa"]["Enabled"]
        for q in cluster.inputs["cluster_config"]["Scheduling"]["SlurmQueues"]
        for r in q["ComputeResources"]
    }
    assert rendered == {
        (q.name, r.name): uses_efa(q.enable_efa, r.enable_efa)
        for q in config.cluster.queues
        for r in q.compute_resources
    }


# --- AZs -----------------------------------------------------------------------------------------
def test_placement_takes_any_object_shaped_like_the_config(catalog: InstanceCatalog) -> None:
    """No schema needed: plain namespaces work, and give what the plain-value `place` gives."""
    efa_queue = SimpleNamespace(
        name="mpi",
        capacity_type="ONDEMAND",
        enable_efa=True,
        availability_zone=None,
        job_exclusive_allocation=None,
        compute_resources=[SimpleNamespace(instance_type="hpc6a.48xlarge", max_count=4, enable_efa=None)],
    )
    stack = SimpleNamespace(
        region="us-east-2",
        network=SimpleNamespace(availability_zones=["us-east-2a", "us-east-2b", "us-east-2c"]),
        cluster=SimpleNamespace(queues=[efa_queue]),
    )
    placement = queue_placements(stack, catalog)["mpi"]
    assert placement == place(
        "mpi",
        instance_types=["hpc6a.48xlarge"],
        enable_efa=True,
        availability_zone=None,
        vpc_azs=stack.network.availability_zones,
        region="us-east-2",
        catalog=catalog,
    )
    # hpc6a is offered in us-east-2b only (instance catalog); an EFA queue takes one AZ.
    assert placement.azs == ("us-east-2b",) and placement.efa
    assert head_node_az(stack.network.availability_zones) == "us-east-2a"


@pytest.mark.parametrize("stack", STACKS)
def test_efa_queues_run_in_one_az_and_others_span_their_offering_azs(
    stack: str, catalog: InstanceCatalog
) -> None:
    config = planned(stack).loaded.config
    for queue in config.cluster.queues:
        placement = queue_placements(config, catalog)[queue.name]
        assert placement.efa == queue.enable_efa
        if queue.enable_efa:
            assert len(placement.azs) == 1


# --- Lustre --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_lustre_throughput_from_plain_values_is_the_performance_models(stack: str) -> None:
    storage = planned(stack).loaded.config.storage
    plain = lustre_throughput_model(
        scratch_capacity_gib=storage.scratch.capacity_gib if storage.scratch.enabled else None,
        persistent_capacity_gib=storage.persistent.capacity_gib if storage.persistent.enabled else None,
        persistent_throughput_mbps_per_tib=storage.persistent.throughput_mbps_per_tib,
        target_gbps=storage.target_aggregate_throughput_gbps,
    )
    assert plain == throughput_model(planned(stack).loaded.config)


def test_lustre_throughput_by_role_and_target() -> None:
    model = lustre_throughput_model(
        scratch_capacity_gib=1200,
        persistent_capacity_gib=None,
        persistent_throughput_mbps_per_tib=250,
        target_gbps=1,
    )
    assert model.baseline_mbps(SCRATCH) == 234.375  # 1.171875 TiB × 200 MB/s/TiB
    assert model.baseline_mbps("persistent") == 0.0
    assert model.target_mbps == 1000.0 and model.meets_target is False


@pytest.mark.parametrize(
    ("capacity_gib", "valid"), [(1200, True), (2400, True), (4800, True), (3600, False), (1000, False)]
)
def test_lustre_sizes(capacity_gib: int, valid: bool) -> None:
    assert (lustre_capacity_problem(capacity_gib, "SCRATCH_2") is None) is valid


def test_persistent_throughput_tiers() -> None:
    assert persistent_throughput_problem(250) is None
    assert persistent_throughput_problem(200) == (
        "200 MB/s/TiB is not offered for PERSISTENT_2; use 125, 250, 500 or 1000"
    )


# --- Spot ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("share", "target", "below"),
    [
        (SpotShare(7, 10, 0), 0.7, False),  # 7/10 meets 0.7 despite float rounding
        (SpotShare(6, 10, 0), 0.7, True),
        (SpotShare(0, 0, 96), 0.7, False),  # nothing Spot-eligible: nothing to miss
    ],
)
def test_spot_share_below_target(share: SpotShare, target: float, below: bool) -> None:
    assert share.below(target) is below


# --- stack-file keys -----------------------------------------------------------------------------
@pytest.mark.parametrize("field", list(StackConfig.model_fields))
def test_every_field_has_one_stack_key_both_ways(field: str) -> None:
    key = stack_key(field)
    assert field_of(key) == field
    assert key_path((field,)) == key
    assert model_input({key: "x"}) == {field: "x"}


def test_region_is_the_aws_providers_key() -> None:
    assert stack_key("region") == "aws:region"
    assert field_of("aws:profile") is None and field_of("hpc:") is None


# --- environments --------------------------------------------------------------------------------
def test_fails_an_environment_with_a_kms_window_aws_refuses() -> None:
    low, high = KMS_DELETION_WINDOW_RANGE_DAYS
    assert all(low <= p.kms_deletion_window_days <= high for p in PROFILES.values())
    with pytest.raises(ValueError, match="kms_deletion_window_days is 31"):
        dataclasses.replace(PROFILES["prod"], kms_deletion_window_days=high + 1)
