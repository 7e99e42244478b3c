"""The validator base class: a named cross-field rule over the parsed stack config."""

from collections.abc import Iterator
from typing import ClassVar

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig


class Validator:
    """A named rule. Subclasses set `name` and implement `validate`, yielding `Finding`s with the
    exact key path each is about."""

    name: ClassVar[str]

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        raise NotImplementedError
