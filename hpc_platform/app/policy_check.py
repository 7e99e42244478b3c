"""The policy verdict of an offline plan (`hpcctl check`, the portal): run the policy pack on the
plan the way the Pulumi engine does.

The engine talks to a policy pack through pulumi-policy's analyzer servicer: `GetAnalyzerInfo`,
`Configure` (the reconciled `--policy-pack-config`), `ConfigureStack` (which stack, preview),
`Analyze` once per resource registration (with its inputs) and `AnalyzeStack` once at the end
(with every resource's outputs). This module builds the same protobuf requests from the offline
plan and calls the same servicer in-process, without a gRPC server. The servicer class is private
to pulumi-policy, which is why the package is pinned exactly (tests/test_policy_pins.py).

Output contract (`--json`): `{"violations": [{"policy", "level", "urn", "message"}]}`, one entry
per violation and resource. The text report groups them: one line per policy and cause.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as pulumi_policy_module
from pulumi_policy.policy import _PolicyAnalyzerServicer

import policy
from hpc_platform.app.offline import Plan, PlannedResource, StackPlan
from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.errors import Finding

POLICY_DIR = Path(policy.__file__).resolve().parent
POLICY_CONFIG_DIR = POLICY_DIR / "config"
STACK_TYPE = "pulumi:pulumi:Stack"
ALL_POLICIES = "all"

_LEVEL_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
_LEVELS = {level.value: level for level in EnforcementLevel}
_PROTO_LEVELS = {name: number for number, name in _LEVEL_NAMES.items()}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}

    def render(self) -> str:
        return f"[{self.level}] {self.policy}: {self.urn or '(stack)'}: {self.message}"


# --- the pack -----------------------------------------------------------------------------------
def policy_servicer() -> Any:
    """The pack's analyzer servicer, built as `PolicyPack.__init__` builds it (minus the server)."""
    from policy.hpc_policies.pack import DESCRIPTION, ENFORCEMENT_LEVEL, PACK_NAME, PACK_VERSION, policies

    return _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, policies(), ENFORCEMENT_LEVEL, None, DESCRIPTION)


# The servicer turns a request's properties into a dict (`json_format.MessageToDict`) once per
# policy: for `Analyze` ~12 times per resource, for `AnalyzeStack` once per stack policy and
# resource; over half of a check's time. The conversion is a pure function of the message and the
# servicer only reads its result (`deserialize_properties` copies every container), so during an
# analysis each message is converted once and the result reused. Everything else is unchanged.
_CONVERTED: ContextVar[dict[int, tuple[Any, Any]] | None] = ContextVar("_CONVERTED", default=None)


class _ConvertOnce:
    """Stands in for `json_format` in pulumi-policy's servicer module: `MessageToDict` of one message
    object is computed once while `_converting_once()` is active; outside it, the original."""

    def __init__(self, original: Any) -> None:
        self._original = original

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        cache = _CONVERTED.get()
        if cache is None or args or kwargs:
            return self._original.MessageToDict(message, *args, **kwargs)
        hit = cache.get(id(message))
        # The cache holds the message itself, so its id cannot be reused by another object.
        if hit is None or hit[0] is not message:
            hit = (message, self._original.MessageToDict(message))
            cache[id(message)] = hit
        return hit[1]


@contextmanager
def _converting_once() -> Iterator[None]:
    current = getattr(pulumi_policy_module, "json_format")  # noqa: B009 (not exported, for mypy)
    if not isinstance(current, _ConvertOnce):
        setattr(pulumi_policy_module, "json_format", _ConvertOnce(current))  # noqa: B010
    token = _CONVERTED.set({})
    try:
        yield
    finally:
        _CONVERTED.reset(token)


class _InProcessContext:
    """Stands in for the gRPC servicer context; the analyzer methods never use it."""

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"policy analyzer aborted ({code}): {details}")

    def set_code(self, code: Any) -> None:
        pass

    def set_details(self, details: str) -> None:
        pass


