"""The ParallelCluster dynamic provider against an in-process fake of the ParallelCluster API.

`FakeParallelClusterApi` is a small state machine of the REST API (create/describe/update/delete,
compute fleet, dry runs, 409s, "No changes found") with fault injection (429, 5xx, no answer).
Time is a `FakeClock`: waiting advances it, nothing really sleeps. Every test checks the
invariants that matter in production: never two clusters for one resource, never an orphan.
"""

from __future__ import annotations

import json
import pickle
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dill
import pulumi
import pytest
import yaml
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE, STACK_MARKER_TAG
from hpc_platform.pcluster.client import Backoff, Clock, HttpRequest, HttpResponse, TransportError
from hpc_platform.pcluster.provider import (
    OUTPUT_KEYS,
    ParallelClusterProvider,
    ProviderSettings,
    effective_config,
    validate_inputs,
)
from hpc_platform.pcluster.update_policy import classify_change
from tests.support.pulumi_engine import UNKNOWN_OUTPUT, DynamicProviderHost, as_engine_delivers

MARKER = "hpc-platform/dev"
API = "https://abc123.execute-api.us-east-2.amazonaws.com/prod"
ACCESS_KEY = "AKIAFAKEFAKEFAKE1234"
SECRET_KEY = "fake/secret/key/never/in/outputs"


# ---------------------------------------------------------------------------------------------
# Fakes
# ---------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep, rand=lambda: 0.5)


class FakeCredentials:
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    token = None

    def get_frozen_credentials(self) -> FakeCredentials:
        return self


@dataclass
class FakeCluster:
    name: str
    config: dict[str, Any]
    tags: list[dict[str, str]]
    status: str = "CREATE_IN_PROGRESS"
    stack_status: str = "CREATE_IN_PROGRESS"
    version: str = "3.16.1"
    ticks: int = 3
    outcome: str = "COMPLETE"
    fleet: str = "RUNNING"
    fleet_ticks: int = 0


@dataclass
class Fault:
    method: str
    path_suffix: str
    status: int | None  # None: no answer (TransportError)
    times: int = 1
    body: dict[str, Any] = field(default_factory=dict)


