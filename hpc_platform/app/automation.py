"""The stack config as the Automation API sets it: validated with the same models and validators
`pulumi up` uses, then mapped to Pulumi config keys. The portal's runner
(`hpc_platform.app.portal.runner`) runs the operations; a bad request never reaches Pulumi.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pulumi.automation import ConfigValue
from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

from hpc_platform.domain.config import StackConfig
from hpc_platform.domain.config.keys import stack_key
from hpc_platform.domain.config.loader import (
    LoadedConfig,
    model_input,
    parse_config,
    read_stack_file,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
POLICY_PACK_DIR = PROJECT_DIR / "policy"


def pulumi_config_map(config: StackConfig) -> dict[str, str]:
    """The stack config as Pulumi config keys → values (objects as JSON), the way the CLI stores
    them: `{'aws:region': 'us-east-2', 'hpc:network': '{"vpc_cidr": ...}'}`. Secret fields hold
    their real values here: `config_values` marks them secret."""
    values: dict[str, str] = {}
    dumped = config.model_dump(mode="json", exclude_defaults=False)
    for name, value in dumped.items():
        if name in secret_fields(type(config)):
            value = _revealed(getattr(config, name))
        values[stack_key(name)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return values


def config_values(config: StackConfig) -> dict[str, ConfigValue]:
    """`pulumi_config_map` as the SDK's `set_all_config` takes it: a key whose field holds a
    `SecretStr` anywhere is set as a Pulumi secret (encrypted in the stack file and the state)."""
    secret = {stack_key(name) for name in secret_fields(type(config))}
    return {key: ConfigValue(value, secret=key in secret) for key, value in pulumi_config_map(config).items()}


def secret_fields(model: type[BaseModel]) -> set[str]:
    """The model's top-level fields that hold a `SecretStr` somewhere inside."""
    return {name for name, info in model.model_fields.items() if _holds_secret(info.annotation, set())}


def _holds_secret(annotation: Any, seen: set[type[BaseModel]]) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(_holds_secret(f.annotation, seen) for f in annotation.model_fields.values())
    if typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        return any(_holds_secret(arg, seen) for arg in typing.get_args(annotation))
    return False


def _revealed(value: Any) -> Any:
    """JSON-ready like `model_dump(mode="json")`, but with secrets' real values."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _revealed(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    return to_jsonable_python(value)


def validated_request(stack: str, config: dict[str, Any] | Path) -> LoadedConfig:
    """Parse and validate a portal request; raises `ConfigError` with one line per problem."""
    raw = read_stack_file(config) if isinstance(config, Path) else config
    return parse_config(model_input(raw), f"Pulumi.{stack}.yaml")
