"""Calling the ParallelCluster API as the role its template admits: the resource-policy fact, the
client's assumed-role credentials (once per client, refreshed near expiry) and its messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from hpc_platform.pcluster.api_access import (
    api_user_role_arn,
    invoke_denied,
    invoke_principal_pattern,
    policy_principal_arn,
    role_session_name,
    stack_id_suffix,
    string_like,
)
from hpc_platform.pcluster.client import (
    Backoff,
    HttpRequest,
    HttpResponse,
    ParallelClusterClient,
    RoleAssumptionError,
    UnauthorizedError,
)
from tests.test_pcluster_provider import (
    ACCESS_KEY,
    FakeClock,
    FakeCredentials,
    FakeParallelClusterApi,
    make_provider,
    props,
)

API = "https://abc123.execute-api.us-east-2.amazonaws.com/prod"
ACCOUNT = "123456789012"
STACK_ID = (
    f"arn:aws:cloudformation:us-east-2:{ACCOUNT}:stack/hpc-dev-pcluster-api/"
    "6f1c2d3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"
)
ROLE = api_user_role_arn("aws", ACCOUNT, stack_id_suffix(STACK_ID))


class FakeSts:
    """AssumeRole as STS answers it: fresh temporary credentials valid for `duration`, with an
    absolute expiry on a world clock that the fake clock's elapsed time has moved forward."""

    def __init__(
        self, clock: FakeClock, duration: timedelta = timedelta(hours=1), deny: bool = False
    ) -> None:
        self.clock = clock
        self.duration = duration
        self.deny = deny
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, source: Any, role_arn: str, session_name: str, region: str) -> Mapping[str, Any]:
        self.calls.append((source.get_frozen_credentials().access_key, role_arn, session_name, region))
        if self.deny:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "AccessDenied",
                        "Message": f"User: arn:aws:iam::{ACCOUNT}:user/deployer is not authorized to "
                        f"perform: sts:AssumeRole on resource: {role_arn}",
                    }
                },
                "AssumeRole",
            )
        n = len(self.calls)
        return {
            "AccessKeyId": f"ASIAROLE{n:012d}",
            "SecretAccessKey": f"role-secret-{n}",
            "SessionToken": f"role-token-{n}",
            "Expiration": datetime.now(UTC) + timedelta(seconds=self.clock.t) + self.duration,
        }


class Recorder:
    def __init__(self, status: int = 200, payload: bytes = b"{}") -> None:
        self.requests: list[HttpRequest] = []
        self.status = status
        self.payload = payload

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse(self.status, self.payload)


def signed_key(request: HttpRequest) -> str:
    """The access key id in a SigV4 Authorization header (`Credential=<key>/<scope>`)."""
    return request.headers["Authorization"].split("Credential=")[1].split("/")[0]


def make_client(
    transport: Recorder, sts: FakeSts, clock: FakeClock, role_arn: str | None = ROLE
) -> ParallelClusterClient:
    return ParallelClusterClient(
        API,
        "us-east-2",
        transport=transport,
        credentials=FakeCredentials,
        backoff=Backoff(max_attempts=1),
        clock=clock.clock(),
        role_arn=role_arn,
        role_session_name="hpc-platform-dev",
        assume_role=sts,
    )


# --- the template's resource policy ------------------------------------------------------------
def test_resource_policy_admits_the_user_role_and_its_sessions_only() -> None:
    pattern = invoke_principal_pattern("aws", ACCOUNT, stack_id_suffix(STACK_ID))
    assert pattern == f"arn:aws:*::{ACCOUNT}:*/PCAPIUserRole-6f1c2d3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f*"
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE.split('/')[-1]}/hpc-platform-dev"
    assert policy_principal_arn(session) == ROLE
    assert not invoke_denied(ROLE, pattern)
    assert not invoke_denied(session, pattern)
    for caller in (
        f"arn:aws:iam::{ACCOUNT}:user/deployer",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/AdministratorAccess/alice",
        f"arn:aws:iam::{ACCOUNT}:role/PCAPIUserRole-another-stack",
        f"arn:aws:iam::210987654321:role/{ROLE.split('/')[-1]}",
    ):
        assert invoke_denied(caller, pattern), caller
    # CreateApiUserRole=false: the pattern is '*', nothing is denied.
    assert not invoke_denied(f"arn:aws:iam::{ACCOUNT}:user/deployer", "*")


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ("arn:aws:iam::1:role/a/b/PCAPIUserRole-x", "arn:aws:*::1:*/PCAPIUserRole-x*", True),
        ("arn:aws:iam::1:role/pcapiuserrole-x", "arn:aws:*::1:*/PCAPIUserRole-x*", False),
        ("abc", "a?c", True),
        ("a.c", "a?c", True),
        ("ac", "a?c", False),
        ("a+c", "a+c", True),
        ("aac", "a+c", False),
    ],
)
def test_string_like_is_iams(value: str, pattern: str, matches: bool) -> None:
    assert string_like(value, pattern) is matches


@pytest.mark.parametrize(
    ("marker", "cluster", "session"),
    [
        ("hpc-platform/dev", "hpc-dev", "hpc-platform-dev"),
        (None, "hpc-dev", "hpc-dev"),
        ("p/" + "s" * 80, "c", ("p-" + "s" * 80)[:64]),
    ],
)
def test_role_session_name_identifies_the_stack(marker: str | None, cluster: str, session: str) -> None:
    assert role_session_name(marker, cluster) == session