# --- policy config (what the Pulumi CLI does with --policy-pack-config) ---------------------------
def default_policy_config(environment: str) -> Path:
    return POLICY_CONFIG_DIR / f"{environment}.json"


def read_policy_config(path: Path) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Parse a `--policy-pack-config` file: policy → (enforcement level or None, properties)."""
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(source, [Finding((), f"cannot read the policy config: {exc.strerror}")]) from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, [Finding((), f"not valid JSON: {exc}")]) from None
    if not isinstance(document, dict):
        raise ConfigError(source, [Finding((), "must be a JSON object of policy name → config")])
    parsed: dict[str, tuple[str | None, dict[str, Any]]] = {}
    problems: list[str] = []
    for name, value in document.items():
        if isinstance(value, str):
            level, properties = value, {}
        elif isinstance(value, dict):
            properties = dict(value)
            level = properties.pop("enforcementLevel", None)
        else:
            problems.append(f"{name}: must be an enforcement level or an object, not {value!r}")
            continue
        if level is not None and level not in _LEVELS:
            problems.append(f"{name}: {level!r} is not an enforcement level; use one of {', '.join(_LEVELS)}")
            continue
        parsed[name] = (level, properties)
    if problems:
        raise ConfigError(source, [Finding((), p) for p in problems])
    return parsed


def reconcile_policy_config(
    analyzer_info: Any, given: Mapping[str, tuple[str | None, dict[str, Any]]], source: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every policy's (level, properties): schema defaults, then "all", then per-policy values,
    validated against each policy's config schema — the Pulumi CLI's reconciliation. Stricter
    than the CLI in one way: unknown policy names and properties are errors (they are typos)."""
    schemas: dict[str, dict[str, Any]] = {}
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    for info in analyzer_info.policies:
        schema = json_format.MessageToDict(info.configSchema) if info.HasField("configSchema") else {}
        schemas[info.name] = schema
        defaults = {
            key: spec["default"] for key, spec in schema.get("properties", {}).items() if "default" in spec
        }
        result[info.name] = (_LEVEL_NAMES[info.enforcementLevel], defaults)
    problems: list[str] = []
    all_level = given.get(ALL_POLICIES, (None, {}))[0]
    if all_level is not None:
        result = {name: (all_level, props) for name, (_, props) in result.items()}
    for name, (level, properties) in given.items():
        if name == ALL_POLICIES:
            if properties:
                problems.append(f"{ALL_POLICIES}: takes only an enforcement level")
            continue
        if name not in result:
            problems.append(f"{name}: no such policy in the pack; policies: {', '.join(sorted(result))}")
            continue
        current_level, current = result[name]
        known = schemas[name].get("properties", {})
        for key in properties:
            if key not in known:
                allowed = ", ".join(sorted(known)) or "none (only enforcementLevel)"
                problems.append(f"{name}.{key}: unknown setting; settings: {allowed}")
        result[name] = (level or current_level, {**current, **properties})
    for name, (_, properties) in result.items():
        schema = schemas[name]
        for key, spec in schema.get("properties", {}).items():
            if key in properties:
                problems.extend(f"{name}.{key}: {p}" for p in _schema_problems(properties[key], spec))
        for key in schema.get("required", []):
            if key not in properties:
                problems.append(f"{name}.{key}: required")
    if problems:
        raise ConfigError(source, [Finding((), p) for p in problems])
    return result


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "number": (int, float),
    "integer": (int, float),
}


