"""Immediate feedback on a submitted config: the problems, or the plan, the verdict and the cost.

What `hpcctl validate`, `hpcctl plan` and `hpcctl check` say about a stack file, said about a
portal request in one call and without the Pulumi CLI:

- the config is validated by the same models and validators (`parse_config`); a bad one raises
  `InvalidConfig` with one `Problem` per problem: the key path and the CLI's message without the
  file prefix. The portal is stricter than the CLI in one way: a key this platform does not read
  (`aws:profile`, `pulumi:…`) is an error, not ignored, because a request sets nothing else;
- a valid one is planned by the offline engine (the program under Pulumi's mock monitor), the
  policy pack runs on that plan with the environment's policy config, and the cost estimate comes
  from the bundled price snapshot.

`Assessor` is the warm planner of a service process: everything is imported with this module and
`warm_up()` runs one plan, so a request pays only for its own plan. The offline engine uses
Pulumi's process-global runtime state, so plans run one at a time (`PULUMI_RUNTIME_LOCK`); any
thread may call `assess` (FastAPI runs sync endpoints in a thread pool), but not a thread that is
running an event loop.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpc_platform.app.automation import PROJECT_DIR
from hpc_platform.app.diagram import build_diagram, render_dot, render_mermaid
from hpc_platform.app.offline import PULUMI_RUNTIME_LOCK, PlannedResource, StackPlan, plan_config
from hpc_platform.app.offline.engine import STACK_TYPE
from hpc_platform.app.policy_check import PolicyRun, check_run, counts_line, group, resource_name
from hpc_platform.app.preview import masker, reading_order
from hpc_platform.domain.config import ConfigError, StackConfig
from hpc_platform.domain.config.errors import Finding, key_path, key_path_under
from hpc_platform.domain.config.keys import field_of, stack_key
from hpc_platform.domain.config.loader import (
    LoadedConfig,
    model_input,
    parse_config,
    read_stack_file,
    yaml_problem,
)
from hpc_platform.domain.environments import ENVIRONMENTS, profile
from hpc_platform.domain.pricing import CostEstimate, estimate_monthly_cost, render_cost

WHOLE_BODY = ""
"""The key of a problem with the submitted document as a whole (not JSON, not a mapping, …)."""
JSON_MEDIA_TYPES = frozenset({"application/json", "text/json"})
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


# --- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One problem with a submitted config: where (`hpc:cluster.queues[1].name`; empty for the
    document as a whole) and what, worded as `hpcctl validate` words it."""

    key: str
    message: str

    @classmethod
    def from_finding(cls, finding: Finding) -> Problem:
        return cls(finding.key, finding.text)

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "message": self.message}

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class InvalidConfig(Exception):
    """The submitted config is not valid; `problems` has one entry per problem (HTTP 422)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def to_json(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems]}


class UnsupportedContentType(InvalidConfig):
    """The body is neither JSON nor YAML by its content type (HTTP 415 fits it better than 422)."""


@dataclass(frozen=True)
class Assessment:
    """What a valid config would do: the offline plan, the policy verdict, the cost."""

    environment_kind: str
    resource_count: int
    """Every resource the plan would create, components and the stack included (as `hpcctl plan`
    and `pulumi preview` count them)."""
    plan_summary: dict[str, Any]
    """`{stack, project, resource_count, by_type, components, outputs}`: each component is
    `{type, name, resources, by_type, components}`, where `resources` counts the component and
    everything under it and `by_type` its own (non-component) resources by type token. The stack's
    own `by_type` plus its components' `resources` plus one (the stack) is `resource_count`."""
    verdict: dict[str, Any]
    """`{passes, enforcement, mandatory, advisory, policies, resources, summary}`: `passes` is false
    when a mandatory policy failed; each violation group is `{policy, level, message, resources,
    urns}`; `policies` ran over `resources` registrations; `summary` is `hpcctl check`'s last line."""
    cost: dict[str, Any]
    """The monthly estimate (`hpc_platform.domain.pricing`), its lines and assumptions."""
    stack: str = ""
    warnings: tuple[Problem, ...] = field(default_factory=tuple)
    """What the config validators warn about (key, `warning: …`), then what the program logged."""
    diagram: dict[str, str] = field(default_factory=dict)
    """The architecture drawn from the plan (`hpcctl diagram`'s model) as source text:
    `{dot, mermaid}`. The plan itself is not kept, so this is what the plan view draws from:
    an SVG rendered from the DOT by Graphviz, or the Mermaid text where Graphviz is missing."""

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "environment_kind": self.environment_kind,
            "resource_count": self.resource_count,
            "plan_summary": self.plan_summary,
            "verdict": self.verdict,
            "cost": self.cost,
            "warnings": [w.to_json() for w in self.warnings],
            "diagram": self.diagram,
        }