# --- the client ------------------------------------------------------------------------------
def test_requests_are_signed_with_the_assumed_roles_credentials() -> None:
    clock = FakeClock()
    transport, sts = Recorder(), FakeSts(clock)
    client = make_client(transport, sts, clock)
    client.describe_cluster("hpc-dev")
    client.describe_compute_fleet("hpc-dev")
    assert sts.calls == [(ACCESS_KEY, ROLE, "hpc-platform-dev", "us-east-2")]
    for request in transport.requests:
        assert signed_key(request) == "ASIAROLE000000000001"
        assert request.headers["X-Amz-Security-Token"] == "role-token-1"
        assert ACCESS_KEY not in str(request.headers)
        assert "role-secret-1" not in str(request.headers)


def test_without_a_role_requests_are_signed_with_the_source_credentials() -> None:
    clock = FakeClock()
    transport, sts = Recorder(), FakeSts(clock)
    make_client(transport, sts, clock, role_arn=None).describe_cluster("hpc-dev")
    assert sts.calls == []
    assert signed_key(transport.requests[0]) == ACCESS_KEY


def test_role_credentials_are_refreshed_only_near_expiry() -> None:
    clock = FakeClock()
    transport, sts = Recorder(), FakeSts(clock, duration=timedelta(hours=1))
    client = make_client(transport, sts, clock)
    client.describe_cluster("hpc-dev")
    clock.t += 40 * 60  # 20 minutes left: botocore refreshes 15 minutes before expiry
    client.describe_cluster("hpc-dev")
    assert len(sts.calls) == 1
    clock.t += 10 * 60  # 10 minutes left
    client.describe_cluster("hpc-dev")
    client.describe_cluster("hpc-dev")
    assert len(sts.calls) == 2
    assert [signed_key(r) for r in transport.requests] == [
        "ASIAROLE000000000001",
        "ASIAROLE000000000001",
        "ASIAROLE000000000002",
        "ASIAROLE000000000002",
    ]


def test_fails_assume_role_naming_the_role_and_the_missing_permission() -> None:
    clock = FakeClock()
    transport, sts = Recorder(), FakeSts(clock, deny=True)
    client = make_client(transport, sts, clock)
    with pytest.raises(RoleAssumptionError) as caught:
        client.describe_cluster("hpc-dev")
    message = str(caught.value)
    assert f"could not assume role {ROLE} to call the ParallelCluster API" in message
    assert f"needs sts:AssumeRole on {ROLE}" in message
    assert "AccessDenied" in message
    assert transport.requests == []  # nothing was sent unsigned or with the wrong identity


def test_fails_403_without_a_role_says_the_api_admits_only_its_user_role() -> None:
    refusal = (
        b'{"Message":"User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: '
        b"execute-api:Invoke on resource: arn:aws:execute-api:us-east-2:123456789012:abc123/prod/GET/"
        b'v3/clusters/hpc-dev with an explicit deny"}'
    )
    clock = FakeClock()
    transport, sts = Recorder(403, refusal), FakeSts(clock)
    with pytest.raises(UnauthorizedError) as caught:
        make_client(transport, sts, clock, role_arn=None).describe_cluster("hpc-dev")
    message = str(caught.value)
    assert "with an explicit deny" in message  # API Gateway's `Message`, kept
    assert "lets only its own PCAPIUserRole-… role invoke it" in message
    assert "hpc:cluster.api.role_arn" in message


def test_fails_403_with_a_role_names_the_role() -> None:
    clock = FakeClock()
    transport, sts = Recorder(403, b'{"Message":"Forbidden"}'), FakeSts(clock)
    with pytest.raises(UnauthorizedError) as caught:
        make_client(transport, sts, clock).describe_cluster("hpc-dev")
    assert f"signed as role {ROLE}, which the API refused" in str(caught.value)


# --- the provider ----------------------------------------------------------------------------
def test_provider_assumes_the_role_once_per_operation() -> None:
    clock = FakeClock()
    api, sts = FakeParallelClusterApi(clock), FakeSts(clock)
    provider = make_provider(api, clock, assume_role=sts)
    outs = provider.create(props(api_role_arn=ROLE)).outs
    assert outs is not None
    assert len(api.requests) > 3  # a POST and several polls...
    assert len(sts.calls) == 1  # ...under one assumed-role session
    assert {signed_key(r) for r in api.requests} == {"ASIAROLE000000000001"}
    assert sts.calls[0][2] == "hpc-platform-dev"
    provider.read("hpc-dev", outs)
    assert len(sts.calls) == 2  # the next operation assumes afresh
    # Only the ARN reaches the state; the role's credentials never do.
    assert outs["api_role_arn"] == ROLE
    assert "ASIAROLE" not in str(outs) and "role-secret" not in str(outs)
    assert vars(provider).keys() == {"_settings"}


def test_provider_refreshes_the_role_during_a_long_create() -> None:
    clock = FakeClock()
    api, sts = FakeParallelClusterApi(clock), FakeSts(clock, duration=timedelta(minutes=30))
    api.create_ticks = 50  # 50 polls, 90 s apart: the create takes over an hour
    provider = make_provider(
        api, clock, assume_role=sts, poll_backoff=Backoff(base_seconds=120, max_seconds=120)
    )
    provider.create(props(api_role_arn=ROLE, create_timeout_minutes=120))
    assert clock.t > 60 * 60
    # Refreshed about every 15 minutes (30-minute credentials, refreshed 15 minutes early); never per request.
    assert 3 <= len(sts.calls) < len(api.requests) // 2


def test_provider_rejects_a_role_that_is_not_an_iam_role_arn() -> None:
    clock = FakeClock()
    provider = make_provider(FakeParallelClusterApi(clock), clock)
    result = provider.check({}, props(api_role_arn="PCAPIUserRole-x", dryrun_on_preview=False))
    assert [(f.property, f.reason.split(";")[0]) for f in result.failures or []] == [
        (
            "api_role_arn",
            "api_role_arn 'PCAPIUserRole-x' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
        )
    ]
