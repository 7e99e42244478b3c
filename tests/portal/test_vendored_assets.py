"""The vendored front-end files are the exact npm releases VENDOR.md names: a silent edit, a
half-done upgrade or a missing file fails here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.stacks import REPO_ROOT

PORTAL_VENDOR = REPO_ROOT / "hpc_platform" / "app" / "portal" / "static" / "vendor"
TEST_VENDOR = REPO_ROOT / "tests" / "support" / "vendor"

# sha256 of each file as unpacked from the npm tarball VENDOR.md names.
MANIFEST = {
    PORTAL_VENDOR / "htmx-2.0.11.min.js": (
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    ),
    PORTAL_VENDOR / "htmx-ext-sse-2.2.4.min.js": (
        "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136"
    ),
    TEST_VENDOR / "axe-core-4.14.1.min.js": (
        "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
    ),
}


@pytest.mark.parametrize("path", sorted(MANIFEST), ids=lambda p: p.name)
def test_vendored_file_is_the_release_named(path: Path) -> None:
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MANIFEST[path], (
        f"{path.relative_to(REPO_ROOT)} differs from the release its VENDOR.md names"
    )
    assert path.name in (path.parent / "VENDOR.md").read_text()


def test_every_vendored_file_is_in_the_manifest() -> None:
    on_disk = {p for d in (PORTAL_VENDOR, TEST_VENDOR) for p in d.glob("*.js")}
    assert on_disk == set(MANIFEST)
