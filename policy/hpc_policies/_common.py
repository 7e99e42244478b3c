"""Helpers the rules share: safe property access, the cluster marker, the instance catalog.

Policies receive properties as read-only mappings and sequences (pulumi-policy's proxies, which
raise `UnknownValueError` when a value is not known during preview), so nothing here assumes
`dict` or `list`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from hpc_platform.domain.catalog import InstanceCatalog, default_catalog
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE

# A policy run without any policy config blocks: environments relax it in policy/config/*.json.
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY

DYNAMIC_RESOURCE_TYPE = "pulumi-python:dynamic:Resource"
STACK_TYPE = "pulumi:pulumi:Stack"

S3_BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")


def get(value: Any, *path: str | int) -> Any:
    """`get(props, "a", 0, "b")` → `props["a"][0]["b"]`, or None when any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items(value: Any) -> list[Any]:
    """The elements of a list-valued property; [] when absent or not a list."""
    return list(value) if is_list(value) else []


def is_true(value: Any) -> bool:
    """Bridged providers type some booleans as strings (launch template `encrypted: "true"`)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def is_cluster(resource_type: str, props: Mapping[str, Any]) -> bool:
    """The ParallelCluster dynamic resource: every Python dynamic resource shares one type token,
    so the cluster is recognised by its `hpc:kind` marker."""
    return resource_type == DYNAMIC_RESOURCE_TYPE and props.get(KIND_PROPERTY) == KIND_VALUE


def clusters(resources: Iterable[PolicyResource]) -> Iterator[PolicyResource]:
    return (r for r in resources if is_cluster(r.resource_type, r.props))


def known(props: Mapping[str, Any], key: str) -> Any:
    """`props.get(key)`, or `UNKNOWN` when the value is not known yet (preview)."""
    try:
        return props.get(key)
    except UnknownValueError:
        return UNKNOWN


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


def physical_ids(resource: PolicyResource, *keys: str) -> set[str]:
    """The values other resources use to refer to this one: its `id` and the given name keys
    (for an S3 bucket, `bucket`), its ARN and the ARN's last segment."""
    found: set[str] = set()
    for key in ("id", *keys):
        value = known(resource.props, key)
        if isinstance(value, str) and value:
            found.add(value)
    arn = known(resource.props, "arn")
    if isinstance(arn, str) and arn:
        found.add(arn)
        found.add(arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    return found


def refers_to(
    referrer: PolicyResource, key: str, target: PolicyResource, target_ids: set[str]
) -> bool | None:
    """Whether `referrer.props[key]` points at `target`: through the engine's property
    dependencies when it sends them, else by matching the physical id. None: cannot tell yet
    (the value is unknown during preview)."""
    deps = referrer.property_dependencies.get(key) or []
    if any(dep.urn == target.urn for dep in deps):
        return True
    value = known(referrer.props, key)
    if value is UNKNOWN:
        return None
    return isinstance(value, str) and value in target_ids


def joined(
    referrers: Iterable[PolicyResource], key: str, target: PolicyResource
) -> tuple[list[PolicyResource], bool]:
    """The referrers whose `key` points at `target`, and whether some could not be judged."""
    target_ids = physical_ids(target, "bucket")
    matches: list[PolicyResource] = []
    undecided = False
    for referrer in referrers:
        verdict = refers_to(referrer, key, target, target_ids)
        if verdict is None:
            undecided = True
        elif verdict:
            matches.append(referrer)
    return matches, undecided


@cache
def catalog() -> InstanceCatalog:
    return default_catalog()


def short(urn: str) -> str:
    """`urn:pulumi:prod::hpc-platform::a$b::hpc-prod-data` → `hpc-prod-data` (the logical name)."""
    return urn.rsplit("::", 1)[-1]


Check = Callable[[Mapping[str, Any]], list[str]]


def resource_policy(name: str, description: str, checks: dict[str, Check]) -> ResourceValidationPolicy:
    """A policy that runs `checks[type](props) -> messages` on resources of the listed types."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        check = checks.get(args.resource_type)
        if check is None:
            return
        for message in check(args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=DEFAULT_ENFORCEMENT
    )
