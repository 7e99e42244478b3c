"""The Automation API entry point for the self-service portal.

The portal hands us a stack name and a config (a dict shaped like a stack file's `config:` map, or
a path to one). We validate it with the same models and validators `pulumi up` uses, before the
Pulumi workspace is touched, then run the same program through the Pulumi CLI's engine with the
policy pack attached. A bad request never reaches Pulumi and nothing is half-written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    them: `{'aws:region': 'us-east-2', 'hpc:network': '{"vpc_cidr": ...}'}`."""
    values: dict[str, str] = {}
    dumped = config.model_dump(mode="json", exclude_defaults=False)
    for name, value in dumped.items():
        values[stack_key(name)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return values


def validated_request(stack: str, config: dict[str, Any] | Path) -> LoadedConfig:
    """Parse and validate a portal request; raises `ConfigError` with one line per problem."""
    raw = read_stack_file(config) if isinstance(config, Path) else config
    return parse_config(model_input(raw), f"Pulumi.{stack}.yaml")


def up(
    stack: str,
    config: dict[str, Any] | Path,
    on_output: Callable[[str], Any] = print,
    preview_only: bool = False,
) -> Any:
    """Validate, then `pulumi preview`/`up` the stack with the policy pack. Needs the Pulumi CLI
    and AWS credentials; returns the Automation API's result."""
    import pulumi.automation as auto

    loaded = validated_request(stack, config)
    workspace_stack = auto.create_or_select_stack(stack_name=stack, work_dir=str(PROJECT_DIR))
    workspace_stack.set_all_config(
        {key: auto.ConfigValue(value) for key, value in pulumi_config_map(loaded.config).items()}
    )
    policy_config = POLICY_PACK_DIR / "config" / f"{loaded.config.environment}.json"
    options: dict[str, Any] = {
        "policy_packs": [str(POLICY_PACK_DIR)],
        "policy_pack_configs": [str(policy_config)] if policy_config.is_file() else None,
        "on_output": on_output,
    }
    if preview_only:
        return workspace_stack.preview(**options)
    return workspace_stack.up(**options)
