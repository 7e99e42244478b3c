"""The configuration reference is generated from the models; the committed copy must be current."""

from __future__ import annotations

from hpc_platform.domain.config.docs import render_config_reference
from tests.support.stacks import REPO_ROOT


def test_configuration_reference_is_up_to_date() -> None:
    committed = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert committed == render_config_reference(), (
        "docs/configuration.md is stale: run "
        "`python -m hpc_platform.domain.config.docs > docs/configuration.md`"
    )


def test_every_field_is_documented() -> None:
    reference = render_config_reference()
    undocumented = [
        line for line in reference.splitlines() if line.startswith("| `") and line.endswith("|  |")
    ]
    assert undocumented == []
