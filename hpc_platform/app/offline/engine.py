"""Run the real program under Pulumi's mock engine and capture what it would register.

The program function is the one `__main__.py` runs under the real engine; only the resource
monitor is replaced. The monitor subclass below reaches into `pulumi.runtime.mocks` internals
(`MockMonitor`, `_resolve_callbacks`, the `ROOT` context variable), and an offline run skips the
SDK's source positions (`pulumi.runtime.resource._get_stack_trace`), which is why `pulumi` is
pinned exactly and `tests/test_pins.py` fails when the pin moves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import engine_pb2, resource_pb2, source_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from hpc_platform.app.offline.mocks import PlanMocks

PROJECT = "hpc-platform"
SECRET_PLACEHOLDER = "[secret]"
UNKNOWN_PLACEHOLDER = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    remote: bool
    provider: str | None
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": plain(self.inputs),
        }


@dataclass
class Plan:
    stack: str
    project: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    generated: frozenset[str] = frozenset()
    """Ids, ARNs and computed outputs the mocks made up (see `PlanMocks.generated`): a deploy
    gives other values, so reports show them as known only after deploy."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """What the program logged through the engine, as (severity, message); not printed, because
    the caller already reports the config warnings the program logs (printing both doubled them)."""

    @property
    def stack_urn(self) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{STACK_TYPE}::{self.project}-{self.stack}"

    @property
    def resource_count(self) -> int:
        """What `pulumi preview` counts as "to create": every resource, components and the stack
        itself included."""
        return len(self.resources) + 1

    def stack_json(self) -> dict[str, Any]:
        return {
            "urn": self.stack_urn,
            "type": STACK_TYPE,
            "name": f"{self.project}-{self.stack}",
            "parent": None,
            "custom": False,
            "inputs": {},
        }

    def to_json(self) -> dict[str, Any]:
        # By URN: the engine registers concurrently, and the same program must give the same JSON.
        # The stack is listed too, so `resources` holds what `changeSummary` counts.
        resources = [self.stack_json()] + [r.to_json() for r in self.resources]
        return {
            "stack": self.stack,
            "project": self.project,
            "changeSummary": {"create": self.resource_count},
            "resources": sorted(resources, key=lambda r: str(r["urn"])),
            "outputs": plain(self.outputs),
        }

    def of_type(self, token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == token]

    def children_of(self, urn: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == urn]

    def descendants_of(self, urn: str) -> list[PlannedResource]:
        """Children, their children and so on (a component's whole subtree)."""
        found: list[PlannedResource] = []
        pending = [urn]
        while pending:
            children = self.children_of(pending.pop())
            found.extend(children)
            pending.extend(child.urn for child in children)
        return found

    def by_name(self, name: str) -> PlannedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources are named {name!r}")
        return matches[0]


def plain(value: Any) -> Any:
    """JSON-safe copy: secrets masked, unknowns marked, resource references as URNs.

    Numbers cross the engine as protobuf `Struct` values, which are all doubles, so a program's
    `32` arrives as `32.0`. A float with no fractional part is given back as an int: the program's
    integers stay integers (a whole-number float such as `1.0` also prints as `1`).
    """
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is rpc.UNKNOWN or isinstance(value, pulumi.output.Unknown):
        return UNKNOWN_PLACEHOLDER
    if isinstance(value, pulumi.Resource):
        return getattr(value, "_plan_urn", None) or f"[resource {type(value).__name__}]"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, plus: it runs resource and stack transforms (as the engine does) and
    records every registration with its parent, provider and custom/remote flags."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.planned: list[PlannedResource] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return super().RegisterResource(request)
        # What `MockMonitor.RegisterResource` does, with the transforms in between and the inputs
        # deserialized once: the transformed inputs go to the mocks as they are, rather than being
        # serialized again for the base class to deserialize.
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        callbacks = pulumi_mocks._resolve_callbacks(request.transforms)
        transforms = callbacks + self._stack_transforms
        if transforms:
            inputs = self._transform(request, inputs, transforms)
        resource_id, state = self.mocks.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs if settings.is_dry_run() else _unknowns_as_none(inputs),
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
                transforms=callbacks,
            )
        )
        state_struct = _sync_await(rpc.serialize_properties(state, {}))
        # None for components, as the base class stores it (the tuple's hint says str).
        registration = pulumi_mocks.MockMonitor.ResourceRegistration
        self.resources[urn] = registration(urn, cast(str, resource_id), state)
        self.planned.append(
            PlannedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                remote=bool(request.remote),
                provider=request.provider or None,
                id=resource_id or None,
                inputs=inputs,
                outputs=dict(state),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
            )
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id or "", object=state_struct)

    def _transform(self, request: Any, inputs: dict[str, Any], transforms: list[Any]) -> dict[str, Any]:
        for transform in transforms:
            args = pulumi.ResourceTransformArgs(
                custom=bool(request.custom),
                type_=request.type,
                name=request.name,
                props=inputs,
                opts=pulumi.ResourceOptions(),
            )
            result = transform(args)
            if hasattr(result, "__await__"):
                result = _sync_await(result)
            if result is not None:
                inputs = dict(result.props)
        return inputs

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self.stack_urn:
            _ensure_event_loop()
            self.stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)


def _unknowns_as_none(value: Any) -> Any:
    """Outside a preview the SDK deserializes unknown values as None for the mocks."""
    if isinstance(value, pulumi.output.Unknown):
        return None
    if isinstance(value, dict):
        return {key: _unknowns_as_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unknowns_as_none(item) for item in value]
    return value


