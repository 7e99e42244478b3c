"""Stack configuration: schema (`models`), cross-field validators, and loading from stack files."""

from hpc_platform.config.errors import ConfigError, Finding, key_path
from hpc_platform.config.loader import (
    LoadedConfig,
    load_pulumi_config,
    load_stack_file,
    parse_config,
    stack_file_for,
)
from hpc_platform.config.models import StackConfig

__all__ = [
    "ConfigError",
    "Finding",
    "LoadedConfig",
    "StackConfig",
    "key_path",
    "load_pulumi_config",
    "load_stack_file",
    "parse_config",
    "stack_file_for",
]
