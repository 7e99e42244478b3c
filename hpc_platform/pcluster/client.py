"""A small client for the ParallelCluster 3 REST API (`/v3/clusters…`), SigV4-signed.

Design points:
- The HTTP call goes through an injectable `Transport` (a callable taking an `HttpRequest` and
  returning an `HttpResponse`); the default one uses only the standard library. Tests inject an
  in-process fake.
- Credentials come from the standard AWS chain (environment, profile, SSO, instance role…)
  through botocore, once per client (one client serves one provider operation), and are frozen per
  request, so botocore's refreshable credentials renew themselves only when they near expiry. With
  a `role_arn` the client assumes that role with STS and signs with the role's temporary
  credentials, refreshed shortly before they expire (botocore's `DeferredRefreshableCredentials`,
  timed by the client's clock). Credentials live only on the client object, never in state, in the
  pickled provider, in logs or in messages.
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
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import yaml

from hpc_platform.pcluster.api_access import API_USER_ROLE_NAME_PREFIX, API_USER_ROLE_OUTPUT

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


class RoleAssumptionError(ParallelClusterError):
    """STS refused to give credentials of the API role."""

    def __init__(self, role_arn: str, reason: str) -> None:
        self.role_arn = role_arn
        super().__init__(
            f"could not assume role {role_arn} to call the ParallelCluster API ({reason}); the identity "
            f"running Pulumi needs sts:AssumeRole on {role_arn} (and the role must trust its account, as "
            f"the API template's {API_USER_ROLE_NAME_PREFIX}… role does); grant it and run again"
        )


class ApiError(ParallelClusterError):
    """An HTTP error answer of the ParallelCluster API."""

    status: int = 0
    error_type: str = "ApiError"

    def __init__(self, status: int, operation: str, payload: Mapping[str, Any]) -> None:
        self.status = status
        self.operation = operation
        self.payload = dict(payload)
        # The Lambda answers `message`; API Gateway's own refusals (IAM, resource policy) `Message`.
        self.message = str(payload.get("message") or payload.get("Message") or "").strip()
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

    def __init__(
        self, status: int, operation: str, payload: Mapping[str, Any], *, role_arn: str | None = None
    ) -> None:
        self.role_arn = role_arn
        super().__init__(status, operation, payload)

    def hint(self) -> str:
        if self.role_arn:
            return (
                f"The request was signed as role {self.role_arn}, which the API refused: check that it "
                f"is this API stack's {API_USER_ROLE_OUTPUT} output (hpc:cluster.api.role_arn in mode "
                "'existing') and that the API URL and region are right."
            )
        return (
            "The request was signed with the default AWS credentials, not the API's role. An API "
            "deployed with the official template's defaults (CreateApiUserRole=true) lets only its own "
            f"{API_USER_ROLE_NAME_PREFIX}… role invoke it: give the provider that role (the stack output "
            f"{API_USER_ROLE_OUTPUT}; set hpc:cluster.api.role_arn in mode 'existing', mode 'deploy' "
            "passes it itself), or deploy the API with CreateApiUserRole=false and allow "
            "execute-api:Invoke on it. Also check that the API URL and region are right."
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


def error_for(
    status: int, operation: str, payload: Mapping[str, Any], *, role_arn: str | None = None
) -> ApiError:
    cls = _ERRORS_BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    if cls is UnauthorizedError:
        return UnauthorizedError(status, operation, payload, role_arn=role_arn)
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

RoleAssumer = Callable[[Any, str, str, str], Mapping[str, Any]]
"""(source credentials, role ARN, session name, region) → the `Credentials` of an STS AssumeRole
answer (`AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`)."""


def default_credentials() -> Any:
    import botocore.session

    return botocore.session.get_session().get_credentials()


def sts_assume_role(source: Any, role_arn: str, session_name: str, region: str) -> Mapping[str, Any]:
    """AssumeRole through botocore's STS client (regional endpoint of `region`), signed with the
    source credentials. botocore's errors propagate (the client words them)."""
    import botocore.session

    frozen = source.get_frozen_credentials()
    sts: Any = botocore.session.get_session().create_client(
        "sts",
        region_name=region,
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
    )
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
    return dict(answer["Credentials"])


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
        role_arn: str | None = None,
        role_session_name: str = "hpc-platform",
        assume_role: RoleAssumer | None = None,
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
        self.role_arn = role_arn or None
        self.role_session_name = role_session_name
        self._assume_role: RoleAssumer = assume_role or sts_assume_role
        # Wall time for the credentials' expiry, advanced by the injected clock (so a fake clock
        # also ages the role's credentials).
        self._wall_origin = datetime.now(UTC)
        self._clock_origin = self.clock.now()

    # -- operations ---------------------------------------------------------------------------
    def create_cluster(
        self,
        name: str,
        config: Mapping[str, Any],
        *,
        dryrun: bool = False,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"region": self.region}
        if dryrun:
            query["dryrun"] = "true"
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
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"region": self.region}
        if dryrun:
            query["dryrun"] = "true"
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
            url += "?" + urllib.parse.urlencode(query)
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
                    raise error_for(
                        response.status,
                        operation,
                        payload if isinstance(payload, dict) else {},
                        role_arn=self.role_arn,
                    )
            self.clock.sleep(self.backoff.delay(attempt, self.clock.rand))
            attempt += 1

    def _signed(self, method: str, url: str, data: bytes | None) -> HttpRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        resolved = self._current_credentials()
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

    def _current_credentials(self) -> Any:
        """The credentials this client signs with, resolved on first use and kept for its life."""
        if self._resolved_credentials is None:
            source = self._credentials()
            if source is None:
                raise NoCredentialsError()
            if self.role_arn:
                from botocore.credentials import DeferredRefreshableCredentials

                source = DeferredRefreshableCredentials(
                    refresh_using=self._role_refresher(source, self.role_arn),
                    method="assume-role",
                    time_fetcher=self._wall_now,
                )
            self._resolved_credentials = source
        return self._resolved_credentials

    def _role_refresher(self, source: Any, role_arn: str) -> Callable[[], dict[str, str]]:
        def refresh() -> dict[str, str]:
            import botocore.exceptions

            try:
                answer = self._assume_role(source, role_arn, self.role_session_name, self.signing_region)
            except botocore.exceptions.ClientError as err:
                error = err.response.get("Error", {})
                raise RoleAssumptionError(role_arn, f"{error.get('Code')}: {error.get('Message')}") from None
            except botocore.exceptions.BotoCoreError as err:
                raise RoleAssumptionError(role_arn, str(err)) from None
            expiration = answer["Expiration"]
            return {
                "access_key": str(answer["AccessKeyId"]),
                "secret_key": str(answer["SecretAccessKey"]),
                "token": str(answer["SessionToken"]),
                "expiry_time": expiration.isoformat()
                if isinstance(expiration, datetime)
                else str(expiration),
            }

        return refresh

    def _wall_now(self) -> datetime:
        return self._wall_origin + timedelta(seconds=self.clock.now() - self._clock_origin)


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