class FakeParallelClusterApi:
    """The ParallelCluster API as a state machine, called through the provider's transport."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.clusters: dict[str, FakeCluster] = {}
        self.calls: list[tuple[str, str]] = []  # (method, path[?dryrun])
        self.requests: list[HttpRequest] = []
        self.faults: list[Fault] = []
        self.create_ticks = 3
        self.create_outcome = "COMPLETE"
        self.update_ticks = 2
        self.update_outcome = "COMPLETE"
        self.delete_ticks = 2
        self.fleet_stop_ticks = 2
        self.lose_after_polls: int | None = None  # a describe that finds the cluster gone
        self.created_total = 0
        self.on_describe: Callable[[FakeCluster], None] | None = None
        self.conflict_status = 400

    # -- faults -----------------------------------------------------------------------------
    def fail(self, method: str, path_suffix: str, status: int | None, times: int = 1, **body: Any) -> None:
        self.faults.append(Fault(method, path_suffix, status, times, body))

    def _fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and path.endswith(fault.path_suffix):
                fault.times -= 1
                return fault
        return None

    # -- transport ----------------------------------------------------------------------------
    def __call__(self, request: HttpRequest) -> HttpResponse:
        parts = urllib.parse.urlsplit(request.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.hostname == "config.s3.example":
            cluster = self.clusters.get(parts.path.strip("/"))
            if cluster is None:
                return HttpResponse(404, b"")
            return HttpResponse(200, yaml.safe_dump(cluster.config).encode())
        self.requests.append(request)
        assert request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256")
        path = parts.path.removeprefix("/prod")
        label = f"{path}?dryrun" if query.get("dryrun") == "true" else path
        self.calls.append((request.method, label))
        fault = self._fault_for(request.method, path)
        if fault is not None:
            if fault.status is None:
                raise TransportError(f"{request.method} {path}: timed out")
            return self._json(fault.status, {"message": f"injected {fault.status}", **fault.body})
        assert query.get("region") == "us-east-2"
        body = json.loads(request.body) if request.body else {}
        segments = path.split("/")[3:]  # after /v3/clusters
        if not segments:
            assert request.method == "POST"
            return self._create(body, dryrun=query.get("dryrun") == "true")
        name = urllib.parse.unquote(segments[0])
        cluster = self.clusters.get(name)
        if len(segments) == 2 and segments[1] == "computefleet":
            if cluster is None:
                return self._json(404, {"message": f"Cluster '{name}' does not exist"})
            return self._fleet(cluster, request.method, body)
        if request.method == "GET":
            return self._describe(name, cluster)
        if request.method == "PUT":
            return self._update(cluster, name, body, dryrun=query.get("dryrun") == "true")
        if request.method == "DELETE":
            return self._delete(cluster, name)
        raise AssertionError(f"unexpected {request.method} {path}")

    @staticmethod
    def _json(status: int, payload: dict[str, Any]) -> HttpResponse:
        return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    # -- operations ---------------------------------------------------------------------------
    def _create(self, body: dict[str, Any], *, dryrun: bool) -> HttpResponse:
        name = body["clusterName"]
        config = yaml.safe_load(body["clusterConfiguration"])
        if "Invalid" in config:
            errors = [{"level": "ERROR", "type": "InvalidValidator", "message": str(config["Invalid"])}]
            return self._json(
                400, {"message": "Invalid cluster configuration.", "configurationValidationErrors": errors}
            )
        if name in self.clusters:
            if self.conflict_status == 409:
                return self._json(409, {"message": f"cluster {name} already exists"})
            # What ParallelCluster 3.16.1 really answers (validate_create_request).
            return self._json(400, {"message": f"Bad Request: Cluster {name} already exists."})
        if dryrun:
            return self._json(
                412,
                {
                    "message": "Request would have succeeded, but DryRun flag is set.",
                    "validationMessages": [{"level": "WARNING", "type": "W", "message": "looks fine"}],
                },
            )
        tags = [{"key": t["Key"], "value": t["Value"]} for t in config.get("Tags") or []]
        self.clusters[name] = FakeCluster(
            name, config, tags, ticks=self.create_ticks, outcome=self.create_outcome
        )
        self.created_total += 1
        return self._json(202, {"cluster": {"clusterName": name, "clusterStatus": "CREATE_IN_PROGRESS"}})

    def _advance(self, cluster: FakeCluster) -> None:
        if cluster.status.endswith("IN_PROGRESS") and not cluster.status.startswith("DELETE"):
            cluster.ticks -= 1
            if cluster.ticks <= 0:
                op = cluster.status.split("_")[0]
                cluster.status = f"{op}_{cluster.outcome}"
                cluster.stack_status = f"{op}_COMPLETE" if cluster.outcome == "COMPLETE" else f"{op}_FAILED"
                if op == "UPDATE" and cluster.outcome == "FAILED":
                    cluster.stack_status = "UPDATE_ROLLBACK_COMPLETE"

    def _describe(self, name: str, cluster: FakeCluster | None) -> HttpResponse:
        if cluster is not None and cluster.status.startswith("DELETE"):
            cluster.ticks -= 1
            if cluster.ticks <= 0:
                del self.clusters[name]
                cluster = None
        if cluster is not None and self.lose_after_polls is not None:
            self.lose_after_polls -= 1
            if self.lose_after_polls < 0:
                del self.clusters[name]
                self.lose_after_polls = None
                cluster = None
        if cluster is None:
            return self._json(404, {"message": f"Cluster '{name}' does not exist."})
        self._advance(cluster)
        if self.on_describe:
            self.on_describe(cluster)
        info: dict[str, Any] = {
            "clusterName": name,
            "region": "us-east-2",
            "version": cluster.version,
            "clusterStatus": cluster.status,
            "cloudFormationStackStatus": cluster.stack_status,
            "cloudformationStackArn": f"arn:aws:cloudformation:us-east-2:123456789012:stack/{name}/x",
            "clusterConfiguration": {"url": f"https://config.s3.example/{name}"},
            "tags": cluster.tags,
            "computeFleetStatus": cluster.fleet,
            "headNode": {"instanceId": "i-0123456789abcdef0", "privateIpAddress": "10.0.0.10"},
        }
        if cluster.status == "CREATE_FAILED":
            info["failures"] = [{"failureCode": "HeadNodeBootstrapFailure", "failureReason": "chef failed"}]
        return self._json(200, info)

    def _update(
        self, cluster: FakeCluster | None, name: str, body: dict[str, Any], *, dryrun: bool
    ) -> HttpResponse:
        if cluster is None:
            return self._json(404, {"message": f"Cluster '{name}' does not exist."})
        if cluster.status.endswith("IN_PROGRESS"):
            return self._json(
                409, {"message": f"Cannot execute update while stack is in {cluster.status} status."}
            )
        config = yaml.safe_load(body["clusterConfiguration"])
        change = classify_change(cluster.config, config)
        if change.unchanged:
            return self._json(400, {"message": "No changes found in your cluster configuration."})
        if change.needs_fleet_stop and cluster.fleet != "STOPPED":
            errors = [
                {"parameter": p, "message": "All compute nodes must be stopped", "currentValue": "a"}
                for p in change.needs_fleet_stop
            ]
            return self._json(400, {"message": "Update failure", "updateValidationErrors": errors})
        if dryrun:
            return self._json(412, {"message": "dry run ok", "changeSet": []})
        cluster.config = config
        cluster.tags = [{"key": t["Key"], "value": t["Value"]} for t in config.get("Tags") or []]
        cluster.status = "UPDATE_IN_PROGRESS"
        cluster.stack_status = "UPDATE_IN_PROGRESS"
        cluster.ticks = self.update_ticks
        cluster.outcome = self.update_outcome
        return self._json(202, {"cluster": {"clusterName": name}, "changeSet": []})

    def _delete(self, cluster: FakeCluster | None, name: str) -> HttpResponse:
        # ParallelCluster 3.16.1's delete_cluster never answers 409: it calls DeleteStack unless the
        # stack is already DELETE_IN_PROGRESS (then 202 again). CloudFormation accepts a delete
        # during CREATE_IN_PROGRESS and refuses one during an update with a ValidationError, which
        # ParallelCluster maps to 400 BadRequestException.
        if cluster is None:
            return self._json(404, {"message": f"Cluster '{name}' does not exist."})
        if cluster.status == "UPDATE_IN_PROGRESS":
            return self._json(
                400,
                {
                    "message": f"Bad Request: Cluster {name} did not delete successfully. Stack "
                    f"{name} cannot be deleted while in status UPDATE_IN_PROGRESS"
                },
            )
        if not cluster.status.startswith("DELETE"):
            cluster.status = "DELETE_IN_PROGRESS"
            cluster.stack_status = "DELETE_IN_PROGRESS"
            cluster.ticks = self.delete_ticks
        return self._json(202, {"cluster": {"clusterName": name, "clusterStatus": "DELETE_IN_PROGRESS"}})

    def _fleet(self, cluster: FakeCluster, method: str, body: dict[str, Any]) -> HttpResponse:
        if method == "PATCH":
            status = body["status"]
            assert status in ("STOP_REQUESTED", "START_REQUESTED")
            cluster.fleet = status
            cluster.fleet_ticks = self.fleet_stop_ticks
            return self._json(200, {"status": status})
        if cluster.fleet in ("STOP_REQUESTED", "STOPPING", "START_REQUESTED", "STARTING"):
            cluster.fleet_ticks -= 1
            if cluster.fleet_ticks <= 0:
                cluster.fleet = "STOPPED" if cluster.fleet.startswith("STOP") else "RUNNING"
            elif cluster.fleet == "STOP_REQUESTED":
                cluster.fleet = "STOPPING"
        return self._json(200, {"status": cluster.fleet})

    # -- assertions -----------------------------------------------------------------------------
    def count(self, method: str, path: str | None = None) -> int:
        return sum(1 for m, p in self.calls if m == method and (path is None or p == path))

    def writes(self) -> list[tuple[str, str]]:
        """The calls that change something: neither reads nor dry runs."""
        return [(m, p) for m, p in self.calls if m != "GET" and not p.endswith("?dryrun")]


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------
class Logs(list[tuple[str, str]]):
    def text(self) -> str:
        return "\n".join(f"{level}: {message}" for level, message in self)


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Logs:
    """What the provider logs through pulumi.log (the CLI shows it under the resource)."""
    captured = Logs()
    for level in ("debug", "info", "warn", "error"):
        monkeypatch.setattr(
            pulumi.log, level, lambda msg, *a, _level=level, **k: captured.append((_level, msg))
        )
    return captured


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> FakeParallelClusterApi:
    return FakeParallelClusterApi(clock)


@pytest.fixture
def provider(api: FakeParallelClusterApi, clock: FakeClock) -> ParallelClusterProvider:
    return make_provider(api, clock)


def make_provider(api: FakeParallelClusterApi, clock: FakeClock, **overrides: Any) -> ParallelClusterProvider:
    values: dict[str, Any] = {
        "transport": api,
        "credentials": FakeCredentials,
        "clock": clock.clock(),
        "request_backoff": Backoff(base_seconds=0.01, max_seconds=0.05, max_attempts=4),
        "poll_backoff": Backoff(base_seconds=1, max_seconds=4),
        "fleet_timeout_minutes": 5,
        "conflict_retries": 3,
    }
    settings = ProviderSettings(**{**values, **overrides})
    return ParallelClusterProvider(settings)


def cluster_config(
    instance_type: str = "c5n.18xlarge", max_count: int = 10, strategy: str = "DRAIN"
) -> dict[str, Any]:
    return {
        "Region": "us-east-2",
        "Image": {"Os": "alinux2023"},
        "HeadNode": {"InstanceType": "m6i.xlarge", "Networking": {"SubnetId": "subnet-1"}},
        "Scheduling": {
            "Scheduler": "slurm",
            "SlurmSettings": {"QueueUpdateStrategy": strategy, "ScaledownIdletime": 10},
            "SlurmQueues": [
                {
                    "Name": "compute",
                    "CapacityType": "ONDEMAND",
                    "Networking": {"SubnetIds": ["subnet-2"]},
                    "ComputeResources": [
                        {"Name": "c5n", "InstanceType": instance_type, "MinCount": 0, "MaxCount": max_count}
                    ],
                }
            ],
        },
        "Tags": [{"Key": STACK_MARKER_TAG, "Value": MARKER}],
    }


def props(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cluster_name": "hpc-dev",
        "region": "us-east-2",
        "api_url": API,
        "cluster_config": cluster_config(),
        "parallelcluster_version": "3.16.1",
        "stack_marker": MARKER,
        "allow_fleet_stop": False,
        "dryrun_on_preview": True,
        "retain_on_delete": False,
        "create_timeout_minutes": 60,
        "update_timeout_minutes": 60,
        "delete_timeout_minutes": 45,
        KIND_PROPERTY: KIND_VALUE,
    }
    for key in OUTPUT_KEYS:
        base.setdefault(key, None)
    base.update(overrides)
    return base


def created(provider: ParallelClusterProvider, **overrides: Any) -> dict[str, Any]:
    """Create a cluster; returns its state (the outputs Pulumi stores)."""
    result = provider.create(props(**overrides))
    assert result.id == "hpc-dev"
    assert result.outs is not None
    return result.outs


# ---------------------------------------------------------------------------------------------
# Pickling, signing, outputs
# ---------------------------------------------------------------------------------------------
def test_provider_pickles_as_pulumi_serialises_it() -> None:
    provider = ParallelClusterProvider()
    serialised = serialize_provider(provider)  # dill, recurse=True: what pulumi stores
    assert serialised
    restored = dill.loads(__import__("base64").b64decode(serialised))
    assert isinstance(restored, ParallelClusterProvider)
    assert isinstance(pickle.loads(pickle.dumps(provider)), ParallelClusterProvider)
    # Nothing but the (empty) settings slot: no clients, sessions, sockets or credentials.
    assert vars(provider) == {"_settings": None}


def test_requests_are_sigv4_signed_for_execute_api(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)
    auth = api.requests[0].headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-2/execute-api/aws4_request" in auth
    assert "X-Amz-Date" in api.requests[0].headers
    assert SECRET_KEY not in json.dumps(dict(api.requests[0].headers))


def test_outputs_carry_marker_status_and_config_but_no_credentials(provider: ParallelClusterProvider) -> None:
    outs = created(provider)
    assert outs[KIND_PROPERTY] == KIND_VALUE
    assert outs["cluster_status"] == "CREATE_COMPLETE"
    assert outs["cloudformation_stack_status"] == "CREATE_COMPLETE"
    assert outs["head_node_ip"] == "10.0.0.10"
    assert outs["head_node_instance_id"] == "i-0123456789abcdef0"
    assert outs["version"] == "3.16.1"
    assert outs["cluster_config"] == cluster_config()
    dumped = json.dumps(outs)
    assert ACCESS_KEY not in dumped and SECRET_KEY not in dumped
    assert "Authorization" not in dumped


def test_marker_tag_is_added_when_the_config_lacks_it() -> None:
    config = cluster_config()
    del config["Tags"]
    eff = effective_config(props(cluster_config=config))
    assert eff["Tags"] == [{"Key": STACK_MARKER_TAG, "Value": MARKER}]
    assert "Tags" not in config  # the input is not mutated


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "prop", "fragment"),
    [
        ({"cluster_name": "1bad"}, "cluster_name", "start with a letter"),
        ({"cluster_name": "a" * 61}, "cluster_name", "at most 60"),
        ({"cluster_name": "bad_name"}, "cluster_name", "letters, digits and hyphens"),
        ({"region": "Ohio"}, "region", "not an AWS region"),
        ({"api_url": "http://api.example.com/prod"}, "api_url", "https://"),
        ({"api_url": ""}, "api_url", "invoke URL"),
        ({"cluster_config": "Region: x"}, "cluster_config", "mapping"),
        ({"create_timeout_minutes": 0}, "create_timeout_minutes", "positive"),
        ({}, None, None),
        ({"api_url": "http://127.0.0.1:8080"}, None, None),
    ],
)
def test_validate_inputs(overrides: dict[str, Any], prop: str | None, fragment: str | None) -> None:
    found = validate_inputs(props(**overrides))
    if prop is None:
        assert found == []
    else:
        assert [p for p, _ in found] == [prop]
        assert fragment in found[0][1]


def test_fails_name_longer_than_40_with_slurm_accounting() -> None:
    config = cluster_config()
    config["Scheduling"]["SlurmSettings"]["Database"] = {"Uri": "db:3306", "UserName": "slurm"}
    found = validate_inputs(props(cluster_name="a" * 41, cluster_config=config))
    assert found and "at most 40 with Slurm accounting" in found[0][1]


def test_check_dry_run_accepts_a_valid_config(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    result = provider.check({}, props())
    assert result.failures == []
    assert api.calls == [("POST", "/v3/clusters?dryrun")]
    assert api.created_total == 0


def test_fails_check_with_the_api_validation_messages(provider: ParallelClusterProvider) -> None:
    config = cluster_config()
    config["Invalid"] = "HeadNode subnet subnet-1 does not exist"
    result = provider.check({}, props(cluster_config=config))
    assert [f.property for f in result.failures] == ["cluster_config"]
    assert "subnet-1 does not exist" in result.failures[0].reason


def test_check_skips_dry_run_when_disabled_or_unchanged(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    assert provider.check({}, props(dryrun_on_preview=False)).failures == []
    state = created(provider)
    api.calls.clear()
    assert provider.check(state, props()).failures == []
    assert api.calls == []


def test_check_dry_runs_an_update_and_leaves_fleet_stop_findings_to_update(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.calls.clear()
    result = provider.check(state, props(cluster_config=cluster_config(instance_type="c6i.32xlarge")))
    assert result.failures == []
    assert api.calls == [("PUT", "/v3/clusters/hpc-dev?dryrun")]


def test_check_accepts_an_existing_cluster_of_this_stack(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)  # e.g. left by a run whose create timed out: `up` will adopt it
    assert provider.check({}, props()).failures == []


def test_fails_check_when_a_foreign_cluster_has_the_name(provider: ParallelClusterProvider) -> None:
    created(provider, stack_marker="hpc-platform/other", cluster_config={**cluster_config(), "Tags": []})
    failures = provider.check({}, props()).failures
    assert [f.property for f in failures] == ["cluster_config"]
    assert "does not belong to this stack" in failures[0].reason


@pytest.mark.parametrize(
    "where",
    ["head_subnet", "whole_config", "stack_marker", "cluster_name", "list_item"],
)
def test_check_skips_dry_run_while_values_are_unknown(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, where: str
) -> None:
    config: Any = cluster_config()
    overrides: dict[str, Any] = {}
    if where == "head_subnet":
        config["HeadNode"]["Networking"]["SubnetId"] = UNKNOWN_OUTPUT
    elif where == "whole_config":
        config = UNKNOWN_OUTPUT
    elif where == "list_item":
        config["Scheduling"]["SlurmQueues"][0]["Networking"]["SubnetIds"] = ["subnet-2", rpc.UNKNOWN]
    else:
        overrides[where] = UNKNOWN_OUTPUT
    news = as_engine_delivers(props(cluster_config=config, **overrides))
    for olds in ({}, as_engine_delivers(props())):
        assert provider.check(olds, news).failures == []
    assert api.calls == []


def test_check_degrades_without_credentials(api: FakeParallelClusterApi, clock: FakeClock) -> None:
    provider = make_provider(api, clock, credentials=lambda: None)
    result = provider.check({}, props())
    assert result.failures == []  # a warning is logged; preview goes on
    assert api.calls == []


def test_check_degrades_when_the_api_is_unreachable(api: FakeParallelClusterApi, clock: FakeClock) -> None:
    provider = make_provider(api, clock)
    api.fail("POST", "/v3/clusters", None, times=10)
    assert provider.check({}, props()).failures == []


# ---------------------------------------------------------------------------------------------
# create
# ---------------------------------------------------------------------------------------------
def test_create_posts_once_and_waits_for_create_complete(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    outs = created(provider)
    assert api.count("POST") == 1
    assert api.created_total == 1
    assert outs["cluster_status"] == "CREATE_COMPLETE"
    assert clock.t < 60  # tiny poll backoff, fake time


def test_create_sends_the_config_as_yaml(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)
    body = json.loads(api.requests[0].body or b"{}")
    assert body["clusterName"] == "hpc-dev"
    assert yaml.safe_load(body["clusterConfiguration"]) == cluster_config()


def test_create_retries_throttling_and_server_errors(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    api.fail("POST", "/v3/clusters", 429, times=2)
    api.fail("GET", "/v3/clusters/hpc-dev", 502, times=1)
    api.fail("GET", "/v3/clusters/hpc-dev", 500, times=1)
    created(provider)
    assert api.count("POST") == 3
    assert api.created_total == 1


def test_create_retries_a_post_without_answer_and_never_creates_twice(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    # The first POST is lost in transit *after* the API accepted it? The fake drops it before;
    # the following case covers the accepted-then-timeout path.
    api.fail("POST", "/v3/clusters", None, times=1)
    created(provider)
    assert api.created_total == 1


def test_create_after_an_accepted_post_timed_out_adopts_instead_of_duplicating(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    original = api._create

    def accept_then_drop(body: dict[str, Any], *, dryrun: bool) -> HttpResponse:
        response = original(body, dryrun=dryrun)
        if response.status == 202 and api.created_total == 1 and not getattr(api, "_dropped", False):
            api._dropped = True  # type: ignore[attr-defined]
            raise TransportError("POST /v3/clusters: read timed out")
        return response

    api._create = accept_then_drop  # type: ignore[method-assign]
    outs = created(provider)
    assert api.count("POST") == 2  # the retry met 409 and adopted the marked cluster
    assert api.created_total == 1
    assert outs["cluster_status"] == "CREATE_COMPLETE"


def test_create_answered_500_after_the_stack_was_made_adopts_on_retry(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    # Seen with the real API: the stack is created, then a later step fails and the API answers
    # 500; the client's retry meets "Cluster … already exists" and the provider adopts it.
    original = api._create

    def create_then_500(body: dict[str, Any], *, dryrun: bool) -> HttpResponse:
        response = original(body, dryrun=dryrun)
        if response.status == 202:
            return api._json(500, {"message": "Failed when calling AWS service"})
        return response

    api._create = create_then_500  # type: ignore[method-assign]
    outs = created(provider)
    assert api.count("POST") == 2
    assert api.created_total == 1
    assert outs["cluster_status"] == "CREATE_COMPLETE"


def test_fails_create_failed_with_failure_reasons(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    api.create_outcome = "FAILED"
    with pytest.raises(Exception, match="create failed") as err:
        created(provider)
    assert "HeadNodeBootstrapFailure: chef failed" in str(err.value)
    assert "pcluster delete-cluster -n hpc-dev" in str(err.value)
    assert api.created_total == 1


def test_fails_create_on_validation_errors_without_creating(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    config = cluster_config()
    config["Invalid"] = "EFA is not supported by m6i.xlarge"
    with pytest.raises(Exception, match="EFA is not supported") as err:
        provider.create(props(cluster_config=config))
    assert "Fix the stack configuration" in str(err.value)
    assert api.created_total == 0


def test_fails_create_timeout_without_a_second_create(api: FakeParallelClusterApi, clock: FakeClock) -> None:
    api.create_ticks = 10_000
    provider = make_provider(api, clock)
    with pytest.raises(Exception, match="create_timeout_minutes=5") as err:
        provider.create(props(create_timeout_minutes=5))
    assert "adopts the existing cluster" in str(err.value)
    assert 240 <= clock.t <= 300
    # Re-running `up` adopts the cluster that kept being created.
    api.clusters["hpc-dev"].ticks = 1
    outs = provider.create(props()).outs
    assert outs is not None and outs["cluster_status"] == "CREATE_COMPLETE"
    assert api.created_total == 1


def test_fails_when_the_cluster_is_lost_mid_create(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    api.create_ticks = 10
    api.lose_after_polls = 2
    with pytest.raises(Exception, match="disappeared while it was being created"):
        created(provider)
    assert api.count("POST") == 1
    assert api.created_total == 1


@pytest.mark.parametrize("conflict_status", [400, 409])
def test_create_adopts_a_cluster_carrying_this_stacks_marker(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, conflict_status: int
) -> None:
    api.conflict_status = conflict_status
    created(provider)
    api.calls.clear()
    outs = provider.create(props()).outs
    assert outs is not None and outs["cluster_status"] == "CREATE_COMPLETE"
    assert api.created_total == 1
    # The adopted cluster already has the stack's config (read back from ParallelCluster): no PUT.
    assert api.writes() == [("POST", "/v3/clusters")]


def test_adopting_applies_the_desired_config(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)
    outs = provider.create(props(cluster_config=cluster_config(max_count=20))).outs
    assert outs is not None
    assert api.clusters["hpc-dev"].config == cluster_config(max_count=20)
    assert outs["cluster_status"] == "UPDATE_COMPLETE"


def test_adopting_follows_the_fleet_stop_rules(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)
    api.calls.clear()
    new_config = cluster_config(instance_type="c6i.32xlarge")
    with pytest.raises(Exception, match="allow_fleet_stop is off"):
        provider.create(props(cluster_config=new_config))
    assert api.writes() == [("POST", "/v3/clusters")]  # refused: nothing else touched
    outs = provider.create(props(cluster_config=new_config, allow_fleet_stop=True)).outs
    assert outs is not None and outs["cluster_config"] == new_config
    fleet = "/v3/clusters/hpc-dev/computefleet"
    assert api.writes()[-3:] == [("PATCH", fleet), ("PUT", "/v3/clusters/hpc-dev"), ("PATCH", fleet)]
    assert api.created_total == 1


def test_adopting_without_a_readable_config_puts_it(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    created(provider)
    api.calls.clear()
    original = api._describe

    def without_config_url(name: str, cluster: FakeCluster | None) -> HttpResponse:
        response = original(name, cluster)
        body = json.loads(response.body)
        body.pop("clusterConfiguration", None)
        return HttpResponse(response.status, json.dumps(body).encode())

    api._describe = without_config_url  # type: ignore[method-assign]
    provider.create(props())
    assert api.writes() == [("POST", "/v3/clusters"), ("PUT", "/v3/clusters/hpc-dev")]  # "No changes found"


@pytest.mark.parametrize("conflict_status", [400, 409])
def test_fails_create_when_a_foreign_cluster_has_the_name(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, conflict_status: int
) -> None:
    api.conflict_status = conflict_status
    created(provider, stack_marker="hpc-platform/other", cluster_config={**cluster_config(), "Tags": []})
    with pytest.raises(Exception, match="does not belong to this stack") as err:
        provider.create(props())
    message = str(err.value)
    assert "choose another cluster name" in message and "to import the existing cluster" in message
    assert api.created_total == 1
    assert api.writes() == [("POST", "/v3/clusters"), ("POST", "/v3/clusters")]


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key,value",
    [("cluster_name", "hpc-dev2"), ("region", "us-west-2"), ("parallelcluster_version", "3.17.0")],
)
def test_diff_replaces_on_identity_changes(provider: ParallelClusterProvider, key: str, value: str) -> None:
    state = created(provider)
    result = provider.diff("hpc-dev", state, props(**{key: value}))
    assert result.changes is True
    assert key in (result.replaces or [])
    assert result.delete_before_replace is True


def test_diff_replaces_on_head_node_instance_type(provider: ParallelClusterProvider) -> None:
    state = created(provider)
    config = cluster_config()
    config["HeadNode"]["InstanceType"] = "m6i.2xlarge"
    result = provider.diff("hpc-dev", state, props(cluster_config=config))
    assert result.replaces == ["cluster_config"]
    assert result.delete_before_replace is True


def test_diff_updates_in_place_otherwise(provider: ParallelClusterProvider) -> None:
    state = created(provider)
    result = provider.diff("hpc-dev", state, props(cluster_config=cluster_config(max_count=50)))
    assert result.changes is True and result.replaces == []
    assert provider.diff("hpc-dev", state, props()).changes is False
    settings_only = provider.diff("hpc-dev", state, props(allow_fleet_stop=True))
    assert settings_only.changes is True and settings_only.replaces == []


def test_diff_says_when_an_update_needs_a_fleet_stop(provider: ParallelClusterProvider, logs: Logs) -> None:
    state = created(provider)
    logs.clear()
    provider.diff("hpc-dev", state, props(cluster_config=cluster_config(instance_type="c6i.32xlarge")))
    err = logs.text()
    assert "needs a compute-fleet stop" in err
    assert "ComputeResources[c5n].InstanceType" in err
    assert "allow_fleet_stop is off" in err


# ---------------------------------------------------------------------------------------------
# update
# ---------------------------------------------------------------------------------------------
def test_update_applies_a_live_change(provider: ParallelClusterProvider, api: FakeParallelClusterApi) -> None:
    state = created(provider)
    api.calls.clear()
    result = provider.update("hpc-dev", state, props(cluster_config=cluster_config(max_count=50)))
    assert result.outs is not None and result.outs["cluster_status"] == "UPDATE_COMPLETE"
    assert result.outs["cluster_config"] == cluster_config(max_count=50)
    assert api.writes() == [("PUT", "/v3/clusters/hpc-dev")]


def test_update_with_no_changes_found_is_success(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    # The cluster already has the new config (e.g. applied by an earlier, interrupted run).
    api.clusters["hpc-dev"].config = cluster_config(max_count=50)
    result = provider.update("hpc-dev", state, props(cluster_config=cluster_config(max_count=50)))
    assert result.outs is not None and result.outs["cluster_config"] == cluster_config(max_count=50)
    assert api.count("PUT") == 1


def test_update_of_settings_only_calls_no_write(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.calls.clear()
    result = provider.update("hpc-dev", state, props(update_timeout_minutes=90))
    assert result.outs is not None and result.outs["update_timeout_minutes"] == 90
    assert api.writes() == []


def test_update_stops_and_restarts_the_fleet_in_order(api: FakeParallelClusterApi, clock: FakeClock) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.calls.clear()
    new = props(
        allow_fleet_stop=True,
        cluster_config=cluster_config(instance_type="c6i.32xlarge", strategy="COMPUTE_FLEET_STOP"),
    )
    result = provider.update("hpc-dev", state, new)
    assert result.outs is not None and result.outs["cluster_status"] == "UPDATE_COMPLETE"
    fleet = "/v3/clusters/hpc-dev/computefleet"
    writes = api.writes()
    assert writes == [("PATCH", fleet), ("PUT", "/v3/clusters/hpc-dev"), ("PATCH", fleet)]
    bodies = [json.loads(r.body or b"{}") for r in api.requests if r.method == "PATCH"]
    assert bodies == [{"status": "STOP_REQUESTED"}, {"status": "START_REQUESTED"}]
    # The PUT went out only after the fleet reported STOPPED, and START only after UPDATE_COMPLETE.
    calls = api.calls
    put = calls.index(("PUT", "/v3/clusters/hpc-dev"))
    assert calls[put - 1] == ("GET", fleet)
    last_patch = len(calls) - 1 - calls[::-1].index(("PATCH", fleet))
    assert calls[last_patch - 2 : last_patch] == [("GET", "/v3/clusters/hpc-dev"), ("GET", fleet)]
    assert (
        api.clusters["hpc-dev"].config["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]["InstanceType"]
        == "c6i.32xlarge"
    )


def test_fails_update_needing_fleet_stop_when_not_allowed(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.calls.clear()
    new = props(cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    with pytest.raises(Exception, match="allow_fleet_stop is off") as err:
        provider.update("hpc-dev", state, new)
    message = str(err.value)
    assert "nothing was changed" in message
    assert "hpc:cluster.api.allow_fleet_stop: true" in message
    assert "STOP_REQUESTED" in message
    assert api.writes() == []  # nothing touched
    assert api.clusters["hpc-dev"].fleet == "RUNNING"


def test_fleet_stop_refusal_points_to_queue_update_strategy(
    provider: ParallelClusterProvider,
) -> None:
    state = created(provider, cluster_config=cluster_config(strategy="COMPUTE_FLEET_STOP"))
    new = props(cluster_config=cluster_config(instance_type="c6i.32xlarge", strategy="COMPUTE_FLEET_STOP"))
    with pytest.raises(Exception, match="queue_update_strategy to DRAIN"):
        provider.update("hpc-dev", state, new)


def test_update_asks_parallelcluster_before_stopping_the_fleet(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    new_config = cluster_config(instance_type="c6i.32xlarge")
    # An earlier, interrupted run already applied the new config: no stop is needed at all.
    api.clusters["hpc-dev"].config = new_config
    api.calls.clear()
    result = provider.update("hpc-dev", state, props(allow_fleet_stop=True, cluster_config=new_config))
    assert result.outs is not None and result.outs["cluster_config"] == new_config
    assert api.writes() == []
    assert ("PUT", "/v3/clusters/hpc-dev?dryrun") in api.calls
    assert api.clusters["hpc-dev"].fleet == "RUNNING"


def test_fails_update_with_config_errors_before_stopping_the_fleet(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.fail(
        "PUT",
        "/v3/clusters/hpc-dev",
        400,
        configurationValidationErrors=[
            {"level": "ERROR", "type": "InstanceTypeValidator", "message": "no such type"}
        ],
    )
    api.calls.clear()
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.64xlarge"))
    with pytest.raises(Exception, match="InstanceTypeValidator: no such type") as err:
        provider.update("hpc-dev", state, new)
    assert "nothing was changed" in str(err.value)
    assert api.writes() == []
    assert api.clusters["hpc-dev"].fleet == "RUNNING"


def test_update_proceeds_when_the_user_stopped_the_fleet(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.clusters["hpc-dev"].fleet = "STOPPED"
    api.calls.clear()
    provider.update("hpc-dev", state, props(cluster_config=cluster_config(instance_type="c6i.32xlarge")))
    assert api.writes() == [("PUT", "/v3/clusters/hpc-dev")]  # no stop, and no restart either
    assert api.clusters["hpc-dev"].fleet == "STOPPED"


def test_queue_update_strategy_changes_need_no_stop(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.calls.clear()
    config = cluster_config()
    config["Scheduling"]["SlurmQueues"][0]["CapacityType"] = "SPOT"  # DRAIN replaces the nodes
    provider.update("hpc-dev", state, props(cluster_config=config))
    assert api.writes() == [("PUT", "/v3/clusters/hpc-dev")]


def test_update_waits_out_a_concurrent_update_then_retries(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.calls.clear()
    # Someone else's update starts between our settle check and our PUT.
    api.fail("PUT", "/v3/clusters/hpc-dev", 409, times=1)
    cluster = api.clusters["hpc-dev"]

    def busy_once(c: FakeCluster) -> None:
        if not getattr(api, "_busy", False):
            api._busy = True  # type: ignore[attr-defined]
            c.status, c.ticks, c.outcome = "UPDATE_IN_PROGRESS", 2, "COMPLETE"

    api.on_describe = busy_once
    result = provider.update("hpc-dev", state, props(cluster_config=cluster_config(max_count=30)))
    assert result.outs is not None and result.outs["cluster_status"] == "UPDATE_COMPLETE"
    assert api.count("PUT") == 2
    assert cluster.config == cluster_config(max_count=30)


def test_fails_update_after_bounded_conflicts(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.fail("PUT", "/v3/clusters/hpc-dev", 409, times=100)
    with pytest.raises(Exception, match="stayed busy"):
        provider.update("hpc-dev", state, props(cluster_config=cluster_config(max_count=30)))
    assert api.count("PUT") == 4  # first try + conflict_retries=3


def test_fails_update_failed_restarts_the_fleet_it_stopped(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.update_outcome = "FAILED"
    api.calls.clear()
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    with pytest.raises(Exception, match="update failed") as err:
        provider.update("hpc-dev", state, new)
    assert "rolled the cluster back" in str(err.value)
    fleet = "/v3/clusters/hpc-dev/computefleet"
    assert api.writes() == [("PATCH", fleet), ("PUT", "/v3/clusters/hpc-dev"), ("PATCH", fleet)]
    assert api.clusters["hpc-dev"].fleet == "START_REQUESTED"


def test_fails_update_timeout_leaves_the_fleet_stopped_and_says_so(
    api: FakeParallelClusterApi, clock: FakeClock, logs: Logs
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.update_ticks = 10_000
    api.calls.clear()
    new = props(
        allow_fleet_stop=True,
        update_timeout_minutes=5,
        cluster_config=cluster_config(instance_type="c6i.32xlarge"),
    )
    with pytest.raises(Exception, match="update_timeout_minutes=5"):
        provider.update("hpc-dev", state, new)
    assert "START_REQUESTED" in logs.text()
    assert api.writes()[-1] == ("PUT", "/v3/clusters/hpc-dev")  # no START during an update


def test_fails_fleet_that_does_not_stop_before_any_update(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.fleet_stop_ticks = 10_000
    api.calls.clear()
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    with pytest.raises(Exception, match="did not stop in time"):
        provider.update("hpc-dev", state, new)
    assert api.count("PUT", "/v3/clusters/hpc-dev") == 0  # only the dry run


def test_fails_update_rejected_by_the_api(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    config = cluster_config(max_count=30)
    api.fail(
        "PUT",
        "/v3/clusters/hpc-dev",
        400,
        configurationValidationErrors=[
            {"level": "ERROR", "type": "MaxCountValidator", "message": "too many"}
        ],
    )
    with pytest.raises(Exception, match="MaxCountValidator: too many"):
        provider.update("hpc-dev", state, props(cluster_config=config))


# ---------------------------------------------------------------------------------------------
# read
# ---------------------------------------------------------------------------------------------
def test_read_reports_live_state_and_config_drift(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.clusters["hpc-dev"].config = cluster_config(max_count=99)  # changed out of band
    api.clusters["hpc-dev"].status = "UPDATE_COMPLETE"
    result = provider.read("hpc-dev", state)
    assert result.id == "hpc-dev"
    assert result.outs is not None
    assert result.outs["cluster_status"] == "UPDATE_COMPLETE"
    assert result.outs["cluster_config"] == cluster_config(max_count=99)
    assert result.outs[KIND_PROPERTY] == KIND_VALUE
    # The next diff sees the drift and plans an update back to the stack's config.
    assert provider.diff("hpc-dev", result.outs, props()).changes is True


def test_fails_read_without_api_url_with_advice(provider: ParallelClusterProvider) -> None:
    with pytest.raises(Exception, match="lacks api_url"):
        provider.read("hpc-dev", {"cluster_name": "hpc-dev", "region": "us-east-2"})


def test_read_of_a_deleted_cluster_returns_no_id(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    del api.clusters["hpc-dev"]
    result = provider.read("hpc-dev", state)
    assert result.id == ""


# ---------------------------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------------------------
def test_delete_waits_until_not_found(provider: ParallelClusterProvider, api: FakeParallelClusterApi) -> None:
    state = created(provider)
    provider.delete("hpc-dev", state)
    assert "hpc-dev" not in api.clusters
    assert api.count("DELETE") == 1


def test_delete_of_a_missing_cluster_is_success(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    provider.delete("hpc-dev", props())
    assert api.count("DELETE") == 1


def test_delete_retains_when_asked(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, logs: Logs
) -> None:
    state = created(provider, retain_on_delete=True)
    api.calls.clear()
    provider.delete("hpc-dev", state)
    assert api.calls == []
    assert "hpc-dev" in api.clusters
    assert "retain_on_delete" in logs.text()


def test_delete_retries_throttling_and_waits_out_an_update(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    cluster = api.clusters["hpc-dev"]
    cluster.status, cluster.ticks = "UPDATE_IN_PROGRESS", 2
    api.fail("DELETE", "/v3/clusters/hpc-dev", 429, times=2)
    provider.delete("hpc-dev", state)
    assert "hpc-dev" not in api.clusters


def test_fails_delete_failed_with_advice(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    api.delete_ticks = 10_000

    def fail_delete(c: FakeCluster) -> None:
        c.status = "DELETE_FAILED"

    provider_delete_started = False
    original = api._delete

    def delete_then_fail(cluster: FakeCluster | None, name: str) -> HttpResponse:
        nonlocal provider_delete_started
        provider_delete_started = True
        response = original(cluster, name)
        api.on_describe = fail_delete
        return response

    api._delete = delete_then_fail  # type: ignore[method-assign]
    # DELETE_FAILED is reported by describe once CloudFormation gives up.
    api.clusters["hpc-dev"].ticks = 10_000
    with pytest.raises(Exception, match="delete failed"):
        provider.delete("hpc-dev", state)
    assert provider_delete_started


def test_fails_delete_timeout_says_it_is_safe_to_repeat(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.delete_ticks = 10_000
    with pytest.raises(Exception, match="delete_timeout_minutes=5") as err:
        provider.delete("hpc-dev", {**state, "delete_timeout_minutes": 5})
    assert "deleting is safe to repeat" in str(err.value)
    api.clusters["hpc-dev"].ticks = 1
    provider.delete("hpc-dev", state)  # the re-run finds it deleting and waits for the 404
    assert api.clusters == {}


def test_fails_create_after_throttling_outlasts_the_retries(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    api.fail("POST", "/v3/clusters", 429, times=10)
    with pytest.raises(Exception, match="wait a few minutes and run again"):
        created(provider)
    assert api.created_total == 0
    assert api.count("POST") == 4  # bounded: max_attempts


def test_full_lifecycle_leaves_no_orphan(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    state = provider.update("hpc-dev", state, props(cluster_config=cluster_config(max_count=20))).outs or {}
    state = provider.read("hpc-dev", state).outs or {}
    provider.delete("hpc-dev", state)
    assert api.clusters == {}
    assert api.created_total == 1


# ---------------------------------------------------------------------------------------------
# Unknowns as the engine delivers them (preview)
# ---------------------------------------------------------------------------------------------
def config_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    config = cluster_config()
    target: Any = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


_HEAD_SUBNET = ("HeadNode", "Networking", "SubnetId")
_CR = ("Scheduling", "SlurmQueues", 0, "ComputeResources", 0)


def test_engine_round_trip_delivers_pulumi_unknown_objects() -> None:
    news = as_engine_delivers(props(cluster_config=config_with(_HEAD_SUBNET, UNKNOWN_OUTPUT)))
    assert isinstance(news["cluster_config"]["HeadNode"]["Networking"]["SubnetId"], Unknown)
    whole = as_engine_delivers(props(cluster_config=rpc.UNKNOWN))
    assert isinstance(whole["cluster_config"], Unknown)


@pytest.mark.parametrize(
    ("path", "replaces", "log_fragment"),
    [
        # HeadNode.Networking.SubnetId: UNSUPPORTED in ParallelCluster → replacement.
        (_HEAD_SUBNET, ["cluster_config"], "may be REPLACED"),
        # Image.Os: UNSUPPORTED as well.
        (("Image", "Os"), ["cluster_config"], "may be REPLACED"),
        # A compute instance type needs a fleet stop, never a new cluster.
        ((*_CR, "InstanceType"), [], "needs a compute-fleet stop"),
        # MaxCount may shrink: judged as a shrink (fleet stop), not a crash in int().
        ((*_CR, "MaxCount"), [], "needs a compute-fleet stop"),
        # Head-node security groups are updated in place.
        (("HeadNode", "Networking", "SecurityGroups"), [], None),
    ],
)
def test_diff_with_an_unknown_reports_what_its_path_may_take(
    provider: ParallelClusterProvider,
    logs: Logs,
    path: tuple[Any, ...],
    replaces: list[str],
    log_fragment: str | None,
) -> None:
    state = created(provider)
    logs.clear()
    news = as_engine_delivers(props(cluster_config=config_with(path, UNKNOWN_OUTPUT)))
    result = provider.diff("hpc-dev", state, news)
    assert result.changes is True
    assert result.replaces == replaces
    assert result.delete_before_replace is True
    if log_fragment:
        assert log_fragment in logs.text()
        assert "known only after apply" in logs.text()


def test_diff_with_a_wholly_unknown_config_may_replace(provider: ParallelClusterProvider, logs: Logs) -> None:
    state = created(provider)
    result = provider.diff("hpc-dev", state, as_engine_delivers(props(cluster_config=UNKNOWN_OUTPUT)))
    assert result.changes is True and result.replaces == ["cluster_config"]
    assert "may be REPLACED" in logs.text()


def test_diff_with_an_unknown_identity_input_replaces(provider: ParallelClusterProvider) -> None:
    state = created(provider)
    result = provider.diff("hpc-dev", state, as_engine_delivers(props(cluster_name=UNKNOWN_OUTPUT)))
    assert result.replaces == ["cluster_name"]


def test_unknowns_never_reach_the_api_or_yaml(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    # The engine resolves unknowns before create/update; if one slipped through, the provider says
    # which field, instead of sending the sentinel or crashing in the YAML dumper.
    news = as_engine_delivers(props(cluster_config=config_with(_HEAD_SUBNET, UNKNOWN_OUTPUT)))
    with pytest.raises(Exception, match=r"cluster_config\.HeadNode\.Networking\.SubnetId not known yet"):
        provider.create(news)
    state = created(provider)
    api.calls.clear()
    with pytest.raises(Exception, match="not known yet"):
        provider.update("hpc-dev", state, props(cluster_config=config_with(_HEAD_SUBNET, rpc.UNKNOWN)))
    assert api.calls == []


def test_render_config_names_a_value_that_is_not_plain_data() -> None:
    from hpc_platform.pcluster.client import NotPlainDataError, render_config

    news = as_engine_delivers(props(cluster_config=config_with(_HEAD_SUBNET, UNKNOWN_OUTPUT)))
    with pytest.raises(NotPlainDataError, match=r"cluster_config\.HeadNode\.Networking\.SubnetId holds"):
        render_config(news["cluster_config"])


@pytest.fixture(scope="module")
def engine_host() -> Any:
    host = DynamicProviderHost()
    yield host
    host.close()


def test_engine_host_check_and_diff_with_unknowns(engine_host: DynamicProviderHost) -> None:
    """Pulumi's own dynamic-provider host (a subprocess, driven over gRPC as the engine does)."""
    clock = FakeClock()
    state = created(make_provider(FakeParallelClusterApi(clock), clock))
    provider = ParallelClusterProvider()  # what the program pickles: no settings
    news = props(cluster_config=config_with(_HEAD_SUBNET, UNKNOWN_OUTPUT))
    checked = engine_host.check(provider, props(), news)
    assert list(checked.failures) == []
    assert checked.inputs["cluster_config"]["HeadNode"]["Networking"]["SubnetId"] == rpc.UNKNOWN
    diff = engine_host.diff(provider, "hpc-dev", state, news)
    assert diff.changes == diff.DIFF_SOME
    assert list(diff.replaces) == ["cluster_config"]  # the preview shows `+-` replace
    assert diff.deleteBeforeReplace is True
    whole = engine_host.diff(provider, "hpc-dev", state, props(cluster_config=UNKNOWN_OUTPUT))
    assert list(whole.replaces) == ["cluster_config"]


