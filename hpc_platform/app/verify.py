"""Run the acceptance checks on a deployed cluster through SSM Run Command on its head node.

The head node is the running instance ParallelCluster tags `parallelcluster:cluster-name=<name>`
and `parallelcluster:node-type=HeadNode`. Each job is one `AWS-RunShellScript` command: the
script runs as root (SSM's agent), prepares what needs root (a directory per Lustre mount the
cluster's default user may write), then runs the Slurm jobs as that user in a login shell, printing
each tool's output after a section marker. `hpc_platform.domain.verification` parses the output and
sets each number beside its target.

The OSU micro-benchmarks and IOR are not part of ParallelCluster's AMIs (they carry Open MPI,
Intel MPI and libfabric from the EFA installer). Before the first `mpi` or `storage` job the head
node builds the pinned releases below into the default user's home directory, which every node
mounts: the source is downloaded (the head node needs a route to the internet, e.g. the NAT
gateway), its SHA-256 checked, and built with `/opt/amazon/openmpi`'s `mpicc`. Later runs reuse it.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from components.lustre_fs import PERSISTENT_MOUNT_DIR, SCRATCH_MOUNT_DIR
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.verification import (
    SECTION_MARKER,
    Job,
    Result,
    VerifyPlan,
    VerifyReport,
    evaluate,
    failed_results,
)

PCLUSTER_CLUSTER_NAME_TAG = "parallelcluster:cluster-name"
PCLUSTER_NODE_TYPE_TAG = "parallelcluster:node-type"
HEAD_NODE = "HeadNode"
DOCUMENT = "AWS-RunShellScript"
DEFAULT_TIMEOUT_SECONDS = 1800
"""Per command: a scale-up from zero, or the first build of the benchmarks, takes minutes."""
POLL_SECONDS = 5.0
TERMINAL_STATUSES = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})
"""`GetCommandInvocation` statuses after which the command runs no more."""
WORK_DIR = ".hpc-verify"
"""Under the default user's home (tools, job output) and under each Lustre mount (IOR files)."""

# Benchmarks, pinned: (directory name, source URL, SHA-256 of the source archive).
OSU = (
    "osu-micro-benchmarks-7.1-1",
    "https://mvapich.cse.ohio-state.edu/download/mvapich/osu-micro-benchmarks-7.1-1.tar.gz",
    "85f4dd8be1df31255e232852769ae5b82e87a5fb14be2f8eba1ae9de8ffe391a",
)
IOR = (
    "ior-3.3.0",
    "https://github.com/hpc/ior/archive/3.3.0.tar.gz",
    "701f2167f81ef963e227d4c036c4a947a98b5642b7c14c87c8ae657849891528",
)
IOR_TASKS_PER_NODE = 8
IOR_ARGS = "-a POSIX -F -w -r -C -e -t 4m -b 1g"
"""POSIX, a file per task, write then read (-C: each task reads another node's file, so the read
is not served from the writer's page cache), fsync on close, 4 MiB transfers, 1 GiB per task."""
OPEN_MPI = "/opt/amazon/openmpi/bin"
EFA_BIN = "/opt/amazon/efa/bin"
MPI_ENV = (
    # Open MPI on libfabric's EFA provider only: without EFA the run fails instead of falling back to TCP.
    "export FI_PROVIDER=efa OMPI_MCA_pml=cm OMPI_MCA_mtl=ofi OMPI_MCA_mtl_ofi_provider_include=efa"
)


class VerifyError(Exception):
    """The cluster cannot be reached or a command cannot run; one line, said how to fix."""