def _schema_problems(value: Any, spec: Mapping[str, Any]) -> list[str]:
    """The JSON Schema keywords the pack's config schemas use: type, enum, minimum, maximum,
    items, uniqueItems."""
    expected = spec.get("type")
    if isinstance(expected, str):
        types = _JSON_TYPES.get(expected, (object,))
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and expected != "boolean"):
            return [f"{value!r} is not of type {expected}"]
        if expected == "integer" and isinstance(value, float) and not value.is_integer():
            return [f"{value!r} is not an integer"]
    problems: list[str] = []
    if "enum" in spec and value not in spec["enum"]:
        problems.append(f"{value!r} is not one of {', '.join(map(str, spec['enum']))}")
    if "minimum" in spec and isinstance(value, int | float) and value < spec["minimum"]:
        problems.append(f"{value!r} is below the minimum {spec['minimum']}")
    if "maximum" in spec and isinstance(value, int | float) and value > spec["maximum"]:
        problems.append(f"{value!r} is above the maximum {spec['maximum']}")
    if isinstance(value, list):
        if spec.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            problems.append("lists an item more than once")
        if isinstance(spec.get("items"), Mapping):
            for i, item in enumerate(value):
                problems.extend(f"[{i}]: {p}" for p in _schema_problems(item, spec["items"]))
    return problems


def configure_request(config: Mapping[str, tuple[str, dict[str, Any]]]) -> Any:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, properties) in config.items():
        entry = request.policyConfig[name]
        entry.enforcementLevel = _PROTO_LEVELS[level]
        entry.properties.update(properties)
    return request


# --- plan → analyzer requests ---------------------------------------------------------------------
def wire_value(value: Any) -> Any:
    """A plan value as the engine marshals it for analyzers (KeepUnknowns, KeepSecrets): unknowns
    stay the unknown sentinel, secrets keep their signature, resource references become ids/URNs."""
    if isinstance(value, Mapping):
        return {str(k): wire_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    if value is rpc.UNKNOWN or isinstance(value, pulumi.output.Unknown):
        return rpc.UNKNOWN
    if isinstance(value, pulumi.Resource):
        return getattr(value, "_plan_urn", None) or rpc.UNKNOWN
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(wire_value(properties))
    return struct


def stack_urn(plan: Plan) -> str:
    return f"urn:pulumi:{plan.stack}::{plan.project}::{STACK_TYPE}::{plan.project}-{plan.stack}"


def _options(resource: PlannedResource) -> Any:
    return analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent or "")


def _provider(resource: PlannedResource, by_urn: Mapping[str, PlannedResource]) -> Any:
    """The provider resource, when the plan registered it (explicit providers); a reference is
    `urn::id`."""
    if not resource.provider:
        return None
    provider = by_urn.get(resource.provider.rsplit("::", 1)[0])
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
    )


def _stack_outputs(resource: PlannedResource) -> dict[str, Any]:
    """What the engine's state holds as outputs: bridged providers include the id."""
    outputs = dict(resource.outputs)
    if resource.custom and resource.id and "id" not in outputs:
        outputs["id"] = resource.id
    return outputs


def analyze_requests(plan: Plan) -> list[Any]:
    """One AnalyzeRequest per registration, in registration order, starting with the stack."""
    by_urn = {r.urn: r for r in plan.resources}
    requests = [
        analyzer_pb2.AnalyzeRequest(
            type=STACK_TYPE,
            properties=struct_pb2.Struct(),
            urn=stack_urn(plan),
            name=f"{plan.project}-{plan.stack}",
            options=analyzer_pb2.AnalyzerResourceOptions(),
        )
    ]
    for resource in plan.resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=_struct(resource.inputs),
            urn=resource.urn,
            name=resource.name,
            options=_options(resource),
        )
        provider = _provider(resource, by_urn)
        if provider is not None:
            request.provider.CopyFrom(provider)
        requests.append(request)
    return requests


