"""Offline plans: the real program under Pulumi's mock engine, no credentials needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_platform.app.offline.engine import PULUMI_RUNTIME_LOCK, Plan, PlannedResource, run_offline
from hpc_platform.app.program import program
from hpc_platform.domain.config.loader import LoadedConfig, model_input, parse_config, read_stack_file


@dataclass(frozen=True)
class StackPlan:
    plan: Plan
    loaded: LoadedConfig

    def warning_lines(self) -> list[str]:
        """Every warning once: the config's own, then what else the program logged (warnings and
        errors) that is not one of them (the program logs the config warnings too)."""
        lines = self.loaded.warning_lines()
        seen = set(lines)
        for severity, message in self.plan.messages:
            if severity in ("warning", "error") and message not in seen:
                seen.add(message)
                lines.append(message)
        return lines


def stack_name_for(path: Path) -> str:
    """`Pulumi.prod.yaml` → `prod`; any other file name → its stem."""
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")) and name.count(".") >= 2:
        return name.split(".", 1)[1].rsplit(".", 1)[0]
    return path.stem


def plan_config(stack: str, config: Mapping[str, Any], source: str | None = None) -> StackPlan:
    """Validate a stack file's `config:` mapping (raising `ConfigError`; messages name `source`,
    `Pulumi.<stack>.yaml` by default), then plan it."""
    loaded = parse_config(model_input(dict(config)), source or f"Pulumi.{stack}.yaml")
    plan = run_offline(program, stack=stack, config=dict(config), region=loaded.config.region)
    return StackPlan(plan, loaded)


def plan_stack_file(path: Path) -> StackPlan:
    """Validate the stack file (raising `ConfigError`), then plan it."""
    return plan_config(stack_name_for(path), read_stack_file(path), path.name)


__all__ = [
    "PULUMI_RUNTIME_LOCK",
    "Plan",
    "PlannedResource",
    "StackPlan",
    "plan_config",
    "plan_stack_file",
    "run_offline",
    "stack_name_for",
]
