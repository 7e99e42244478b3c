"""A worker process for the concurrency tests: the real worker loop on a shared database, with a
stand-in operation that logs when it starts and ends each job (and sleeps) instead of calling
Pulumi. Run: python -m tests.portal.worker_process DB_URL DATA_DIR LOG SECONDS"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hpc_platform.app.portal.db import make_engine
from hpc_platform.app.portal.runner import OperationResult, OperationSpec
from hpc_platform.app.portal.settings import PortalSettings
from hpc_platform.app.portal.worker import Worker


def main() -> None:
    url, data_dir, log, seconds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])

    def operation(spec: OperationSpec, on_event: Any, on_started: Any) -> OperationResult:
        on_started(os.getpid())
        job = spec.work_dir.name
        with log.open("a") as handle:
            handle.write(f"start {job} {spec.stack} {time.time()}\n")
        time.sleep(seconds)
        on_event(1, {"summaryEvent": {}})
        with log.open("a") as handle:
            handle.write(f"end {job} {spec.stack} {time.time()}\n")
        return OperationResult(True, {"same": 1}, {}, None, None, None)

    settings = replace(
        PortalSettings.from_env(data_dir),
        database_url=url,
        heartbeat_seconds=0.3,
        orphan_after_seconds=4,
        poll_seconds=0.05,
        drift_interval_seconds=None,
    )
    engine = make_engine(url)
    Worker(settings, engine, run_operation=operation, current_version=lambda spec: None).run_forever(
        threading.Event()
    )


if __name__ == "__main__":
    main()
