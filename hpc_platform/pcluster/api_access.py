"""Who may invoke a ParallelCluster API deployed from the official template: the facts, in one place.

Fact (ParallelCluster's API template, `api/infrastructure/parallelcluster-api.yaml`, read at the
3.12.0 version of the develop branch; the 3.16.1 wheel does not ship the template, and AWS's
current "Invoking the ParallelCluster API" guide and the Terraform provider's required-permissions
page describe the same behaviour):

- The parameter `CreateApiUserRole` defaults to `true`. The template then creates the IAM role
  `<IAMRoleAndPolicyPrefix>PCAPIUserRole-<StackIdSuffix>` (stack output
  `ParallelClusterApiUserRole`), which trusts `arn:<partition>:iam::<account>:root` (so any
  identity of the account that is allowed `sts:AssumeRole` on it may assume it) and may call
  `execute-api:Invoke` on the API.
- The API Gateway resource policy then **denies** `execute-api:Invoke` to every principal whose
  `aws:PrincipalArn` is `StringNotLike`
  `arn:<partition>:*::<account>:*/<IAMRoleAndPolicyPrefix>PCAPIUserRole-<StackIdSuffix>*`, where
  `<StackIdSuffix>` is the third `/`-separated part of the stack id (a UUID).
- With `CreateApiUserRole=false` the pattern is `*`: nothing is denied, and any principal of the
  account whose own IAM policies allow `execute-api:Invoke` may call the API.

The provider therefore assumes that role (see `client.py`). This module is pure standard library:
the integration harness loads it by path, in ParallelCluster's own virtualenv, so that its
API-Gateway-like authorizer applies the same rule the provider is written against.
"""

from __future__ import annotations

import re

API_TEMPLATE_VERIFIED_VERSION = "3.12.0"
"""The template version the facts above were read from."""

API_INVOKE_URL_OUTPUT = "ParallelClusterApiInvokeUrl"
"""Stack output: the API's invoke URL."""
API_USER_ROLE_OUTPUT = "ParallelClusterApiUserRole"
"""Stack output (present when `CreateApiUserRole=true`): ARN of the role allowed to invoke the API."""
API_USER_ROLE_NAME_PREFIX = "PCAPIUserRole-"
"""The role's name before the stack id suffix (after the optional `IAMRoleAndPolicyPrefix`)."""

_SESSION_NAME_MAX = 64
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]+")
_ASSUMED_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$"
)


def stack_id_suffix(stack_id: str) -> str:
    """`arn:…:stack/<name>/<uuid>` → `<uuid>` (the template's `Select [2, Split ['/', StackId]]`)."""
    return stack_id.split("/")[2]


def api_user_role_name(stack_suffix: str, prefix: str = "") -> str:
    return f"{prefix}{API_USER_ROLE_NAME_PREFIX}{stack_suffix}"


def api_user_role_arn(partition: str, account_id: str, stack_suffix: str, prefix: str = "") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{api_user_role_name(stack_suffix, prefix)}"


def invoke_principal_pattern(partition: str, account_id: str, stack_suffix: str, prefix: str = "") -> str:
    """The resource policy's `StringNotLike aws:PrincipalArn` value (`CreateApiUserRole=true`)."""
    return f"arn:{partition}:*::{account_id}:*/{api_user_role_name(stack_suffix, prefix)}*"


def policy_principal_arn(caller_arn: str) -> str:
    """`aws:PrincipalArn` of a caller: for an assumed-role session
    (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`) IAM uses the role's ARN; users and roles
    are their own ARN."""
    match = _ASSUMED_ROLE_ARN.match(caller_arn)
    if match:
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    return caller_arn


def string_like(value: str, pattern: str) -> bool:
    """IAM's `StringLike`: case-sensitive, `*` matches any run of characters (`/` included), `?`
    exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def invoke_denied(caller_arn: str, pattern: str) -> bool:
    """Whether the resource policy's Deny statement applies to this caller."""
    return not string_like(policy_principal_arn(caller_arn), pattern)


def role_session_name(stack_marker: str | None, cluster_name: str) -> str:
    """STS session name that identifies the Pulumi stack in CloudTrail (`hpc-platform/dev` →
    `hpc-platform-dev`); the cluster name when there is no marker."""
    base = _SESSION_NAME_UNSAFE.sub("-", stack_marker or cluster_name or "hpc-platform").strip("-")
    return (base or "hpc-platform")[:_SESSION_NAME_MAX].ljust(2, "-")
