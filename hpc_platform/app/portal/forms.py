"""The request form's fields, derived from the config models: which keys of a stack config the
page offers as fields (queues, instance types, node counts, Lustre sizes, the budget), their
labels, help text, input types and bounds, and how a submitted field lands back in the config.

A field's name is its key path as messages write it (`hpc:cluster.queues[1].name`), so a problem
from the validators is shown next to the field of the same key, with no mapping table to keep.
Values arrive as text; a field that should be a number and is not is left as text, so the
validators report it with the CLI's own message.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel

from hpc_platform.domain.config.models import (
    BudgetConfig,
    ClusterConfig,
    ComputeResourceConfig,
    HeadNodeConfig,
    PersistentLustreConfig,
    QueueConfig,
    ScratchLustreConfig,
)

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_HEAD = re.compile(r"^([a-z]+:[A-Za-z_][A-Za-z0-9_]*)")


class PathError(ValueError):
    """A key path the form does not understand (not one it rendered)."""


def parse_path(key: str) -> tuple[str, list[str | int]]:
    """`hpc:cluster.queues[1].name` -> (`hpc:cluster`, ["queues", 1, "name"])."""
    head = _HEAD.match(key)
    if head is None:
        raise PathError(f"{key!r} is not a config key path")
    steps: list[str | int] = []
    rest = key[head.end() :]
    position = 0
    for match in _STEP.finditer(rest):
        if match.start() != position:
            raise PathError(f"{key!r} is not a config key path")
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if position != len(rest):
        raise PathError(f"{key!r} is not a config key path")
    return head.group(1), steps


def get_path(config: Mapping[str, Any], key: str) -> Any:
    head, steps = parse_path(key)
    value: Any = config.get(head)
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
    return value


def set_path(config: dict[str, Any], key: str, value: Any) -> None:
    """Set an existing leaf (the form only renders keys the config has)."""
    head, steps = parse_path(key)
    if not steps:
        config[head] = value
        return
    container: Any = config.get(head)
    for step in steps[:-1]:
        container = container[step] if isinstance(step, int) else container.get(step)
        if container is None:
            raise PathError(f"{key!r} is not in the config")
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(container, list) or last >= len(container):
            raise PathError(f"{key!r} is not in the config")
        container[last] = value
    else:
        if not isinstance(container, dict):
            raise PathError(f"{key!r} is not in the config")
        container[last] = value


@dataclass(frozen=True)
class Field:
    """One input of the form."""

    key: str
    label: str
    help: str
    kind: Literal["text", "int", "float", "select"]
    value: Any
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[str, ...] = ()

    @property
    def dom_id(self) -> str:
        return dom_id(self.key)

    @property
    def input_type(self) -> str:
        return "number" if self.kind in ("int", "float") else "text"

    @property
    def step(self) -> str | None:
        return {"int": "1", "float": "any"}.get(self.kind)


@dataclass(frozen=True)
class Section:
    title: str
    fields: tuple[Field, ...]


def dom_id(key: str) -> str:
    """An element id for a key path (ids cannot hold `:[].`)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def _unwrap(annotation: Any) -> Any:
    """`int | None` -> int; `Annotated[str, ...]` -> str."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return annotation


def _field(model: type[BaseModel], name: str, key: str, value: Any, label: str) -> Field:
    info = model.model_fields[name]
    annotation = _unwrap(info.annotation)
    minimum = maximum = None
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            minimum = float(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Gt):
            minimum = float(meta.gt)  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Le):
            maximum = float(meta.le)  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Lt):
            maximum = float(meta.lt)  # type: ignore[arg-type]
    kind: Literal["text", "int", "float", "select"]
    options: tuple[str, ...] = ()
    if typing.get_origin(annotation) is Literal:
        kind, options = "select", tuple(str(o) for o in typing.get_args(annotation))
    elif annotation is int:
        kind = "int"
    elif annotation is float:
        kind = "float"
    else:
        kind = "text"
    return Field(
        key=key,
        label=label,
        help=info.description or "",
        kind=kind,
        value=value,
        minimum=minimum,
        maximum=maximum,
        options=options,
    )


def _present(config: Mapping[str, Any], key: str) -> bool:
    return get_path(config, key) is not None


def sections(config: Mapping[str, Any]) -> list[Section]:
    """The fields for what `config` holds: cluster size, each queue and its compute resources,
    the Lustre file systems, the budget."""
    out: list[Section] = []

    def add(fields: list[Field], model: type[BaseModel], name: str, key: str, label: str) -> None:
        if _present(config, key):
            fields.append(_field(model, name, key, get_path(config, key), label))

    cluster: list[Field] = []
    add(
        cluster,
        HeadNodeConfig,
        "instance_type",
        "hpc:cluster.head_node.instance_type",
        "Head node instance type",
    )
    add(cluster, ClusterConfig, "max_total_nodes", "hpc:cluster.max_total_nodes", "Max total nodes")
    if cluster:
        out.append(Section("Cluster", tuple(cluster)))
    queues = get_path(config, "hpc:cluster.queues")
    for i, queue in enumerate(queues if isinstance(queues, list) else []):
        base = f"hpc:cluster.queues[{i}]"
        fields: list[Field] = []
        add(fields, QueueConfig, "name", f"{base}.name", "Queue name")
        add(fields, QueueConfig, "capacity_type", f"{base}.capacity_type", "Capacity type")
        resources = queue.get("compute_resources") if isinstance(queue, Mapping) else None
        for j, _ in enumerate(resources if isinstance(resources, list) else []):
            item = f"{base}.compute_resources[{j}]"
            prefix = f"Compute resource {j + 1}: "
            add(
                fields,
                ComputeResourceConfig,
                "instance_type",
                f"{item}.instance_type",
                prefix + "instance type",
            )
            add(fields, ComputeResourceConfig, "min_count", f"{item}.min_count", prefix + "min nodes")
            add(fields, ComputeResourceConfig, "max_count", f"{item}.max_count", prefix + "max nodes")
        name = queue.get("name") if isinstance(queue, Mapping) else None
        out.append(Section(f"Queue {i + 1}" + (f" ({name})" if isinstance(name, str) else ""), tuple(fields)))
    storage: list[Field] = []
    add(
        storage,
        ScratchLustreConfig,
        "capacity_gib",
        "hpc:storage.scratch.capacity_gib",
        "Scratch Lustre size (GiB)",
    )
    add(
        storage,
        PersistentLustreConfig,
        "capacity_gib",
        "hpc:storage.persistent.capacity_gib",
        "Persistent Lustre size (GiB)",
    )
    if storage:
        out.append(Section("Lustre file systems", tuple(storage)))
    budget: list[Field] = []
    add(
        budget,
        BudgetConfig,
        "monthly_limit_usd",
        "hpc:observability.budget.monthly_limit_usd",
        "Monthly budget (USD)",
    )
    if budget:
        out.append(Section("Budget", tuple(budget)))
    return out


def all_fields(config: Mapping[str, Any]) -> list[Field]:
    return [f for section in sections(config) for f in section.fields]


def _typed(text: str, kind: str) -> Any:
    """The form's text as the config value; left as text when it is not a number, so the
    validators say what is wrong."""
    stripped = text.strip()
    try:
        if kind == "int":
            return int(stripped)
        if kind == "float":
            number = float(stripped)
            return int(number) if number.is_integer() and "." not in stripped else number
    except ValueError:
        return text
    return text


def apply_fields(base: Mapping[str, Any], submitted: Mapping[str, str]) -> dict[str, Any]:
    """`base` with the submitted field values set at their key paths. Only fields the form
    renders for `base` are read: anything else in the submission is ignored."""
    config = copy.deepcopy(dict(base))
    for field in all_fields(base):
        if field.key in submitted:
            set_path(config, field.key, _typed(submitted[field.key], field.kind))
    return config


def match_problems(
    problems: Sequence[Mapping[str, str]], fields: Sequence[Field]
) -> tuple[dict[str, list[str]], list[Mapping[str, str]]]:
    """Problems by field key (exact key path), and the ones no field shows."""
    keys = {f.key for f in fields}
    by_field: dict[str, list[str]] = {}
    rest: list[Mapping[str, str]] = []
    for item in problems:
        if item.get("key") in keys:
            by_field.setdefault(item["key"], []).append(item["message"])
        else:
            rest.append(item)
    return by_field, rest
