"""What `pulumi preview --policy-pack policy` runs: serve the pack assembled in `hpc_policies.pack`.

Run as a script from this directory, so the rules are imported as the sibling `hpc_policies`.
"""

from hpc_policies.pack import DESCRIPTION, ENFORCEMENT_LEVEL, PACK_NAME, policies
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    description=DESCRIPTION,
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=policies(),
)
