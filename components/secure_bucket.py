"""The hardening every S3 bucket of the platform gets, written once.

`harden_bucket` adds to an existing bucket: object ownership `BucketOwnerEnforced` (ACLs off, the
bucket owner owns every object), a public-access block with all four switches on, default
encryption (SSE-KMS with a customer key and S3 Bucket Keys, or SSE-S3 where a service cannot
deliver to a KMS-encrypted bucket), and versioning. The bucket itself and its policy stay with the
caller: their names, tags, protection and statements differ per bucket.

Not a component: the resources are children of the caller's `parent` (or of the stack), so moving
a bucket's hardening here changes no URN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the helper uses (see components/_aws.py).
    from components._aws import aws

OBJECT_OWNERSHIP = "BucketOwnerEnforced"
SSE_KMS = "aws:kms"
SSE_S3 = "AES256"


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """The bucket-policy statement every platform bucket carries: no request without TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass(frozen=True)
class BucketHardening:
    """The resources `harden_bucket` created, for callers that order others after them (S3 refuses
    a bucket policy while the public-access block changes; lifecycle rules need versioning)."""

    ownership_controls: aws.s3.BucketOwnershipControls
    public_access_block: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    versioning: aws.s3.BucketVersioning


def harden_bucket(
    name: str,
    bucket: aws.s3.Bucket,
    *,
    kms_key_arn: pulumi.Input[str] | None,
    parent: pulumi.Resource | None = None,
) -> BucketHardening:
    """Ownership controls, public-access block, default encryption and versioning for `bucket`.

    The resources are named `<name>-ownership`, `<name>-public-access-block`, `<name>-encryption`
    and `<name>-versioning`, as children of `parent` (omitted: the stack).

    `kms_key_arn`: the customer key for SSE-KMS with S3 Bucket Keys on; `None` for SSE-S3, which
    S3 server access logging needs in its target bucket (it cannot deliver to SSE-KMS).
    """
    opts = pulumi.ResourceOptions(parent=parent)
    ownership_controls = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=OBJECT_OWNERSHIP),
        opts=opts,
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
    rule = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=default(sse_algorithm=SSE_S3)
        )
        if kms_key_arn is None
        else aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=default(
                sse_algorithm=SSE_KMS, kms_master_key_id=kms_key_arn
            ),
            bucket_key_enabled=True,
        )
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id, rules=[rule], opts=opts
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=opts,
    )
    return BucketHardening(ownership_controls, public_access_block, encryption, versioning)
