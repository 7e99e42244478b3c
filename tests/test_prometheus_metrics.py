"""Metrics that flow: the offline plan of every stack with Managed Prometheus on ships a
Prometheus agent (config checked by Prometheus's own `promtool`), node_exporter on every node and
the Slurm exporter on the head node, and grants the head node `aps:RemoteWrite` on that one
workspace; with Prometheus off, none of it exists."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
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
PINNED_INSTALLERS = {bootstrap.NODE_EXPORTER: NODE_EXPORTER, bootstrap.PROMETHEUS_AGENT: PROMETHEUS}


def test_downloads_are_pinned_only_in_the_prometheus_module() -> None:
    """The scripts in the repository (and the fragment they include) carry placeholders, no
    version, URL or digest of their own; the uploaded copies carry the module's pins."""
    sources = {name: bootstrap.script(name) for name in PINNED_INSTALLERS}
    sources[bootstrap.INSTALL_PINNED] = bootstrap.fragment(bootstrap.INSTALL_PINNED)
    for name, script in sources.items():
        assert not re.search(r"\b[0-9a-f]{64}\b", script), name
        assert "debian.org" not in script and "github.com" not in script, name
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


# Left in a script: a pin placeholder (`@NODE_EXPORTER_SHA256@`) or an include line.
UNFILLED = re.compile(r"@[A-Za-z0-9_]+@|^@include\b.*$", re.MULTILINE)


@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_uploaded_installers_check_the_pinned_sha256_and_have_nothing_left_to_fill(stack: str) -> None:
    objects = bootstrap_objects(planned(stack).plan)
    for name, pinned in PINNED_INSTALLERS.items():
        shipped = objects[name].inputs["content"]
        assert UNFILLED.findall(shipped) == [], name
        assert f'sha256="{pinned.sha256}"' in shipped, name
        definition = shipped.index("install_pinned() {")
        check = shipped.index("| sha256sum --check --status", definition)
        call = shipped.index(f'\ninstall_pinned {name.removesuffix(".sh")} "${{url}}" "${{sha256}}" ')
        assert definition < check < call, name


def test_unfilled_catches_a_placeholder_and_an_include_line() -> None:
    """The pattern the test above relies on finds both kinds of leftover."""
    source = bootstrap.script(bootstrap.NODE_EXPORTER)
    assert "@NODE_EXPORTER_SHA256@" in UNFILLED.findall(source)
    assert UNFILLED.findall(f"set -eu\n@include {bootstrap.INSTALL_PINNED}\n") == [
        f"@include {bootstrap.INSTALL_PINNED}"
    ]


@pytest.mark.parametrize("stack", PROMETHEUS_STACKS)
def test_both_uploaded_installers_carry_the_install_fragment_once(stack: str) -> None:
    objects = bootstrap_objects(planned(stack).plan)
    fragment = bootstrap.fragment(bootstrap.INSTALL_PINNED)
    assert "sha256sum --check" in fragment
    for name in PINNED_INSTALLERS:
        assert objects[name].inputs["content"].count(fragment) == 1, name


CURL_STUB = """#!/bin/bash
# Serves the test's package for whatever URL is asked for.
while [[ $# -gt 0 ]]; do [[ $1 == --output ]] && { out=$2; shift; }; shift; done
cp "$STUB_DEB" "$out"
"""


def debian_package(member: str, payload: bytes) -> bytes:
    """A minimal .deb: an `ar` archive of debian-binary, control and data tarballs."""

    def tarball(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    members = {
        "debian-binary": b"2.0\n",
        "control.tar.gz": tarball({"./control": b"Package: test\n"}),
        "data.tar.gz": tarball({member: payload}),
    }
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def run_install_pinned(tmp_path: Path, installer: str, sha256: str) -> subprocess.CompletedProcess[str]:
    """Run the uploaded installer's `install_pinned` (under the scripts' `set -euo pipefail`) against
    a stub curl serving a local package whose program prints `pinned`."""
    pinned = PINNED_INSTALLERS[installer]
    shipped = pinned_script(bootstrap.script(installer))
    start = shipped.index("install_pinned() {")
    function = shipped[start : shipped.index("\n}\n", start) + 3]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(CURL_STUB)
    (bin_dir / "curl").chmod(0o755)
    deb = tmp_path / "stub.deb"
    deb.write_bytes(debian_package(pinned.member, b"#!/bin/sh\necho pinned\n"))
    name = installer.removesuffix(".sh")
    script = (
        f"set -euo pipefail\n{function}"
        f'install_pinned {name} "{pinned.url}" "{sha256}" "{pinned.member}" "{tmp_path}/program"\n'
        "echo installed\n"
    )
    return subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DEB": str(deb)},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("installer", PINNED_INSTALLERS)
def test_uploaded_installer_takes_the_program_out_of_a_package_with_the_pinned_checksum(
    installer: str, tmp_path: Path
) -> None:
    deb = debian_package(PINNED_INSTALLERS[installer].member, b"#!/bin/sh\necho pinned\n")
    result = run_install_pinned(tmp_path, installer, hashlib.sha256(deb).hexdigest())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "installed\n"
    program = tmp_path / "program"
    assert program.stat().st_mode & 0o777 == 0o755
    assert subprocess.run([str(program)], capture_output=True, text=True).stdout == "pinned\n"


@pytest.mark.parametrize("installer", PINNED_INSTALLERS)
def test_uploaded_installer_refuses_a_package_whose_checksum_differs(installer: str, tmp_path: Path) -> None:
    pinned = PINNED_INSTALLERS[installer]
    result = run_install_pinned(tmp_path, installer, pinned.sha256)  # the stub package is not Debian's
    assert result.returncode == 1
    name = installer.removesuffix(".sh")
    assert f"{name}: checksum of {pinned.url} is not the pinned {pinned.sha256}; refusing it" in result.stderr
    assert "installed" not in result.stdout  # the whole script stops, not only the function
    assert not (tmp_path / "program").exists()


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
