"""Where a config key sits in a stack file: a finding's key path → the 1-based YAML line.

Messages name keys (`hpc:cluster.queues[1].name`); editors and CI annotations need the line. This
composes the YAML (nodes carry their marks) and walks `config:` along the finding's location.
"""

from __future__ import annotations

import yaml

from hpc_platform.domain.config.errors import Loc
from hpc_platform.domain.config.keys import stack_key


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    """The child node at `part` and the line that names it (the key's line for mappings)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value, key.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item.start_mark.line + 1
    return None


def key_line(text: str, loc: Loc) -> int | None:
    """The line of `loc` (a finding's location, e.g. `('cluster', 'queues', 1, 'name')`) in a stack
    file's text; the deepest ancestor's line when the key itself is absent (a missing required
    key); None when the text is not YAML or has no `config:` mapping."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return None
    found = _child(root, "config")
    if found is None:
        return None
    node, line = found
    if not loc:
        return line
    head, *rest = loc
    for part in (stack_key(str(head)), *rest):
        step = _child(node, part)
        if step is None:
            break
        node, line = step
    return line


__all__ = ["key_line"]
