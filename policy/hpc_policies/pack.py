"""The policy pack: its name, default enforcement and every policy, in one list.

`policy/__main__.py` hands these to `pulumi_policy.PolicyPack` (which serves them to the Pulumi
engine); `hpcctl check` hands the same ones to pulumi-policy's analyzer in-process.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from . import audit, encryption, network, spot, tagging
from ._common import DEFAULT_ENFORCEMENT

PACK_NAME = "hpc-platform"
# Keep equal to `version` in PulumiPolicy.yaml (the CLI reads that one; hpcctl reports this one).
PACK_VERSION = "0.1.0"
DESCRIPTION = (
    "Compliance guardrails for the HPC platform: encryption at rest, Spot share, "
    "NIST SP 800-171 tagging, network hygiene and audit records."
)
ENFORCEMENT_LEVEL: EnforcementLevel = DEFAULT_ENFORCEMENT


def policies() -> list[Policy]:
    found: list[Policy] = [
        *encryption.POLICIES,
        *spot.POLICIES,
        *tagging.POLICIES,
        *network.POLICIES,
        *audit.POLICIES,
    ]
    names = [p.name for p in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"policy names must be unique; repeated: {', '.join(duplicates)}")
    return found
