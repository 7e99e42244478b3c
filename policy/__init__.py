"""The platform's CrossGuard policy pack.

`pulumi preview --policy-pack policy --policy-pack-config policy/config/<env>.json` runs it under
the Pulumi engine; `hpcctl check` runs the same pack offline against a planned stack. The rules
live in `policy.hpc_policies`; `policy/__main__.py` only serves them.
"""
