"""The ParallelCluster REST client: requests, signing, error mapping, bounded retries, transport."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hpc_platform.pcluster.client import (
    Backoff,
    BadRequestError,
    Clock,
    ConflictError,
    DryrunSucceeded,
    HttpRequest,
    HttpResponse,
    NoCredentialsError,
    NotFoundError,
    ParallelClusterClient,
    ParallelClusterError,
    ServerError,
    ThrottledError,
    TransportError,
    UnauthorizedError,
    api_region_of,
    format_validation_message,
    urllib_transport,
)

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"


class Creds:
    access_key = "AKIACLIENTTEST000001"
    secret_key = "client-test-secret"
    token = "session-token"

    def get_frozen_credentials(self) -> Creds:
        return self


class Scripted:
    """A transport answering from a list (a response or an exception per call)."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def answer(status: int, payload: Any = None) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload or {}).encode())


def make_client(transport: Scripted, max_attempts: int = 4) -> tuple[ParallelClusterClient, list[float]]:
    sleeps: list[float] = []
    client = ParallelClusterClient(
        API,
        "eu-west-1",
        transport=transport,
        credentials=Creds,
        backoff=Backoff(base_seconds=0.5, max_seconds=2, max_attempts=max_attempts),
        clock=Clock(now=lambda: 0.0, sleep=sleeps.append, rand=lambda: 1.0),
    )
    return client, sleeps


def test_create_request_shape() -> None:
    transport = Scripted(answer(202, {"cluster": {"clusterName": "c1"}}))
    client, _ = make_client(transport)
    client.create_cluster("c1", {"Region": "eu-west-1", "HeadNode": {"InstanceType": "m6i.xlarge"}})
    request = transport.requests[0]
    parts = urllib.parse.urlsplit(request.url)
    assert request.method == "POST"
    assert parts.path == "/prod/v3/clusters"
    assert urllib.parse.parse_qs(parts.query) == {"region": ["eu-west-1"]}
    body = json.loads(request.body or b"")
    assert body["clusterName"] == "c1"
    assert yaml.safe_load(body["clusterConfiguration"]) == {
        "Region": "eu-west-1",
        "HeadNode": {"InstanceType": "m6i.xlarge"},
    }
    assert request.headers["Content-Type"] == "application/json"


def test_whole_floats_from_pulumi_are_sent_as_ints() -> None:
    transport = Scripted(answer(202))
    client, _ = make_client(transport)
    client.create_cluster("c1", {"Scheduling": {"SlurmQueues": [{"MaxCount": 4.0, "SpotPrice": 0.5}]}})
    sent = yaml.safe_load(json.loads(transport.requests[0].body or b"")["clusterConfiguration"])
    assert sent == {"Scheduling": {"SlurmQueues": [{"MaxCount": 4, "SpotPrice": 0.5}]}}
    assert isinstance(sent["Scheduling"]["SlurmQueues"][0]["MaxCount"], int)


def test_query_parameters_are_the_region_and_the_dry_run_flag() -> None:
    transport = Scripted(answer(202), answer(202))
    client, _ = make_client(transport)
    client.create_cluster("c1", {}, dryrun=True)
    client.update_cluster("c1", {})
    create_q = urllib.parse.parse_qs(urllib.parse.urlsplit(transport.requests[0].url).query)
    assert create_q == {"region": ["eu-west-1"], "dryrun": ["true"]}
    update_q = urllib.parse.parse_qs(urllib.parse.urlsplit(transport.requests[1].url).query)
    assert update_q == {"region": ["eu-west-1"]}


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.describe_cluster("my-c"), "GET", "/prod/v3/clusters/my-c", None),
        (lambda c: c.update_cluster("my-c", {"A": 1}), "PUT", "/prod/v3/clusters/my-c", "A: 1\n"),
        (lambda c: c.delete_cluster("my-c"), "DELETE", "/prod/v3/clusters/my-c", None),
        (lambda c: c.describe_compute_fleet("my-c"), "GET", "/prod/v3/clusters/my-c/computefleet", None),
        (
            lambda c: c.update_compute_fleet("my-c", "STOP_REQUESTED"),
            "PATCH",
            "/prod/v3/clusters/my-c/computefleet",
            {"status": "STOP_REQUESTED"},
        ),
    ],
)
def test_operation_routes(call: Any, method: str, path: str, body: Any) -> None:
    transport = Scripted(answer(200, {"ok": True}))
    client, _ = make_client(transport)
    assert call(client) == {"ok": True}
    request = transport.requests[0]
    assert (request.method, urllib.parse.urlsplit(request.url).path) == (method, path)
    sent = json.loads(request.body) if request.body else None
    if isinstance(body, str):
        assert sent == {"clusterConfiguration": body}
    else:
        assert sent == body


