"""How validation and the offline plan scale from dev to prod: wall time and peak memory, printed
as absolute numbers and as ratios to dev. Run: `.venv/bin/python benchmarks/bench_plan.py`."""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpc_platform.app.offline import plan_stack_file  # noqa: E402
from hpc_platform.domain.config.loader import load_stack_file  # noqa: E402

STACKS = ("dev", "staging", "prod")
REPEATS = 5


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """Median seconds over REPEATS runs, and peak traced MiB of one run."""
    fn()  # warm imports and caches
    times = []
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def main() -> None:
    rows = []
    for stack in STACKS:
        path = ROOT / f"Pulumi.{stack}.yaml"
        validate_s, validate_mib = measure(lambda path=path: load_stack_file(path))
        plan_s, plan_mib = measure(lambda path=path: plan_stack_file(path))
        resources = len(plan_stack_file(path).plan.resources)
        rows.append((stack, resources, validate_s, validate_mib, plan_s, plan_mib))
    base = rows[0]
    print(
        f"{'stack':8} {'resources':>9} {'validate ms':>12} {'x dev':>6} "
        f"{'plan ms':>9} {'x dev':>6} {'plan peak MiB':>14} {'x dev':>6}"
    )
    for stack, resources, vs, _vm, ps, pm in rows:
        print(
            f"{stack:8} {resources:>9} {vs * 1000:>12.1f} {vs / base[2]:>6.2f} {ps * 1000:>9.1f} "
            f"{ps / base[4]:>6.2f} {pm:>14.1f} {pm / base[5]:>6.2f}"
        )
    print(f"plan ms per resource (prod): {rows[-1][4] * 1000 / max(rows[-1][1], 1):.2f}")


if __name__ == "__main__":
    main()
