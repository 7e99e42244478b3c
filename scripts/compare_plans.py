"""Compare two offline plans (`hpcctl plan --json`) resource by resource.

    python scripts/compare_plans.py BEFORE.json AFTER.json

Resources are matched by type and name (a URN also holds the parent chain, so a resource that
moves to another parent keeps its match). Prints, per resource: added, removed, moved (its URN or
parent changed), and every input that differs, with tag differences listed apart from the rest.
Exits 0 when the resource inputs are identical apart from moves and tags, 1 otherwise: a refactor
that means to change nothing else can be checked with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TAG_KEYS = ("tags", "tagsAll")


def resources(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    plan = json.loads(path.read_text())
    return {(r["type"], r["name"]): r for r in plan["resources"]}


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        lines: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            lines += differences(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return lines
    if before != after:
        return [f"{path}: {json.dumps(before, sort_keys=True)} → {json.dumps(after, sort_keys=True)}"]
    return []


def compare(before_path: Path, after_path: Path) -> tuple[list[str], bool]:
    before, after = resources(before_path), resources(after_path)
    lines: list[str] = []
    changed = False
    for key in sorted(set(before) - set(after)):
        lines.append(f"- removed {key[0]} {key[1]}")
        changed = True
    for key in sorted(set(after) - set(before)):
        lines.append(f"+ added   {key[0]} {key[1]}")
        changed = True
    for key in sorted(set(before) & set(after)):
        old, new = before[key], after[key]
        head = f"~ {key[0]} {key[1]}"
        if old["urn"] != new["urn"] or old.get("parent") != new.get("parent"):
            lines.append(f"{head}: moved {old['urn']} → {new['urn']}")
        old_inputs, new_inputs = dict(old.get("inputs") or {}), dict(new.get("inputs") or {})
        for tag_key in TAG_KEYS:
            for line in differences(old_inputs.pop(tag_key, None), new_inputs.pop(tag_key, None), tag_key):
                lines.append(f"{head}: tags {line}")
        for line in differences(old_inputs, new_inputs):
            lines.append(f"{head}: input {line}")
            changed = True
    return lines, changed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    lines, changed = compare(Path(argv[0]), Path(argv[1]))
    print("\n".join(lines) if lines else "identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