def test_sigv4_headers_use_execute_api_and_the_api_region() -> None:
    transport = Scripted(answer(200))
    client, _ = make_client(transport)
    client.describe_cluster("c1")
    headers = transport.requests[0].headers
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIACLIENTTEST000001/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=" in headers["Authorization"] and "Signature=" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert "client-test-secret" not in json.dumps(dict(headers))


def test_signing_region_comes_from_the_api_url() -> None:
    assert api_region_of(API, "us-east-1") == "eu-west-1"
    assert api_region_of("http://127.0.0.1:8080", "us-east-2") == "us-east-2"
    assert api_region_of("https://pcluster.example.com/prod", "ap-south-1") == "ap-south-1"


def test_fails_without_credentials() -> None:
    client = ParallelClusterClient(API, "eu-west-1", transport=Scripted(), credentials=lambda: None)
    with pytest.raises(NoCredentialsError, match="AWS_PROFILE"):
        client.describe_cluster("c1")


@pytest.mark.parametrize(
    ("status", "error", "fragment"),
    [
        (400, BadRequestError, "BadRequestException"),
        (401, UnauthorizedError, "execute-api:Invoke"),
        (403, UnauthorizedError, "execute-api:Invoke"),
        (404, NotFoundError, "NotFoundException"),
        (409, ConflictError, "ConflictException"),
        (412, DryrunSucceeded, "DryrunOperationException"),
    ],
)
def test_errors_are_typed_and_not_retried(status: int, error: type[Exception], fragment: str) -> None:
    transport = Scripted(answer(status, {"message": "the api says no"}))
    client, sleeps = make_client(transport)
    with pytest.raises(error) as err:
        client.describe_cluster("c1")
    assert fragment in str(err.value)
    assert "the api says no" in str(err.value)
    assert "describe cluster 'c1'" in str(err.value)
    assert sleeps == []


def test_bad_request_lists_validation_errors_and_recognises_no_changes() -> None:
    payload = {
        "message": "Invalid cluster configuration.",
        "configurationValidationErrors": [{"level": "ERROR", "type": "EfaValidator", "message": "no EFA"}],
        "updateValidationErrors": [
            {
                "parameter": "Scheduling.SlurmQueues[q].ComputeResources[c].InstanceType",
                "currentValue": "c5n.18xlarge",
                "requestedValue": "c6i.32xlarge",
                "message": "All compute nodes must be stopped",
            }
        ],
    }
    transport = Scripted(
        answer(400, payload), answer(400, {"message": "No changes found in your cluster configuration."})
    )
    client, _ = make_client(transport)
    with pytest.raises(BadRequestError) as err:
        client.update_cluster("c1", {})
    text = str(err.value)
    assert "ERROR EfaValidator: no EFA" in text
    assert (
        "InstanceType: All compute nodes must be stopped (current c5n.18xlarge, requested c6i.32xlarge)"
        in text
    )
    assert "Fix the configuration values" in text
    assert not err.value.is_no_changes
    with pytest.raises(BadRequestError) as again:
        client.update_cluster("c1", {})
    assert again.value.is_no_changes


def test_dryrun_answer_carries_validation_messages() -> None:
    payload = {
        "message": "ok",
        "validationMessages": [{"level": "WARNING", "message": "w"}],
        "changeSet": [{"parameter": "p"}],
    }
    client, _ = make_client(Scripted(answer(412, payload)))
    with pytest.raises(DryrunSucceeded) as err:
        client.create_cluster("c1", {}, dryrun=True)
    assert err.value.validation_messages == [{"level": "WARNING", "message": "w"}]
    assert err.value.change_set == [{"parameter": "p"}]


