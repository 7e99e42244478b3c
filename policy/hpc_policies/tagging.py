"""NIST SP 800-171 tagging: every taggable resource carries the compliance tags, with values from
the allowed sets.

Tag keys and value sets come from `hpc_platform.domain.config.models` (the config schema); the policy
config can narrow the sets per environment (prod, for example, accepts only the CUI-grade
classifications) but never widen them.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.limits import COMPLIANCE_FRAMEWORKS, DATA_CLASSIFICATIONS, REQUIRED_TAG_KEYS

from ._common import DEFAULT_ENFORCEMENT, get, is_list

ENVIRONMENTS: tuple[str, ...] = typing.get_args(StackConfig.model_fields["environment"].annotation)
# `ComplianceConfig.tags` joins the frameworks with "+".
FRAMEWORK_SEPARATOR = "+"


def _tags(value: Any) -> dict[str, Any] | None:
    """Tags as a mapping; some resources take a list of {key, value}."""
    if isinstance(value, Mapping):
        return {str(k): value[k] for k in value}
    if is_list(value):
        return {str(get(t, "key")): get(t, "value") for t in value if get(t, "key") is not None}
    return None


def _allowed(config: Mapping[str, Any], key: str, universe: tuple[str, ...]) -> list[str]:
    chosen = config.get(key)
    if not is_list(chosen):
        return list(universe)
    # Narrow, never widen: values outside the config schema's sets stay disallowed.
    return [v for v in _listed(chosen) if v in universe]


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_taggable(args.resource_type):
        return
    config = args.get_config()
    tags = _tags(args.props.get("tags")) or {}
    missing = [key for key in REQUIRED_TAG_KEYS if not tags.get(key)]
    if missing:
        report_violation(
            f"missing required tags {', '.join(missing)}; declare the resource in the program so the "
            "stack's compliance-tag transform adds them (values from hpc:compliance), or set its tags "
            "to the stack config's tags.",
            None,
        )
    environments = _allowed(config, "allowedEnvironments", ENVIRONMENTS)
    environment = tags.get("Environment")
    if environment and environment not in environments:
        report_violation(
            f"Environment tag {environment!r} is not allowed; use one of {', '.join(environments)}.",
            None,
        )
    classifications = _allowed(config, "allowedDataClassifications", DATA_CLASSIFICATIONS)
    classification = tags.get("DataClassification")
    if classification and classification not in classifications:
        report_violation(
            f"DataClassification {classification!r} is not allowed in this environment; set "
            f"hpc:compliance.data_classification to one of {', '.join(classifications)}.",
            None,
        )
    frameworks_tag = tags.get("ComplianceFrameworks")
    if frameworks_tag:
        frameworks = str(frameworks_tag).split(FRAMEWORK_SEPARATOR)
        allowed = _allowed(config, "allowedComplianceFrameworks", COMPLIANCE_FRAMEWORKS)
        unknown = [f for f in frameworks if f not in allowed]
        if unknown:
            report_violation(
                f"ComplianceFrameworks {', '.join(unknown)} not allowed; set hpc:compliance.frameworks "
                f"to values from {', '.join(allowed)}.",
                None,
            )
        required = [f for f in _listed(config.get("requiredFrameworks")) if f in COMPLIANCE_FRAMEWORKS]
        absent = [f for f in required if f not in frameworks]
        if absent:
            report_violation(
                f"ComplianceFrameworks lacks {', '.join(absent)}; add it to hpc:compliance.frameworks.",
                None,
            )


def _listed(value: Any) -> list[Any]:
    return list(value) if is_list(value) else []


def _string_set(universe: tuple[str, ...], default: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "enum": list(universe)},
        "uniqueItems": True,
        "default": default,
        "description": description,
    }


nist_800_171_tagging = ResourceValidationPolicy(
    name="nist-800-171-tagging",
    description="Taggable resources carry the NIST SP 800-171 compliance tags "
    f"({', '.join(REQUIRED_TAG_KEYS)}) with allowed values.",
    validate=_validate,
    enforcement_level=DEFAULT_ENFORCEMENT,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedDataClassifications": _string_set(
                DATA_CLASSIFICATIONS,
                list(DATA_CLASSIFICATIONS),
                "DataClassification values accepted in this environment.",
            ),
            "allowedComplianceFrameworks": _string_set(
                COMPLIANCE_FRAMEWORKS,
                list(COMPLIANCE_FRAMEWORKS),
                "ComplianceFrameworks entries accepted in this environment.",
            ),
            "allowedEnvironments": _string_set(
                ENVIRONMENTS, list(ENVIRONMENTS), "Environment values accepted in this environment."
            ),
            "requiredFrameworks": _string_set(
                COMPLIANCE_FRAMEWORKS, [], "Frameworks every resource must be labelled with."
            ),
        }
    ),
)

POLICIES = [nist_800_171_tagging]
