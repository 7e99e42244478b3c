"""A small client for the ParallelCluster 3 REST API (`/v3/clusters…`), SigV4-signed.

Design points:
- The HTTP call goes through an injectable `Transport` (a callable taking an `HttpRequest` and
  returning an `HttpResponse`); the default one uses only the standard library. Tests inject an
  in-process fake.
- Credentials are resolved from the standard AWS chain (environment, profile, SSO, instance role…)
  through botocore once per client (one client serves one provider operation) and frozen per
  request, so botocore's refreshable credentials renew themselves only when they near expiry. They
  live only on the client object, never in state, in the pickled provider or in messages.
- Throttling (429), server errors (5xx) and transport failures (timeouts, refused connections) are
  retried with jittered exponential backoff, a bounded number of times. Every other answer becomes
  an `ApiError` subclass that carries the API's message and validation details.

The API is asynchronous: create/update/delete answer 202 and the caller polls `describe_cluster`.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

SERVICE = "execute-api"
"""SigV4 service name of API Gateway, which fronts the ParallelCluster API."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            return {"message": self.body.decode("utf-8", "replace")[:500]}


class Transport(Protocol):
    def __call__(self, request: HttpRequest) -> HttpResponse: ...


class TransportError(Exception):
    """The request got no HTTP answer (timeout, connection refused/reset, DNS failure)."""


def urllib_transport(request: HttpRequest) -> HttpResponse:
    """Default transport: `urllib.request`, HTTP error statuses returned as responses."""
    req = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with urllib.request.urlopen(req, timeout=request.timeout_seconds) as resp:
            return HttpResponse(resp.status, resp.read(), dict(resp.headers.items()))
    except urllib.error.HTTPError as err:
        with err:
            return HttpResponse(err.code, err.read(), dict(err.headers.items()) if err.headers else {})
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise TransportError(f"{request.method} {_path_of(request.url)}: {reason}") from None


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class ParallelClusterError(Exception):
    """Base class of everything this module raises."""


class NoCredentialsError(ParallelClusterError):
    def __init__(self) -> None:
        super().__init__(
            "no AWS credentials found to sign ParallelCluster API calls; configure the standard AWS "
            "credential chain (AWS_PROFILE / `aws sso login`, AWS_ACCESS_KEY_ID + "
            "AWS_SECRET_ACCESS_KEY, or an instance/role profile) and run again"
        )


class ApiError(ParallelClusterError):
    """An HTTP error answer of the ParallelCluster API."""

    status: int = 0
    error_type: str = "ApiError"

    def __init__(self, status: int, operation: str, payload: Mapping[str, Any]) -> None:
        self.status = status
        self.operation = operation
        self.payload = dict(payload)
        self.message = str(payload.get("message") or "").strip()
        super().__init__(self._describe())

    @property
    def validation_errors(self) -> list[dict[str, Any]]:
        """`configurationValidationErrors` + `updateValidationErrors` of a 400 answer."""
        out: list[dict[str, Any]] = []
        for key in ("configurationValidationErrors", "updateValidationErrors"):
            out.extend(e for e in self.payload.get(key) or [] if isinstance(e, dict))
        return out

    def _describe(self) -> str:
        text = f"ParallelCluster API {self.operation} failed ({self.status} {self.error_type})"
        if self.message:
            text += f": {self.message}"
        details = [format_validation_message(e) for e in self.validation_errors]
        if details:
            text += "\n" + "\n".join(f"  - {d}" for d in details)
        hint = self.hint()
        if hint:
            text += f"\n{hint}"
        return text

    def hint(self) -> str:
        return ""


class BadRequestError(ApiError):
    error_type = "BadRequestException"

    def hint(self) -> str:
        if self.validation_errors:
            return "Fix the configuration values listed above and run again."
        return ""

    @property
    def is_no_changes(self) -> bool:
        return "no changes found" in self.message.lower()


class UnauthorizedError(ApiError):
    error_type = "UnauthorizedClientError"

    def hint(self) -> str:
        return (
            "Check that the credentials in use may call the ParallelCluster API (execute-api:Invoke "
            "on the API's ARN) and that the API URL and region are right."
        )


class NotFoundError(ApiError):
    error_type = "NotFoundException"


class ConflictError(ApiError):
    error_type = "ConflictException"