def analyze_stack_request(plan: Plan) -> Any:
    """Every resource with its outputs (the engine analyses the final state), the stack included."""
    by_urn = {r.urn: r for r in plan.resources}
    request = analyzer_pb2.AnalyzeStackRequest()
    request.resources.append(
        analyzer_pb2.AnalyzerResource(
            type=STACK_TYPE,
            properties=_struct(plan.outputs),
            urn=stack_urn(plan),
            name=f"{plan.project}-{plan.stack}",
            options=analyzer_pb2.AnalyzerResourceOptions(),
        )
    )
    for resource in plan.resources:
        entry = analyzer_pb2.AnalyzerResource(
            type=resource.type,
            properties=_struct(_stack_outputs(resource)),
            urn=resource.urn,
            name=resource.name,
            options=_options(resource),
            parent=resource.parent or "",
        )
        provider = _provider(resource, by_urn)
        if provider is not None:
            entry.provider.CopyFrom(provider)
        request.resources.append(entry)
    return request


# --- running it -----------------------------------------------------------------------------------
def _violations(response: Any, default_urn: str) -> Iterable[Violation]:
    for diagnostic in response.diagnostics:
        message = diagnostic.message
        prefix = f"{diagnostic.description}\n"
        if diagnostic.description and message.startswith(prefix):
            message = message[len(prefix) :]
        yield Violation(
            policy=diagnostic.policyName,
            level=_LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"),
            urn=diagnostic.urn or default_urn,
            message=message,
        )


@dataclass(frozen=True)
class PolicyRun:
    """What one check did: how many policies ran (enforcement not `disabled`) over how many
    resources (every registration the analyzer saw, the stack included), and what they found."""

    policies: int
    resources: int
    violations: list[Violation]


def run_pack(
    plan: Plan, given: Mapping[str, tuple[str | None, dict[str, Any]]], source: str = "policy config"
) -> PolicyRun:
    """Configure the pack with `given` (parsed policy config), then analyse every resource and
    the stack, in the engine's order."""
    servicer = policy_servicer()
    context = _InProcessContext()
    info = servicer.GetAnalyzerInfo(empty_pb2.Empty(), context)
    config = reconcile_policy_config(info, given, source)
    servicer.Configure(configure_request(config), context)
    servicer.ConfigureStack(
        analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=plan.stack, project=plan.project, organization="organization", dry_run=True
        ),
        context,
    )
    violations: list[Violation] = []
    requests = analyze_requests(plan)
    with _converting_once():
        for request in requests:
            violations.extend(_violations(servicer.Analyze(request, context), request.urn))
        violations.extend(_violations(servicer.AnalyzeStack(analyze_stack_request(plan), context), ""))
    enabled = sum(level != "disabled" for level, _ in config.values())
    return PolicyRun(policies=enabled, resources=len(requests), violations=violations)


def evaluate(
    plan: Plan, given: Mapping[str, tuple[str | None, dict[str, Any]]], source: str = "policy config"
) -> list[Violation]:
    """The violations of `run_pack`."""
    return run_pack(plan, given, source).violations


def _sorted(violations: Iterable[Violation]) -> list[Violation]:
    """Mandatory first, then by policy and resource: the same plan gives the same report. The same
    finding reported twice is one."""
    return sorted(set(violations), key=lambda v: (v.level != "mandatory", v.policy, v.urn, v.message))


def run_policies(plan: Plan, policy_config: Path) -> list[Violation]:
    return _sorted(evaluate(plan, read_policy_config(policy_config), str(policy_config)))


def check_run(stack_plan: StackPlan, policy_config: Path | None = None) -> PolicyRun:
    """Run the pack on a planned stack; `policy_config` defaults to the environment's file."""
    path = policy_config or default_policy_config(stack_plan.loaded.config.environment)
    run = run_pack(stack_plan.plan, read_policy_config(path), str(path))
    return PolicyRun(run.policies, run.resources, _sorted(run.violations))


def validate_policy_config(path: Path) -> None:
    """Raise a policy config's problems (`ConfigError`) without a plan: the pack's schemas alone
    decide them, so `hpcctl check` reports them before the seconds a plan takes."""
    info = policy_servicer().GetAnalyzerInfo(empty_pb2.Empty(), _InProcessContext())
    reconcile_policy_config(info, read_policy_config(path), str(path))


