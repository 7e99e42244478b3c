"""Acceptance checks on a deployed cluster (`hpcctl verify`): which checks apply, what they are held
to, and the parsers of the tools' output. Pure functions on plain values and the stack config; the
SSM Run Command orchestration that runs the jobs is `hpc_platform.app.verify`.

Checks, in the order they run:
- `start`: a job on a queue scaled to zero waits for a node to boot (scale-up); a second job right
  after it starts on that node (job start). Both from Slurm's Submit and Start times.
- `efa`: `fi_info -p efa` on one node of every EFA queue lists the EFA provider.
- `mpi`: OSU `osu_latency` and `osu_bw` between two nodes of every EFA queue, one rank per node,
  through `srun --mpi=pmix` with Open MPI pinned to libfabric's EFA provider.
- `storage`: IOR writes then reads a file per task on every shared Lustre mount from
  `performance.storage_test_nodes` nodes; the aggregate is the sum over the mounts.

Units: OSU reports MB/s (10^6 bytes/s): Gbps = MB/s × 8 / 1000. IOR reports MiB/s (2^20 bytes/s):
GB/s = MiB/s × 1.048576 / 1000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hpc_platform.domain.config.models import QueueConfig, StackConfig
from hpc_platform.domain.limits import PCLUSTER_OS_DEFAULT_USER, PERFORMANCE_MIN_STORAGE_GBPS_DEFAULT
from hpc_platform.domain.placement import resource_uses_efa

CHECKS: dict[str, str] = {
    "start": "time from submit to start: a job on a queue scaled to zero (scale-up, a node boots), "
    "then a job on the node it brought up (job start); Slurm's Submit and Start times",
    "efa": "`fi_info -p efa` on one node of every EFA queue: the EFA libfabric provider is there",
    "mpi": "OSU osu_latency and osu_bw between two nodes of every EFA queue (srun --mpi=pmix, "
    "Open MPI on libfabric's EFA provider): smallest-message latency and peak bandwidth",
    "storage": "IOR write and read, a file per task, on every shared Lustre mount from "
    "performance.storage_test_nodes nodes; aggregate = sum over the mounts",
}
"""Check name → what it measures (the `--skip` names, and `hpcctl verify --help`)."""

MB_PER_GB = 1000
BITS_PER_BYTE = 8
MIB_IN_MB = 1.048576
"""One MiB (2^20 bytes) in MB (10^6 bytes)."""
MPI_NODES = 2
"""osu_latency and osu_bw are point-to-point: two nodes, one rank each."""


class VerifyParseError(ValueError):
    """A tool's output is not what the parser expects; the message names the tool and what is
    missing, and quotes the start of the output."""

    def __init__(self, tool: str, problem: str, output: str):
        head = " | ".join(line for line in output.strip().splitlines()[:3]) or "(empty)"
        super().__init__(f"{tool}: {problem}; output began: {head[:200]}")


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Targets:
    max_mpi_latency_us: float
    min_node_bandwidth_gbps: float
    min_storage_gbps: float
    max_job_start_seconds: float
    max_scale_up_seconds: float


def targets(config: StackConfig) -> Targets:
    performance = config.performance
    storage = config.storage.target_aggregate_throughput_gbps
    return Targets(
        max_mpi_latency_us=performance.max_mpi_latency_us,
        min_node_bandwidth_gbps=performance.min_node_bandwidth_gbps,
        # One storage target: the one the plan shows beside the Lustre baseline.
        min_storage_gbps=storage if storage is not None else PERFORMANCE_MIN_STORAGE_GBPS_DEFAULT,
        max_job_start_seconds=performance.max_job_start_seconds,
        max_scale_up_seconds=performance.max_scale_up_seconds,
    )


# ---------------------------------------------------------------------------------------------
# Which checks apply
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One Slurm job (or pair of jobs, for `start`) the verification submits."""

    check: str
    queue: str
    nodes: int
    mounts: tuple[str, ...] = ()
    """Where IOR writes (`storage`)."""


@dataclass(frozen=True)
class Skipped:
    check: str
    subject: str
    reason: str


@dataclass(frozen=True)
class VerifyPlan:
    cluster_name: str
    user: str
    """The OS's default user: the jobs run as this user."""
    accounting: bool
    """Slurm accounting is on: `sacct` has the jobs' times (else `scontrol show job`)."""
    jobs: tuple[Job, ...]
    skipped: tuple[Skipped, ...]
    targets: Targets


def queue_max_nodes(queue: QueueConfig) -> int:
    return sum(resource.max_count for resource in queue.compute_resources)


