"""What both integration modules hand the provider: its inputs, and a transport that records calls."""

from __future__ import annotations

import urllib.parse
from typing import Any

from hpc_platform.domain.limits import PCLUSTER_DEFAULT_VERSION
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpc_platform.pcluster.client import HttpRequest, HttpResponse, urllib_transport
from hpc_platform.pcluster.provider import OUTPUT_KEYS


class RecordingTransport:
    """The default (urllib) transport, recording each API call as (method, path)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urllib.parse.urlsplit(request.url)
        if parts.path.startswith("/v3/"):
            dryrun = "dryrun=true" in parts.query
            self.calls.append((request.method, parts.path + ("?dryrun" if dryrun else "")))
            self.requests.append(request)
        return urllib_transport(request)

    def writes(self) -> list[tuple[str, str]]:
        """The calls that change something: neither reads nor dry runs."""
        return [c for c in self.calls if c[0] != "GET" and not c[1].endswith("?dryrun")]


def provider_props(
    world: dict[str, Any],
    *,
    cluster_name: str,
    cluster_config: dict[str, Any],
    stack_marker: str,
    allow_fleet_stop: bool,
    **overrides: Any,
) -> dict[str, Any]:
    """The dynamic resource's inputs (as ClusterResourceArgs gives them), short timeouts for tests.
    The provider calls the API as the harness's API user role, the only caller its resource policy
    admits (override `api_role_arn=None` to sign with the plain credentials)."""
    base: dict[str, Any] = {
        "cluster_name": cluster_name,
        "region": world["region"],
        "api_url": world["api"],
        "api_role_arn": world["api_user_role_arn"],
        "cluster_config": cluster_config,
        "parallelcluster_version": PCLUSTER_DEFAULT_VERSION,
        "stack_marker": stack_marker,
        "allow_fleet_stop": allow_fleet_stop,
        "dryrun_on_preview": True,
        "retain_on_delete": False,
        "create_timeout_minutes": 5,
        "update_timeout_minutes": 5,
        "delete_timeout_minutes": 5,
        KIND_PROPERTY: KIND_VALUE,
    }
    for key in OUTPUT_KEYS:
        base.setdefault(key, None)
    base.update(overrides)
    return base
