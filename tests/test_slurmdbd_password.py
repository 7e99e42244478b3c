"""The Slurm accounting password survives every place it is written to.

ParallelCluster's cookbook reads the password from Secrets Manager and appends it, unquoted, to
slurmdbd's config as `StoragePass=<password>`; RDS takes it as the master password. Slurm's
config parser (`src/common/parse_config.c`) ends an unquoted value at whitespace, starts a comment
at an unescaped `#`, reads a leading `"` as quoting and drops `\\` as an escape. The cookbook's
update script expands the value unquoted in a shell test, where `*`, `?` and `[` are glob
patterns. RDS refuses `/`, `@`, `"` and spaces.
"""

from __future__ import annotations

import re
import string

import pytest

from hpc_platform.domain.config.models import AccountingConfig
from hpc_platform.domain.limits import SLURMDBD_PASSWORD_FORBIDDEN, SLURMDBD_PASSWORD_SPECIALS
from tests.support.stacks import STACKS, planned

PASSWORD = "random:index/randomPassword:RandomPassword"
# Slurm's key=value pattern for one config line (parse_config.c `keyvalue_re`), after comments go.
SLURM_KEY_VALUE = re.compile(r'^\s*([A-Za-z0-9_.]+)\s*([-*+/]?)=\s*(("([^"]*)")|([^\s]+))(\s|$)')
RDS_REFUSED = set('/@" ')
SHELL_GLOB = set("*?[")


def slurm_conf_value(line: str) -> str | None:
    """The value Slurm reads from one `Key=value` line, as its parser treats comments and escapes."""
    kept = []
    escaped = False
    for char in line:
        if char == "#" and not escaped:
            break
        escaped = char == "\\" and not escaped
        kept.append(char)
    text = "".join(kept).replace("\\", "")
    match = SLURM_KEY_VALUE.match(text)
    if match is None:
        return None
    return match.group(5) if match.group(4) else match.group(6)


def test_the_restated_slurm_rule_catches_a_comment() -> None:
    assert slurm_conf_value("StoragePass=abc#def") == "abc"
    assert slurm_conf_value("StoragePass=abc-def") == "abc-def"


@pytest.mark.parametrize("stack", STACKS)
def test_every_character_the_generated_password_can_hold_survives_slurmdbd_conf(stack: str) -> None:
    (password,) = planned(stack).plan.of_type(PASSWORD)
    inputs = password.inputs
    alphabet = set(string.ascii_letters + string.digits)
    if inputs.get("special", True):
        alphabet |= set(inputs["overrideSpecial"])
    for char in sorted(alphabet):
        value = f"a{char}{char}b"
        assert slurm_conf_value(f"StoragePass={value}") == value, f"{stack}: {char!r} breaks StoragePass"
    assert not alphabet & RDS_REFUSED
    assert not alphabet & SHELL_GLOB


def test_the_allowed_and_forbidden_sets_are_disjoint_and_cover_the_known_breakers() -> None:
    assert not set(SLURMDBD_PASSWORD_SPECIALS) & SLURMDBD_PASSWORD_FORBIDDEN
    assert {"#", "\\", "\t"} | RDS_REFUSED | SHELL_GLOB <= SLURMDBD_PASSWORD_FORBIDDEN


def test_existing_secret_docstring_names_every_forbidden_character() -> None:
    """The value of an existing secret is unknown at plan time: its field must say what to avoid."""
    doc = AccountingConfig.model_fields["existing_password_secret_arn"].description or ""
    # Markdown code spans: `c`, or `` c `` for the backtick itself.
    named = {c for c in SLURMDBD_PASSWORD_FORBIDDEN if f"`{c}`" in doc or f"`` {c} ``" in doc}
    missing = sorted(SLURMDBD_PASSWORD_FORBIDDEN - named - set(" \t"))
    assert not missing, f"docstring does not name {missing}"
    assert "whitespace" in doc
