"""API Gateway's side of the ParallelCluster API: the IAM authorizer and the template's resource policy.

In AWS the API app sits behind API Gateway (`AWS_IAM` authorization) with the resource policy of
the official API template. With `CreateApiUserRole=true` (the default) that policy denies
`execute-api:Invoke` to every principal but the template's `PCAPIUserRole-<stack id>` role. This
WSGI middleware stands in for both, in front of the API app:

- a request without a SigV4 `Authorization` header gets API Gateway's 403 "Missing Authentication
  Token";
- the caller is the principal moto's STS backend resolves the signing access key to (what
  `GetCallerIdentity` answers: `arn:aws:sts::<acct>:assumed-role/<role>/<session>` for assumed-role
  credentials, the IAM user for a user's key, moto's default user otherwise);
- the Deny statement is evaluated with the project's own statement of the template's rule
  (`hpc_platform/pcluster/api_access.py`, loaded by path: it is plain standard library), and a
  denied caller gets API Gateway's 403 "... with an explicit deny".

Signatures are not verified (moto keeps no secrets to verify them with); the provider's signing is
covered by the unit tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

API_ID = "harnessapi"
STAGE = "prod"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def load_api_access(repo_root: Path) -> ModuleType:
    path = repo_root / "hpc_platform" / "pcluster" / "api_access.py"
    spec = importlib.util.spec_from_file_location("hpc_api_access", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_api_user_role(access: ModuleType, region: str) -> tuple[str, str]:
    """The role the API template creates (name, trust and invoke policy), made in moto the same
    way; returns (role ARN, resource-policy pattern)."""
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID

    suffix = str(uuid.uuid4())  # the template uses its stack id's UUID
    iam = boto3.client("iam", region_name=region)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"},
            }
        ],
    }
    name = access.api_user_role_name(suffix)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:{region}:{DEFAULT_ACCOUNT_ID}:{API_ID}/*/*/*",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=name, PolicyName="ParallelClusterApiInvokePolicy", PolicyDocument=json.dumps(invoke)
    )
    return arn, access.invoke_principal_pattern("aws", DEFAULT_ACCOUNT_ID, suffix)


def caller_of(access_key_id: str, region: str) -> str:
    """The principal moto's STS answers GetCallerIdentity with for this access key."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends

    _user_id, arn, _account = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_caller_identity(
        access_key_id, region
    )
    return str(arn)


class ResourcePolicyAuthorizer:
    def __init__(self, app: WsgiApp, access: ModuleType, pattern: str, region: str) -> None:
        self.app = app
        self.access = access
        self.pattern = pattern
        self.region = region
        self.denied: list[str] = []
        """Callers refused, for the harness log."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        match = _CREDENTIAL.search(header)
        if not header.startswith("AWS4-HMAC-SHA256") or match is None:
            return _refuse(start_response, {"message": "Missing Authentication Token"})
        caller = caller_of(match.group(1), self.region)
        if self.access.invoke_denied(caller, self.pattern):
            from moto.core import DEFAULT_ACCOUNT_ID

            self.denied.append(caller)
            method = environ.get("REQUEST_METHOD", "GET")
            resource = (
                f"arn:aws:execute-api:{self.region}:{DEFAULT_ACCOUNT_ID}:{API_ID}/{STAGE}/{method}"
                f"{environ.get('PATH_INFO', '/')}"
            )
            return _refuse(
                start_response,
                {
                    "Message": f"User: {caller} is not authorized to perform: execute-api:Invoke on "
                    f"resource: {resource} with an explicit deny"
                },
            )
        return self.app(environ, start_response)


def _refuse(start_response: StartResponse, payload: dict[str, str]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        "403 Forbidden",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", "AccessDeniedException"),
        ],
    )
    return [body]