# --- the request body -----------------------------------------------------------------------------
class _BodyLoader(yaml.SafeLoader):
    """YAML as a request body: dates stay text (as Pulumi reads stack files), and no aliases (a
    few hundred bytes of nested aliases expand to gigabytes when the config is written out) and no
    duplicate keys (the last one would silently win)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted; write the value out", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            key = (key_node.tag, str(key_node.value))
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader: _BodyLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_BodyLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _invalid(message: str, key: str = WHOLE_BODY) -> InvalidConfig:
    return InvalidConfig([Problem(key, message)])


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load(text: str, media: str) -> Any:
    if media in JSON_MEDIA_TYPES or media.endswith("+json"):
        try:
            return json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
        except json.JSONDecodeError as exc:
            raise _invalid(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except ValueError as exc:
            raise _invalid(f"not valid JSON: {exc}") from None
    if media in YAML_MEDIA_TYPES or media.endswith("+yaml"):
        try:
            return yaml.load(text, Loader=_BodyLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise _invalid(yaml_problem(exc)) from None
    raise UnsupportedContentType(
        [
            Problem(
                WHOLE_BODY,
                f"content type {media or '(none)'!r} is not accepted; "
                "send application/json or application/yaml",
            )
        ]
    )


def parse_body(text: str | bytes, content_type: str) -> dict[str, Any]:
    """A submitted body → the stack file's `config:` mapping. JSON or YAML by the content type;
    either the mapping itself or a whole stack file (`config:` and nothing else)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("the body is not UTF-8 text") from None
    try:
        document = _load(text, media)
    except RecursionError:
        raise _invalid("the body is nested too deeply") from None
    if document is None:
        raise _invalid("the body is empty; send a stack file's `config:` mapping")
    if not isinstance(document, dict):
        raise _invalid(
            f"the body is a {_kind(document)}; send a mapping of config keys (`hpc:cluster`, "
            "`aws:region`, …) to values, or a stack file with a `config:` mapping"
        )
    if "config" in document:  # a whole stack file
        others = [
            Problem(str(k), "a stack file sent to the portal holds only `config:`")
            for k in document
            if k != "config"
        ]
        if others:
            raise InvalidConfig(others)
        document = document["config"]
        if not isinstance(document, dict):
            raise _invalid(
                f"`config:` is a {_kind(document)}; it must be a mapping of config keys to values", "config"
            )
    return document


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


# --- validation -----------------------------------------------------------------------------------
def known_keys() -> list[str]:
    """The stack-file keys this platform reads: `aws:region`, `hpc:cluster`, …"""
    return sorted(stack_key(name) for name in StackConfig.model_fields)


def _value_problems(value: Any, head: str, loc: tuple[str | int, ...]) -> list[Problem]:
    """Values a stack file can hold: JSON's (no binary, no non-finite numbers, text keys)."""
    if isinstance(value, dict):
        problems: list[Problem] = []
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(key_path_under(head, loc), f"key {key!r} is not text; quote it"))
                continue
            problems.extend(_value_problems(item, head, (*loc, key)))
        return problems
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _value_problems(item, head, (*loc, i))]
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(key_path_under(head, loc), f"{value!r} is not a number a stack file can hold")]
    if isinstance(value, str | int | float | bool) or value is None:
        return []
    return [Problem(key_path_under(head, loc), f"a {type(value).__name__} is not a config value; use text")]


