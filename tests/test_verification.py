"""`hpcctl verify`'s domain (`hpc_platform.domain.verification`): the parsers on sample outputs of
the tools (tests/fixtures/verify), passing and failing runs and malformed output; which checks
apply to each stack; the report and its JSON contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.domain.config.loader import model_input, parse_config
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.limits import PCLUSTER_OS_DEFAULT_USER
from hpc_platform.domain.verification import (
    CHECKS,
    SECTION_MARKER,
    Job,
    VerifyParseError,
    VerifyReport,
    evaluate,
    mbps_to_gbps,
    mib_to_gb,
    parse_fi_info,
    parse_ior,
    parse_osu_bw,
    parse_osu_latency,
    parse_sacct,
    parse_scontrol_jobs,
    plan_checks,
    render_report,
    targets,
)

FIXTURES = Path(__file__).parent / "fixtures" / "verify"
MOUNTS = ["/fsx", "/scratch"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def sectioned(**sections: str) -> str:
    """A job's stdout as the remote scripts print it: each tool's output after its marker."""
    return "".join(f"{SECTION_MARKER}{name}\n{text}\n" for name, text in sections.items())


def config_of(stack_config: Callable[[str], dict[str, Any]], stack: str) -> StackConfig:
    return parse_config(model_input(stack_config(stack)), f"Pulumi.{stack}.yaml").config


# --- parsers --------------------------------------------------------------------------------
def test_fi_info_lists_the_efa_endpoint_types() -> None:
    assert parse_fi_info(fixture("fi_info_efa.txt")) == ("FI_EP_RDM", "FI_EP_DGRAM")


def test_fails_fi_info_without_an_efa_device() -> None:
    with pytest.raises(VerifyParseError, match=r"^fi_info -p efa: no libfabric provider listed.*-61"):
        parse_fi_info(fixture("fi_info_no_efa_malformed.txt"))


def test_fails_fi_info_listing_another_provider() -> None:
    with pytest.raises(VerifyParseError, match="lists provider tcp;ofi_rxm, not efa"):
        parse_fi_info("provider: tcp;ofi_rxm\n    fabric: 10.10.32.0/21\n    type: FI_EP_RDM\n")


def test_osu_latency_is_the_smallest_messages() -> None:
    assert parse_osu_latency(fixture("osu_latency.txt")) == 14.62
    assert parse_osu_latency(fixture("osu_latency_fail.txt")) == 27.84


def test_osu_bw_is_the_peak_in_megabytes_and_converts_to_gigabits() -> None:
    assert parse_osu_bw(fixture("osu_bw_hpc7a.txt")) == 24120.47
    # MB/s are 10^6 bytes: × 8 bits / 1000 → Gbps.
    assert mbps_to_gbps(12500) == 100.0
    assert mbps_to_gbps(parse_osu_bw(fixture("osu_bw_c5n_fail.txt"))) == pytest.approx(86.16, abs=0.01)


def test_fails_osu_output_without_rows() -> None:
    with pytest.raises(VerifyParseError, match=r"^osu_latency: no message-size rows.*No components"):
        parse_osu_latency(fixture("osu_latency_malformed.txt"))
    with pytest.raises(VerifyParseError, match=r"osu_bw: .*output began: \(empty\)"):
        parse_osu_bw("")


def test_ior_text_and_json_summaries() -> None:
    text = parse_ior(fixture("ior_fsx.txt"))
    assert (text.write_mib, text.read_mib) == (1243.18, 1402.55)
    summary = parse_ior(fixture("ior_scratch.json"))
    assert (summary.write_mib, summary.read_mib) == (1534.77, 1611.02)
    # MiB/s are 2^20 bytes: 1000 MiB/s = 1.048576 GB/s.
    assert mib_to_gb(1000) == pytest.approx(1.048576)


def test_fails_ior_malformed_output() -> None:
    with pytest.raises(VerifyParseError, match=r"^ior: no 'Max Read' summary line"):
        parse_ior(fixture("ior_write_only_malformed.txt"))
    with pytest.raises(VerifyParseError, match=r"^ior: summary is not JSON"):
        parse_ior(fixture("ior_truncated_malformed.json"))
    with pytest.raises(VerifyParseError, match="JSON summary has no read operation"):
        parse_ior('{"summary": [{"operation": "write", "bwMaxMIB": 10}]}')


def test_job_times_from_sacct_and_scontrol() -> None:
    by_sacct = parse_sacct(fixture("sacct.txt"))
    by_scontrol = parse_scontrol_jobs(fixture("scontrol_jobs.txt"))
    assert by_sacct["37"].wait_seconds == by_scontrol["37"].wait_seconds == 169
    assert by_sacct["38"].wait_seconds == by_scontrol["38"].wait_seconds == 1


def test_fails_job_that_never_started() -> None:
    with pytest.raises(VerifyParseError, match=r"^sacct: 'Unknown' is not a time \(did the job start\?\)"):
        parse_sacct(fixture("sacct_never_started_malformed.txt"))
    with pytest.raises(VerifyParseError, match=re.escape("expected JobID|Submit|Start|State")):
        parse_sacct("37 COMPLETED\n")


# --- which checks apply -----------------------------------------------------------------------
def test_dev_runs_every_check_on_its_queues(stack_config: Callable[[str], dict[str, Any]]) -> None:
    plan = plan_checks(config_of(stack_config, "dev"), MOUNTS)
    assert [(j.check, j.queue, j.nodes) for j in plan.jobs] == [
        ("start", "compute-spot", 1),
        ("efa", "compute-spot", 1),
        ("efa", "compute-od", 1),
        ("mpi", "compute-spot", 2),
        ("storage", "compute-spot", 2),
    ]
    assert plan.jobs[-1].mounts == ("/fsx", "/scratch")
    # compute-od has one node at most: OSU needs two.
    assert [(s.check, s.subject) for s in plan.skipped] == [("mpi", "compute-od")]
    assert plan.user == PCLUSTER_OS_DEFAULT_USER["alinux2023"] == "ec2-user"
    assert plan.cluster_name == "hpc-dev"


def test_queue_selection_and_skips(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = config_of(stack_config, "dev")
    plan = plan_checks(config, MOUNTS, queues=["debug"], skip=["storage"])
    assert [(j.check, j.queue) for j in plan.jobs] == [("start", "debug")]
    assert {(s.check, s.reason) for s in plan.skipped} == {
        ("efa", "no selected queue runs EFA"),
        ("mpi", "no selected queue runs EFA"),
    }
    assert plan_checks(config, [], skip=["start", "efa", "mpi"]).skipped[0].reason == (
        "no Lustre file system is enabled"
    )


def test_fails_unknown_queue_or_check(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = config_of(stack_config, "dev")
    with pytest.raises(
        ValueError, match="no queue gpu in the stack; its queues are compute-spot, compute-od, debug"
    ):
        plan_checks(config, MOUNTS, queues=["gpu"])
    with pytest.raises(ValueError, match=f"unknown check latency; the checks are {', '.join(CHECKS)}"):
        plan_checks(config, MOUNTS, skip=["latency"])


def test_targets_default_to_the_design_and_storage_reads_its_one_key(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    dev = targets(config_of(stack_config, "dev"))
    assert (dev.max_mpi_latency_us, dev.min_node_bandwidth_gbps) == (15, 100)
    assert (dev.max_job_start_seconds, dev.max_scale_up_seconds) == (30, 300)
    assert dev.min_storage_gbps == 0.3  # storage.target_aggregate_throughput_gbps
    raw = stack_config("dev")
    del raw["hpc:storage"]["target_aggregate_throughput_gbps"]
    raw["hpc:performance"] = {"max_mpi_latency_us": 20}
    changed = targets(parse_config(model_input(raw), "Pulumi.dev.yaml").config)
    assert (changed.min_storage_gbps, changed.max_mpi_latency_us) == (10, 20)


# --- evaluation -------------------------------------------------------------------------------
def _goals(stack_config: Callable[[str], dict[str, Any]]) -> Any:
    return targets(config_of(stack_config, "dev"))


def test_passing_runs_meet_their_targets(stack_config: Callable[[str], dict[str, Any]]) -> None:
    goals = _goals(stack_config)
    start = evaluate(
        Job("start", "debug", 1),
        sectioned(nodes_up="0", job_ids="37 38", sacct=fixture("sacct.txt")),
        goals,
    )
    mpi = evaluate(
        Job("mpi", "compute-spot", 2),
        sectioned(osu_latency=fixture("osu_latency.txt"), osu_bw=fixture("osu_bw_hpc7a.txt")),
        goals,
    )
    storage = evaluate(
        Job("storage", "compute-spot", 2, ("/fsx", "/scratch")),
        sectioned(**{"ior /fsx": fixture("ior_fsx.txt"), "ior /scratch": fixture("ior_scratch.json")}),
        goals,
    )
    efa = evaluate(Job("efa", "compute-spot", 1), sectioned(fi_info=fixture("fi_info_efa.txt")), goals)
    values = {r.metric: round(r.value or 0, 2) for r in [*start, *mpi, *storage, *efa]}
    assert values == {
        "scale_up_seconds": 169,
        "job_start_seconds": 1,
        "mpi_latency_us": 14.62,
        "node_bandwidth_gbps": 192.96,
        "storage_write_gbps": 2.91,
        "storage_read_gbps": 3.16,
        "efa_provider": 2,
    }
    assert {r.status for r in [*start, *mpi, *storage, *efa]} == {"pass"}


def test_fails_runs_that_miss_their_targets(stack_config: Callable[[str], dict[str, Any]]) -> None:
    goals = _goals(stack_config)
    start = evaluate(
        Job("start", "debug", 1),
        sectioned(nodes_up="0", job_ids="37 38", sacct=fixture("sacct_fail.txt")),
        goals,
    )
    mpi = evaluate(
        Job("mpi", "compute-spot", 2),
        sectioned(osu_latency=fixture("osu_latency_fail.txt"), osu_bw=fixture("osu_bw_c5n_fail.txt")),
        goals,
    )
    assert [(r.metric, r.value, r.status) for r in start] == [
        ("scale_up_seconds", 462, "fail"),
        ("job_start_seconds", 41, "fail"),
    ]
    assert [(r.metric, r.status) for r in mpi] == [
        ("mpi_latency_us", "fail"),
        ("node_bandwidth_gbps", "fail"),
    ]


def test_fails_malformed_or_missing_output_as_errors(stack_config: Callable[[str], dict[str, Any]]) -> None:
    goals = _goals(stack_config)
    mpi = evaluate(
        Job("mpi", "compute-spot", 2), sectioned(osu_latency=fixture("osu_latency_malformed.txt")), goals
    )
    assert [r.status for r in mpi] == ["error", "error"]
    assert mpi[0].error is not None and mpi[0].error.startswith("osu_latency: no message-size rows")
    stopped = evaluate(Job("storage", "compute-spot", 2, ("/fsx",)), "srun: error: ...", goals)
    assert stopped[0].error is not None and "no 'ior /fsx' section" in stopped[0].error


def test_a_queue_that_is_not_at_zero_measures_no_scale_up(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    results = evaluate(Job("start", "debug", 1), sectioned(nodes_up="2"), _goals(stack_config))
    assert [r.status for r in results] == ["error", "error"]
    assert results[0].error is not None and results[0].error.startswith("queue debug had 2 node(s) up")


# --- the report -------------------------------------------------------------------------------
def test_report_text_and_json_contract(stack_config: Callable[[str], dict[str, Any]]) -> None:
    goals = _goals(stack_config)
    results = evaluate(
        Job("mpi", "compute-spot", 2),
        sectioned(osu_latency=fixture("osu_latency.txt"), osu_bw=fixture("osu_bw_c5n_fail.txt")),
        goals,
    )
    report = VerifyReport("dev", "hpc-dev", "i-0123456789abcdef0", tuple(results))
    document = report.to_json()
    assert document["schema"] == "hpcctl-verify/1" and document["passed"] is False
    assert document["results"][1] == {
        "check": "mpi",
        "metric": "node_bandwidth_gbps",
        "subject": "compute-spot",
        "value": pytest.approx(86.16, abs=0.01),
        "unit": "Gbps",
        "target": 100.0,
        "bound": "min",
        "status": "fail",
        "detail": "peak 10,770 MB/s × 8 / 1000",
        "error": None,
    }
    text = render_report(report)
    assert any("mpi_latency_us" in line and "14.62 µs" in line and "≤ 15.00 µs" in line for line in text)
    assert any("node_bandwidth_gbps" in line and "86.16 Gbps" in line and "FAIL" in line for line in text)
    assert text[-1] == "1 of 2 measurements missed their target or failed"


def test_a_run_that_measured_nothing_has_not_passed() -> None:
    assert VerifyReport("dev", "hpc-dev", "i-0", ()).passed is False


def test_default_users_are_parallelclusters() -> None:
    """The OS → default user table is ParallelCluster 3.16.1's own `OS_MAPPING`."""
    from tests.support.pcluster_venv import run_pcluster_python

    result = run_pcluster_python(
        "import json; from pcluster.constants import OS_MAPPING; "
        "print(json.dumps({os: v['user'] for os, v in OS_MAPPING.items()}))"
    )
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout) == PCLUSTER_OS_DEFAULT_USER
