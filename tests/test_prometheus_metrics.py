"""Metrics that flow: the offline plan of every stack with Managed Prometheus on ships a
Prometheus agent (config checked by Prometheus's own `promtool`), node_exporter on every node and
the Slurm exporter on the head node, and grants the head node `aps:RemoteWrite` on that one
workspace; with Prometheus off, none of it exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.domain.config.loader import load_stack_file
from hpc_platform.pcluster import bootstrap
from hpc_platform.pcluster.prometheus import (
    NODE_EXPORTER,
    NODE_EXPORTER_PORT,
    PINNED,
    PROMETHEUS,
    SLURM_EXPORTER_PORT,
    SLURM_TEXTFILE_DIR,
    pinned_script,
)
from tests.support.stacks import STACKS, planned, stack_file
from tests.test_pcluster_render import run_slurm_metrics_collector

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
AMP = "aws:amp/workspace:Workspace"
# Read from the stack files, not their plans: this runs while tests are collected, in every worker.
PROMETHEUS_STACKS = [
    s for s in STACKS if load_stack_file(stack_file(s)).config.observability.enable_managed_prometheus
]
DISABLED_STACKS = [s for s in STACKS if s not in PROMETHEUS_STACKS]


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (see README prerequisites)"
    return path


def cluster_config(plan: Plan) -> dict[str, Any]:
    (cluster,) = [r for r in plan.resources if isinstance(r.inputs.get("cluster_config"), dict)]
    config: dict[str, Any] = cluster.inputs["cluster_config"]
    return config


def bootstrap_objects(plan: Plan) -> dict[str, PlannedResource]:
    return {
        r.inputs["key"].rsplit("/", 1)[-1]: r
        for r in plan.of_type(OBJECT)
        if "/bootstrap/" in f"/{r.inputs.get('key', '')}"
    }


def head_sequence(plan: Plan) -> list[dict[str, Any]]:
    sequence: list[dict[str, Any]] = cluster_config(plan)["HeadNode"]["CustomActions"]["OnNodeConfigured"][
        "Sequence"
    ]
    return sequence


def script_name(entry: dict[str, Any]) -> str:
    return str(entry["Script"]).rsplit("/", 1)[-1]


def object_url(obj: PlannedResource) -> str:
    return f"s3://{obj.inputs['bucket']}/{obj.inputs['key']}"


def check_config(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    return subprocess.run(
        [promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )


# --- the collector's config --------------------------------------------------------------------
@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_rendered_agent_config_passes_promtool(stack: str, tmp_path: Path) -> None:
    config = bootstrap_objects(planned(stack).plan)["prometheus.yml"].inputs["content"]
    result = check_config(config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_fails_promtool_on_a_broken_agent_config(tmp_path: Path) -> None:
    """The check can fail: a remote write without a URL and a bad interval are refused."""
    text = bootstrap_objects(planned(PROMETHEUS_STACKS[0]).plan)["prometheus.yml"].inputs["content"]
    broken = yaml.safe_load(text)
    broken["global"]["scrape_interval"] = "soon"
    result = check_config(yaml.safe_dump(broken), tmp_path)
    assert result.returncode != 0


@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_agent_discovers_the_clusters_nodes_and_writes_to_its_workspace_with_sigv4(stack: str) -> None:
    plan = planned(stack).plan
    loaded = planned(stack).loaded.config
    config = yaml.safe_load(bootstrap_objects(plan)["prometheus.yml"].inputs["content"])
    (workspace,) = plan.of_type(AMP)
    (remote,) = config["remote_write"]
    assert remote["url"] == workspace.outputs["prometheusEndpoint"].rstrip("/") + "/api/v1/remote_write"
    assert remote["sigv4"] == {"region": loaded.region}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (discovery,) = jobs["node"]["ec2_sd_configs"]
    assert discovery["port"] == NODE_EXPORTER_PORT and discovery["region"] == loaded.region
    assert {"name": "tag:parallelcluster:cluster-name", "values": [loaded.cluster.name]} in discovery[
        "filters"
    ]
    assert jobs["slurm"]["static_configs"][0]["targets"] == [f"localhost:{SLURM_EXPORTER_PORT}"]


# --- IAM --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_head_node_may_remote_write_to_its_workspace_only(stack: str) -> None:
    plan = planned(stack).plan
    (workspace,) = plan.of_type(AMP)
    (policy,) = [r for r in plan.of_type(ROLE_POLICY) if r.inputs.get("name") == "prometheus-remote-write"]
    head_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("-cluster-head-role"))
    assert policy.inputs["role"] == head_role.id
    aps = [
        s
        for r in plan.of_type(ROLE_POLICY)
        for s in json.loads(r.inputs["policy"])["Statement"]
        if any(str(a).startswith("aps:") for a in _as_list(s["Action"])) and "grafana" not in r.name
    ]
    assert aps == [
        {
            "Sid": "RemoteWriteToTheWorkspace",
            "Effect": "Allow",
            "Action": "aps:RemoteWrite",
            "Resource": workspace.outputs["arn"],
        }
    ]
    assert "*" not in workspace.outputs["arn"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- delivery ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_head_node_runs_exporters_then_the_agent_with_the_rendered_config(stack: str) -> None:
    plan = planned(stack).plan
    objects = bootstrap_objects(plan)
    sequence = head_sequence(plan)
    assert [script_name(e) for e in sequence] == [
        bootstrap.NODE_EXPORTER,
        bootstrap.SLURM_METRICS_AGENT,
        bootstrap.PROMETHEUS_AGENT,
    ]
    exporter, agent_of_slurm, agent = sequence
    assert exporter["Args"] == [str(NODE_EXPORTER_PORT), str(SLURM_EXPORTER_PORT), SLURM_TEXTFILE_DIR]
    assert agent_of_slurm["Args"][-1] == SLURM_TEXTFILE_DIR
    assert agent["Args"] == [object_url(objects["prometheus.yml"]), plan_region(stack)]
    for entry in sequence:
        obj = objects[script_name(entry)]
        assert entry["Script"] == object_url(obj)
        source = bootstrap.script(script_name(entry))
        shipped = pinned_script(source) if "@" in source else source
        assert obj.inputs["content"] == shipped
        assert obj.inputs["serverSideEncryption"] == "aws:kms"
    assert objects["prometheus.yml"].inputs["serverSideEncryption"] == "aws:kms"
    updated = cluster_config(plan)["HeadNode"]["CustomActions"]["OnNodeUpdated"]["Sequence"]
    assert updated == sequence


def plan_region(stack: str) -> str:
    return planned(stack).loaded.config.region


@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_every_compute_node_runs_node_exporter(stack: str) -> None:
    plan = planned(stack).plan
    for queue in cluster_config(plan)["Scheduling"]["SlurmQueues"]:
        entries = queue["CustomActions"]["OnNodeConfigured"]["Sequence"]
        exporters = [e for e in entries if script_name(e) == bootstrap.NODE_EXPORTER]
        assert [e["Args"] for e in exporters] == [[str(NODE_EXPORTER_PORT)]]


@pytest.mark.parametrize("stack", DISABLED_STACKS)
def test_nothing_is_installed_without_prometheus(stack: str) -> None:
    plan = planned(stack).plan
    assert plan.of_type(AMP) == []
    assert set(bootstrap_objects(plan)) == {
        bootstrap.EFA_CHECK,
        bootstrap.NODE_TUNING,
        bootstrap.SLURM_METRICS_AGENT,
    }
    assert [r for r in plan.of_type(ROLE_POLICY) if r.inputs.get("name") == "prometheus-remote-write"] == []
    text = json.dumps(cluster_config(plan))
    for pinned in PINNED:
        assert pinned.url not in text
    assert [script_name(e) for e in head_sequence(plan)] == [bootstrap.SLURM_METRICS_AGENT]
    # The Slurm metrics agent keeps its CloudWatch arguments only: no text file for an exporter.
    assert SLURM_TEXTFILE_DIR not in text


def test_there_are_stacks_with_and_without_prometheus() -> None:
    assert PROMETHEUS_STACKS and DISABLED_STACKS


# --- pins in one place ----------------------------------------------------------------------------
def test_downloads_are_pinned_only_in_the_prometheus_module() -> None:
    """The scripts in the repository carry placeholders, no version, URL or digest of their own;
    the uploaded copies carry the module's pins."""
    for name in (bootstrap.NODE_EXPORTER, bootstrap.PROMETHEUS_AGENT):
        script = bootstrap.script(name)
        assert not re.search(r"\b[0-9a-f]{64}\b", script), name
        assert "debian.org" not in script and "github.com" not in script, name
        assert "sha256sum --check" in script, name
    for pinned in PINNED:
        assert re.fullmatch(r"[0-9a-f]{64}", pinned.sha256)
        assert pinned.version in pinned.pool_path and pinned.url.startswith("https://")
    exporter = pinned_script(bootstrap.script(bootstrap.NODE_EXPORTER))
    agent = pinned_script(bootstrap.script(bootstrap.PROMETHEUS_AGENT))
    for pinned, script in ((NODE_EXPORTER, exporter), (PROMETHEUS, agent)):
        assert f'url="{pinned.url}"' in script and f'sha256="{pinned.sha256}"' in script
        assert f'member="{pinned.member}"' in script and "@" not in script.split("set -euo pipefail")[1][:200]


