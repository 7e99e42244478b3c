"""Provider inputs as the Pulumi engine delivers them to a Python dynamic provider.

Two levels, both through Pulumi's own code (pulumi 3.272.0):

- `as_engine_delivers(props)` serializes a property dict with `rpc.serialize_properties` (what the
  program side sends; `pulumi.Output` unknowns and `rpc.UNKNOWN` become the UNKNOWN sentinel in a
  protobuf Struct) and deserializes it with `rpc.deserialize_properties(struct, True)`, the call
  `pulumi/dynamic/__main__.py` makes in Check and Diff: unknowns arrive as
  `pulumi.output.Unknown` objects.
- `DynamicProviderHost` runs the real dynamic-provider host (`python -m pulumi.dynamic`, what the
  engine's `pulumi-resource-pulumi-python` plugin runs) in a subprocess and calls its gRPC
  Check/Diff with a provider pickled by `serialize_provider`, exactly as the engine does. Its
  stderr is kept: the engine relays a plugin's stderr lines to the CLI.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc

PROVIDER_KEY = "__provider"
ROOT = Path(__file__).resolve().parents[2]


def unknown_output() -> pulumi.Output[Any]:
    """An output whose value is not known (what a not-yet-created resource's attribute is)."""
    loop = asyncio.get_event_loop()
    value: asyncio.Future[Any] = loop.create_future()
    value.set_result(None)
    known: asyncio.Future[bool] = loop.create_future()
    known.set_result(False)
    secret: asyncio.Future[bool] = loop.create_future()
    secret.set_result(False)
    return pulumi.Output(set(), value, known, secret)


def serialize(props: dict[str, Any]) -> struct_pb2.Struct:
    """`props` as the protobuf Struct the engine forwards (outputs may be built lazily by a
    callable so their futures belong to the serializing loop)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        resolved = _materialize(props)
        return loop.run_until_complete(rpc.serialize_properties(resolved, {}))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _materialize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_materialize(v) for v in value]
    if value is UNKNOWN_OUTPUT:
        return unknown_output()
    return value


class _UnknownOutputMarker:
    """Stands for `unknown_output()` in test data built outside an event loop."""

    def __repr__(self) -> str:
        return "UNKNOWN_OUTPUT"


UNKNOWN_OUTPUT = _UnknownOutputMarker()


def as_engine_delivers(props: dict[str, Any]) -> dict[str, Any]:
    """`props` after the round trip the engine makes before the provider's check/diff."""
    result: dict[str, Any] = rpc.deserialize_properties(serialize(props), True)
    return result


class DynamicProviderHost:
    """The dynamic-provider plugin process, driven over gRPC as the engine drives it."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        # The engine passes its own address as the argument; the dynamic host ignores it.
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        port = self.proc.stdout.readline().decode().strip()
        if not port.isdigit():
            self.proc.kill()
            raise RuntimeError(f"the dynamic provider host did not start: {self.proc.stderr.read().decode()}")
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.decode())

    def stderr(self) -> str:
        return "".join(self._stderr)

    def _with_provider(self, props: dict[str, Any], provider: Any) -> struct_pb2.Struct:
        return serialize({**props, PROVIDER_KEY: serialize_provider(provider)})

    def check(self, provider: Any, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        request = proto.CheckRequest(
            urn=_URN, olds=self._with_provider(olds, provider), news=self._with_provider(news, provider)
        )
        return self.stub.Check(request, timeout=60)

    def diff(self, provider: Any, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        request = proto.DiffRequest(
            id=id_,
            urn=_URN,
            olds=self._with_provider(olds, provider),
            news=self._with_provider(news, provider),
        )
        return self.stub.Diff(request, timeout=60)

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._reader.join(timeout=5)


_URN = "urn:pulumi:dev::hpc-platform::pulumi-python:dynamic:Resource::hpc-cluster"
