"""Config problems as one-line messages: `<file>: <key path>: <message>`, or `<file>: <message>` for
a problem with the file itself (unreadable, not YAML/JSON, the wrong shape)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hpc_platform.domain.config.keys import stack_key

Level = Literal["ERROR", "WARNING", "INFO"]
Loc = tuple[str | int, ...]


def key_path(loc: Loc) -> str:
    """('cluster', 'queues', 2, 'name') → `hpc:cluster.queues[2].name`."""
    if not loc:
        return "hpc"
    head, *rest = loc
    return key_path_under(stack_key(str(head)), rest)


def key_path_under(key: str, loc: Sequence[str | int]) -> str:
    """A path under a stack-file key as it is written: (`hpc:cluster`, ('queues', 2)) →
    `hpc:cluster.queues[2]`. For keys the schema does not name (a config diff, a submitted body)."""
    text = key
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"  # a key with odd characters stays on one line
    return text


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class Finding:
    """What a validator found: where (a key path in the schema), what, and how bad."""

    loc: Loc
    """The key the problem is at; empty when it is about the file itself, not a key."""
    message: str
    level: Level = "ERROR"

    @property
    def key(self) -> str:
        """The key path (`hpc:cluster.queues[1].name`); empty for a problem with the file itself."""
        return key_path(self.loc) if self.loc else ""

    @property
    def text(self) -> str:
        """The line without its file and key: the level (unless an error), then the message."""
        prefix = "" if self.level == "ERROR" else f"{self.level.lower()}: "
        return prefix + self.message.replace("\n", "\\n")

    def render(self, source: str) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"{source}: {where}{self.text}"


class ConfigError(Exception):
    """The stack config is invalid. `str()` is one line per problem, nothing else."""

    def __init__(self, source: str, findings: Sequence[Finding]):
        self.source = source
        self.findings = list(findings)
        super().__init__("\n".join(f.render(source) for f in self.findings))

    @property
    def lines(self) -> list[str]:
        return [f.render(self.source) for f in self.findings]
