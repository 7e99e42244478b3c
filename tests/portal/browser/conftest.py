"""Browser tests of the portal's pages: the real app served by uvicorn on a free port, SQLite in a
temp dir, the real assessor, an in-process worker running the real runner against the stand-in
`pulumi`, and Debian's Chromium driven by Playwright (never a downloaded browser).

Every test here is marked `browser`; `scripts/test --fast` leaves them out. Screenshots go to
`HPC_PORTAL_SCREENSHOTS` (default `.screenshots/`, ignored by git); `scripts/screenshots` points
it at docs/images.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import Engine

from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.assess import Assessor
from hpc_platform.app.portal.db import make_engine
from hpc_platform.app.portal.migrations import upgrade
from hpc_platform.app.portal.settings import PASSPHRASE_ENV, PortalSettings
from hpc_platform.app.portal.web import WebSettings
from hpc_platform.app.portal.worker import Worker
from tests.portal.conftest import add_user
from tests.support import pulumi_standin
from tests.support.browser import AXE_CORE, launch_args
from tests.support.stacks import REPO_ROOT

SCREENSHOTS_ENV = "HPC_PORTAL_SCREENSHOTS"
# Planning the prod-sized configs takes seconds on a loaded machine; the pages wait that long.
SLOW_MS = 180_000
expect.set_options(timeout=SLOW_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark these tests `browser` and run them after every other test of the session (on each
    xdist worker too, which takes its tests in this order): Playwright's sync API leaves its event
    loop set on the worker's main thread until the session ends, and code that refuses to block an
    event loop's thread (the portal's assessor) would then refuse to run in the tests after them."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, pointed at the system Chromium (tests/support/browser)."""
    return {**browser_type_launch_args, **launch_args()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Portal:
    url: str
    engine: Engine
    settings: PortalSettings
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data = tmp_path_factory.mktemp("portal")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in pulumi_standin.environment().items():
            patch.setenv(name, value)
        base = PortalSettings.from_env(data)
        settings = PortalSettings(
            **{
                **base.__dict__,
                "pulumi_root": pulumi_standin.ROOT,
                "auto_approve_dev": True,
                "poll_seconds": 0.3,
                "drift_interval_seconds": None,
            }
        )
        settings.prepare()
        patch.setenv(PASSPHRASE_ENV, settings.passphrase())
        engine = make_engine(settings.database_url)
        upgrade(engine)
        tokens = {
            "rita": add_user(engine, "rita", "genomics", "approver")[1],
            "alan": add_user(engine, "alan", "genomics", "approver")[1],
            "eve": add_user(engine, "eve", "chemistry", "requester")[1],
        }
        # The up runs crawl (so the run page is seen live) and export a secret (seen masked).
        pulumi_standin.control(
            settings.backend_url,
            {"operation": "up", "delay_seconds": 0.6, "secret_outputs": {"dbPassword": "hunter2-not-shown"}},
        )
        assessor = Assessor()
        # Playwright's sync API runs an event loop in this thread; the planner must not run on it.
        warming = threading.Thread(target=assessor.warm_up, name="warm-up")
        warming.start()
        warming.join()
        app = create_app(
            settings, engine=engine, assessor=assessor, pages=WebSettings(session_secret="browser-tests-" * 4)
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        served = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        served.start()
        stop = threading.Event()
        worker = threading.Thread(target=Worker(settings, engine).run_forever, args=(stop,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        try:
            yield Portal(f"http://127.0.0.1:{port}", engine, settings, tokens)
        finally:
            stop.set()
            server.should_exit = True
            served.join(timeout=30)
            worker.join(timeout=30)
            engine.dispose()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = Path(os.environ.get(SCREENSHOTS_ENV) or REPO_ROOT / ".screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class User:
    """One person's browser session, with what the checks need: CSP reports and an axe scan."""

    def __init__(self, browser: Browser, portal: Portal, name: str):
        self.name = name
        self.portal = portal
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(SLOW_MS)
        self.page: Page = self.context.new_page()
        self.csp_errors: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.csp_errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )

    def goto(self, path: str) -> Page:
        self.page.goto(self.portal.url + path)
        return self.page

    def sign_in(self) -> None:
        self.goto("/")
        self.page.get_by_label("API token").fill(self.portal.tokens[self.name])
        self.page.get_by_role("button", name="Sign in (local)").click()
        expect(self.page.get_by_role("heading", name="Environments", exact=True)).to_be_visible()

    def axe(self) -> list[dict[str, Any]]:
        """Critical and serious violations of the page as it is now (axe-core, WCAG 2.1 AA rules)."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') stays on.
            self.page.evaluate(AXE_CORE.read_text())
        result = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))"
        )
        return [v for v in result if v["impact"] in ("critical", "serious")]

    def close(self) -> None:
        self.context.close()
