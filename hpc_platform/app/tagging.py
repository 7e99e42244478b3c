"""Compliance tags on every taggable AWS resource, through one stack-wide resource transform.

A transform (not only the provider's `default_tags`) puts the tags into each resource's own
inputs, so the offline plan and the policy pack see them exactly as AWS will.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import pulumi
import pulumi_aws

from components._aws import aws


@cache
def is_taggable(type_token: str) -> bool:
    """Whether a pulumi-aws resource type takes `tags`: read from the SDK class's signature.

    `aws:ec2/subnet:Subnet` → `pulumi_aws.ec2.Subnet`, loaded from its own module (not the whole
    service package: components/_aws.py). Unknown tokens are not taggable.
    """
    package, _, rest = type_token.partition(":")
    if package != "aws" or not rest:
        return False
    module_path, _, class_name = rest.partition(":")
    module_name = module_path.split("/", 1)[0]
    try:
        module: Any = pulumi_aws if module_name == "index" else getattr(aws, module_name)
    except (ImportError, AttributeError):
        return False
    resource_class = getattr(module, class_name, None)
    init = getattr(resource_class, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def merged_tags(required: dict[str, str], existing: Any) -> dict[str, Any]:
    """Resource-specific tags (e.g. Name) win over nothing; required tags win over resource ones,
    so no child can weaken a compliance label."""
    base = dict(existing) if isinstance(existing, dict) else {}
    return {**base, **required}


def compliance_tags_transform(required: dict[str, str]) -> Any:
    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not is_taggable(args.type_):
            return None
        if isinstance(args.props.get("tags"), list):
            return None  # list-shaped tags (e.g. autoscaling groups) carry per-tag options: leave them
        props = dict(args.props)
        props["tags"] = merged_tags(required, props.get("tags"))
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def register_compliance_tags(required: dict[str, str]) -> None:
    pulumi.runtime.register_resource_transform(compliance_tags_transform(required))
