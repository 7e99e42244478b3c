"""Compare two offline plans (`hpcctl plan --json`) resource by resource.

    python scripts/compare_plans.py BEFORE.json AFTER.json

Resources are matched as `hpcctl plan --against` and `hpcctl check --base` match them
(`hpc_platform.app.plan_diff`): by URN, then by type and name, so a resource that moves to another
parent keeps its match. Prints, per resource: added, removed, moved (its URN changed), and every
input that differs, with tag differences listed apart from the rest. Exits 0 when the resource
inputs are identical apart from moves and tags, 1 otherwise: a refactor that means to change
nothing else can be checked with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from hpc_platform.app.plan_diff import Difference, PlanFileError, compare_plans, read_plan


def _line(difference: Difference) -> str:
    old, new = (json.dumps(v, sort_keys=True) for v in (difference.old, difference.new))
    return f"{'.'.join(difference.path)}: {old} → {new}"


def compare(before_path: Path, after_path: Path) -> tuple[list[str], bool]:
    diff = compare_plans(read_plan(before_path), read_plan(after_path), str(before_path), str(after_path))
    lines: list[str] = []
    for r in sorted(diff.removed_resources, key=lambda r: (r["type"], r["name"])):
        lines.append(f"- removed {r['type']} {r['name']}")
    for r in sorted(diff.added_resources, key=lambda r: (r["type"], r["name"])):
        lines.append(f"+ added   {r['type']} {r['name']}")
    for match in sorted(diff.matched, key=lambda m: (m.after["type"], m.after["name"], m.urn)):
        head = f"~ {match.after['type']} {match.after['name']}"
        if match.moved:
            lines.append(f"{head}: moved {match.before['urn']} → {match.urn}")
        lines.extend(f"{head}: tags {_line(d)}" for d in match.differences if d.is_tags)
        lines.extend(f"{head}: input {_line(d)}" for d in match.differences if not d.is_tags)
    changed = bool(diff.added or diff.removed) or any(
        not d.is_tags for match in diff.matched for d in match.differences
    )
    return lines, changed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        lines, changed = compare(Path(argv[0]), Path(argv[1]))
    except PlanFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(lines) if lines else "identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