def queue_uses_efa(queue: QueueConfig) -> bool:
    return any(resource_uses_efa(queue, resource) for resource in queue.compute_resources)


def scales_to_zero(queue: QueueConfig) -> bool:
    return all(resource.min_count == 0 for resource in queue.compute_resources)


def storage_queue(queues: Sequence[QueueConfig]) -> QueueConfig | None:
    """The queue IOR runs on: the first compute queue with EFA (the most network per node), else the
    first compute queue, else the first queue."""
    compute = [q for q in queues if q.purpose == "compute"]
    candidates = [*(q for q in compute if queue_uses_efa(q)), *compute, *queues]
    return candidates[0] if candidates else None


def default_user(config: StackConfig) -> str:
    return PCLUSTER_OS_DEFAULT_USER[config.cluster.os]


def plan_checks(
    config: StackConfig,
    mounts: Sequence[str],
    *,
    queues: Sequence[str] | None = None,
    skip: Collection[str] = (),
) -> VerifyPlan:
    """The jobs to run. `mounts`: the shared Lustre mount directories (the application reads them
    from the component library); `queues`: only these (default: every queue); `skip`: check names.
    Raises ValueError naming an unknown queue or check."""
    unknown_checks = sorted(set(skip) - set(CHECKS))
    if unknown_checks:
        raise ValueError(f"unknown check {', '.join(unknown_checks)}; the checks are {', '.join(CHECKS)}")
    by_name = {q.name: q for q in config.cluster.queues}
    if queues:
        missing = [name for name in queues if name not in by_name]
        if missing:
            raise ValueError(
                f"no queue {', '.join(missing)} in the stack; its queues are {', '.join(by_name)}"
            )
        selected = [by_name[name] for name in dict.fromkeys(queues)]
    else:
        selected = list(config.cluster.queues)
    jobs: list[Job] = []
    skipped: list[Skipped] = []
    if "start" not in skip:
        cold = [q for q in selected if scales_to_zero(q)]
        if cold:
            # Measured first: the other checks bring nodes up and the queue would no longer be at zero.
            jobs.append(Job("start", cold[0].name, 1))
        else:
            skipped.append(Skipped("start", "cluster", "no selected queue scales to zero (min_count 0)"))
    efa_queues = [q for q in selected if queue_uses_efa(q)]
    for check in ("efa", "mpi"):
        if check in skip:
            continue
        if not efa_queues:
            skipped.append(Skipped(check, "cluster", "no selected queue runs EFA"))
        for queue in efa_queues:
            if check == "efa":
                jobs.append(Job("efa", queue.name, 1))
            elif queue_max_nodes(queue) < MPI_NODES:
                reason = f"at most {queue_max_nodes(queue)} node; OSU needs {MPI_NODES}"
                skipped.append(Skipped("mpi", queue.name, reason))
            else:
                jobs.append(Job("mpi", queue.name, MPI_NODES))
    if "storage" not in skip:
        io_queue = storage_queue(selected)
        if not mounts:
            skipped.append(Skipped("storage", "cluster", "no Lustre file system is enabled"))
        elif io_queue is not None:
            nodes = min(config.performance.storage_test_nodes, queue_max_nodes(io_queue))
            jobs.append(Job("storage", io_queue.name, nodes, tuple(mounts)))
    return VerifyPlan(
        cluster_name=config.cluster.name,
        user=default_user(config),
        accounting=config.cluster.slurm.accounting.enabled,
        jobs=tuple(jobs),
        skipped=tuple(skipped),
        targets=targets(config),
    )


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------
def parse_fi_info(output: str) -> tuple[str, ...]:
    """The EFA endpoint types `fi_info -p efa` lists (e.g. FI_EP_RDM, FI_EP_DGRAM). No EFA device
    (`fi_getinfo: -61 (No data available)`) or another provider is a parse error."""
    providers: list[str] = []
    types: list[str] = []
    for line in output.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "provider":
            providers.append(value.strip())
        elif key == "type":
            types.append(value.strip())
    if not providers:
        raise VerifyParseError("fi_info -p efa", "no libfabric provider listed (no EFA device?)", output)
    other = sorted({p for p in providers if p.split(";")[0] != "efa"})
    if other:
        raise VerifyParseError("fi_info -p efa", f"lists provider {', '.join(other)}, not efa", output)
    return tuple(dict.fromkeys(types))


_OSU_ROW = re.compile(r"^\s*(\d+)\s+([0-9]+(?:\.[0-9]+)?)\s*$")


