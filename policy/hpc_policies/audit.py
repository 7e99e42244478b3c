"""Audit records (NIST SP 800-171 3.3.1, 3.3.2): environments that require them have a CloudTrail
trail and an AWS Config recorder in the stack, or declare that the organization runs both.

Which environments require them is the environment table's `requires_audit_trail`
(`hpc_platform.domain.environments`), read through the stack's `environment` output; a stack that
exports no known environment is not judged. The declaration is the stack's outputs `audit_mode:
existing` with `audit_trail_arn` and `audit_config_recorder_name` (what `AuditTrail` exports from
`hpc:audit`).
"""

from __future__ import annotations

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy

from hpc_platform.domain.environments import PROFILES

from ._common import DEFAULT_ENFORCEMENT, STACK_TYPE, UNKNOWN, is_true, known, short

TRAIL_TYPE = "aws:cloudtrail/trail:Trail"
RECORDER_TYPE = "aws:cfg/recorder:Recorder"
RECORDER_STATUS_TYPE = "aws:cfg/recorderStatus:RecorderStatus"
EXISTING = "existing"
FIX = "set hpc:audit.mode: create, or existing with existing_trail_arn and existing_config_recorder_name"


def _required_in(stack: PolicyResource | None) -> str | None:
    """The stack's environment when its profile requires an audit trail, else None."""
    if stack is None:
        return None
    environment = known(stack.props, "environment")
    if not isinstance(environment, str) or environment not in PROFILES:
        return None
    return environment if PROFILES[environment].requires_audit_trail else None


def _named(value: object) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and bool(value))


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    stack = next((r for r in args.resources if r.resource_type == STACK_TYPE), None)
    environment = _required_in(stack)
    if environment is None or stack is None:
        return
    if known(stack.props, "audit_mode") == EXISTING:
        missing = [
            key
            for key in ("audit_trail_arn", "audit_config_recorder_name")
            if not _named(known(stack.props, key))
        ]
        if missing:
            report_violation(
                f"{environment} declares the organization's audit trail (audit_mode: existing) but does "
                f"not name it ({', '.join(missing)} missing); {FIX}.",
                stack.urn,
            )
        return

    trails = [r for r in args.resources if r.resource_type == TRAIL_TYPE]
    if not trails:
        report_violation(
            f"{environment} requires an audit trail, but the stack has no CloudTrail trail and declares "
            f"no existing one; {FIX}.",
            stack.urn,
        )
    for trail in trails:
        off = [
            setting
            for setting in ("isMultiRegionTrail", "enableLogFileValidation")
            if not is_true(trail.props.get(setting))
        ]
        if off:
            report_violation(
                f"CloudTrail trail {short(trail.urn)} leaves {', '.join(off)} off; set "
                "is_multi_region_trail and enable_log_file_validation to True.",
                trail.urn,
            )

    recorders = [r for r in args.resources if r.resource_type == RECORDER_TYPE]
    enabled = [
        r
        for r in args.resources
        if r.resource_type == RECORDER_STATUS_TYPE and is_true(r.props.get("isEnabled"))
    ]
    if not recorders:
        report_violation(
            f"{environment} requires an AWS Config recorder, but the stack has none and declares no "
            f"existing one; {FIX}.",
            stack.urn,
        )
    elif not enabled:
        report_violation(
            f"the AWS Config recorder {short(recorders[0].urn)} is never switched on; add an "
            "aws.cfg.RecorderStatus with is_enabled=True.",
            recorders[0].urn,
        )


audit_trail = StackValidationPolicy(
    name="audit-trail",
    description="Environments that require audit records have a multi-region CloudTrail trail with "
    "log file validation and an enabled AWS Config recorder, or declare the organization's.",
    validate=_validate,
    enforcement_level=DEFAULT_ENFORCEMENT,
)

POLICIES = [audit_trail]
