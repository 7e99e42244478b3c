"""`hpcctl plan`: the offline preview, one resource in full (`--show`), and the changes against
an earlier plan's JSON (`--against`)."""

from __future__ import annotations

import argparse
from pathlib import Path

PLAN_EPILOG = """\
The resource tree and the count follow `pulumi preview` on a new stack: every resource is
counted, component resources and the pulumi:pulumi:Stack itself included, and `--json` lists
exactly the resources it counts (its changeSummary.create). Values AWS assigns on deploy (ids,
ARNs, endpoints) read "(known after deploy)" in the text and in --show; the JSON keeps the
offline engine's placeholders, which are derived from each resource's URN and so compare
between two plans. JSON numbers that are whole are integers.
"""


def add_plan_arguments(plan: argparse.ArgumentParser) -> None:
    plan.add_argument(
        "--show",
        metavar="URN_OR_NAME",
        help="print one resource's inputs in full (YAML; secrets masked) instead of the preview",
    )
    plan.add_argument(
        "--against",
        metavar="PLAN.json",
        type=Path,
        help="an earlier `plan --json` of this stack: also print the resources added, removed, moved and "
        "changed, and what the ParallelCluster update takes (live, fleet stop or replacement)",
    )