def _osu_rows(tool: str, output: str) -> list[tuple[int, float]]:
    """The (message size, value) rows; other lines (headers, MPI warnings on stderr) are skipped."""
    rows = [
        (int(match.group(1)), float(match.group(2)))
        for match in (_OSU_ROW.match(line) for line in output.splitlines())
        if match is not None
    ]
    if not rows:
        raise VerifyParseError(tool, "no message-size rows (did the MPI job run?)", output)
    return rows


def parse_osu_latency(output: str) -> float:
    """The latency of the smallest message size, in µs."""
    return min(_osu_rows("osu_latency", output))[1]


def parse_osu_bw(output: str) -> float:
    """The peak bandwidth over every message size, in MB/s (10^6 bytes/s)."""
    return max(value for _, value in _osu_rows("osu_bw", output))


def mbps_to_gbps(megabytes_per_second: float) -> float:
    """OSU's MB/s (10^6 bytes/s) in gigabits per second."""
    return megabytes_per_second * BITS_PER_BYTE / MB_PER_GB


def mib_to_gb(mebibytes_per_second: float) -> float:
    """IOR's MiB/s in GB/s (10^9 bytes/s)."""
    return mebibytes_per_second * MIB_IN_MB / MB_PER_GB


@dataclass(frozen=True)
class IorResult:
    write_mib: float
    """Max write bandwidth, MiB/s."""
    read_mib: float
    """Max read bandwidth, MiB/s."""


def parse_ior(output: str) -> IorResult:
    """IOR's summary: its JSON (`-O summaryFormat=JSON`) or text output ("Max Write: … MiB/sec")."""
    text = output.strip()
    if text.startswith("{"):
        return _parse_ior_json(text)
    found: dict[str, float] = {}
    for match in re.finditer(r"^Max (Write|Read):\s+([0-9]+(?:\.[0-9]+)?) MiB/sec", text, re.MULTILINE):
        found[match.group(1).lower()] = float(match.group(2))
    if set(found) != {"write", "read"}:
        missing = " and ".join(op for op in ("write", "read") if op not in found)
        raise VerifyParseError("ior", f"no 'Max {missing.title()}' summary line", output)
    return IorResult(write_mib=found["write"], read_mib=found["read"])


def _parse_ior_json(text: str) -> IorResult:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerifyParseError("ior", f"summary is not JSON ({exc.msg} at line {exc.lineno})", text) from None
    summary = document.get("summary") if isinstance(document, dict) else None
    if not isinstance(summary, list):
        raise VerifyParseError("ior", "JSON has no 'summary' list", text)
    found: dict[str, float] = {}
    for entry in summary:
        if isinstance(entry, dict) and isinstance(entry.get("bwMaxMIB"), int | float):
            found[str(entry.get("operation"))] = float(entry["bwMaxMIB"])
    if not {"write", "read"} <= set(found):
        missing = " and ".join(op for op in ("write", "read") if op not in found)
        raise VerifyParseError("ior", f"JSON summary has no {missing} operation with bwMaxMIB", text)
    return IorResult(write_mib=found["write"], read_mib=found["read"])


@dataclass(frozen=True)
class JobTimes:
    job_id: str
    submit: datetime
    start: datetime

    @property
    def wait_seconds(self) -> float:
        return (self.start - self.submit).total_seconds()


