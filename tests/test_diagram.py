"""`hpcctl diagram`: the architecture drawn from the offline plan, as SVG (Graphviz) or Mermaid."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hpc_platform.app.diagram import (
    GraphvizMissing,
    build_diagram,
    format_mbps,
    render_mermaid,
    write_diagram,
)
from hpcctl.cli import EXIT_INVALID, EXIT_OK, main
from tests.support.stacks import REPO_ROOT, planned

SVG_NS = "{http://www.w3.org/2000/svg}"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def svg_text(path: Path) -> list[str]:
    """Every text line of an SVG (parsing it also proves it is well-formed XML)."""
    root = ET.parse(path).getroot()
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


def test_prod_svg_shows_every_queue_and_both_file_systems_with_throughput(tmp_path: Path) -> None:
    target = tmp_path / "prod.svg"
    code, out, err = run("diagram", "--stack", "prod", "--project-dir", str(REPO_ROOT), "-o", str(target))
    assert (code, err) == (EXIT_OK, ""), err
    assert out == f"wrote {target}\n"
    texts = svg_text(target)
    joined = "\n".join(texts)

    stack_plan = planned("prod")
    queues = [q.name for q in stack_plan.loaded.config.cluster.queues]
    assert len(queues) >= 5
    for queue in queues:
        assert f"queue {queue}" in texts, queue

    throughput = stack_plan.plan.outputs["lustre_throughput_mbps"]
    for role in ("scratch", "persistent"):
        assert f"FSx for Lustre: {role}" in texts
        assert format_mbps(throughput[role]) in joined, role
    for label in ("head node", "Slurm accounting database", "S3 bucket", "Managed Grafana"):
        assert label in texts
    assert any(t.startswith("EFS") for t in texts)
    # Ids known only after deploy are used to connect resources, never printed.
    assert not re.search(r"\b(subnet|fs|sg|vpc)-[0-9a-f]{8,}", joined)


@dataclass
class MermaidGraph:
    subgraphs: dict[str, str] = field(default_factory=dict)
    """id → label."""
    parent: dict[str, str] = field(default_factory=dict)
    """node or subgraph id → the subgraph it is declared in ('' at top level)."""
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def ancestors(self, ident: str) -> list[str]:
        chain = []
        while self.parent.get(ident):
            ident = self.parent[ident]
            chain.append(ident)
        return chain


def parse_mermaid(text: str) -> MermaidGraph:
    """The subset of Mermaid flowchart syntax the renderer writes; anything else fails."""
    lines = text.splitlines()
    assert lines[:4] == ["---", lines[1], "---", "flowchart TB"], lines[:4]
    graph = MermaidGraph()
    stack = [""]
    for line in lines[4:]:
        line = line.strip()
        if m := re.fullmatch(r'subgraph (\w+)\["([^"]*)"\]', line):
            graph.subgraphs[m.group(1)] = m.group(2)
            graph.parent[m.group(1)] = stack[-1]
            stack.append(m.group(1))
        elif line == "end":
            stack.pop()
            assert stack, "unbalanced 'end'"
        elif m := re.fullmatch(r'(\w+)\["([^"]*)"\]', line):
            assert m.group(1) not in graph.parent, f"{m.group(1)} declared twice"
            graph.parent[m.group(1)] = stack[-1]
        elif m := re.fullmatch(r'(\w+) -->(?:\|"([^"]*)"\|)? (\w+)', line):
            graph.edges.append((m.group(1), m.group(3), m.group(2) or ""))
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    assert stack == [""], f"unclosed subgraphs {stack[1:]}"
    return graph


def test_dev_mermaid_nests_azs_placement_groups_and_queues() -> None:
    stack_plan = planned("dev")
    config = stack_plan.loaded.config
    graph = parse_mermaid(render_mermaid(build_diagram(stack_plan.plan)))
    labels = graph.subgraphs.values()

    assert f"VPC {config.network.vpc_cidr}" in labels
    vpc = next(i for i, label in graph.subgraphs.items() if label.startswith("VPC "))
    for az in config.network.availability_zones:
        az_id = next(i for i, label in graph.subgraphs.items() if label == f"AZ {az}")
        assert graph.parent[az_id] == vpc
    cluster = next(i for i, label in graph.subgraphs.items() if label.startswith("ParallelCluster "))
    assert graph.parent[cluster] == vpc
    assert {"Shared storage", "Observability"} <= set(labels)

    placement_groups = {i for i, label in graph.subgraphs.items() if label.startswith("EFA placement group ")}
    efa_queues = [q.name for q in config.cluster.queues if q.enable_efa]
    assert efa_queues and len(placement_groups) == len(efa_queues)
    for queue in config.cluster.queues:
        node = f"n_queue_{queue.name.replace('-', '_')}"
        assert cluster in graph.ancestors(node), queue.name
        assert (graph.parent[node] in placement_groups) == queue.enable_efa, queue.name

    declared = set(graph.parent)
    for source, target, _ in graph.edges:
        assert {source, target} <= declared, (source, target)
    assert any(label.startswith("DRA ") for _, _, label in graph.edges)


def test_missing_dot_is_one_line_before_planning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without Graphviz
    monkeypatch.setattr(
        "hpc_platform.app.offline.plan_stack_file",
        lambda path: pytest.fail("planned although the image cannot be rendered"),
    )
    target = tmp_path / "prod.svg"
    code, out, err = run("diagram", "--stack", "prod", "--project-dir", str(REPO_ROOT), "-o", str(target))
    assert (code, out) == (EXIT_INVALID, "")
    assert err.count("\n") == 1, err
    assert err.startswith(f"hpcctl: {target}: Graphviz's `dot` executable is not on PATH")
    assert "apt-get install graphviz" in err and "prod.mmd" in err
    assert not target.exists()


def test_render_without_dot_raises_the_same_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    diagram = build_diagram(planned("dev").plan)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        write_diagram(diagram, tmp_path / "dev.png")
    # Mermaid needs no Graphviz.
    write_diagram(diagram, tmp_path / "dev.mmd")
    assert parse_mermaid((tmp_path / "dev.mmd").read_text()).subgraphs


def test_rejects_unknown_format_before_planning(tmp_path: Path) -> None:
    code, _, err = run(
        "diagram", "--stack", "dev", "--project-dir", str(REPO_ROOT), "-o", str(tmp_path / "x.pdf")
    )
    assert code == EXIT_INVALID
    assert err == f"hpcctl: {tmp_path / 'x.pdf'}: unsupported diagram format; use .svg, .png, .mmd\n"


def test_readme_shows_the_prod_diagram() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "hpcctl diagram --stack prod -o docs/architecture-prod.svg" in readme
    assert "](docs/architecture-prod.svg)" in readme
    # Regenerate with that command when the prod stack's queues change.
    texts = svg_text(REPO_ROOT / "docs" / "architecture-prod.svg")
    for queue in planned("prod").loaded.config.cluster.queues:
        assert f"queue {queue.name}" in texts, queue.name


def test_rejects_missing_output_directory_before_planning(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "dev.mmd"
    code, _, err = run("diagram", "--stack", "dev", "--project-dir", str(REPO_ROOT), "-o", str(target))
    assert code == EXIT_INVALID
    assert err == f"hpcctl: {target}: no such directory {target.parent}\n"
