"""Group budgets count real nodes: the ResearchGroup value that lands on each queue's instances.

`per_research_group` budgets filter on `user:ResearchGroup$<group>`. Every Pulumi resource
carries the stack's one ResearchGroup value, so a group owns spend only through queues whose
`research_group` the renderer writes as the queue's ParallelCluster `Tags`. ParallelCluster
3.16.1 builds the instance and volume tags of each compute resource's launch template from the
cluster `Tags`, then the queue's, then the compute resource's
(`QueuesStack._get_custom_compute_resource_tags`). These tests run that very method on each
stack's rendered config from the offline plan, and check that every budget's group is the value
on some queue's nodes (or the stack's own).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpc_platform.domain.limits import RESEARCH_GROUP_TAG
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned

LANDED_TAGS = r"""
import json, sys
from types import SimpleNamespace
from pcluster.schemas.cluster_schema import ClusterSchema
from pcluster.templates.queues_stack import QueuesStack

cases = json.load(open(sys.argv[1]))
out = {}
for key, case in cases.items():
    cluster = ClusterSchema(cluster_name=case["cluster_name"]).load(case["config"])
    # The method reads only `self._config`: ParallelCluster's own merge, without synthesising a stack.
    stack = SimpleNamespace(_config=cluster)
    out[key] = {
        queue.name: {
            resource.name: {
                tag.key: tag.value
                for tag in QueuesStack._get_custom_compute_resource_tags(stack, queue, resource)
            }
            for resource in queue.compute_resources
        }
        for queue in cluster.scheduling.queues
    }
print(json.dumps(out))
"""


def landed_tags(tmp_path: Path) -> dict[str, dict[str, dict[str, dict[str, str]]]]:
    cases = {}
    for stack in STACKS:
        (cluster,) = [r for r in planned(stack).plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
        cases[stack] = {
            "cluster_name": cluster.inputs["cluster_name"],
            "config": cluster.inputs["cluster_config"],
        }
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    result = run_pcluster_python(LANDED_TAGS, str(path))
    assert result.returncode == 0, result.stderr[-4000:]
    landed: dict[str, dict[str, dict[str, dict[str, str]]]] = json.loads(
        result.stdout.strip().splitlines()[-1]
    )
    return landed


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, dict[str, str]]]]:
    return landed_tags(tmp_path_factory.mktemp("tags"))


@pytest.mark.parametrize("stack", STACKS)
def test_each_queues_nodes_carry_its_research_group(
    stack: str, landed: dict[str, dict[str, dict[str, dict[str, str]]]]
) -> None:
    config = planned(stack).loaded.config
    for queue in config.cluster.queues:
        expected = queue.research_group or config.compliance.research_group
        for resource, tags in landed[stack][queue.name].items():
            assert tags[RESEARCH_GROUP_TAG] == expected, f"{stack}: {queue.name}/{resource}"
            # The other compliance tags still come from the cluster level.
            for key, value in config.tags.items():
                if key != RESEARCH_GROUP_TAG:
                    assert tags[key] == value, f"{stack}: {queue.name}/{resource}: {key}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_group_budget_matches_nodes_or_the_stack(
    stack: str, landed: dict[str, dict[str, dict[str, dict[str, str]]]]
) -> None:
    config = planned(stack).loaded.config
    budget = config.observability.budget
    groups = list(budget.per_research_group) if budget else []
    on_nodes = {tags[RESEARCH_GROUP_TAG] for queue in landed[stack].values() for tags in queue.values()}
    for group in groups:
        assert group in on_nodes or group == config.compliance.research_group, (
            f"{stack}: {group} owns nothing"
        )
    if stack == "prod":
        # The committed prod stack has group budgets, and they are paid by queues, not the stack.
        assert groups and all(group in on_nodes for group in groups)
