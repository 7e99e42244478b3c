"""Stack configuration: the schema (`models`, its limits in `hpc_platform.domain.limits`), the
cross-field validators (`validators`, one module per domain), where each field lives in a stack
file (`keys`) and loading from stack files or the Pulumi engine (`loader`).

This package's own namespace holds only the schema and the error type, so that the derivations the
validators use (placement, Spot share, performance) can import the schema without loading the
validators: import the loader from `hpc_platform.domain.config.loader`.
"""

from hpc_platform.domain.config.errors import ConfigError, Finding, key_path
from hpc_platform.domain.config.models import StackConfig

__all__ = ["ConfigError", "Finding", "StackConfig", "key_path"]
