"""requirements-dev.lock (what scripts/setup installs) agrees with pyproject.toml: every exact pin is
locked at the same version, every direct dependency is there, every entry carries hashes, and the
lock names no package index (the installer's own configuration decides where packages come from)."""

from __future__ import annotations

import re
import tomllib

from tests.support.stacks import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
LOCK_TEXT = (REPO_ROOT / "requirements-dev.lock").read_text()
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


LOCKED = {_normal(name): version for name, version in _ENTRY.findall(LOCK_TEXT)}


def _declared() -> list[str]:
    return PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]


def test_every_direct_dependency_is_locked() -> None:
    for requirement in _declared():
        name = _normal(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name in LOCKED, f"{name} is in pyproject.toml but not in requirements-dev.lock: regenerate it"


def test_exact_pins_are_locked_at_the_same_version() -> None:
    for requirement in _declared():
        if "==" in requirement:
            name, pinned = requirement.split("==")
            name = _normal(name.split("[")[0])
            assert LOCKED[name] == pinned.strip(), (
                f"{name}: pyproject pins {pinned}, the lock has {LOCKED[name]}"
            )


def test_every_entry_has_hashes_and_no_index_is_named() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK_TEXT.split("\n\n", 1)[1])
    for block in blocks:
        if _ENTRY.match(block):
            assert "--hash=sha256:" in block, f"no hash for {block.splitlines()[0]}"
    assert not re.search(r"^--(extra-)?index-url|^--find-links", LOCK_TEXT, re.MULTILINE)
