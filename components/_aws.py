"""`aws.<service>.<Name>` as in `import pulumi_aws as aws`, loading only the module that defines Name.

`pulumi_aws/<service>/__init__.py` imports every module of the service (ec2: about 200 of them,
over a second), and Python runs a package's `__init__` before any of its submodules, so even
`from pulumi_aws.ec2.vpc import Vpc` pays for all of ec2. Here each service package is registered
with its `__path__` but with its `__init__` deferred (`_deferred_package`), and `aws.ec2.Vpc`
imports `pulumi_aws.ec2.vpc` alone. The classes are pulumi-aws's own, so type tokens and behaviour
are unchanged. Anything else asking the package itself for a name it has not loaded yet (another
program's `pulumi_aws.ec2.Instance`, Pulumi's resource-module lookup) runs the real `__init__`.

Components write `aws.ec2.Vpc` as usual; for the type checker `aws` is `pulumi_aws` itself:

    if TYPE_CHECKING:
            else:
        from components._aws import aws
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

import pulumi_aws

# Modules of a service package that hold many names: nested argument types, output types, enums.
_SHARED_MODULES = ("_inputs", "outputs", "_enums")


def _snake(name: str) -> str:
    """pulumi-aws's module name for a class or function name: `VpcEndpoint` → `vpc_endpoint`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _candidates(name: str) -> list[str]:
    """Modules that may define `name`, most likely first (a resource's own module, its args in the
    same module, a data source's `_output` variant in the function's module, then shared ones)."""
    stem = name.removesuffix("_output")
    first = [_snake(stem)]
    if name.endswith("Args"):
        first.append(_snake(name.removesuffix("Args")))
    return [*first, *_SHARED_MODULES]


def _deferred_package(service: str) -> types.ModuleType:
    """`pulumi_aws.<service>` with its `__path__` (so its submodules import) and its `__init__` run
    on the first access to a name it does not have."""
    fullname = f"pulumi_aws.{service}"
    existing = sys.modules.get(fullname)
    # pulumi-aws registers each service with importlib's LazyLoader, which runs the whole
    # `__init__` on any attribute access, `__path__` included; an already loaded one is kept.
    if existing is not None and type(existing).__name__ != "_LazyModule":
        return existing
    spec = importlib.machinery.PathFinder.find_spec(fullname, list(pulumi_aws.__path__))
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{fullname} is not a package of pulumi-aws")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    directory = Path(next(iter(spec.submodule_search_locations)))

    def load_package(attribute: str) -> Any:
        if (directory / f"{attribute}.py").is_file():
            # `from . import outputs` in a resource's module asks the package first: a submodule.
            return importlib.import_module(f"{fullname}.{attribute}")
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = load_package
    sys.modules[fullname] = module
    setattr(pulumi_aws, service, module)
    return module


class _Service:
    """One service's names, each imported from its own module on first use."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._package = _deferred_package(service)
        self._directory = Path(next(iter(self._package.__path__)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        package = f"pulumi_aws.{self._service}"
        for candidate in _candidates(name):
            if not (self._directory / f"{candidate}.py").is_file():
                continue
            module = importlib.import_module(f"{package}.{candidate}")
            if name in module.__dict__:
                value = module.__dict__[name]
                setattr(self, name, value)
                return value
        # Not where pulumi-aws's naming puts it: the whole package knows (slow, still correct).
        value = getattr(self._package, name)
        setattr(self, name, value)
        return value


class _Aws:
    """`pulumi_aws` as components use it: `aws.<service>.<Name>`, and the package's own names
    (`aws.get_partition_output`, loaded with the package itself)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value: Any
        if (Path(next(iter(pulumi_aws.__path__))) / name / "__init__.py").is_file():
            value = _Service(name)
        else:
            value = getattr(pulumi_aws, name)
        setattr(self, name, value)
        return value


aws = _Aws()

__all__ = ["aws"]