def check(stack_plan: StackPlan, policy_config: Path | None = None) -> list[Violation]:
    """Policy violations of a planned stack; `policy_config` defaults to the environment's file."""
    return check_run(stack_plan, policy_config).violations


def has_mandatory(violations: Sequence[Violation]) -> bool:
    return any(v.level == "mandatory" for v in violations)


# --- the report -----------------------------------------------------------------------------------
RESOURCE_PLACEHOLDER = "<resource>"


def resource_name(urn: str) -> str:
    """`urn:pulumi:prod::hpc-platform::a$b::hpc-prod-data` → `hpc-prod-data`; '' → `(stack)`."""
    return urn.rsplit("::", 1)[-1] if urn else "(stack)"


def cause_of(violation: Violation) -> str:
    """The message with the resource's own name taken out, so the same problem on many resources
    reads as one cause (the policies name a resource by its logical name)."""
    if not violation.urn:
        return violation.message
    name = re.escape(resource_name(violation.urn))
    return re.sub(rf"(?<![\w-]){name}(?![\w-])", RESOURCE_PLACEHOLDER, violation.message)


@dataclass(frozen=True)
class ViolationGroup:
    """One policy's one cause, with every resource it was found on."""

    policy: str
    level: str
    cause: str
    violations: tuple[Violation, ...]

    @property
    def urns(self) -> list[str]:
        return [v.urn for v in self.violations]

    @property
    def message(self) -> str:
        """A single resource's own message; for several, the shared cause."""
        return self.violations[0].message if len(self.violations) == 1 else self.cause

    def render(self, verbose: bool = False) -> list[str]:
        head = f"[{self.level}] {self.policy}: "
        if len(self.violations) == 1:
            return [head + f"{self.violations[0].urn or '(stack)'}: {self.message}"]
        lines = [head + f"{len(self.violations)} resources: {self.message}"]
        if verbose:
            lines.extend(f"    {urn or '(stack)'}" for urn in self.urns)
        return lines


def group(violations: Iterable[Violation]) -> list[ViolationGroup]:
    """Violations by (level, policy, cause): mandatory first, then by policy, first seen first."""
    groups: dict[tuple[str, str, str], list[Violation]] = {}
    for violation in violations:
        key = (violation.level, violation.policy, cause_of(violation))
        groups.setdefault(key, []).append(violation)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] != "mandatory", item[0][1]))
    return [ViolationGroup(policy, level, cause, tuple(vs)) for (level, policy, cause), vs in ordered]


def counts_line(run: PolicyRun) -> str:
    """`12 policies checked 177 resources: …`: what ran, and the verdict, in one line."""
    ran = f"{run.policies} policies checked {run.resources} resources"
    if not run.violations:
        return f"{ran}: no policy violations"
    mandatory = sum(v.level == "mandatory" for v in run.violations)
    return (
        f"{ran}: {len(run.violations)} violation(s) in {len(group(run.violations))} group(s), "
        f"{mandatory} mandatory, {len(run.violations) - mandatory} advisory"
    )


def report(run: PolicyRun, verbose: bool = False) -> str:
    """One line per policy and cause (with `verbose`, its resources below it), then the counts."""
    groups = group(run.violations)
    lines = [line for g in groups for line in g.render(verbose)]
    if not verbose and any(len(g.violations) > 1 for g in groups):
        lines.append("(--verbose lists the resources of each group)")
    lines.append(counts_line(run))
    return "\n".join(lines) + "\n"


def to_json(violations: Sequence[Violation]) -> dict[str, Any]:
    return {"violations": [v.to_json() for v in violations]}


__all__ = [
    "PolicyRun",
    "Violation",
    "ViolationGroup",
    "check",
    "check_run",
    "counts_line",
    "default_policy_config",
    "evaluate",
    "group",
    "has_mandatory",
    "report",
    "resource_name",
    "run_pack",
    "to_json",
    "validate_policy_config",
]
