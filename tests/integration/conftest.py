"""The integration harness: ParallelCluster's real REST API app backed by moto, on 127.0.0.1.

`pcluster_api` starts `harness/serve.py` with the ParallelCluster venv's interpreter (built on
first use by tests/support/pcluster_venv.py), waits for its ready line and stops it (closing its
stdin, then terminating it if needed) when the module's tests are done.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pcluster_venv import pcluster_python

HARNESS = Path(__file__).resolve().parent / "harness" / "serve.py"
READY_TIMEOUT_SECONDS = 180


@pytest.fixture(scope="module", autouse=True)
def aws_credentials_in_environment() -> Iterator[None]:
    """The provider resolves credentials through botocore's standard chain: here, env vars
    (dummies; nothing leaves 127.0.0.1). `pcluster_api` adds the STS endpoint (moto)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(saved)


@pytest.fixture(scope="module")
def pcluster_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    python = pcluster_python()
    log_path = tmp_path_factory.mktemp("pcluster-harness") / "serve.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(python), str(HARNESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        try:
            ready: dict[str, Any] = {}

            def read_ready_line() -> None:
                assert process.stdout is not None
                line = process.stdout.readline()
                if line:
                    ready.update(json.loads(line))

            reader = threading.Thread(target=read_ready_line, daemon=True)
            reader.start()
            reader.join(READY_TIMEOUT_SECONDS)
            if not ready:
                raise RuntimeError(
                    f"the ParallelCluster harness did not start; its log:\n{log_path.read_text()[-5000:]}"
                )
            ready["log"] = str(log_path)
            # The provider assumes the API's user role through botocore's STS client: moto's STS.
            # (aws_credentials_in_environment restores the AWS_* variables after the module.)
            os.environ["AWS_ENDPOINT_URL_STS"] = ready["moto"]
            yield ready
        finally:
            if process.stdin:
                process.stdin.close()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout:
                process.stdout.close()