def test_throttling_and_server_errors_retry_with_jittered_backoff() -> None:
    transport = Scripted(
        answer(429), answer(503), TransportError("reset"), answer(200, {"clusterStatus": "X"})
    )
    client, sleeps = make_client(transport)
    assert client.describe_cluster("c1") == {"clusterStatus": "X"}
    assert len(transport.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]  # rand=1.0: the top of each jitter window, capped at 2


def test_retries_are_bounded() -> None:
    client, sleeps = make_client(Scripted(*[answer(429)] * 4))
    with pytest.raises(ThrottledError, match="wait a few minutes"):
        client.describe_cluster("c1")
    assert len(sleeps) == 3
    client, _ = make_client(Scripted(*[answer(500, {"message": "boom"})] * 4))
    with pytest.raises(ServerError, match="CloudWatch"):
        client.describe_cluster("c1")
    client, _ = make_client(Scripted(*[TransportError("timed out")] * 4))
    with pytest.raises(ParallelClusterError, match="got no answer after 4 attempts"):
        client.describe_cluster("c1")


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base_seconds=1, max_seconds=8)
    for attempt in range(8):
        low, high = backoff.delay(attempt, lambda: 0.0), backoff.delay(attempt, lambda: 0.999999)
        ceiling = min(8, 2**attempt)
        assert low == ceiling / 2
        assert ceiling / 2 <= high <= ceiling


def test_non_json_error_bodies_are_kept_short() -> None:
    client, _ = make_client(
        Scripted(HttpResponse(502, b"<html>" + b"x" * 5000), *[HttpResponse(502, b"<html>")] * 3)
    )
    with pytest.raises(ServerError) as err:
        client.describe_cluster("c1")
    assert len(str(err.value)) < 1000


def test_format_validation_message() -> None:
    assert format_validation_message({"level": "WARNING", "type": "T", "message": "m"}) == "WARNING T: m"
    assert format_validation_message({"parameter": "P", "message": "m"}) == "P: m"


# ---------------------------------------------------------------------------------------------
# The default transport, against a local HTTP server on 127.0.0.1
# ---------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/slow"):
            threading.Event().wait(1)
        status = 404 if self.path.startswith("/missing") else 200
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": body.decode(),
                "auth": self.headers.get("Authorization"),
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _reply


class _LocalServer(http.server.ThreadingHTTPServer):
    """The test server. A client that gave up before the reply (the timeout test) closes its socket,
    so the reply meets a broken pipe: that is the client's choice, not a server error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _slow_request_given_up(server: http.server.ThreadingHTTPServer) -> None:
    """A client that times out on /slow; closing the server waits for the handler's late reply."""
    server.daemon_threads = False  # so server_close() joins the handler thread
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/slow"
        with pytest.raises(TransportError):
            urllib_transport(HttpRequest("GET", url, {}, timeout_seconds=0.2))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_client_that_gives_up_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    _slow_request_given_up(SERVER_CLASS(("127.0.0.1", 0), _Handler))
    assert "Traceback" not in capfd.readouterr().err


SERVER_CLASS: type[http.server.ThreadingHTTPServer] = _LocalServer


@pytest.fixture
def local_server() -> Iterator[str]:
    server = SERVER_CLASS(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_urllib_transport_round_trip(local_server: str) -> None:
    client = ParallelClusterClient(local_server, "us-east-2", credentials=Creds)
    echoed = client.update_compute_fleet("c1", "START_REQUESTED")
    assert echoed["method"] == "PATCH"
    assert echoed["path"] == "/v3/clusters/c1/computefleet?region=us-east-2"
    assert json.loads(echoed["body"]) == {"status": "START_REQUESTED"}
    assert "/us-east-2/execute-api/aws4_request" in echoed["auth"]


def test_urllib_transport_returns_http_errors_as_responses(local_server: str) -> None:
    response = urllib_transport(HttpRequest("GET", f"{local_server}/missing", {}))
    assert response.status == 404
    assert response.json()["path"] == "/missing"


def test_urllib_transport_raises_transport_error_on_timeout_and_refusal(local_server: str) -> None:
    with pytest.raises(TransportError):
        urllib_transport(HttpRequest("GET", f"{local_server}/slow", {}, timeout_seconds=0.2))
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    with pytest.raises(TransportError):
        urllib_transport(HttpRequest("GET", f"http://127.0.0.1:{port}/", {}, timeout_seconds=2))
