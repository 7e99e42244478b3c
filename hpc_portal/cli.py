"""`hpc-portal`: run the portal (API + an in-process worker), extra workers, users, migrations.

    hpc-portal serve [--host 127.0.0.1] [--port 8080] [--data-dir DIR]
    hpc-portal worker [--data-dir DIR]
    hpc-portal user add NAME --group G --role requester|approver|admin [--data-dir DIR]
    hpc-portal migrate [--data-dir DIR]

With no other setting everything lives under the data dir (default ./.portal): the SQLite
database, Pulumi's file backend, the job work dirs and saved plans. HPC_PORTAL_DATABASE_URL,
HPC_PORTAL_BACKEND_URL and HPC_PORTAL_PULUMI_ROOT point elsewhere (docs/portal.md). Every command
migrates the database first, so a fresh data dir needs no setup.

Exit codes: 0 success; 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sqlalchemy import Engine

from hpc_platform.app.portal import auth
from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.db import make_engine, session_scope
from hpc_platform.app.portal.migrations import upgrade
from hpc_platform.app.portal.models import ROLES
from hpc_platform.app.portal.settings import DEFAULT_DATA_DIR, PortalSettings
from hpc_platform.app.portal.worker import Worker

EXIT_OK = 0
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpc-portal", description="The hpc-platform self-service portal.")
    commands = parser.add_subparsers(dest="command", required=True)

    def data_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help=f"where the database, state, work dirs and plans live (default {DEFAULT_DATA_DIR}; "
            "HPC_PORTAL_DATA_DIR)",
        )

    serve = commands.add_parser("serve", help="the API and an in-process worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="in-process worker threads (0: API only)")
    data_dir(serve)
    worker = commands.add_parser("worker", help="a worker process (any number, sharing one database)")
    data_dir(worker)
    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add a user (or a role to one) and print a new token")
    add.add_argument("name")
    add.add_argument("--group", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    data_dir(add)
    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    data_dir(migrate)
    return parser


def _open(data_dir: Path | None) -> tuple[PortalSettings, Engine]:
    settings = PortalSettings.from_env(data_dir)
    settings.prepare()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return settings, engine


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _warm_up(assessor: object) -> None:
    warm_up_all = getattr(assessor, "warm_up_all", None)
    if warm_up_all is None:
        return
    try:
        planned = warm_up_all()
    except Exception as exc:  # a failed warm-up only costs the first request its speed
        print(f"hpc-portal: warning: warming the planner failed: {exc}", file=sys.stderr)
    else:
        print(f"hpc-portal: planner warm ({planned} stack kinds planned)", file=sys.stderr)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings, engine = _open(args.data_dir)
    app = create_app(settings, engine=engine)
    stop = threading.Event()
    # Plan each stack kind once while the server starts, so the first researcher's request gets
    # the warm planner's latency; requests that arrive meanwhile wait on the planner's lock.
    threading.Thread(target=_warm_up, args=(app.state.assessor,), name="warm-up", daemon=True).start()
    threads = [
        threading.Thread(
            target=Worker(settings, engine).run_forever, args=(stop,), name=f"worker-{n}", daemon=True
        )
        for n in range(args.workers)
    ]
    for thread in threads:
        thread.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    return EXIT_OK


def worker(args: argparse.Namespace) -> int:
    settings, engine = _open(args.data_dir)
    stop = threading.Event()
    _stop_on_signals(stop)
    Worker(settings, engine).run_forever(stop)
    return EXIT_OK


def user_add(args: argparse.Namespace) -> int:
    _settings, engine = _open(args.data_dir)
    try:
        with session_scope(engine) as session:
            _user, token = auth.add_user(session, args.name, args.group, args.role)
    except auth.AuthError as exc:
        print(f"hpc-portal: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(token)
    return EXIT_OK


def migrate(args: argparse.Namespace) -> int:
    _open(args.data_dir)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "worker":
        return worker(args)
    if args.command == "user":
        return user_add(args)
    return migrate(args)