class DryrunSucceeded(ApiError):
    """HTTP 412 `DryrunOperationException`: the request would have succeeded."""

    error_type = "DryrunOperationException"

    @property
    def validation_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.payload.get("validationMessages") or [] if isinstance(m, dict)]

    @property
    def change_set(self) -> list[dict[str, Any]]:
        return [c for c in self.payload.get("changeSet") or [] if isinstance(c, dict)]


class ThrottledError(ApiError):
    error_type = "LimitExceededException"

    def hint(self) -> str:
        return "The API kept throttling after several retries; wait a few minutes and run again."


class ServerError(ApiError):
    error_type = "InternalServiceException"

    def hint(self) -> str:
        return (
            "The API kept failing after several retries; check the ParallelCluster API's Lambda logs "
            "in CloudWatch (log group /aws/lambda/<api stack>-ParallelClusterFunction-…) and run again."
        )


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
    412: DryrunSucceeded,
    429: ThrottledError,
}


def error_for(status: int, operation: str, payload: Mapping[str, Any]) -> ApiError:
    cls = _ERRORS_BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, operation, payload)


def format_validation_message(entry: Mapping[str, Any]) -> str:
    """One `ConfigValidationMessage` / `UpdateError` as a line."""
    if "parameter" in entry:
        text = f"{entry.get('parameter')}: {entry.get('message') or 'cannot be changed'}"
        if "currentValue" in entry or "requestedValue" in entry:
            text += f" (current {entry.get('currentValue')}, requested {entry.get('requestedValue')})"
        return text
    level = entry.get("level") or "ERROR"
    kind = entry.get("type") or entry.get("id") or "validator"
    return f"{level} {kind}: {entry.get('message')}"


# ---------------------------------------------------------------------------------------------
# Retry policy
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff ("equal jitter"): attempt n waits between half and all of
    `min(max_seconds, base_seconds * 2**n)`."""

    base_seconds: float = 1.0
    max_seconds: float = 30.0
    max_attempts: int = 6
    """Total attempts for a retried request (first try included)."""

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(attempt, 0)))
        return float(ceiling / 2 + rand() * ceiling / 2)


@dataclass(frozen=True)
class Clock:
    """Time source and sleeper; tests inject a fake one so nothing really waits."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random


CredentialsResolver = Callable[[], Any]
"""Returns botocore credentials (with `get_frozen_credentials()`), or None when there are none."""


def default_credentials() -> Any:
    import botocore.session

    return botocore.session.get_session().get_credentials()


