"""Cross-field and catalog rules, one named validator per rule, one module per domain.

Field-level rules stay on the models; these run only when the schema has parsed. Each validator
yields `Finding`s with the exact key path it is about (`network`, `storage`, `cluster`,
`observability`, `compliance`, `performance`; `capacity`'s rules are about keys under
`cluster`); `run_validators` runs them all, in this registry's order.
Validators compare no environment names: what an environment requires is in its
`hpc_platform.domain.environments` profile.
"""

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators import (
    capacity,
    cluster,
    compliance,
    network,
    observability,
    performance,
    storage,
)
from hpc_platform.domain.config.validators.base import Validator

VALIDATORS: tuple[Validator, ...] = (
    *network.VALIDATORS,
    *storage.VALIDATORS,
    *compliance.VALIDATORS,
    *cluster.VALIDATORS,
    *capacity.VALIDATORS,
    *observability.VALIDATORS,
    *performance.VALIDATORS,
)


def run_validators(config: StackConfig, catalog: InstanceCatalog) -> list[Finding]:
    findings: list[Finding] = []
    for validator in VALIDATORS:
        findings.extend(validator.validate(config, catalog))
    return findings


__all__ = ["VALIDATORS", "Validator", "run_validators"]
