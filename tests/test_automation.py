"""The portal path: requests are validated before Pulumi is touched, and the config map written to
the workspace parses back to the same config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.app import automation
from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.loader import model_input, parse_config
from tests.support.stacks import STACKS, stack_file


@pytest.mark.parametrize("stack", STACKS)
def test_config_map_round_trips(stack: str) -> None:
    loaded = automation.validated_request(stack, stack_file(stack))
    config_map = automation.pulumi_config_map(loaded.config)
    assert config_map["aws:region"] == "us-east-2"
    assert set(config_map) == {"aws:region"} | {
        f"hpc:{k}" for k in type(loaded.config).model_fields if k != "region"
    }
    # What the program will read back from Pulumi config (objects as JSON strings) is the same config.
    import json

    raw = {k: (v if k in ("aws:region", "hpc:environment") else json.loads(v)) for k, v in config_map.items()}
    assert parse_config(model_input(raw), "Pulumi.x.yaml").config == loaded.config


def test_fails_bad_request_before_pulumi_is_touched(
    monkeypatch: pytest.MonkeyPatch, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    import pulumi.automation as auto

    def must_not_run(**_: Any) -> None:
        raise AssertionError("the workspace was touched before validation")

    monkeypatch.setattr(auto, "create_or_select_stack", must_not_run)
    config = stack_config("prod")
    config["hpc:storage"]["scratch"]["capacity_gib"] = 1000
    with pytest.raises(ConfigError) as raised:
        automation.up("portal-team-a", config)
    assert raised.value.lines == [
        "Pulumi.portal-team-a.yaml: hpc:storage.scratch.capacity_gib: 1000 is not a valid SCRATCH_2 size; "
        "use 1200, 2400 or a multiple of 2400"
    ]


def test_valid_request_reaches_the_workspace_with_config_and_policy_pack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi.automation as auto

    calls: dict[str, Any] = {}

    class FakeStack:
        def set_all_config(self, config: dict[str, auto.ConfigValue]) -> None:
            calls["config"] = {k: v.value for k, v in config.items()}

        def preview(self, **options: Any) -> str:
            calls["preview"] = options
            return "previewed"

    def create_or_select_stack(**kwargs: Any) -> FakeStack:
        calls["stack"] = kwargs
        return FakeStack()

    monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
    result = automation.up("dev", stack_file("dev"), preview_only=True)
    assert result == "previewed"
    assert calls["stack"] == {"stack_name": "dev", "work_dir": str(automation.PROJECT_DIR)}
    assert calls["config"]["hpc:environment"] == "dev"
    assert calls["preview"]["policy_packs"] == [str(automation.POLICY_PACK_DIR)]