def _timestamp(tool: str, value: str, output: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise VerifyParseError(tool, f"{value!r} is not a time (did the job start?)", output) from None


def parse_sacct(output: str) -> dict[str, JobTimes]:
    """`sacct -X -n -P -o JobID,Submit,Start,State -j …`: job id → its Submit and Start."""
    jobs: dict[str, JobTimes] = {}
    for line in output.strip().splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3:
            problem = f"expected JobID|Submit|Start|State, got {line.strip()!r}"
            raise VerifyParseError("sacct", problem, output)
        job_id, submit, start = fields[:3]
        jobs[job_id] = JobTimes(
            job_id, _timestamp("sacct", submit, output), _timestamp("sacct", start, output)
        )
    if not jobs:
        raise VerifyParseError("sacct", "no job rows", output)
    return jobs


def parse_scontrol_jobs(output: str) -> dict[str, JobTimes]:
    """`scontrol show job -o …` (one line per job): job id → its SubmitTime and StartTime."""
    jobs: dict[str, JobTimes] = {}
    for line in output.strip().splitlines():
        values = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if not {"JobId", "SubmitTime", "StartTime"} <= set(values):
            raise VerifyParseError("scontrol show job", "no JobId, SubmitTime and StartTime", output)
        job_id = values["JobId"]
        jobs[job_id] = JobTimes(
            job_id,
            _timestamp("scontrol show job", values["SubmitTime"], output),
            _timestamp("scontrol show job", values["StartTime"], output),
        )
    if not jobs:
        raise VerifyParseError("scontrol show job", "no jobs", output)
    return jobs


# ---------------------------------------------------------------------------------------------
# Sections of one command's output
# ---------------------------------------------------------------------------------------------
SECTION_MARKER = "=== hpcctl-verify section: "
"""A remote script prints this, then a section name, before each tool's output."""


def split_sections(output: str) -> dict[str, str]:
    """A command's stdout cut at the section markers: name → that section's text."""
    sections: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(SECTION_MARKER):
            if name is not None:
                sections[name] = "\n".join(lines)
            name, lines = line[len(SECTION_MARKER) :].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "\n".join(lines)
    return sections


def section(sections: Mapping[str, str], name: str, output: str) -> str:
    if name not in sections:
        raise VerifyParseError("verify job", f"no '{name}' section (the job stopped early?)", output)
    return sections[name]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class Result:
    """One measured number beside its target, or why it could not be measured."""

    check: str
    metric: str
    subject: str
    """The queue or mount measured."""
    unit: str
    target: float | None
    bound: Literal["max", "min"] | None
    """`max`: the value must not exceed the target; `min`: it must reach it."""
    value: float | None = None
    detail: str = ""
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None or self.value is None:
            return "error"
        if self.target is None or self.bound is None:
            return "pass"
        within = self.value <= self.target if self.bound == "max" else self.value >= self.target
        return "pass" if within else "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "metric": self.metric,
            "subject": self.subject,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "bound": self.bound,
            "status": self.status,
            "detail": self.detail,
            "error": self.error,
        }


METRICS: dict[str, tuple[str, str, Literal["max", "min"] | None]] = {
    # metric → (unit, the Targets field, bound)
    "scale_up_seconds": ("s", "max_scale_up_seconds", "max"),
    "job_start_seconds": ("s", "max_job_start_seconds", "max"),
    "efa_provider": ("endpoint types", "", None),
    "mpi_latency_us": ("µs", "max_mpi_latency_us", "max"),
    "node_bandwidth_gbps": ("Gbps", "min_node_bandwidth_gbps", "min"),
    "storage_write_gbps": ("GB/s", "min_storage_gbps", "min"),
    "storage_read_gbps": ("GB/s", "min_storage_gbps", "min"),
}


def result(
    metric: str,
    check: str,
    subject: str,
    goals: Targets,
    *,
    value: float | None = None,
    detail: str = "",
    error: str | None = None,
) -> Result:
    unit, target_field, bound = METRICS[metric]
    target = float(getattr(goals, target_field)) if target_field else None
    return Result(check, metric, subject, unit, target, bound, value, detail, error)


def failed_results(job: Job, goals: Targets, error: str) -> list[Result]:
    """What a job that produced nothing usable reports: every metric it would have measured."""
    return [result(metric, job.check, subject, goals, error=error) for metric, subject in job_metrics(job)]


def job_metrics(job: Job) -> list[tuple[str, str]]:
    if job.check == "start":
        return [("scale_up_seconds", job.queue), ("job_start_seconds", job.queue)]
    if job.check == "efa":
        return [("efa_provider", job.queue)]
    if job.check == "mpi":
        return [("mpi_latency_us", job.queue), ("node_bandwidth_gbps", job.queue)]
    return [("storage_write_gbps", "aggregate"), ("storage_read_gbps", "aggregate")]


def evaluate(job: Job, output: str, goals: Targets) -> list[Result]:
    """Parse one job's output into results; a parse error becomes an `error` result per metric."""
    try:
        return _evaluate(job, output, goals)
    except VerifyParseError as exc:
        return failed_results(job, goals, str(exc))


def _evaluate(job: Job, output: str, goals: Targets) -> list[Result]:
    sections = split_sections(output)
    if job.check == "start":
        return _start_results(job, sections, output, goals)
    if job.check == "efa":
        types = parse_fi_info(section(sections, "fi_info", output))
        return [
            result("efa_provider", "efa", job.queue, goals, value=float(len(types)), detail=", ".join(types))
        ]
    if job.check == "mpi":
        latency = parse_osu_latency(section(sections, "osu_latency", output))
        bandwidth_mb = parse_osu_bw(section(sections, "osu_bw", output))
        return [
            result("mpi_latency_us", "mpi", job.queue, goals, value=latency, detail="smallest message"),
            result(
                "node_bandwidth_gbps",
                "mpi",
                job.queue,
                goals,
                value=mbps_to_gbps(bandwidth_mb),
                detail=f"peak {bandwidth_mb:,.0f} MB/s × 8 / 1000",
            ),
        ]
    return _storage_results(job, sections, output, goals)


