"""Network hygiene: nothing open to the internet, traffic logged, instance metadata behind IMDSv2,
buckets never public, keys rotated (NIST SP 800-171 3.1.3, 3.3.1, 3.13.1, 3.13.10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._common import (
    DEFAULT_ENFORCEMENT,
    S3_BUCKET_TYPES,
    get,
    is_cluster,
    is_false,
    is_true,
    items,
    joined,
    resource_policy,
    short,
)

OPEN_CIDRS = ("0.0.0.0/0", "::/0")
ALL_PROTOCOLS = ("-1", "all")


# --- ingress -------------------------------------------------------------------------------------
def _ingress_rules(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any, Any, list[str]]]:
    """(protocol, from_port, to_port, source CIDRs) of each ingress rule the resource declares."""
    if resource_type == "aws:ec2/securityGroup:SecurityGroup":
        return [
            (
                str(get(rule, "protocol")),
                get(rule, "fromPort"),
                get(rule, "toPort"),
                [*items(get(rule, "cidrBlocks")), *items(get(rule, "ipv6CidrBlocks"))],
            )
            for rule in items(props.get("ingress"))
        ]
    if resource_type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if props.get("type") != "ingress":
            return []
        cidrs = [*items(props.get("cidrBlocks")), *items(props.get("ipv6CidrBlocks"))]
        return [(str(props.get("protocol")), props.get("fromPort"), props.get("toPort"), cidrs)]
    if resource_type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        return [(str(props.get("ipProtocol")), props.get("fromPort"), props.get("toPort"), cidrs)]
    return []


def _ports(protocol: str, from_port: Any, to_port: Any) -> str:
    if protocol.lower() in ALL_PROTOCOLS:
        return "all ports"
    if from_port == to_port:
        return f"{protocol} port {_int(from_port)}"
    return f"{protocol} ports {_int(from_port)}-{_int(to_port)}"


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _validate_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    allowed = {int(p) for p in args.get_config().get("allowedPorts") or []}
    for protocol, from_port, to_port, cidrs in _ingress_rules(args.resource_type, args.props):
        open_cidrs = [c for c in cidrs if c in OPEN_CIDRS]
        if not open_cidrs:
            continue
        if protocol.lower() not in ALL_PROTOCOLS and isinstance(from_port, int | float):
            end = to_port if isinstance(to_port, int | float) else from_port
            if set(range(int(from_port), int(end) + 1)) <= allowed:
                continue
        report_violation(
            f"ingress from {', '.join(open_cidrs)} on {_ports(protocol, from_port, to_port)}; allow only "
            "the CIDRs that need it (hpc:network.ssh_ingress_cidrs for SSH) or use SSM Session Manager"
            + (f" (ports open to the internet by policy: {sorted(allowed)})" if allowed else "")
            + ".",
            None,
        )


no_public_ingress = ResourceValidationPolicy(
    name="no-public-ingress",
    description="Security groups allow no ingress from 0.0.0.0/0 or ::/0 except on ports the "
    "policy config allows.",
    validate=_validate_ingress,
    enforcement_level=DEFAULT_ENFORCEMENT,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedPorts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 65535},
                "uniqueItems": True,
                "default": [],
                "description": "TCP/UDP ports that may be open to the internet.",
            }
        }
    ),
)


# --- flow logs -----------------------------------------------------------------------------------
def _validate_flow_logs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    flow_logs = [r for r in args.resources if r.resource_type == "aws:ec2/flowLog:FlowLog"]
    for vpc in (r for r in args.resources if r.resource_type == "aws:ec2/vpc:Vpc"):
        logs, undecided = joined(flow_logs, "vpcId", vpc)
        if not logs and not undecided:
            report_violation(
                f"VPC {short(vpc.urn)} has no flow log; add an aws.ec2.FlowLog with vpc_id=vpc.id "
                "(hpc:network.flow_logs.enabled: true).",
                vpc.urn,
            )


vpc_flow_logs = StackValidationPolicy(
    name="vpc-flow-logs",
    description="Every VPC has a flow log.",
    validate=_validate_flow_logs,
    enforcement_level=DEFAULT_ENFORCEMENT,
)


# --- IMDSv2 --------------------------------------------------------------------------------------
def _validate_imds(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = args.props
    if is_cluster(args.resource_type, props):
        config = props.get("cluster_config")
        # ParallelCluster 3 defaults: ImdsSupport v2.0, HeadNode.Imds.Secured true.
        support = get(config, "Imds", "ImdsSupport")
        if support is not None and support != "v2.0":
            report_violation(
                f"cluster config Imds.ImdsSupport is {support!r}; set it to 'v2.0' (or leave it out) so "
                "every node requires IMDSv2 session tokens.",
                None,
            )
        if is_false(get(config, "HeadNode", "Imds", "Secured")):
            report_violation(
                "cluster config HeadNode.Imds.Secured is false; set it to true (or leave it out) so only "
                "root and the cluster admin can reach the head node's instance metadata.",
                None,
            )
        return
    if args.resource_type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
        tokens = get(props.get("metadataOptions"), "httpTokens")
        if tokens != "required":
            report_violation(
                f"metadata_options.http_tokens is {tokens or 'not set'}; set it to 'required' (IMDSv2).",
                None,
            )


imdsv2_required = ResourceValidationPolicy(
    name="imdsv2-required",
    description="Instances, launch templates and the ParallelCluster config require IMDSv2.",
    validate=_validate_imds,
    enforcement_level=DEFAULT_ENFORCEMENT,
)


# --- S3 public access ----------------------------------------------------------------------------
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _validate_public_access(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    blocks = [
        r
        for r in args.resources
        if r.resource_type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    ]
    for bucket in (r for r in args.resources if r.resource_type in S3_BUCKET_TYPES):
        own, undecided = joined(blocks, "bucket", bucket)
        if not own:
            if not undecided:
                report_violation(
                    f"S3 bucket {short(bucket.urn)} has no public access block; add an "
                    "aws.s3.BucketPublicAccessBlock with all four settings true.",
                    bucket.urn,
                )
            continue
        for block in own:
            off = [flag for flag in PUBLIC_ACCESS_FLAGS if not is_true(block.props.get(flag))]
            if off:
                report_violation(
                    f"S3 bucket {short(bucket.urn)}: public access block leaves {', '.join(off)} off; "
                    "set all four to true.",
                    bucket.urn,
                )


s3_public_access_block = StackValidationPolicy(
    name="s3-public-access-block",
    description="Every S3 bucket has a public access block with all four settings on.",
    validate=_validate_public_access,
    enforcement_level=DEFAULT_ENFORCEMENT,
)


# --- KMS -----------------------------------------------------------------------------------------
def _kms_key(props: Mapping[str, Any]) -> list[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = props.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return []  # AWS rotates only symmetric encryption keys automatically.
    if is_true(props.get("enableKeyRotation")):
        return []
    return ["KMS key rotation is off; set enable_key_rotation=True."]


kms_key_rotation = resource_policy(
    "kms-key-rotation",
    "Symmetric customer-managed KMS keys rotate automatically.",
    {"aws:kms/key:Key": _kms_key},
)

POLICIES = [no_public_ingress, vpc_flow_logs, imdsv2_required, s3_public_access_block, kms_key_rotation]