def api_region_of(api_url: str, fallback: str) -> str:
    """Region of an API Gateway invoke URL (`https://<id>.execute-api.<region>.amazonaws.com/…`)."""
    host = urllib.parse.urlsplit(api_url).hostname or ""
    parts = host.split(".")
    if "execute-api" in parts:
        index = parts.index("execute-api")
        if index + 1 < len(parts):
            return parts[index + 1]
    return fallback


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------
class ParallelClusterClient:
    """Calls of the ParallelCluster API for one region's clusters."""

    def __init__(
        self,
        api_url: str,
        region: str,
        *,
        transport: Transport | None = None,
        credentials: CredentialsResolver | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        request_timeout_seconds: float = 60.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.region = region
        self.signing_region = api_region_of(api_url, region)
        self._transport: Transport = transport or urllib_transport
        self._credentials: CredentialsResolver = credentials or default_credentials
        # Resolved on the first request and kept: long polls must not walk the credential chain
        # (or call STS/SSO) on every request.
        self._resolved_credentials: Any = None
        self.backoff = backoff or Backoff()
        self.clock = clock or Clock()
        self.request_timeout_seconds = request_timeout_seconds

    # -- operations ---------------------------------------------------------------------------
    def create_cluster(
        self,
        name: str,
        config: Mapping[str, Any],
        *,
        dryrun: bool = False,
        rollback_on_failure: bool = True,
        validation_failure_level: str | None = None,
        suppress_validators: list[str] | None = None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"region": self.region}
        if dryrun:
            query["dryrun"] = "true"
        if not rollback_on_failure:
            query["rollbackOnFailure"] = "false"
        if validation_failure_level:
            query["validationFailureLevel"] = validation_failure_level
        if suppress_validators:
            query["suppressValidators"] = suppress_validators
        body = {"clusterName": name, "clusterConfiguration": render_config(config)}
        return self._call("POST", "/v3/clusters", query, body, operation=f"create cluster {name!r}")

    def describe_cluster(self, name: str) -> dict[str, Any]:
        return self._call(
            "GET",
            f"/v3/clusters/{_quote(name)}",
            {"region": self.region},
            operation=f"describe cluster {name!r}",
        )

    def update_cluster(
        self,
        name: str,
        config: Mapping[str, Any],
        *,
        dryrun: bool = False,
        force_update: bool = False,
        validation_failure_level: str | None = None,
        suppress_validators: list[str] | None = None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"region": self.region}
        if dryrun:
            query["dryrun"] = "true"
        if force_update:
            query["forceUpdate"] = "true"
        if validation_failure_level:
            query["validationFailureLevel"] = validation_failure_level
        if suppress_validators:
            query["suppressValidators"] = suppress_validators
        body = {"clusterConfiguration": render_config(config)}
        return self._call(
            "PUT", f"/v3/clusters/{_quote(name)}", query, body, operation=f"update cluster {name!r}"
        )

    def delete_cluster(self, name: str) -> dict[str, Any]:
        return self._call(
            "DELETE",
            f"/v3/clusters/{_quote(name)}",
            {"region": self.region},
            operation=f"delete cluster {name!r}",
        )

    def describe_compute_fleet(self, name: str) -> dict[str, Any]:
        return self._call(
            "GET",
            f"/v3/clusters/{_quote(name)}/computefleet",
            {"region": self.region},
            operation=f"describe compute fleet of {name!r}",
        )

    def update_compute_fleet(self, name: str, status: str) -> dict[str, Any]:
        return self._call(
            "PATCH",
            f"/v3/clusters/{_quote(name)}/computefleet",
            {"region": self.region},
            {"status": status},
            operation=f"set compute fleet of {name!r} to {status}",
        )

    # -- plumbing -----------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None = None,
        *,
        operation: str,
    ) -> dict[str, Any]:
        url = f"{self.api_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            try:
                response = self._transport(self._signed(method, url, data))
            except TransportError as err:
                if attempt + 1 >= self.backoff.max_attempts:
                    raise ParallelClusterError(
                        f"ParallelCluster API {operation} got no answer after {attempt + 1} attempts "
                        f"({err}); check that the API URL {self.api_url} is reachable and run again"
                    ) from None
            else:
                if response.status < 400:
                    payload = response.json()
                    return payload if isinstance(payload, dict) else {"items": payload}
                if response.status not in RETRYABLE_STATUSES or attempt + 1 >= self.backoff.max_attempts:
                    payload = response.json()
                    raise error_for(response.status, operation, payload if isinstance(payload, dict) else {})
            self.clock.sleep(self.backoff.delay(attempt, self.clock.rand))
            attempt += 1

    def _signed(self, method: str, url: str, data: bytes | None) -> HttpRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._resolved_credentials is None:
            self._resolved_credentials = self._credentials()
            if self._resolved_credentials is None:
                raise NoCredentialsError()
        resolved = self._resolved_credentials
        # A refreshable credentials object renews itself here when it is about to expire.
        credentials = (
            resolved.get_frozen_credentials() if hasattr(resolved, "get_frozen_credentials") else resolved
        )
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials, SERVICE, self.signing_region).add_auth(aws_request)
        return HttpRequest(
            method=method,
            url=url,
            headers=dict(aws_request.headers.items()),
            body=data,
            timeout_seconds=self.request_timeout_seconds,
        )


def render_config(config: Mapping[str, Any]) -> str:
    """The cluster configuration as the YAML document the API expects."""
    return yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=False)


class NotPlainDataError(ParallelClusterError, ValueError):
    """The configuration holds something YAML cannot carry (e.g. a value not known yet)."""


def _plain(value: Any, path: str = "") -> Any:
    """Plain YAML-able values. Numbers cross Pulumi's property protocol as floats; whole ones go
    back to ints (ParallelCluster wants `MaxCount: 4`, and Slurm settings are text)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Named instead of yaml's RepresenterError, which names neither the field nor the cause.
    raise NotPlainDataError(
        f"cluster_config.{path or '<root>'} holds {value!r} ({type(value).__name__}), not plain data "
        "(a value Pulumi does not know yet?); it cannot be sent to ParallelCluster"
    )


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