def _key_problems(config: Mapping[Any, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in config.items():
        if not isinstance(key, str) or field_of(key) is None:
            close = difflib.get_close_matches(str(key), known_keys(), n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"a request sets only {', '.join(known_keys())}"
            )
            problems.append(Problem(str(key), f"unknown key; {hint}"))
            continue
        problems.extend(_value_problems(value, key, ()))
    return problems


def validate(stack: str, config: Mapping[str, Any], kind: str | None = None) -> LoadedConfig:
    """The config parsed and validated as the CLI does it, or `InvalidConfig`. With `kind`, the
    config's `hpc:environment` must be that kind (a request cannot pick a laxer policy level)."""
    if not isinstance(config, Mapping):
        raise _invalid(f"the config is a {_kind(config)}; it must be a mapping of config keys to values")
    problems = _key_problems(config)
    if problems:
        raise InvalidConfig(problems)
    try:
        loaded = parse_config(model_input(dict(config)), f"Pulumi.{stack}.yaml")
    except ConfigError as exc:
        raise InvalidConfig([Problem.from_finding(f) for f in exc.findings]) from None
    if kind is not None and loaded.config.environment != kind:
        raise _invalid(
            f"{loaded.config.environment!r} does not match this environment, which is {kind}; "
            f"set it to {kind!r}",
            key_path(("environment",)),
        )
    return loaded


# --- the summaries --------------------------------------------------------------------------------
def plan_summary(stack_plan: StackPlan) -> dict[str, Any]:
    """The component tree with resource counts (see `Assessment.plan_summary`)."""
    plan = stack_plan.plan
    children: dict[str, list[PlannedResource]] = {}
    for resource in plan.resources:
        children.setdefault(resource.parent or plan.stack_urn, []).append(resource)

    def node(urn: str, token: str, name: str) -> dict[str, Any]:
        by_type: Counter[str] = Counter()
        components: list[PlannedResource] = []
        pending = list(children.get(urn, []))
        while pending:  # a resource's own children count with it, a component's with the component
            child = pending.pop()
            if child.custom:
                by_type[child.type] += 1
                pending.extend(children.get(child.urn, []))
            else:
                components.append(child)
        nested = [node(c.urn, c.type, c.name) for c in sorted(components, key=reading_order)]
        return {
            "type": token,
            "name": name,
            "resources": 1 + sum(by_type.values()) + sum(c["resources"] for c in nested),
            "by_type": dict(sorted(by_type.items())),
            "components": nested,
        }

    root = node(plan.stack_urn, STACK_TYPE, f"{plan.project}-{plan.stack}")
    mask = masker(plan)
    return {
        "stack": plan.stack,
        "project": plan.project,
        "resource_count": plan.resource_count,
        "by_type": root["by_type"],
        "components": root["components"],
        "outputs": {key: mask(plan.outputs[key]) for key in sorted(plan.outputs)},
    }


def verdict(run: PolicyRun, enforcement: str) -> dict[str, Any]:
    """The policy pack's verdict (see `Assessment.verdict`), grouped as `hpcctl check` groups it."""
    groups = [
        {
            "policy": g.policy,
            "level": g.level,
            "message": g.message,
            "resources": [resource_name(urn) for urn in g.urns],
            "urns": g.urns,
        }
        for g in group(run.violations)
    ]
    mandatory = [g for g in groups if g["level"] == "mandatory"]
    return {
        "passes": not mandatory,
        "enforcement": enforcement,
        "mandatory": mandatory,
        "advisory": [g for g in groups if g["level"] != "mandatory"],
        "policies": run.policies,
        "resources": run.resources,
        "summary": counts_line(run),
    }


def _usd(value: float) -> float:
    return round(value, 2)


def cost_summary(estimate: CostEstimate, budget_usd: float | None) -> dict[str, Any]:
    """The estimate as `hpcctl plan` reports it, in numbers (and its text, `report`)."""
    snapshot = estimate.snapshot
    return {
        "currency": snapshot.currency,
        "monthly_usd": _usd(estimate.monthly_usd),
        "fixed_usd": _usd(estimate.fixed_usd),
        "ceiling_usd": _usd(estimate.ceiling_usd),
        "lines": [
            {
                "item": line.item,
                "monthly_usd": _usd(line.monthly_usd),
                "detail": line.detail,
                "fixed_usd": None if line.fixed_usd is None else _usd(line.fixed_usd),
                "ceiling_usd": None if line.ceiling_usd is None else _usd(line.ceiling_usd),
            }
            for line in estimate.lines
        ],
        "assumptions": {
            "utilization": estimate.utilization,
            "spot_discount": snapshot.spot_discount,
            "hours_per_month": snapshot.hours_per_month,
        },
        "prices": {"region": snapshot.region, "as_of": snapshot.as_of, "source": snapshot.source},
        "region": estimate.region,
        "unpriced": list(estimate.unpriced),
        "budget_usd": budget_usd,
        "budget_utilization": None if budget_usd is None else estimate.utilization_within(budget_usd),
        "usage_rates_usd": {
            "s3_standard_gb_month": snapshot.s3_standard_gb_month,
            "efs_standard_gb_month": snapshot.efs_standard_gb_month,
        },
        "report": render_cost(estimate, budget_usd),
    }


def _warnings(stack_plan: StackPlan) -> tuple[Problem, ...]:
    own = [Problem.from_finding(f) for f in stack_plan.loaded.warnings]
    # warning_lines() lists the config's own warnings first, then the program's other messages.
    logged = stack_plan.warning_lines()[len(own) :]
    return (*own, *(Problem(WHOLE_BODY, line) for line in logged))


# --- the warm planner -----------------------------------------------------------------------------
class Assessor:
    """Validate → offline plan → policy verdict → cost, warm and one plan at a time.

    Create one per service process and call `warm_up()` at start-up. Thread-safe: plans are
    serialized on `PULUMI_RUNTIME_LOCK` (validation is not, so a bad config is answered at once).
    """

    def __init__(self, project_dir: Path | None = None) -> None:
        self.project_dir = project_dir or PROJECT_DIR
        self.plans = 0
        """Plans run so far (a warm service's count grows by one per valid request)."""

    def warm_up(self, config: Mapping[str, Any] | None = None, stack: str = "dev") -> Assessment | None:
        """Run one plan so the first request does not pay for the engine's first run (lazy imports,
        caches). Without `config`, the project's `Pulumi.dev.yaml`; None when there is none."""
        if config is None:
            path = self.project_dir / "Pulumi.dev.yaml"
            if not path.is_file():
                return None
            config = read_stack_file(path)
        return self.assess(stack, config)

    def warm_up_all(self) -> int:
        """`warm_up` with each of the project's stack files (dev, staging, prod): each kind loads
        provider modules the others may not, so none leaves its first request to pay for them.
        Returns how many were planned."""
        planned = 0
        for kind in ENVIRONMENTS:
            path = self.project_dir / f"Pulumi.{kind}.yaml"
            if path.is_file():
                self.warm_up(read_stack_file(path), kind)
                planned += 1
        return planned

    def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> Assessment:
        """Raises `InvalidConfig`; `kind` (dev, staging, prod) is the environment's, when known."""
        _refuse_event_loop_thread()
        loaded = validate(stack, config, kind)
        environment = loaded.config.environment
        with PULUMI_RUNTIME_LOCK:
            try:
                stack_plan = plan_config(stack, config)
            except ConfigError as exc:  # validated above; the program's own load says the same
                raise InvalidConfig([Problem.from_finding(f) for f in exc.findings]) from None
            # Not inside the try: a broken policy config is the service's fault, not the request's.
            run = check_run(stack_plan)
            self.plans += 1
        budget = loaded.config.observability.budget
        return Assessment(
            environment_kind=environment,
            resource_count=stack_plan.plan.resource_count,
            plan_summary=plan_summary(stack_plan),
            verdict=verdict(run, profile(environment).policy_enforcement),
            cost=cost_summary(
                estimate_monthly_cost(loaded.config), budget.monthly_limit_usd if budget else None
            ),
            stack=stack,
            warnings=_warnings(stack_plan),
            diagram=diagram_sources(stack_plan),
        )


def diagram_sources(stack_plan: StackPlan) -> dict[str, str]:
    """The plan's architecture diagram as DOT and Mermaid source (see `Assessment.diagram`)."""
    drawn = build_diagram(stack_plan.plan)
    return {"dot": render_dot(drawn), "mermaid": render_mermaid(drawn)}


def _refuse_event_loop_thread() -> None:
    """The engine pumps the calling thread's event loop: inside a running loop (an `async def`
    endpoint) it would stall every other request. Such callers use `run_in_threadpool`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("Assessor.assess blocks; call it from a worker thread, not an event loop")


# --- what changes ---------------------------------------------------------------------------------
_ABSENT = object()


def config_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a request changes, leaf by leaf: `[{key, old, new, change}]` with key paths as messages
    write them (`hpc:cluster.queues[1].max_count`); `change` is added, removed or changed, and an
    added or removed mapping or list item is one entry holding all of it (`None` on the other side).
    Order: the new config's, then what only the old one had."""
    changes: list[dict[str, Any]] = []
    _diff_mapping(old or {}, new, None, (), changes)
    return changes


def _diff_mapping(
    old: Mapping[Any, Any],
    new: Mapping[Any, Any],
    head: str | None,
    loc: tuple[str | int, ...],
    changes: list[dict[str, Any]],
) -> None:
    for key in [*new, *(k for k in old if k not in new)]:
        if head is None:
            _diff(old.get(key, _ABSENT), new.get(key, _ABSENT), str(key), (), changes)
        else:
            _diff(old.get(key, _ABSENT), new.get(key, _ABSENT), head, (*loc, str(key)), changes)


def _diff(old: Any, new: Any, head: str, loc: tuple[str | int, ...], changes: list[dict[str, Any]]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        _diff_mapping(old, new, head, loc, changes)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else _ABSENT
            after = new[index] if index < len(new) else _ABSENT
            _diff(before, after, head, (*loc, index), changes)
        return
    if _canonical(old) == _canonical(new):
        return
    change = "added" if old is _ABSENT else "removed" if new is _ABSENT else "changed"
    changes.append(
        {
            "key": key_path_under(head, loc),
            "old": None if old is _ABSENT else old,
            "new": None if new is _ABSENT else new,
            "change": change,
        }
    )


def _canonical(value: Any) -> str:
    """Equal as a stack file holds them: `1` and `1.0` differ, as do `true` and `1`."""
    if value is _ABSENT:
        return "\0absent"
    return json.dumps(value, sort_keys=True, default=str)


__all__ = [
    "Assessment",
    "Assessor",
    "InvalidConfig",
    "Problem",
    "UnsupportedContentType",
    "config_diff",
    "cost_summary",
    "diagram_sources",
    "known_keys",
    "parse_body",
    "plan_summary",
    "validate",
    "verdict",
]
