"""Serve ParallelCluster's own REST API app on 127.0.0.1, backed by a moto server on 127.0.0.1.

Runs with the ParallelCluster venv's interpreter (aws-parallelcluster and moto pinned there):

    python serve.py            # prints one JSON line {"api": url, "moto": url, ...} when ready

The process serves until its standard input closes (the test fixture closes it to stop it), then
shuts both servers down. See README.md beside this file for the patches applied and why.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
REGION = "us-east-2"


def _environment(state_dir: Path) -> None:
    """Point every boto3 client of this process at the moto server, with dummy credentials."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_AMIS_PATH": str(state_dir / "amis.json"),
            # AWS managed policies (AmazonSSMManagedInstanceCore, …) exist in every account; moto
            # loads them only when asked. The plan attaches two of them to the node roles.
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            # ParallelCluster's CDK synth (jsii) writes here.
            "HOME": os.environ.get("HOME", str(state_dir)),
        }
    )
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="pcluster-harness-"))
    _environment(state_dir)
    sys.path.insert(0, str(HERE))
    import seed

    seed.write_official_amis(state_dir / "amis.json")

    import patches

    patches.apply_moto_patches()

    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    moto_url = f"http://{moto_host}:{moto_port}"
    os.environ["AWS_ENDPOINT_URL"] = moto_url

    patches.apply_pcluster_patches()
    world = seed.seed_world(REGION)

    import authorizer

    # API Gateway's part: the API template's user role, and its resource policy in front of the app.
    api_access = authorizer.load_api_access(REPO_ROOT)
    role_arn, invoke_pattern = authorizer.create_api_user_role(api_access, REGION)
    world["api_user_role_arn"] = role_arn

    from pcluster.api.flask_app import ParallelClusterFlaskApp
    from werkzeug.serving import make_server

    api = ParallelClusterFlaskApp()
    # One request at a time on the main thread, as in the Lambda: ParallelCluster's validators use
    # asyncio.get_event_loop(), which only the main thread has implicitly.
    gateway = authorizer.ResourcePolicyAuthorizer(api.flask_app, api_access, invoke_pattern, REGION)
    server = make_server("127.0.0.1", 0, gateway, threaded=False)
    api_url = f"http://127.0.0.1:{server.server_port}"

    head_node = patches.HeadNodeEmulator(REGION)
    head_node.start()

    def stop_on_stdin_eof() -> None:
        sys.stdin.read()  # until the test closes our stdin
        server.shutdown()

    threading.Thread(target=stop_on_stdin_eof, daemon=True).start()
    print(json.dumps({"api": api_url, "moto": moto_url, "region": REGION, **world}), flush=True)
    try:
        server.serve_forever()
    finally:
        head_node.stop()
        server.server_close()
        moto.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
