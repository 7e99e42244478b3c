"""Read a stack's `hpc:*` and `aws:region` config, parse it into `StackConfig`, run validators.

Two sources, one parser: a stack file on disk (`hpcctl`, the offline engine) and the Pulumi
runtime config (the real engine and the Automation API). Either way a problem becomes a
`ConfigError` whose lines name the stack file and the exact key path.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpc_platform.domain.catalog import InstanceCatalog, default_catalog
from hpc_platform.domain.config.errors import ConfigError, Finding, Loc
from hpc_platform.domain.config.keys import NAMESPACE, field_of, split_key, stack_key
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators import run_validators
from hpc_platform.domain.limits import (
    CLOUDTRAIL_TRAIL_ARN_PATTERN,
    CONFIG_RECORDER_NAME_PATTERN,
    IAM_ROLE_ARN_PATTERN,
    PCLUSTER_CLUSTER_NAME_PATTERN,
    PCLUSTER_CLUSTER_NAME_RULE,
    PCLUSTER_SLURM_NAME_PATTERN,
    PCLUSTER_SLURM_NAME_RULE,
)

# Human wording for the schema's regular expressions.
PATTERN_DESCRIPTIONS = {
    PCLUSTER_SLURM_NAME_PATTERN: "is not a valid ParallelCluster queue/compute-resource name: "
    f"{PCLUSTER_SLURM_NAME_RULE}",
    PCLUSTER_CLUSTER_NAME_PATTERN: f"is not a valid cluster name; {PCLUSTER_CLUSTER_NAME_RULE}",
    IAM_ROLE_ARN_PATTERN: "is not an IAM role ARN; use the API stack's ParallelClusterApiUserRole "
    "output (arn:aws:iam::<account>:role/PCAPIUserRole-…)",
    CLOUDTRAIL_TRAIL_ARN_PATTERN: "is not a CloudTrail trail ARN; use "
    "arn:aws:cloudtrail:<region>:<account>:trail/<name> (the trail's ARN, not its name)",
    CONFIG_RECORDER_NAME_PATTERN: "is not an AWS Config recorder name: 1 to 256 letters, digits, "
    "'.', '_' or '-'",
}


@dataclass(frozen=True)
class LoadedConfig:
    config: StackConfig
    source: str
    """The stack file name messages refer to, e.g. `Pulumi.prod.yaml`."""
    warnings: list[Finding]

    def warning_lines(self) -> list[str]:
        return [w.render(self.source) for w in self.warnings]


def stack_file_for(stack: str, project_dir: Path | None = None) -> Path:
    return (project_dir or Path.cwd()) / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file, as Pulumi would read it."""
    source = path.name
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(source, [Finding((), f"cannot read the stack file ({exc.strerror})")]) from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Finding((), yaml_problem(exc))]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ConfigError(source, [Finding((), "a stack file is a mapping with a `config:` mapping")])
    return dict(document.get("config") or {})


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`not valid YAML at line 3, column 5: <what the parser found>`."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return f"not valid YAML{where}: {problem}"


def model_input(stack_config: dict[str, Any]) -> dict[str, Any]:
    """`{'hpc:network': …, 'aws:region': …}` → `{'network': …, 'region': …}`."""
    values: dict[str, Any] = {}
    for key, value in stack_config.items():
        field = field_of(key)
        if field is not None:
            values[field] = value
    return values


def parse_config(values: dict[str, Any], source: str, catalog: InstanceCatalog | None = None) -> LoadedConfig:
    """Schema first; when the shape is right, the cross-field and catalog validators."""
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(source, [_finding(error) for error in exc.errors()]) from None
    findings = run_validators(config, catalog or default_catalog())
    errors = [f for f in findings if f.level == "ERROR"]
    if errors:
        raise ConfigError(source, errors)
    return LoadedConfig(config, source, [f for f in findings if f.level != "ERROR"])


def load_stack_file(path: Path, catalog: InstanceCatalog | None = None) -> LoadedConfig:
    return parse_config(model_input(read_stack_file(path)), path.name, catalog)


def load_pulumi_config(catalog: InstanceCatalog | None = None) -> LoadedConfig:
    """Inside a Pulumi program: the same parse, from the engine's config for this stack."""
    import pulumi

    values: dict[str, Any] = {}
    for field in StackConfig.model_fields:
        namespace, name = split_key(stack_key(field))
        raw = pulumi.Config(namespace).get(name)
        if raw is not None:
            # Our keys hold objects, which the engine hands over as JSON; another package's are text.
            values[field] = _json_or_text(raw) if namespace == NAMESPACE else raw
    return parse_config(values, f"Pulumi.{pulumi.get_stack()}.yaml", catalog)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


# --- pydantic errors → findings ---------------------------------------------------------------
def _finding(error: Any) -> Finding:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
        return Finding(loc, f"unknown key{hint}")
    if kind == "missing":
        return Finding(loc, "is required")
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        described = PATTERN_DESCRIPTIONS.get(pattern)
        if described:
            return Finding(loc, f"{error.get('input')!r} {described}")
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and not message.startswith(repr(value)):
        message = f"{value!r}: {message}"
    return Finding(loc, message)


def _allowed_keys(loc: Loc) -> list[str]:
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    return sorted(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None
