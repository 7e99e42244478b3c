"""Offline plans: the real program under Pulumi's mock engine, no credentials needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpc_platform.app.offline.engine import Plan, PlannedResource, run_offline
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


def plan_stack_file(path: Path) -> StackPlan:
    """Validate the stack file (raising `ConfigError`), then plan it."""
    # Read once (YAML parsing is slow): validated as `load_stack_file` does, and handed to the engine.
    config = read_stack_file(path)
    loaded = parse_config(model_input(config), path.name)
    plan = run_offline(
        program,
        stack=stack_name_for(path),
        config=config,
        region=loaded.config.region,
    )
    return StackPlan(plan, loaded)


__all__ = ["Plan", "PlannedResource", "StackPlan", "plan_stack_file", "run_offline", "stack_name_for"]