def test_fails_to_ship_a_script_with_an_unpinned_download() -> None:
    with pytest.raises(ValueError, match="@GRAFANA_AGENT_URL@"):
        pinned_script('url="@GRAFANA_AGENT_URL@"')
    # A digit in the name (the `_SHA256` of every pin) is still a placeholder.
    with pytest.raises(ValueError, match="@GRAFANA_AGENT_SHA256@"):
        pinned_script('sha256="@GRAFANA_AGENT_SHA256@"')


@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_a_new_pin_changes_the_scripts_not_the_cluster_config(stack: str) -> None:
    """The head node's OnNodeConfigured cannot change without replacing the cluster: the pins
    travel in the uploaded scripts, never in the config's script arguments."""
    plan = planned(stack).plan
    text = json.dumps(cluster_config(plan))
    objects = bootstrap_objects(plan)
    for pinned in PINNED:
        assert pinned.url not in text and pinned.sha256 not in text
    assert NODE_EXPORTER.sha256 in objects[bootstrap.NODE_EXPORTER].inputs["content"]
    assert PROMETHEUS.sha256 in objects[bootstrap.PROMETHEUS_AGENT].inputs["content"]


# --- the Slurm exporter's output ----------------------------------------------------------------
def test_slurm_metrics_agent_writes_prometheus_text_that_promtool_accepts(tmp_path: Path) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    result = run_slurm_metrics_collector(tmp_path, f"TEXTFILE_DIR={textfiles}\n")
    assert result.returncode == 0, result.stderr
    text = (textfiles / "slurm.prom").read_text()
    check = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert samples['slurm_queue_jobs{queue="compute-spot",state="pending"}'] == "3"
    assert samples['slurm_queue_nodes{queue="compute-spot",state="idle"}'] == "1"
    assert samples['slurm_queue_jobs{queue="debug",state="running"}'] == "1"
    assert samples["slurm_down_nodes"] == "2"
    assert samples["slurm_spot_interrupted_nodes"] == "1"
