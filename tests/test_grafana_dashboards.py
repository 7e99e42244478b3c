"""Grafana dashboards as code: the Slurm, node and Lustre dashboards are JSON files in the
repository; with a Grafana token (`grafana:auth`, a secret) the plan provisions them and their data
sources in the managed workspace; without one, nothing reaches Grafana's API and the files are
imported by hand (docs/grafana.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.grafana_dashboards import DASHBOARDS, PROMETHEUS_DASHBOARDS, dashboard, dashboard_json
from hpc_platform.app.offline import plan_stack_file
from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER, Plan
from tests.support.stacks import REPO_ROOT, STACKS, planned

DASHBOARD = "grafana:oss/dashboard:Dashboard"
DATA_SOURCE = "grafana:oss/dataSource:DataSource"
PROVIDER = "pulumi:providers:grafana"
TOKEN = "glsa_offline_test_token_0123456789"


def plan_with_token(
    stack: str,
    stack_config: Callable[[str], dict[str, Any]],
    write_stack: Callable[[dict[str, Any], str], Path],
    change: Callable[[dict[str, Any]], None] | None = None,
) -> Plan:
    config = stack_config(stack)
    config["grafana:auth"] = TOKEN
    if change is not None:
        change(config)
    return plan_stack_file(write_stack(config, f"Pulumi.{stack}.yaml")).plan


# --- the files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_files_are_grafana_models_that_choose_their_data_source(name: str) -> None:
    model = dashboard(name)
    assert model["uid"] == f"hpc-{name}" and model["title"].startswith("HPC / ")
    kind = "prometheus" if name in PROMETHEUS_DASHBOARDS else "cloudwatch"
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables[kind]["type"] == "datasource" and variables[kind]["query"] == kind
    assert model["panels"]
    for panel in model["panels"]:
        assert panel["datasource"] == {"type": kind, "uid": f"${{{kind}}}"}, panel["title"]
        assert panel["targets"], panel["title"]


def test_prometheus_dashboards_query_what_the_collector_sends() -> None:
    """Every metric the Slurm dashboard reads is one the Slurm metrics agent writes."""
    from hpc_platform.pcluster import bootstrap

    agent = bootstrap.script(bootstrap.SLURM_METRICS_AGENT)
    exprs = [t["expr"] for p in dashboard("slurm")["panels"] for t in p["targets"]]
    metrics = {m for e in exprs for m in re.findall(r"\b(slurm_[a-z_]+)\{", e)}
    assert metrics == {
        "slurm_queue_jobs",
        "slurm_queue_nodes",
        "slurm_down_nodes",
        "slurm_spot_interrupted_nodes",
    }
    for metric in metrics:
        assert f"sample {metric} " in agent, metric


# --- provisioned with a token ---------------------------------------------------------------------
def test_token_provisions_data_sources_and_every_dashboard(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    plan = plan_with_token("staging", stack_config, write_stack)
    (grafana,) = plan.of_type("aws:grafana/workspace:Workspace")
    (provider,) = plan.of_type(PROVIDER)
    assert provider.inputs["url"] == f"https://{grafana.outputs['endpoint']}"
    assert provider.to_json()["inputs"]["auth"] == SECRET_PLACEHOLDER  # a secret, masked in plans
    assert TOKEN not in json.dumps(plan.to_json())
    sources = {r.inputs["type"]: r for r in plan.of_type(DATA_SOURCE)}
    (workspace,) = plan.of_type("aws:amp/workspace:Workspace")
    assert sources["prometheus"].inputs["url"] == workspace.outputs["prometheusEndpoint"]
    assert json.loads(sources["prometheus"].inputs["jsonDataEncoded"])["sigV4Auth"] is True
    assert json.loads(sources["cloudwatch"].inputs["jsonDataEncoded"])["defaultRegion"] == "us-east-2"
    dashboards = plan.of_type(DASHBOARD)
    assert sorted(json.loads(d.inputs["configJson"])["uid"] for d in dashboards) == sorted(
        f"hpc-{n}" for n in DASHBOARDS
    )
    for resource in dashboards:
        name = json.loads(resource.inputs["configJson"])["uid"].removeprefix("hpc-")
        assert resource.inputs["configJson"] == dashboard_json(name)


def test_without_prometheus_only_the_cloudwatch_dashboard_is_provisioned(
    stack_config: Callable[[str], dict[str, Any]], write_stack: Callable[[dict[str, Any], str], Path]
) -> None:
    def no_prometheus(config: dict[str, Any]) -> None:
        config["hpc:observability"]["enable_managed_prometheus"] = False

    plan = plan_with_token("staging", stack_config, write_stack, no_prometheus)
    assert [r.inputs["type"] for r in plan.of_type(DATA_SOURCE)] == ["cloudwatch"]
    assert [json.loads(d.inputs["configJson"])["uid"] for d in plan.of_type(DASHBOARD)] == ["hpc-lustre"]


@pytest.mark.parametrize("stack", STACKS)
def test_without_a_token_nothing_reaches_grafanas_api(stack: str) -> None:
    plan = planned(stack).plan
    assert plan.of_type(PROVIDER) == plan.of_type(DASHBOARD) == plan.of_type(DATA_SOURCE) == []


def test_import_instructions_name_every_dashboard_file() -> None:
    guide = (REPO_ROOT / "docs" / "grafana.md").read_text()
    for name in DASHBOARDS:
        assert f"components/dashboards/{name}.json" in guide
    assert "grafana:auth" in guide