def _start_results(job: Job, sections: Mapping[str, str], output: str, goals: Targets) -> list[Result]:
    up = section(sections, "nodes_up", output).strip()
    if not up.isdigit():
        raise VerifyParseError("sinfo", f"{up!r} is not a node count", output)
    if int(up) > 0:
        # Nothing had to boot: a number measured now would not be a scale-up.
        return failed_results(
            job,
            goals,
            f"queue {job.queue} had {up} node(s) up, so nothing was measured; run verify once it has "
            "scaled to zero (slurm.scaledown_idletime_minutes after its last job) or pick another "
            "queue with --queue",
        )
    ids = section(sections, "job_ids", output).split()
    if len(ids) != 2:
        raise VerifyParseError("sbatch", f"expected two job ids, got {len(ids)}", output)
    if "sacct" in sections:
        times = parse_sacct(sections["sacct"])
    else:
        times = parse_scontrol_jobs(section(sections, "scontrol", output))
    missing = [i for i in ids if i not in times]
    if missing:
        raise VerifyParseError("job times", f"no times for job {', '.join(missing)}", output)
    cold, warm = times[ids[0]], times[ids[1]]
    return [
        result("scale_up_seconds", "start", job.queue, goals, value=cold.wait_seconds, detail=cold.job_id),
        result("job_start_seconds", "start", job.queue, goals, value=warm.wait_seconds, detail=warm.job_id),
    ]


def _storage_results(job: Job, sections: Mapping[str, str], output: str, goals: Targets) -> list[Result]:
    per_mount = {mount: parse_ior(section(sections, f"ior {mount}", output)) for mount in job.mounts}
    write = sum(mib_to_gb(r.write_mib) for r in per_mount.values())
    read = sum(mib_to_gb(r.read_mib) for r in per_mount.values())

    def detail(op: str) -> str:
        parts = [f"{mount} {mib_to_gb(getattr(r, f'{op}_mib')):.2f}" for mount, r in per_mount.items()]
        return f"{' + '.join(parts)} GB/s from {job.nodes} node(s) of {job.queue}"

    return [
        result("storage_write_gbps", "storage", "aggregate", goals, value=write, detail=detail("write")),
        result("storage_read_gbps", "storage", "aggregate", goals, value=read, detail=detail("read")),
    ]


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
REPORT_SCHEMA = "hpcctl-verify/1"


@dataclass(frozen=True)
class VerifyReport:
    stack: str
    cluster_name: str
    head_node: str
    results: tuple[Result, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """Every measurement met its target; a run that measured nothing has not passed."""
        return bool(self.results) and all(r.status == "pass" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "stack": self.stack,
            "cluster": self.cluster_name,
            "head_node": self.head_node,
            "passed": self.passed,
            "results": [r.to_json() for r in self.results],
            "skipped": [{"check": s.check, "subject": s.subject, "reason": s.reason} for s in self.skipped],
        }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "endpoint types":
        return f"{value:g} types"
    return f"{value:,.2f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def render_report(report: VerifyReport) -> list[str]:
    lines = [f"hpcctl verify {report.stack}: cluster {report.cluster_name}, head node {report.head_node}"]
    lines.append(f"  {'check':<8} {'metric':<20} {'subject':<14} {'measured':>14}   {'target':<16} status")
    for r in report.results:
        sign = "≤" if r.bound == "max" else "≥"
        target = "-" if r.target is None else f"{sign} {_number(r.target, r.unit)}"
        row = (
            f"  {r.check:<8} {r.metric:<20} {r.subject:<14} {_number(r.value, r.unit):>14}   "
            f"{target:<16} {r.status.upper()}"
        )
        note = r.error if r.error is not None else r.detail
        lines.append(f"{row}  ({note})" if note else row)
    for s in report.skipped:
        lines.append(f"  skipped {s.check} on {s.subject}: {s.reason}")
    failed = [r for r in report.results if r.status != "pass"]
    if not report.results:
        lines.append("no check ran")
    elif failed:
        lines.append(f"{len(failed)} of {len(report.results)} measurements missed their target or failed")
    else:
        lines.append(f"all {len(report.results)} measurements met their targets")
    return lines
