"""Property: any mutation of a valid stack config either validates or produces a clean
ConfigError whose every line names the stack file and a key path — never another exception."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.loader import model_input, parse_config, read_stack_file
from tests.support.fuzz import examples
from tests.support.stacks import stack_file

BASES = {stack: read_stack_file(stack_file(stack)) for stack in ("dev", "staging", "prod")}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["x2iezn.32xlarge", "hpc6a.48xlarge", "SPOT", "10.0.0.0/8", "us-east-2z", "default", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    config = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(config)))
        parent: Any = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return config


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_mutations_validate_or_fail_cleanly(config: dict[str, Any]) -> None:
    try:
        parse_config(model_input(config), "Pulumi.fuzz.yaml")
    except ConfigError as exc:
        assert exc.lines
        for line in exc.lines:
            assert line.startswith("Pulumi.fuzz.yaml: hpc") or line.startswith("Pulumi.fuzz.yaml: aws:region")
            assert "\n" not in line and "Traceback" not in line
