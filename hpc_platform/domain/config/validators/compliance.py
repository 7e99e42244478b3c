"""Compliance rules: the tags every taggable resource carries, and the audit trail's mode."""

from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.limits import S3_OBJECT_MAX_TAGS
from hpc_platform.domain.rules import reserved_tag_keys, reserved_tag_problem


class TagCountValidator(Validator):
    """Every taggable resource gets the compliance tags; S3 objects accept only `S3_OBJECT_MAX_TAGS`."""

    name = "tag-count"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        # The compliance tags, plus the Name tag components set on their resources.
        count = len(config.tags) + ("Name" not in config.tags)
        if count > S3_OBJECT_MAX_TAGS:
            yield Finding(
                ("compliance", "extra_tags"),
                f"resources would carry {count} tags but S3 objects (the bootstrap scripts) accept at "
                f"most {S3_OBJECT_MAX_TAGS}; drop {count - S3_OBJECT_MAX_TAGS} extra tag(s)",
            )


class ReservedTagKeyValidator(Validator):
    """ParallelCluster refuses a cluster config whose tags use its reserved prefix, and the cluster
    carries the compliance tags."""

    name = "reserved-tag-key"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for key in reserved_tag_keys(config.compliance.extra_tags):
            yield Finding(("compliance", "extra_tags", key), reserved_tag_problem(key))


class AuditModeValidator(Validator):
    """Mode `existing` names the organization's trail and Config recorder (the policy pack then
    accepts a stack without its own); mode `create` makes both, so naming others is a mistake."""

    name = "audit-mode"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        audit = config.audit
        named = {
            "existing_trail_arn": (
                audit.existing_trail_arn,
                "the organization trail's ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)",
            ),
            "existing_config_recorder_name": (
                audit.existing_config_recorder_name,
                "the name of the AWS Config recorder the organization runs in this account and region",
            ),
        }
        for key, (value, what) in named.items():
            if audit.mode == "existing" and value is None:
                yield Finding(
                    ("audit", key),
                    f"is required when hpc:audit.mode is existing; give {what}, or set mode: create",
                )
            elif audit.mode == "create" and value is not None:
                yield Finding(
                    ("audit", key),
                    "is only used when hpc:audit.mode is existing (mode create makes the stack's own "
                    "trail and recorder); remove it, or set mode: existing",
                )


VALIDATORS: tuple[Validator, ...] = (
    TagCountValidator(),
    ReservedTagKeyValidator(),
    AuditModeValidator(),
)