# ---------------------------------------------------------------------------------------------
# The head node
# ---------------------------------------------------------------------------------------------
def find_head_node(ec2: Any, cluster_name: str) -> str:
    """The running head node's instance id, found by ParallelCluster's tags."""
    filters = [
        {"Name": f"tag:{PCLUSTER_CLUSTER_NAME_TAG}", "Values": [cluster_name]},
        {"Name": f"tag:{PCLUSTER_NODE_TYPE_TAG}", "Values": [HEAD_NODE]},
    ]
    instances = [
        instance
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    running = [i["InstanceId"] for i in instances if i["State"]["Name"] == "running"]
    if len(running) == 1:
        return str(running[0])
    if running:
        raise VerifyError(
            f"cluster {cluster_name} has {len(running)} running head nodes: {', '.join(running)}"
        )
    if instances:
        states = ", ".join(f"{i['InstanceId']} {i['State']['Name']}" for i in instances)
        raise VerifyError(
            f"the head node of cluster {cluster_name} is not running ({states}); start it first"
        )
    raise VerifyError(
        f"no head node of cluster {cluster_name} in this account and region (no instance tagged "
        f"{PCLUSTER_CLUSTER_NAME_TAG}={cluster_name}, {PCLUSTER_NODE_TYPE_TAG}={HEAD_NODE}); "
        "has `pulumi up` created the cluster, and are the credentials for its account?"
    )


# ---------------------------------------------------------------------------------------------
# Run Command
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandOutput:
    status: str
    response_code: int
    stdout: str
    stderr: str


@dataclass
class HeadNodeShell:
    """Runs shell scripts on one instance through SSM Run Command and waits for each."""

    ssm: Any
    instance_id: str
    poll_seconds: float = POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def run(self, script: str, timeout_seconds: int, comment: str) -> CommandOutput:
        try:
            sent = self.ssm.send_command(
                InstanceIds=[self.instance_id],
                DocumentName=DOCUMENT,
                Comment=comment[:100],
                Parameters={"commands": [script], "executionTimeout": [str(timeout_seconds)]},
            )
        except ClientError as exc:
            raise VerifyError(self._send_problem(exc)) from None
        command_id = sent["Command"]["CommandId"]
        deadline = self.clock() + timeout_seconds
        while True:
            invocation = self._invocation(command_id)
            if invocation is not None and invocation["Status"] in TERMINAL_STATUSES:
                return CommandOutput(
                    status=invocation["Status"],
                    response_code=int(invocation.get("ResponseCode", -1)),
                    stdout=invocation.get("StandardOutputContent", ""),
                    stderr=invocation.get("StandardErrorContent", ""),
                )
            if self.clock() >= deadline:
                # Best effort: SSM's own executionTimeout stops the script too.
                with contextlib.suppress(ClientError):
                    self.ssm.cancel_command(CommandId=command_id, InstanceIds=[self.instance_id])
                raise VerifyError(
                    f"command {command_id} ({comment}) on {self.instance_id} did not finish in "
                    f"{timeout_seconds} s and was cancelled; raise --timeout"
                )
            self.sleep(self.poll_seconds)

    def _invocation(self, command_id: str) -> dict[str, Any] | None:
        try:
            invocation: dict[str, Any] = self.ssm.get_command_invocation(
                CommandId=command_id, InstanceId=self.instance_id
            )
        except ClientError as exc:
            # Right after SendCommand the invocation may not exist yet.
            if exc.response["Error"]["Code"] == "InvocationDoesNotExist":
                return None
            raise VerifyError(f"cannot read command {command_id} on {self.instance_id}: {exc}") from None
        return invocation

    def _send_problem(self, exc: ClientError) -> str:
        code = exc.response["Error"]["Code"]
        if code == "InvalidInstanceId":
            return (
                f"head node {self.instance_id} is not managed by SSM: its SSM agent is not running or "
                "cannot reach SSM, or its role lacks AmazonSSMManagedInstanceCore"
            )
        return (
            f"cannot send a command to {self.instance_id}: {code}: {exc.response['Error'].get('Message', '')}"
        )


# ---------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------
def lustre_mounts(config: StackConfig) -> list[str]:
    """The shared Lustre mount directories of the stack, as the component library mounts them."""
    mounts = []
    if config.storage.persistent.enabled:
        mounts.append(PERSISTENT_MOUNT_DIR)
    if config.storage.scratch.enabled:
        mounts.append(SCRATCH_MOUNT_DIR)
    return mounts


def _marker(name: str) -> str:
    return f"echo {shlex.quote(SECTION_MARKER + name)}"


def _as_user(user: str, body: str, root_setup: str = "") -> str:
    """A root script that runs `body` as `user` in a login shell (Slurm's PATH), stdout kept."""
    return "\n".join(
        [
            "#!/bin/bash",
            "set -uo pipefail",
            root_setup,
            f"sudo -u {shlex.quote(user)} -i bash -s <<'HPCCTL_VERIFY_USER'",
            "set -uo pipefail",
            f"export PATH={OPEN_MPI}:{EFA_BIN}:$PATH",
            f"mkdir -p ~/{WORK_DIR}",
            body,
            "HPCCTL_VERIFY_USER",
        ]
    )


def start_script(job: Job, user: str, accounting: bool) -> str:
    queue = shlex.quote(job.queue)
    out = f"~/{WORK_DIR}/start-%j.out"
    times = (
        [_marker("sacct"), 'sacct -X -n -P -o JobID,Submit,Start,State -j "$j1,$j2"']
        if accounting
        else [_marker("scontrol"), 'scontrol show job -o "$j1"', 'scontrol show job -o "$j2"']
    )
    body = [
        # Powered-down cloud nodes show a `~` state suffix; any other node is up.
        f"up=$(sinfo -h -N -p {queue} -o %t | grep -vc '~$')",
        _marker("nodes_up"),
        'echo "$up"',
        '[ "$up" -eq 0 ] || exit 0',
        f"j1=$(sbatch --parsable --wait -p {queue} -N 1 -o {out} --wrap hostname) || exit 1",
        f'node=$(cat ~/{WORK_DIR}/start-"$j1".out)',
        # The second job goes to the node the first brought up: no boot, only scheduling.
        f'j2=$(sbatch --parsable --wait -p {queue} -N 1 -w "$node" -o /dev/null --wrap true) || exit 1',
        _marker("job_ids"),
        'echo "$j1 $j2"',
        # Accounting records reach slurmdbd asynchronously: give sacct a moment.
        "sleep 5" if accounting else "",
        *times,
    ]
    return _as_user(user, "\n".join(body))


def efa_script(job: Job, user: str) -> str:
    body = [_marker("fi_info"), f"srun -p {shlex.quote(job.queue)} -N 1 --exclusive fi_info -p efa 2>&1"]
    return _as_user(user, "\n".join(body))


def tools_script(user: str) -> str:
    """Builds the pinned OSU micro-benchmarks and IOR under ~/.hpc-verify/tools once."""
    osu_dir, osu_url, osu_sha = OSU
    ior_dir, ior_url, ior_sha = IOR
    body = f"""set -e
tools=~/{WORK_DIR}/tools; mkdir -p "$tools"; cd "$tools"
fetch() {{ curl -fsSL -o "$1.tar.gz" "$2" && echo "$3  $1.tar.gz" | sha256sum -c - && mkdir -p "$1" \\
  && tar xzf "$1.tar.gz" -C "$1" --strip-components=1; }}
if [ ! -f "$tools/{osu_dir}/install/.built" ]; then
  fetch {osu_dir} {osu_url} {osu_sha}
  (cd {osu_dir} && ./configure CC=mpicc CXX=mpicxx --prefix="$tools/{osu_dir}/install" >/dev/null \\
    && make -j >/dev/null && make install >/dev/null && touch install/.built)
fi
if [ ! -f "$tools/{ior_dir}/install/.built" ]; then
  fetch {ior_dir} {ior_url} {ior_sha}
  (cd {ior_dir} && ./bootstrap >/dev/null && ./configure CC=mpicc --prefix="$tools/{ior_dir}/install" \\
    >/dev/null && make -j >/dev/null && make install >/dev/null && touch install/.built)
fi
{_marker("tools")}
echo ready"""
    return _as_user(user, body)


def mpi_script(job: Job, user: str) -> str:
    osu_dir = OSU[0]
    allocation = f"salloc -p {shlex.quote(job.queue)} -N {job.nodes} --ntasks-per-node=1 --exclusive"
    body = f"""{MPI_ENV}
bin=$(dirname "$(find ~/{WORK_DIR}/tools/{osu_dir}/install -name osu_latency -type f | head -n 1)")
export bin
{allocation} bash -s <<'HPCCTL_VERIFY_ALLOCATION'
{_marker("osu_latency")}
srun --mpi=pmix "$bin/osu_latency" 2>&1
{_marker("osu_bw")}
srun --mpi=pmix "$bin/osu_bw" 2>&1
HPCCTL_VERIFY_ALLOCATION"""
    return _as_user(user, body)


def storage_script(job: Job, user: str) -> str:
    mounts = " ".join(shlex.quote(m) for m in job.mounts)
    # The mounts' roots belong to root: make a directory the user owns on each.
    root_setup = (
        f'for mount in {mounts}; do install -d -o {shlex.quote(user)} -m 0700 "$mount/{WORK_DIR}"; done'
    )
    per_node = f"--ntasks-per-node={IOR_TASKS_PER_NODE}"
    allocation = f"salloc -p {shlex.quote(job.queue)} -N {job.nodes} {per_node} --exclusive"
    runs = "\n".join(
        f"{_marker(f'ior {mount}')}\n"
        f'dir={shlex.quote(mount)}/{WORK_DIR}/$SLURM_JOB_ID; mkdir -p "$dir"\n'
        f'srun --mpi=pmix "$ior" {IOR_ARGS} -o "$dir/ior" 2>&1\n'
        f'rm -rf "$dir"'
        for mount in job.mounts
    )
    body = f"""ior=~/{WORK_DIR}/tools/{IOR[0]}/install/bin/ior
export ior
{allocation} bash -s <<'HPCCTL_VERIFY_ALLOCATION'
{runs}
HPCCTL_VERIFY_ALLOCATION"""
    return _as_user(user, body, root_setup)


def job_script(job: Job, plan: VerifyPlan) -> str:
    if job.check == "start":
        return start_script(job, plan.user, plan.accounting)
    if job.check == "efa":
        return efa_script(job, plan.user)
    if job.check == "mpi":
        return mpi_script(job, plan.user)
    return storage_script(job, plan.user)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def _problem(output: CommandOutput) -> str | None:
    """Why a finished command produced nothing to trust (None: it succeeded)."""
    if output.status == "Success":
        return None
    stderr = " | ".join(output.stderr.strip().splitlines()[-3:])
    return f"command {output.status} (exit {output.response_code}){': ' + stderr if stderr else ''}"


def run_jobs(
    plan: VerifyPlan,
    shell: HeadNodeShell,
    timeout_seconds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    results: list[Result] = []
    tools_problem: str | None = None
    tools_ready = False
    for job in plan.jobs:
        subject = job.queue if job.check != "storage" else ", ".join(job.mounts)
        if job.check in ("mpi", "storage") and not tools_ready:
            progress("building the OSU micro-benchmarks and IOR on the head node (first run only)…")
            built = shell.run(tools_script(plan.user), timeout_seconds, "hpcctl verify: build benchmarks")
            tools_problem = _problem(built)
            tools_ready = True
        if job.check in ("mpi", "storage") and tools_problem is not None:
            results.extend(failed_results(job, plan.targets, f"benchmark build failed: {tools_problem}"))
            continue
        progress(f"{job.check} on {subject}…")
        output = shell.run(job_script(job, plan), timeout_seconds, f"hpcctl verify: {job.check} {subject}")
        problem = _problem(output)
        if problem is not None:
            results.extend(failed_results(job, plan.targets, problem))
            continue
        results.extend(evaluate(job, output.stdout, plan.targets))
    return results


def verify(
    stack: str,
    config: StackConfig,
    plan: VerifyPlan,
    session: Any,
    *,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    progress: Callable[[str], None] = lambda _: None,
    shell_factory: Callable[[Any, str], HeadNodeShell] | None = None,
) -> VerifyReport:
    """Find the head node, run the plan's jobs on it and set each number beside its target."""
    ec2 = session.client("ec2", region_name=config.region)
    ssm = session.client("ssm", region_name=config.region)
    try:
        head_node = find_head_node(ec2, plan.cluster_name)
    except ClientError as exc:
        raise VerifyError(f"cannot list instances in {config.region}: {exc}") from None
    shell = shell_factory(ssm, head_node) if shell_factory else HeadNodeShell(ssm, head_node)
    results = run_jobs(plan, shell, timeout_seconds, progress)
    return VerifyReport(stack, plan.cluster_name, head_node, tuple(results), plan.skipped)


__all__: Sequence[str] = [
    "DEFAULT_TIMEOUT_SECONDS",
    "HeadNodeShell",
    "VerifyError",
    "find_head_node",
    "job_script",
    "lustre_mounts",
    "run_jobs",
    "verify",
]
