"""The table format the per-domain validator tests share (tests/test_validators_*.py).

A case is (stack, mutation, expected line): the committed stack file `stack`, changed by
`mutation`, must produce `expected` exactly, or a line starting with it when it ends with "…".
Every message names the stack file and the key path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.config import ConfigError, StackConfig
from hpc_platform.domain.config.loader import model_input, parse_config
from hpc_platform.domain.config.validators import Validator

Mutation = Callable[[dict[str, Any]], None]
Case = tuple[str, Mutation, str]
SOURCE = "Pulumi.prod.yaml"


def set_value(path: str, value: Any) -> Mutation:
    """`set_value("hpc:cluster.queues.0.name", "x")`: set a value by dotted path (ints index lists)."""

    def mutate(config: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target: Any = config
        parts: list[Any] = [key, *[int(p) if p.isdigit() else p for p in rest]]
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value

    return mutate


def problems(config: dict[str, Any], source: str = SOURCE) -> list[str]:
    """Error lines of a config that fails, else its warning lines."""
    try:
        loaded = parse_config(model_input(config), source)
    except ConfigError as exc:
        return exc.lines
    return loaded.warning_lines()


def matches(expected: str, line: str) -> bool:
    return line.startswith(expected[:-1]) if expected.endswith("…") else line == expected


def case_ids(cases: list[Case]) -> list[str]:
    return [c[2].split(": ")[1] + ":" + str(i) for i, c in enumerate(cases)]


def check_case(
    stack: str, mutate: Mutation, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config(stack)
    mutate(config)
    found = problems(config)
    assert any(matches(expected, line) for line in found), found


def exercised(
    cases: list[Case], validators: Sequence[Validator], stack_config: Callable[[str], dict[str, Any]]
) -> set[str]:
    """Names of the validators some case makes fail: each validator runs alone on every case, and
    counts when one of its own lines is the case's expected line."""
    catalog = default_catalog()
    names: set[str] = set()
    for stack, mutate, expected in cases:
        config = stack_config(stack)
        mutate(config)
        try:
            parsed = StackConfig.model_validate(model_input(config))
        except ValidationError:
            continue  # a schema-level case: no validator involved
        for validator in validators:
            if any(matches(expected, f.render(SOURCE)) for f in validator.validate(parsed, catalog)):
                names.add(validator.name)
    return names
