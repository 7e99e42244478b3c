"""How the browser tests start Chromium: Debian's package, never a downloaded browser.

`playwright install` downloads browsers and is not used; Playwright drives the system Chromium
through `executable_path`. The flags keep it from reaching out to the network at start (the
background-networking, component-update and sync services) and let it run as root in CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ENV = "HPC_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
AXE_CORE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"


def chromium_path() -> str:
    """The Chromium executable; a clear message when it is missing (CI installs Debian's package)."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or DEFAULT_CHROMIUM
    if not Path(path).is_file():
        raise RuntimeError(
            f"Chromium not found at {path}: install Debian's package (apt-get install chromium) "
            f"or set {CHROMIUM_ENV}"
        )
    return path


def launch_args() -> dict[str, object]:
    """Playwright's `browser_type.launch(**launch_args())`."""
    return {"executable_path": chromium_path(), "args": list(CHROMIUM_FLAGS), "headless": True}
