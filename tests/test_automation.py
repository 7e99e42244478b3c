"""The config the Automation API sets: validated before Pulumi is touched, and the config map
written to the workspace parses back to the same config; secret fields become Pulumi secrets."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, SecretStr

from hpc_platform.app import automation
from hpc_platform.domain.config import ConfigError, StackConfig
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
    raw = {k: (v if k in ("aws:region", "hpc:environment") else json.loads(v)) for k, v in config_map.items()}
    assert parse_config(model_input(raw), "Pulumi.x.yaml").config == loaded.config


def test_the_stack_schema_has_no_secret_fields_today() -> None:
    values = automation.config_values(automation.validated_request("dev", stack_file("dev")).config)
    assert not [key for key, value in values.items() if value.secret]


class _Credentials(BaseModel):
    user: str
    token: SecretStr


class _WithSecret(StackConfig):
    """The stack schema plus a nested secret, as a field holding a token would add."""

    credentials: _Credentials | None = None


def test_secret_fields_are_set_as_secrets_with_their_real_values() -> None:
    base = automation.validated_request("dev", stack_file("dev")).config
    config = _WithSecret(**dict(base), credentials=_Credentials(user="svc", token=SecretStr("s3cr3t")))
    assert automation.secret_fields(_WithSecret) == {"credentials"}
    values = automation.config_values(config)
    assert values["hpc:credentials"].secret
    assert json.loads(values["hpc:credentials"].value) == {"user": "svc", "token": "s3cr3t"}
    assert not values["hpc:cluster"].secret


def test_fails_bad_request_with_one_line_per_problem() -> None:
    config = {"aws:region": "us-east-2", "hpc:environment": "dev"}
    with pytest.raises(ConfigError) as raised:
        automation.validated_request("portal-team-a", config)
    assert all(line.startswith("Pulumi.portal-team-a.yaml: hpc:") for line in raised.value.lines)