class CollectingEngine(pulumi_mocks.MockEngine):
    """The mock engine, keeping log messages instead of passing them to a logger (a logger without
    handlers prints warnings to stderr, a second copy of what the caller reports)."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("hpc_platform.app.offline"))
        self.messages: list[tuple[str, str]] = []

    def Log(self, request: Any) -> None:
        if request.severity == engine_pb2.DEBUG:  # the SDK's own tracing, one per registration
            return
        self.messages.append((engine_pb2.LogSeverity.Name(request.severity).lower(), request.message))


PULUMI_RUNTIME_LOCK = threading.RLock()
"""Held for the whole of an offline run. Pulumi's runtime state (settings, config, the root
resource) is process-global and every run resets it, so runs in a service's worker threads take
turns; without this, two first runs at once also fail on half-imported provider modules.
Reentrant, so a caller can hold it across a plan and what it does with the result."""


# The SDK walks the Python stack at every registration to tell the engine where the resource was
# declared (for its diagnostics); the mock monitor ignores it and the plan does not record it, and
# it was a tenth of a plan's time. An offline run sends the empty trace the SDK itself sends when it
# finds no user frame; a real deployment in the same process still gets the SDK's own.
_OFFLINE: ContextVar[bool] = ContextVar("_OFFLINE", default=False)


class _StackTraceUnlessOffline:
    def __init__(self, original: Callable[[], Any]) -> None:
        self.original = original

    def __call__(self) -> Any:
        return source_pb2.StackTrace() if _OFFLINE.get() else self.original()


@contextmanager
def _without_source_positions() -> Iterator[None]:
    if not isinstance(pulumi_resource._get_stack_trace, _StackTraceUnlessOffline):
        pulumi_resource._get_stack_trace = _StackTraceUnlessOffline(pulumi_resource._get_stack_trace)
    token = _OFFLINE.set(True)
    try:
        yield
    finally:
        _OFFLINE.reset(token)


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call at once, on the calling thread.

    The SDK sends every monitor and engine call to the event loop's default executor, because the
    real ones are blocking gRPC calls. The mock monitor is plain Python: in a worker thread it only
    waits for the GIL, and the event loop waits for it (the hand-offs were a tenth of a plan). Run
    inline, a call still gets an event loop of its own, not running, as it has on a worker thread:
    the mock monitor drives coroutines to completion with `_sync_await`, which must not pump the
    loop that is waiting for the call."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self._loop = asyncio.new_event_loop()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        running = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(self._loop)
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as a pool does
            future.set_exception(error)
        finally:
            asyncio.set_event_loop(running)
            asyncio.events._set_running_loop(running)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._loop.close()
        super().shutdown(wait, cancel_futures=cancel_futures)


@contextmanager
def _monitor_calls_inline(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    previous = loop._default_executor  # type: ignore[attr-defined]
    executor = _InlineExecutor()
    loop.set_default_executor(executor)
    try:
        yield
    finally:
        loop._default_executor = previous  # type: ignore[attr-defined]
        executor.shutdown()


@contextmanager
def _collections_deferred() -> Iterator[None]:
    """No cyclic collection while the program runs; the collector runs as usual after it.

    A plan allocates about 700,000 objects in one burst, most of them garbage within the run
    (outputs, futures, tasks). With the default thresholds the collector ran dozens of times during
    a plan, and its older generations walked every long-lived object of the process (the provider
    modules' classes, the config models) each time: 45% of a warm plan of prod. Deferred, the run's
    objects meet one young collection after it; the peak grows by what the run leaves for it
    (`benchmarks/bench_plan.py` prints the peak)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_offline(
    program: Callable[[], None],
    stack: str,
    config: dict[str, Any],
    region: str,
    preview: bool = True,
    project: str = PROJECT,
) -> Plan:
    """Run `program` for `stack` with the given stack-file config (`{'hpc:network': {...}}`).

    Config values are passed to Pulumi the way the CLI passes them: objects as JSON strings.
    `project` names another program's project (its URNs carry it), e.g. the portal's own.
    One run at a time per process (`PULUMI_RUNTIME_LOCK`); safe to call from any thread that is
    not running an asyncio event loop (the engine pumps the calling thread's own loop).
    """
    with PULUMI_RUNTIME_LOCK:
        return _run_offline(program, stack, config, region, preview, project)


def _run_offline(
    program: Callable[[], None],
    stack: str,
    config: dict[str, Any],
    region: str,
    preview: bool,
    project: str,
) -> Plan:
    mocks = PlanMocks(region)
    monitor = CapturingMonitor(mocks)
    engine = CollectingEngine()
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()},
        [],
    )
    settings.ROOT.set(None)
    settings.configure(
        pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=engine,
            project=project,
            stack=stack,
            dry_run=preview,
            organization="organization",
            callbacks=None,
        )
    )
    try:
        with (
            _collections_deferred(),
            _without_source_positions(),
            _monitor_calls_inline(_ensure_event_loop()),
        ):
            _sync_await(run_in_stack(program))
    finally:
        settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
    plan = Plan(
        stack=stack,
        project=project,
        resources=monitor.planned,
        outputs=monitor.stack_outputs,
        generated=frozenset(mocks.generated),
    )
    plan.messages = engine.messages
    return plan
