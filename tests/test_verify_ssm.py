"""`hpcctl verify`'s orchestration (`hpc_platform.app.verify`) on moto: the head node found by
ParallelCluster's tags in EC2, commands sent through SSM Run Command and polled, a command that
fails or never finishes, a missing head node; then `hpcctl verify` end to end against a fake head
node (tests/support/moto_ssm.py) that answers each script with the sample outputs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hpc_platform.app.verify import (
    PCLUSTER_CLUSTER_NAME_TAG,
    PCLUSTER_NODE_TYPE_TAG,
    HeadNodeShell,
    VerifyError,
    find_head_node,
)
from hpc_platform.domain.verification import SECTION_MARKER
from hpcctl.cli import EXIT_OK, EXIT_UNREACHABLE, EXIT_VIOLATIONS, main
from tests.support.moto_ssm import FakeHeadNode, Reply
from tests.support.stacks import REPO_ROOT
from tests.test_verification import fixture

REGION = "us-east-2"  # the committed stacks' aws:region
MOTO_AMI = "ami-12c6146b"
"""An AMI id from moto's default list; RunInstances does not check it (MOTO_ENABLE_AMI_VALIDATION
is off), and the list itself is not loaded (below)."""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # Without this each EC2 backend builds moto's ~1300 default AMIs and their snapshots, about a
    # second per test; these tests never read an image.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield


def launch(cluster: str, node_type: str, state: str = "running") -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(
        ImageId=MOTO_AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType="c6i.xlarge",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": PCLUSTER_CLUSTER_NAME_TAG, "Value": cluster},
                    {"Key": PCLUSTER_NODE_TYPE_TAG, "Value": node_type},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance])
    return str(instance)


# --- the head node ----------------------------------------------------------------------------
def test_finds_the_head_node_by_parallelclusters_tags(aws: None) -> None:
    head = launch("hpc-dev", "HeadNode")
    launch("hpc-dev", "Compute")
    launch("hpc-staging", "HeadNode")
    assert find_head_node(boto3.client("ec2", region_name=REGION), "hpc-dev") == head


def test_fails_without_a_head_node(aws: None) -> None:
    launch("hpc-staging", "HeadNode")
    with pytest.raises(VerifyError, match=r"^no head node of cluster hpc-dev in this account and region"):
        find_head_node(boto3.client("ec2", region_name=REGION), "hpc-dev")


def test_fails_with_a_stopped_head_node(aws: None) -> None:
    head = launch("hpc-dev", "HeadNode", state="stopped")
    with pytest.raises(VerifyError, match=f"is not running \\({head} stopp"):
        find_head_node(boto3.client("ec2", region_name=REGION), "hpc-dev")


# --- Run Command ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def shell(instance: str, clock: Clock) -> HeadNodeShell:
    return HeadNodeShell(
        boto3.client("ssm", region_name=REGION),
        instance,
        poll_seconds=5,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )


def test_sends_the_script_and_polls_until_it_finishes(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    head = launch("hpc-dev", "HeadNode")
    fake = FakeHeadNode(lambda script: Reply(stdout="hello\n", polls_in_progress=2)).install(monkeypatch)
    clock = Clock()
    output = shell(head, clock).run("echo hello", 60, "test")
    assert (output.status, output.stdout) == ("Success", "hello\n")
    assert fake.scripts == ["echo hello"] and clock.sleeps == [5, 5]


def test_a_failed_command_reports_its_status_and_stderr(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    head = launch("hpc-dev", "HeadNode")
    FakeHeadNode(
        lambda _: Reply(status="Failed", response_code=1, stderr="sbatch: error: invalid partition")
    ).install(monkeypatch)
    output = shell(head, Clock()).run("sbatch ...", 60, "test")
    assert (output.status, output.response_code, output.stderr) == (
        "Failed",
        1,
        "sbatch: error: invalid partition",
    )


def test_fails_a_command_that_outlives_its_timeout(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    head = launch("hpc-dev", "HeadNode")
    FakeHeadNode(lambda _: Reply(polls_in_progress=10**6)).install(monkeypatch)
    runner = shell(head, Clock())
    cancelled: list[dict[str, Any]] = []
    # moto 5.2.5 has no CancelCommand: record the call instead.
    monkeypatch.setattr(runner.ssm, "cancel_command", lambda **kwargs: cancelled.append(kwargs))
    with pytest.raises(VerifyError, match=r"did not finish in 60 s and was cancelled; raise --timeout$"):
        runner.run("sleep 3600", 60, "test")
    assert cancelled and cancelled[0]["InstanceIds"] == [head]


# --- hpcctl verify end to end -------------------------------------------------------------------
def head_node_answers(passing: bool) -> Callable[[str], Reply]:
    """What the dev cluster's head node prints for each of verify's scripts."""

    def section(name: str, text: str) -> str:
        return f"{SECTION_MARKER}{name}\n{text}\n"

    def reply(script: str) -> Reply:
        if "sinfo" in script:
            times = fixture("sacct.txt" if passing else "sacct_fail.txt")
            return Reply(section("nodes_up", "0") + section("job_ids", "37 38") + section("sacct", times))
        if "fi_info" in script:
            return Reply(section("fi_info", fixture("fi_info_efa.txt")))
        if "sha256sum" in script:
            return Reply(section("tools", "ready"))
        if "osu_latency" in script:
            latency = fixture("osu_latency.txt" if passing else "osu_latency_fail.txt")
            return Reply(section("osu_latency", latency) + section("osu_bw", fixture("osu_bw_hpc7a.txt")))
        if "ior" in script:
            return Reply(
                section("ior /fsx", fixture("ior_fsx.txt"))
                + section("ior /scratch", fixture("ior_scratch.json"))
            )
        raise AssertionError(f"unexpected script {script[:80]!r}")

    return reply


def run_verify(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["verify", "--stack", "dev", "--project-dir", str(REPO_ROOT), *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def test_verify_passes_when_every_target_is_met(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    launch("hpc-dev", "HeadNode")
    fake = FakeHeadNode(head_node_answers(passing=True)).install(monkeypatch)
    code, out, _ = run_verify("--json")
    report = json.loads(out)
    assert code == EXIT_OK and report["passed"] is True
    assert [(r["check"], r["metric"], r["subject"]) for r in report["results"]] == [
        ("start", "scale_up_seconds", "compute-spot"),
        ("start", "job_start_seconds", "compute-spot"),
        ("efa", "efa_provider", "compute-spot"),
        ("efa", "efa_provider", "compute-od"),
        ("mpi", "mpi_latency_us", "compute-spot"),
        ("mpi", "node_bandwidth_gbps", "compute-spot"),
        ("storage", "storage_write_gbps", "aggregate"),
        ("storage", "storage_read_gbps", "aggregate"),
    ]
    assert report["skipped"] == [
        {"check": "mpi", "subject": "compute-od", "reason": "at most 1 node; OSU needs 2"}
    ]
    # Jobs run as the OS's default user, through Slurm, with Open MPI on the EFA provider.
    assert all("sudo -u ec2-user -i" in script for script in fake.scripts)
    mpi = next(s for s in fake.scripts if "osu_latency" in s)
    assert "srun --mpi=pmix" in mpi and "OMPI_MCA_mtl_ofi_provider_include=efa" in mpi
    storage = next(s for s in fake.scripts if "ior" in s and "salloc" in s)
    assert 'install -d -o ec2-user -m 0700 "$mount/.hpc-verify"' in storage and "/fsx /scratch" in storage


def test_fails_verify_when_a_target_is_missed(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    launch("hpc-dev", "HeadNode")
    FakeHeadNode(head_node_answers(passing=False)).install(monkeypatch)
    code, out, _ = run_verify("--skip", "storage")
    assert code == EXIT_VIOLATIONS
    assert any("mpi_latency_us" in line and "FAIL" in line for line in out.splitlines())
    assert any("scale_up_seconds" in line and "FAIL" in line for line in out.splitlines())
    assert "measurements missed their target or failed" in out.splitlines()[-1]


def test_fails_verify_when_a_command_fails(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    launch("hpc-dev", "HeadNode")
    FakeHeadNode(
        lambda _: Reply(status="Failed", response_code=1, stderr="srun: error: Invalid partition")
    ).install(monkeypatch)
    code, out, _ = run_verify("--json", "--skip", "start", "--skip", "mpi", "--skip", "storage")
    report = json.loads(out)
    assert code == EXIT_VIOLATIONS
    assert {r["status"] for r in report["results"]} == {"error"}
    assert report["results"][0]["error"] == "command Failed (exit 1): srun: error: Invalid partition"


def test_fails_verify_without_a_head_node(aws: None) -> None:
    code, out, err = run_verify()
    assert code == EXIT_UNREACHABLE and out == ""
    assert err.startswith("hpcctl: no head node of cluster hpc-dev in this account and region")


def test_fails_verify_on_an_unknown_queue(aws: None) -> None:
    code, _, err = run_verify("--queue", "gpu")
    assert code == 2 and "hpcctl: no queue gpu in the stack" in err


def test_verify_help_documents_the_checks() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit):
        import contextlib

        with contextlib.redirect_stdout(out):
            main(["verify", "--help"])
    text = out.getvalue()
    for name in ("start", "efa", "mpi", "storage"):
        assert f"\n  {name} " in text
    assert "fi_info -p efa" in text and "osu_latency and osu_bw" in text and "IOR" in text
    assert "exit: 0 every target met; 1 a target missed" in text
