"""The portal's immediate feedback and its queue: latency of the plan-and-check on a warm service,
warm against cold, and jobs per minute through the queue with the stand-in `pulumi`.

    .venv/bin/python benchmarks/bench_portal.py [--requests 20] [--warm-runs 5] [--jobs 24]
        [--stacks 4] [--workers 2] [--skip-http] [--skip-queue]

What is measured (every number from this run; nothing is asserted):

1. Cold against warm, in a fresh interpreter: importing the assessor, its first `assess` of the prod
   stack file (what a service without `warm_up()` makes its first request pay), then `--warm-runs`
   more. Printed: wall and CPU seconds, the medians and the ratios cold / warm.
2. The immediate plan-and-check over HTTP: `hpc-portal serve --workers 0` (the API alone, so no
   preview runs beside the requests) on a fresh data dir, a requester's token from `hpc-portal
   user add`, one prod environment; the prod stack file POSTed as YAML to
   `/api/environments/{name}/requests` `--requests` times after one untimed request (the service's
   first). Each answer holds the plan summary, the verdict and the cost. Printed: p50 and p95, the
   first request, and the same assessment called in-process (`Assessor.assess`, p50, alternating
   with the requests), so the API's own share shows.
3. Jobs per minute: `--workers` `hpc-portal worker` processes on one SQLite database drain
   `--jobs` drift checks (`refresh --preview-only`) over `--stacks` dev environments. Each job
   is the real runner (the Automation API SDK in the job's own process group and work dir) against
   the stand-in CLI (tests/support/pulumi_standin), so the CLI's own work is not in it: this is
   the portal's overhead per job (queue claim, SDK, process, events, bookkeeping).

The machine's load is printed first: on a shared machine the absolute times move, the ratios less.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STACK = "prod"
ENVIRONMENT = "bench-prod"
GROUP = "bench"
PORTAL = (sys.executable, "-m", "hpc_portal")


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest, p95 the 19th)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def portal_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPC_PORTAL_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


# --- 1. cold against warm -----------------------------------------------------------------------------
COLD_WARM = textwrap.dedent(
    """
    import json, sys, time
    start = time.perf_counter()
    from hpc_platform.app.portal.assess import Assessor
    from hpc_platform.domain.config.loader import read_stack_file
    imported = time.perf_counter()
    config = read_stack_file(__import__("pathlib").Path(sys.argv[1]))
    assessor = Assessor()
    import_cpu = time.process_time()
    began = time.perf_counter()
    assessor.assess("prod", config)
    first = time.perf_counter() - began
    first_cpu = time.process_time() - import_cpu
    warm, warm_cpu = [], []
    for _ in range(int(sys.argv[2])):
        began, cpu = time.perf_counter(), time.process_time()
        assessor.assess("prod", config)
        warm.append(time.perf_counter() - began)
        warm_cpu.append(time.process_time() - cpu)
    print(json.dumps({"import": imported - start, "first": first, "warm": warm,
                      "import_cpu": import_cpu, "first_cpu": first_cpu, "warm_cpu": warm_cpu}))
    """
)


def cold_and_warm(warm_runs: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", COLD_WARM, str(ROOT / f"Pulumi.{STACK}.yaml"), str(warm_runs)],
        cwd=ROOT,
        env=portal_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --- 2. over HTTP -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_api(data_dir: Path) -> Iterator[str]:
    """`hpc-portal serve --workers 0` on a fresh data dir, once /healthz answers."""
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [*PORTAL, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "0"],
        cwd=data_dir.parent,
        env=portal_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"hpc-portal serve exited {server.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("hpc-portal serve did not answer /healthz")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def add_user(data_dir: Path, name: str, role: str) -> str:
    added = subprocess.run(
        [*PORTAL, "user", "add", name, "--group", GROUP, "--role", role, "--data-dir", str(data_dir)],
        env=portal_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return added.stdout.strip().splitlines()[-1]


def http_latency(requests: int) -> dict[str, Any]:
    """The timed requests alternate with in-process assessments of the same config (while the
    server idles), so a change in the machine's load hits both alike."""
    import httpx

    from hpc_platform.app.portal.assess import Assessor
    from hpc_platform.domain.config.loader import read_stack_file

    body = (ROOT / f"Pulumi.{STACK}.yaml").read_text()
    config = read_stack_file(ROOT / f"Pulumi.{STACK}.yaml")
    local = Assessor()
    local.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "portal"
        with served_api(data_dir) as base:
            token = add_user(data_dir, "bench-requester", "requester")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
                environment = {"name": ENVIRONMENT, "group": GROUP, "kind": "prod"}
                client.post("/api/environments", json=environment).raise_for_status()
                submit = {"Content-Type": "application/yaml"}
                url = f"/api/environments/{ENVIRONMENT}/requests"
                began = time.perf_counter()
                answer = client.post(url, content=body, headers=submit)
                first = time.perf_counter() - began
                answer.raise_for_status()
                assessment = answer.json()["assessment"]
                times, in_process = [], []
                for _ in range(requests):
                    began = time.perf_counter()
                    client.post(url, content=body, headers=submit).raise_for_status()
                    times.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    local.assess(STACK, config)
                    in_process.append(time.perf_counter() - began)
    return {"first": first, "times": times, "in_process": in_process, "assessment": assessment}


