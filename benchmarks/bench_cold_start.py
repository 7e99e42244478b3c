"""Cold start against ParallelCluster: fresh-process `hpcctl check --stack prod` side by side with
ParallelCluster 3.16.1's own dry run of the prod cluster config on moto, plus a warm in-process plan.

    .venv/bin/python benchmarks/bench_cold_start.py [--runs 5] [--warm-runs 5]

What is compared. `hpcctl check --stack prod` in a fresh interpreter loads its code, validates the
stack file, plans the whole environment and runs every policy. ParallelCluster's counterpart is its
CLI's dry run in a fresh interpreter: `pcluster create-cluster --dryrun true` loads its code, loads
and validates the cluster config and runs every validator (against moto, the AWS calls included);
the CLI runs the same API handler as the REST API's Lambda, in process. A request to an already
running API server would leave ParallelCluster's start-up out while ours is counted, so it is not
the fair counterpart; it is printed for reference only.

The config is the one the prod plan renders, with moto's ids: the integration harness
(tests/integration/harness/serve.py, in the ParallelCluster venv of tests/support/pcluster_venv.py)
serves moto, and tests/support/moto_plan.py builds the prod plan in it. The runs alternate (ours,
theirs, ours, …) so that load on the machine hits both alike. Peak memory is each child's own
maximum resident set size (GNU time's `%M`). Printed: medians and the ratios ours / ParallelCluster's,
and each child's own CPU time (user + system), which a loaded machine disturbs less than wall time
(ParallelCluster's excludes the moto server's share of its dry run, so it is no ratio goal).
Goals (issue 12): wall ≤ 0.35×, peak memory ≤ 0.6×, warm plan ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HARNESS = ROOT / "tests" / "integration" / "harness" / "serve.py"
STACK = "prod"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
GOALS = {"wall": 0.35, "memory": 0.6, "warm_plan_s": 0.5}


def timed_child(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS in MiB and CPU seconds of one fresh child process.

    The peak comes from /usr/bin/time: Linux carries a process's peak RSS across fork and exec, so
    a child forked straight from this (large) process would report this process's size."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        start = time.perf_counter()
        subprocess.run(
            [TIME, "-f", "%M %U %S", "-o", report.name, *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        kib, user, system = report.read().strip().splitlines()[-1].split()
    return wall, int(kib) / 1024, float(user) + float(system)


@contextmanager
def harness(python: Path) -> Iterator[dict[str, Any]]:
    """ParallelCluster's API app and moto, as the integration tests start them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [str(python), str(HARNESS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    ready: dict[str, Any] = {}

    def read_ready_line() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line:
            ready.update(json.loads(line))

    reader = threading.Thread(target=read_ready_line, daemon=True)
    reader.start()
    reader.join(300)
    try:
        if not ready:
            raise RuntimeError("the ParallelCluster harness did not start")
        yield ready
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()