def test_engine_host_writes_the_fleet_stop_notice_to_the_plugin_stderr(
    engine_host: DynamicProviderHost,
) -> None:
    """The dynamic host has no engine connection, so `pulumi.log` prints to the plugin's stderr;
    the engine relays those lines to the CLI (see docs/parallelcluster-provider.md)."""
    clock = FakeClock()
    state = created(make_provider(FakeParallelClusterApi(clock), clock))
    news = props(cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    diff = engine_host.diff(ParallelClusterProvider(), "hpc-dev", state, news)
    assert diff.changes == diff.DIFF_SOME and list(diff.replaces) == []
    for _ in range(50):
        if "needs a compute-fleet stop" in engine_host.stderr():
            break
        time.sleep(0.1)
    assert "warning: updating cluster 'hpc-dev' needs a compute-fleet stop" in engine_host.stderr()
    assert "ComputeResources[c5n].InstanceType" in engine_host.stderr()


# ---------------------------------------------------------------------------------------------
# Dry runs that answer 409
# ---------------------------------------------------------------------------------------------
def test_check_reports_a_busy_cluster_as_not_validated(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, logs: Logs
) -> None:
    state = created(provider)
    cluster = api.clusters["hpc-dev"]
    cluster.status, cluster.ticks = "UPDATE_IN_PROGRESS", 10_000
    logs.clear()
    result = provider.check(state, props(cluster_config=cluster_config(max_count=30)))
    assert result.failures == []  # no verdict either way: `up` validates when it applies
    assert "was NOT validated" in logs.text()
    assert "UPDATE_IN_PROGRESS" in logs.text()


def test_check_does_not_take_a_409_on_create_for_a_taken_name(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, logs: Logs
) -> None:
    api.fail("POST", "/v3/clusters", 409, message="Another operation is in progress")
    assert provider.check({}, props()).failures == []
    assert "was NOT validated" in logs.text()
    assert api.count("GET") == 0  # not mistaken for "the name is taken" (no adoption lookup)


def test_update_waits_out_a_busy_dry_run_before_deciding_on_a_fleet_stop(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.fail("PUT", "/v3/clusters/hpc-dev", 409, times=1)  # the dry run meets another operation
    api.calls.clear()
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    provider.update("hpc-dev", state, new)
    assert api.calls.count(("PUT", "/v3/clusters/hpc-dev?dryrun")) == 2


# ---------------------------------------------------------------------------------------------
# Delete as ParallelCluster does it
# ---------------------------------------------------------------------------------------------
def test_delete_during_a_create_is_accepted_and_waits_for_the_404(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    api.create_ticks = 10_000
    with pytest.raises(Exception, match="create_timeout_minutes=5"):
        provider.create(props(create_timeout_minutes=5))
    provider.delete("hpc-dev", props())  # `pulumi destroy` of a cluster still being created
    assert api.clusters == {}
    assert api.count("DELETE") == 1


def test_delete_during_an_update_waits_and_retries(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = created(provider)
    cluster = api.clusters["hpc-dev"]
    cluster.status, cluster.ticks = "UPDATE_IN_PROGRESS", 3
    provider.delete("hpc-dev", state)
    assert api.clusters == {}
    assert api.count("DELETE") == 2  # 400 "cannot be deleted while in status UPDATE_IN_PROGRESS", then 202


# ---------------------------------------------------------------------------------------------
# Adoption: every state a cluster left by an earlier run can be in
# ---------------------------------------------------------------------------------------------
def leave_cluster(
    api: FakeParallelClusterApi, status: str, stack_status: str | None = None, **kw: Any
) -> None:
    """A cluster of this stack, left by an earlier run, in `status`."""
    config = kw.pop("config", cluster_config())
    api.clusters["hpc-dev"] = FakeCluster(
        "hpc-dev",
        config,
        [{"key": STACK_MARKER_TAG, "value": MARKER}],
        status=status,
        stack_status=stack_status or status,
        **kw,
    )
    api.created_total = 1


@pytest.mark.parametrize(
    ("status", "stack_status", "final_status"),
    [
        ("CREATE_IN_PROGRESS", None, "UPDATE_COMPLETE"),  # waits, then converges
        ("CREATE_COMPLETE", None, "UPDATE_COMPLETE"),
        ("UPDATE_IN_PROGRESS", None, "UPDATE_COMPLETE"),  # waits for that update, then converges
        ("UPDATE_COMPLETE", None, "UPDATE_COMPLETE"),
        # Rolled back to its previous config: a working cluster, brought to the stack's config.
        ("UPDATE_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_COMPLETE"),
    ],
)
def test_adopting_a_usable_cluster_converges_through_the_update_path(
    provider: ParallelClusterProvider,
    api: FakeParallelClusterApi,
    status: str,
    stack_status: str | None,
    final_status: str,
) -> None:
    leave_cluster(api, status, stack_status, ticks=2, outcome="COMPLETE")
    desired = cluster_config(max_count=20)
    outs = provider.create(props(cluster_config=desired)).outs
    assert outs is not None
    assert outs["cluster_status"] == final_status
    assert outs["cluster_config"] == desired
    assert api.clusters["hpc-dev"].config == desired
    assert api.created_total == 1
    assert api.writes() == [("POST", "/v3/clusters"), ("PUT", "/v3/clusters/hpc-dev")]


def test_adopting_an_update_failed_cluster_that_already_matches_sends_nothing(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "UPDATE_FAILED", "UPDATE_ROLLBACK_COMPLETE")
    outs = provider.create(props()).outs
    assert outs is not None and outs["cluster_status"] == "UPDATE_FAILED"
    assert api.writes() == [("POST", "/v3/clusters")]


def test_fails_adopting_a_failed_create_with_delete_advice(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "CREATE_FAILED", "ROLLBACK_COMPLETE")
    with pytest.raises(Exception, match="create failed") as err:
        provider.create(props())
    assert "pcluster delete-cluster -n hpc-dev" in str(err.value)
    assert api.writes() == [("POST", "/v3/clusters")]


def test_fails_adopting_a_stuck_rollback_without_advising_deletion(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "UPDATE_FAILED", "UPDATE_ROLLBACK_FAILED")
    with pytest.raises(Exception, match="continue-update-rollback") as err:
        provider.create(props())
    assert "do not delete it" in str(err.value)
    assert "delete-cluster" not in str(err.value)
    assert api.writes() == [("POST", "/v3/clusters")]


def test_adopting_a_deleting_cluster_waits_for_the_delete_then_creates(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "DELETE_IN_PROGRESS", ticks=3)
    outs = provider.create(props()).outs
    assert outs is not None and outs["cluster_status"] == "CREATE_COMPLETE"
    assert api.created_total == 2  # the old one finished deleting; one new cluster
    assert api.writes() == [("POST", "/v3/clusters"), ("POST", "/v3/clusters")]


def test_fails_adopting_a_cluster_whose_delete_failed(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "DELETE_FAILED")
    with pytest.raises(Exception, match="delete failed") as err:
        provider.create(props())
    assert "run `pulumi up` again to create it anew" in str(err.value)


def test_check_reports_a_failed_create_it_would_meet(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    leave_cluster(api, "CREATE_FAILED", "ROLLBACK_COMPLETE")
    failures = provider.check({}, props()).failures
    assert [f.property for f in failures] == ["cluster_config"]
    assert "pcluster delete-cluster -n hpc-dev" in failures[0].reason


# ---------------------------------------------------------------------------------------------
# Fleet bookkeeping: only the provider's own stop is undone
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("allow_fleet_stop", [True, False])
@pytest.mark.parametrize("operator_status", ["STOP_REQUESTED", "STOPPING"])
def test_update_leaves_an_operators_stop_alone(
    provider: ParallelClusterProvider,
    api: FakeParallelClusterApi,
    operator_status: str,
    allow_fleet_stop: bool,
) -> None:
    state = created(provider)
    cluster = api.clusters["hpc-dev"]
    cluster.fleet, cluster.fleet_ticks = operator_status, 2  # an operator asked for the stop
    api.calls.clear()
    new = props(
        allow_fleet_stop=allow_fleet_stop, cluster_config=cluster_config(instance_type="c6i.32xlarge")
    )
    provider.update("hpc-dev", state, new)
    assert api.writes() == [("PUT", "/v3/clusters/hpc-dev")]  # no STOP, and above all no START
    assert cluster.fleet == "STOPPED"


def _refuse_start(api: FakeParallelClusterApi, times: int) -> None:
    original = api._fleet
    left = {"n": times}

    def fleet(cluster: FakeCluster, method: str, body: dict[str, Any]) -> HttpResponse:
        if method == "PATCH" and body.get("status") == "START_REQUESTED" and left["n"] > 0:
            left["n"] -= 1
            return api._json(400, {"message": "injected: cannot start the fleet"})
        return original(cluster, method, body)

    api._fleet = fleet  # type: ignore[method-assign]


def test_a_failed_start_is_recorded_and_the_next_run_starts_the_fleet(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi, logs: Logs
) -> None:
    state = created(provider)
    assert state["fleet_restart_pending"] is False
    _refuse_start(api, times=1)
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    outs = provider.update("hpc-dev", state, new).outs
    assert outs is not None and outs["fleet_restart_pending"] is True
    assert outs["cluster_config"] == new["cluster_config"]  # the update itself succeeded
    assert "could not restart the compute fleet" in logs.text()
    assert api.clusters["hpc-dev"].fleet == "STOPPED"
    # The next preview plans an update, and the next `up` starts the fleet.
    assert provider.diff("hpc-dev", outs, new).changes is True
    api.calls.clear()
    again = provider.update("hpc-dev", outs, new).outs
    assert again is not None and again["fleet_restart_pending"] is False
    assert api.writes() == [("PATCH", "/v3/clusters/hpc-dev/computefleet")]
    assert api.clusters["hpc-dev"].fleet == "START_REQUESTED"
    assert provider.diff("hpc-dev", again, new).changes is False


def test_a_refresh_keeps_the_pending_restart(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = {**created(provider), "fleet_restart_pending": True}
    outs = provider.read("hpc-dev", state).outs
    assert outs is not None and outs["fleet_restart_pending"] is True


def test_fails_loudly_when_the_pending_restart_fails_again(
    provider: ParallelClusterProvider, api: FakeParallelClusterApi
) -> None:
    state = {**created(provider), "fleet_restart_pending": True}
    api.clusters["hpc-dev"].fleet = "STOPPED"
    _refuse_start(api, times=1)
    with pytest.raises(Exception, match="could not restart the compute fleet") as err:
        provider.update("hpc-dev", state, props())
    assert "START_REQUESTED" in str(err.value)


def test_fails_update_and_start_together_with_the_start_instruction(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    provider = make_provider(api, clock)
    state = created(provider)
    api.update_outcome = "FAILED"
    _refuse_start(api, times=1)
    new = props(allow_fleet_stop=True, cluster_config=cluster_config(instance_type="c6i.32xlarge"))
    with pytest.raises(Exception, match="update failed") as err:
        provider.update("hpc-dev", state, new)
    assert "pcluster update-compute-fleet -n hpc-dev --status START_REQUESTED" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Credentials: resolved once per operation
# ---------------------------------------------------------------------------------------------
def test_credentials_are_resolved_once_per_operation_and_frozen_per_request(
    api: FakeParallelClusterApi, clock: FakeClock
) -> None:
    resolved: list[int] = []
    frozen: list[int] = []

    class Refreshable(FakeCredentials):
        def get_frozen_credentials(self) -> FakeCredentials:
            frozen.append(1)  # botocore's refreshable credentials renew here when near expiry
            return FakeCredentials()

    def resolver() -> Refreshable:
        resolved.append(1)
        return Refreshable()

    provider = make_provider(api, clock, credentials=resolver)
    api.create_ticks = 10
    created(provider)
    requests = len(api.requests)
    assert requests > 5  # a create with several polls
    assert len(resolved) == 1
    assert len(frozen) == requests
    assert vars(provider) == {"_settings": provider._settings}  # nothing cached on the provider