# --- 3. jobs per minute -------------------------------------------------------------------------------
def queue_throughput(jobs: int, stacks: int, workers: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from hpc_platform.app.portal import queue
    from hpc_platform.app.portal.db import make_engine, session_scope
    from hpc_platform.app.portal.migrations import upgrade
    from hpc_platform.app.portal.models import Environment, Job, User
    from hpc_platform.app.portal.settings import PortalSettings
    from hpc_platform.domain.config.loader import read_stack_file
    from tests.support import pulumi_standin

    config = read_stack_file(ROOT / "Pulumi.dev.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "portal"
        settings = PortalSettings.from_env(data_dir)
        settings.prepare()
        engine = make_engine(settings.database_url)
        upgrade(engine)
        with session_scope(engine) as session:
            owner = User(name="bench-owner")
            session.add(owner)
            session.flush()
            envs = [
                Environment(
                    name=f"bench-{i}", group_name=GROUP, kind="dev", owner_id=owner.id, current_config=config
                )
                for i in range(stacks)
            ]
            session.add_all(envs)
            session.flush()
            for i in range(jobs):
                queue.enqueue(session, envs[i % stacks], "refresh", created_by="bench", preview_only=True)
        env = portal_env(
            HPC_PORTAL_PULUMI_ROOT=str(pulumi_standin.ROOT),
            HPC_PORTAL_DRIFT_INTERVAL_SECONDS="0",
            **pulumi_standin.environment(),
        )
        began = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*PORTAL, "worker", "--data-dir", str(data_dir)],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            deadline = time.monotonic() + 60 * 30
            while True:
                with session_scope(engine, write=False) as session:
                    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
                    states = {state: count for state, count in rows}
                if sum(states.get(s, 0) for s in ("queued", "running")) == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the queue did not drain: {states}")
                time.sleep(0.2)
            elapsed = time.perf_counter() - began
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        engine.dispose()
    return {"elapsed": elapsed, "states": states}


# --- report -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="timed requests over HTTP")
    parser.add_argument("--warm-runs", type=int, default=5, help="warm assessments after the cold one")
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--stacks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-queue", action="store_true")
    args = parser.parse_args(argv)

    print(load_line())
    cold = cold_and_warm(args.warm_runs)
    warm = statistics.median(cold["warm"])
    print(f"\n1. cold against warm ({STACK}, a fresh interpreter, Assessor in-process):")
    print(f"   import {cold['import']:.2f} s; first assess {cold['first']:.2f} s; warm median {warm:.2f} s")
    print(
        f"   first / warm = {cold['first'] / warm:.2f}x; "
        f"(import + first) / warm = {(cold['import'] + cold['first']) / warm:.2f}x"
    )
    warm_cpu = statistics.median(cold["warm_cpu"])
    print(
        f"   CPU seconds (less moved by the machine's load): import {cold['import_cpu']:.2f}, first "
        f"{cold['first_cpu']:.2f}, warm median {warm_cpu:.2f}; (import + first) / warm = "
        f"{(cold['import_cpu'] + cold['first_cpu']) / warm_cpu:.2f}x"
    )

    if not args.skip_http:
        http = http_latency(args.requests)
        local = http["in_process"]
        p50, p95 = percentile(http["times"], 0.5), percentile(http["times"], 0.95)
        verdict, cost = http["assessment"]["verdict"], http["assessment"]["cost"]
        print(f"\n2. immediate plan-and-check over HTTP ({STACK}, {args.requests} requests, warm service):")
        print(
            f"   p50 {p50:.2f} s, p95 {p95:.2f} s; the service's first request {http['first']:.2f} s "
            f"({http['first'] / p50:.2f}x p50)"
        )
        print(
            f"   Assessor.assess in-process p50 {percentile(local, 0.5):.2f} s: HTTP p50 / in-process = "
            f"{p50 / percentile(local, 0.5):.2f}x"
        )
        print(
            f"   each answer: {http['assessment']['resource_count']} resources, verdict "
            f"{'passes' if verdict['passes'] else 'fails'} ({verdict['enforcement']}), "
            f"${cost['monthly_usd']:,.0f} / month"
        )

    if not args.skip_queue:
        run = queue_throughput(args.jobs, args.stacks, args.workers)
        per_minute = args.jobs / run["elapsed"] * 60
        print(
            f"\n3. queue: {args.jobs} drift checks over {args.stacks} stacks, {args.workers} worker "
            f"processes, stand-in pulumi:"
        )
        print(f"   {run['elapsed']:.1f} s: {per_minute:.1f} jobs per minute; final states {run['states']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