def warm_plan_seconds(runs: int) -> float:
    from hpc_platform.app.offline import plan_stack_file

    path = ROOT / f"Pulumi.{STACK}.yaml"
    plan_stack_file(path)  # warm-up: imports and caches
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        plan_stack_file(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dry_run_request_seconds(world: dict[str, Any], name: str, config: dict[str, Any]) -> float:
    """One dry-run request to the running API server (for reference: no start-up in it)."""
    from hpc_platform.pcluster.client import ApiError, Backoff, DryrunSucceeded, ParallelClusterClient

    client = ParallelClusterClient(
        world["api"],
        world["region"],
        role_arn=world["api_user_role_arn"],
        backoff=Backoff(base_seconds=0.2, max_seconds=1, max_attempts=3),
        request_timeout_seconds=600,
    )
    start = time.perf_counter()
    with suppress(DryrunSucceeded, ApiError):  # 412 "would succeed" or 400 with messages
        client.create_cluster(name, config, dryrun=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="fresh-process runs of each (default 5)")
    parser.add_argument("--warm-runs", type=int, default=5, help="timed warm plans (default 5)")
    args = parser.parse_args(argv)
    if not Path(TIME).is_file():
        parser.error(f"{TIME} (GNU time) is needed for the peak memory of each run")

    from tests.support.pcluster_venv import pcluster_python

    pcluster = pcluster_python()
    # Our own boto3 calls (the build in moto, STS for the reference request) go to moto only.
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"})

    print(f"starting the ParallelCluster harness ({pcluster}) …", file=sys.stderr)
    with harness(pcluster) as world, tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL_STS"] = world["moto"]  # the API's user role, assumed in moto
        from hpc_platform.app.offline import plan_stack_file
        from tests.support.moto_plan import build_plan_in_moto

        print(f"building the {STACK} plan in moto …", file=sys.stderr)
        built = build_plan_in_moto(
            plan_stack_file(ROOT / f"Pulumi.{STACK}.yaml").plan, world["moto"], world["region"]
        )
        config_path = Path(tmp) / "cluster-config.yaml"
        config_path.write_text(json.dumps(built.cluster_config))  # JSON is YAML

        ours_cmd = [sys.executable, "-m", "hpcctl", "check", "--stack", STACK]
        # As a user runs them: bytecode caches written on the first run and read after (with
        # PYTHONDONTWRITEBYTECODE set, every run would compile our sources again; ParallelCluster's
        # were compiled when pip installed them).
        plain_env = {
            k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        ours_env = {**plain_env, "PYTHONPATH": str(ROOT)}
        theirs_cmd = [
            str(pcluster.parent / "pcluster"),
            "create-cluster",
            "--cluster-name",
            built.cluster_name,
            "--cluster-configuration",
            str(config_path),
            "--dryrun",
            "true",
            "--region",
            world["region"],
        ]
        theirs_env = {
            **plain_env,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": world["region"],
            "AWS_ENDPOINT_URL": world["moto"],
        }
        # ParallelCluster's CLI exits 1 after a dry run that "would have succeeded"; check that it got
        # that far (and ours ran) once, outside the timed runs.
        probe = subprocess.run(theirs_cmd, env=theirs_env, capture_output=True, text=True, cwd=tmp)
        if "DryRun flag is set" not in probe.stdout:
            raise RuntimeError(f"ParallelCluster's dry run did not validate:\n{probe.stdout}{probe.stderr}")
        subprocess.run(ours_cmd, env=ours_env, cwd=ROOT, check=True, capture_output=True)

        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        for run in range(args.runs):
            wall, mib, cpu = timed_child(ours_cmd, ours_env, ROOT)
            ours.append((wall, mib))
            ours_cpu.append(cpu)
            t_wall, t_mib, t_cpu = timed_child(theirs_cmd, theirs_env, Path(tmp))
            theirs.append((t_wall, t_mib))
            theirs_cpu.append(t_cpu)
            print(
                f"run {run + 1}: hpcctl check {wall:6.2f} s {mib:6.1f} MiB {cpu:5.2f} s CPU | "
                f"pcluster dry run {t_wall:6.2f} s {t_mib:6.1f} MiB {t_cpu:5.2f} s CPU",
                file=sys.stderr,
            )
        request_s = dry_run_request_seconds(world, built.cluster_name, built.cluster_config)

    warm_s = warm_plan_seconds(args.warm_runs)
    ours_wall = statistics.median(w for w, _ in ours)
    ours_mib = statistics.median(m for _, m in ours)
    theirs_wall = statistics.median(w for w, _ in theirs)
    theirs_mib = statistics.median(m for _, m in theirs)
    wall_ratio, mem_ratio = ours_wall / theirs_wall, ours_mib / theirs_mib

    def verdict(ok: bool) -> str:
        return "meets goal" if ok else "MISSES goal"

    print(f"fresh process, median of {args.runs} interleaved runs each ({STACK}):")
    print(f"  hpcctl check --stack {STACK}:          {ours_wall:6.2f} s  {ours_mib:6.1f} MiB peak RSS")
    print(f"  pcluster create-cluster --dryrun:     {theirs_wall:6.2f} s  {theirs_mib:6.1f} MiB peak RSS")
    print(
        f"  wall ratio   (ours / ParallelCluster's): {wall_ratio:.2f}  "
        f"(goal ≤ {GOALS['wall']}: {verdict(wall_ratio <= GOALS['wall'])})"
    )
    print(
        f"  memory ratio (ours / ParallelCluster's): {mem_ratio:.2f}  "
        f"(goal ≤ {GOALS['memory']}: {verdict(mem_ratio <= GOALS['memory'])})"
    )
    print(
        f"warm in-process plan of {STACK}, median of {args.warm_runs}: {warm_s:.3f} s  "
        f"(goal ≤ {GOALS['warm_plan_s']} s: {verdict(warm_s <= GOALS['warm_plan_s'])})"
    )
    print(
        f"CPU time of each child, median: hpcctl check {statistics.median(ours_cpu):.2f} s, "
        f"pcluster dry run {statistics.median(theirs_cpu):.2f} s (its moto server's share not counted)"
    )
    print(f"for reference: one dry-run request to the running API server: {request_s:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
