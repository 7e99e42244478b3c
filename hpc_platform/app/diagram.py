"""The architecture drawn from an offline plan: a graph model as plain data, then two renderers.

The model is built from what the plan registers (subnets, placement groups, file systems, the
cluster resource's `cluster_config` input and so on), not from the stack config, so the drawing
shows what `pulumi up` would create. Values known only after deploy (ids, auto-named physical
names) are used to connect resources but never printed: labels carry logical names and inputs.

Renderers: Graphviz DOT (an image through Graphviz's `dot` executable) and Mermaid text, which
needs no Graphviz.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_platform.app.offline.engine import Plan, PlannedResource, plain
from hpc_platform.domain.limits import LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB
from hpc_platform.domain.lustre import lustre_baseline_mbps
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE

IMAGE_FORMATS = ("svg", "png")
MERMAID_SUFFIX = ".mmd"
SUFFIXES = (*(f".{fmt}" for fmt in IMAGE_FORMATS), MERMAID_SUFFIX)
DOT_EXECUTABLE = "dot"
# Subnet tiers in the order the network component lays them out, outside in.
TIER_ORDER = ("public", "private", "compute", "storage")


class GraphvizMissing(Exception):
    """Graphviz's `dot` executable is not on PATH."""


# --- the model -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    id: str
    lines: tuple[str, ...]
    kind: str


@dataclass
class Group:
    id: str
    label: str
    kind: str
    nodes: list[Node] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def walk_nodes(self) -> Iterator[Node]:
        yield from self.nodes
        for group in self.groups:
            yield from group.walk_nodes()

    def walk_groups(self) -> Iterator[Group]:
        yield self
        for group in self.groups:
            yield from group.walk_groups()


@dataclass(frozen=True)
class Edge:
    source: str
    """A node's or a group's id."""
    target: str
    label: str = ""


@dataclass
class Diagram:
    title: str
    root: Group
    edges: list[Edge] = field(default_factory=list)

    def nodes(self) -> list[Node]:
        return list(self.root.walk_nodes())

    def groups(self) -> list[Group]:
        return list(self.root.walk_groups())[1:]


def _ident(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_") for part in parts)


def format_mbps(mbps: float) -> str:
    return f"{mbps:,.0f} MB/s"


# --- building the model from the plan ------------------------------------------------------------
def _inputs(resource: PlannedResource) -> dict[str, Any]:
    value = plain(resource.inputs)
    return value if isinstance(value, dict) else {}


def _physical_id(resource: PlannedResource) -> str | None:
    return resource.id or plain(resource.outputs).get("id")


def _component_name(resource: PlannedResource) -> str:
    return (resource.parent or "").rsplit("::", 1)[-1]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.outputs: dict[str, Any] = plain(plan.outputs)
        self.edges: list[Edge] = []
        self.subnet_az: dict[str, str] = {}
        self.subnet_tier: dict[str, str] = {}
        self.cluster_config = self._cluster_config()

    def of_type(self, token: str) -> list[PlannedResource]:
        return sorted(self.plan.of_type(token), key=lambda r: r.name)

    def _cluster_config(self) -> dict[str, Any]:
        for resource in self.plan.resources:
            inputs = _inputs(resource)
            if inputs.get(KIND_PROPERTY) == KIND_VALUE and isinstance(inputs.get("cluster_config"), dict):
                config: dict[str, Any] = inputs["cluster_config"]
                return config
        return {}

    def build(self) -> Diagram:
        region = self.outputs.get("region")
        title = f"{self.plan.project} · stack {self.plan.stack}" + (f" · {region}" if region else "")
        root = Group("root", title, "root")
        vpc = self._vpc()
        root.groups.append(vpc)
        storage_ids = self._storage(vpc)
        vpc.groups.append(self._cluster(storage_ids))
        database = self._database()
        if database is not None:
            vpc.nodes.append(database)
        root.nodes.extend(self._buckets(storage_ids))
        observability = self._observability()
        if observability.nodes:
            root.groups.append(observability)
        return Diagram(title, root, self.edges)

    # -- network
    def _vpc(self) -> Group:
        vpcs = self.of_type("aws:ec2/vpc:Vpc")
        cidr = _inputs(vpcs[0]).get("cidrBlock") if vpcs else None
        vpc = Group("g_vpc", f"VPC {cidr}" if cidr else "VPC", "vpc")
        nat_subnets = {_inputs(n).get("subnetId") for n in self.of_type("aws:ec2/natGateway:NatGateway")}
        by_az: dict[str, list[tuple[str, Node]]] = {}
        for subnet in self.of_type("aws:ec2/subnet:Subnet"):
            inputs = _inputs(subnet)
            az = str(inputs.get("availabilityZone") or "AZ ?")
            tier = subnet.name.removeprefix(_component_name(subnet) + "-").removesuffix(f"-{az}")
            subnet_id = _physical_id(subnet)
            if subnet_id:
                self.subnet_az[subnet_id] = az
                self.subnet_tier[subnet_id] = tier
            lines = [f"{tier} subnet", str(inputs.get("cidrBlock", ""))]
            if subnet_id in nat_subnets:
                lines.append("NAT gateway")
            by_az.setdefault(az, []).append((tier, Node(_ident("n", subnet.name), tuple(lines), "subnet")))
        for az in sorted(by_az):
            group = Group(_ident("g_az", az), f"AZ {az}", "az")
            for _, node in sorted(by_az[az], key=lambda item: _tier_rank(item[0])):
                group.nodes.append(node)
            vpc.groups.append(group)
        endpoints = self.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if endpoints:
            services = sorted(
                str(_inputs(e).get("serviceName", e.name)).rsplit(".", 1)[-1]
                + (" (gateway)" if _inputs(e).get("vpcEndpointType") == "Gateway" else "")
                for e in endpoints
            )
            vpc.nodes.append(Node("n_vpc_endpoints", ("VPC endpoints", *_wrap(services)), "network"))
        return vpc

    def _azs(self, subnet_ids: Any) -> str:
        ids = subnet_ids if isinstance(subnet_ids, list) else [subnet_ids]
        azs = sorted({self.subnet_az.get(str(i), "?") for i in ids})
        return ", ".join(azs)

    # -- storage
    def _storage(self, vpc: Group) -> dict[str, str]:
        """Adds the shared file systems; returns node ids by physical file system id."""
        group = Group("g_storage", "Shared storage", "storage")
        node_ids: dict[str, str] = {}
        mounts = {
            str((s.get("FsxLustreSettings") or s.get("EfsSettings") or {}).get("FileSystemId")): s
            for s in self.cluster_config.get("SharedStorage", [])
        }
        throughput = self.outputs.get("lustre_throughput_mbps")
        throughput = throughput if isinstance(throughput, dict) else {}
        for fs in self.of_type("aws:fsx/lustreFileSystem:LustreFileSystem"):
            inputs = _inputs(fs)
            fs_id = _physical_id(fs) or fs.name
            role = next(
                (
                    key.removesuffix("_file_system_id")
                    for key, value in self.outputs.items()
                    if key.endswith("_file_system_id") and value == fs_id
                ),
                fs.name.removeprefix(_component_name(fs) + "-"),
            )
            deployment = str(inputs.get("deploymentType", ""))
            capacity = _int(inputs.get("storageCapacity"))
            per_unit = inputs.get("perUnitStorageThroughput")
            if per_unit is None and deployment.startswith("SCRATCH"):
                per_unit = LUSTRE_SCRATCH_2_THROUGHPUT_MBPS_PER_TIB
            mbps = throughput.get(role)
            if not isinstance(mbps, int | float) and isinstance(per_unit, int | float):
                mbps = lustre_baseline_mbps(capacity, per_unit)
            lines = [f"FSx for Lustre: {role}", f"{deployment}, {capacity:,} GiB"]
            if isinstance(mbps, int | float):
                per_unit_text = f" ({_int(per_unit)} MB/s/TiB)" if isinstance(per_unit, int | float) else ""
                lines.append(f"{format_mbps(mbps)}{per_unit_text}")
            mount = mounts.get(fs_id)
            if mount:
                lines.append(f"mounted at {mount.get('MountDir')}")
            lines.append(f"AZ {self._azs(inputs.get('subnetIds'))}")
            node = Node(_ident("n", fs.name), tuple(lines), "lustre")
            group.nodes.append(node)
            node_ids[fs_id] = node.id
        for efs in self.of_type("aws:efs/fileSystem:FileSystem"):
            inputs = _inputs(efs)
            fs_id = _physical_id(efs) or efs.name
            targets = [
                t
                for t in self.of_type("aws:efs/mountTarget:MountTarget")
                if _inputs(t).get("fileSystemId") == fs_id
            ]
            lines = [f"EFS: {efs.name.removeprefix(_component_name(efs) + '-')}"]
            lines.append(
                f"{inputs.get('throughputMode', '')} throughput, {inputs.get('performanceMode', '')}"
            )
            if targets:
                lines.append(f"mount targets in {len(targets)} AZs")
            mount = mounts.get(fs_id)
            if mount:
                lines.append(f"mounted at {mount.get('MountDir')}")
            node = Node(_ident("n", efs.name), tuple(lines), "efs")
            group.nodes.append(node)
            node_ids[fs_id] = node.id
        if group.nodes:
            vpc.groups.append(group)
        return node_ids

    def _buckets(self, storage_ids: dict[str, str]) -> list[Node]:
        nodes: list[Node] = []
        by_physical: dict[str, str] = {}
        for bucket in self.of_type("aws:s3/bucket:Bucket"):
            node = Node(_ident("n", bucket.name), ("S3 bucket", bucket.name), "bucket")
            nodes.append(node)
            physical = plain(bucket.outputs).get("bucket") or _physical_id(bucket)
            if physical:
                by_physical[str(physical)] = node.id

        def bucket_node(s3_path: Any) -> tuple[str | None, str]:
            match = re.match(r"s3://([^/]+)/?(.*)", str(s3_path or ""))
            if not match:
                return None, ""
            return by_physical.get(match.group(1)), match.group(2)

        for dra in self.of_type("aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation"):
            inputs = _inputs(dra)
            target, prefix = bucket_node(inputs.get("dataRepositoryPath"))
            source = storage_ids.get(str(inputs.get("fileSystemId")))
            if target and source:
                s3 = inputs.get("s3") or {}
                ways = [w for w in ("import", "export") if s3.get(f"auto{w.title()}Policy")]
                direction = " + ".join(ways) if ways else "linked"
                self.edges.append(
                    Edge(source, target, f"DRA {inputs.get('fileSystemPath')} ↔ {prefix} ({direction})")
                )
        for fs in self.of_type("aws:fsx/lustreFileSystem:LustreFileSystem"):
            inputs = _inputs(fs)
            source = storage_ids.get(_physical_id(fs) or fs.name)
            for key, verb in (("importPath", "import"), ("exportPath", "export")):
                target, prefix = bucket_node(inputs.get(key))
                if target and source:
                    self.edges.append(Edge(source, target, f"{verb} {prefix}"))
        for logging in self.of_type("aws:s3/bucketLogging:BucketLogging"):
            inputs = _inputs(logging)
            source = by_physical.get(str(inputs.get("bucket")))
            target = by_physical.get(str(inputs.get("targetBucket")))
            if source and target:
                self.edges.append(Edge(source, target, "access logs"))
        return nodes

    # -- cluster
    def _cluster(self, storage_ids: dict[str, str]) -> Group:
        config = self.cluster_config
        names = [
            str(_inputs(r).get("cluster_name"))
            for r in self.plan.resources
            if _inputs(r).get(KIND_PROPERTY) == KIND_VALUE
        ]
        group = Group("g_cluster", f"ParallelCluster {names[0] if names else ''} (Slurm)".strip(), "cluster")
        head = config.get("HeadNode") or {}
        head_subnet = (head.get("Networking") or {}).get("SubnetId")
        head_lines = ["head node", str(head.get("InstanceType", ""))]
        if head_subnet:
            head_lines.append(f"{self.subnet_tier.get(head_subnet, '')} subnet, AZ {self._azs(head_subnet)}")
        group.nodes.append(Node("n_head_node", tuple(head_lines), "head"))

        placement_groups = {
            str(plain(pg.outputs).get("name") or _physical_id(pg)): pg
            for pg in self.of_type("aws:ec2/placementGroup:PlacementGroup")
        }
        pg_groups: dict[str, Group] = {}
        used: set[str] = set()
        for queue in (config.get("Scheduling") or {}).get("SlurmQueues", []):
            node = self._queue(queue)
            placement = (queue.get("Networking") or {}).get("PlacementGroup") or {}
            if not placement.get("Enabled"):
                group.nodes.append(node)
                continue
            name = str(placement.get("Name") or "")
            used.add(name)
            if name not in pg_groups:
                pg = placement_groups.get(name)
                label = pg.name if pg is not None else "managed by ParallelCluster"
                strategy = _inputs(pg).get("strategy", "cluster") if pg is not None else "cluster"
                pg_groups[name] = Group(
                    _ident("g_pg", label), f"EFA placement group {label} ({strategy})", "placement"
                )
            pg_groups[name].nodes.append(node)
        group.groups.extend(pg_groups[name] for name in sorted(pg_groups, key=lambda n: pg_groups[n].label))
        for name, pg in sorted(placement_groups.items()):
            if name not in used:
                group.nodes.append(
                    Node(_ident("n", pg.name), ("placement group", pg.name, "(no queue)"), "placement")
                )

        for storage in config.get("SharedStorage", []):
            settings = storage.get("FsxLustreSettings") or storage.get("EfsSettings") or {}
            target = storage_ids.get(str(settings.get("FileSystemId")))
            if target:
                self.edges.append(Edge(group.id, target, f"mounts {storage.get('MountDir')}"))
        return group

    def _queue(self, queue: dict[str, Any]) -> Node:
        name = str(queue.get("Name"))
        lines = [f"queue {name}"]
        efa = False
        for resource in queue.get("ComputeResources", []):
            types = [resource["InstanceType"]] if resource.get("InstanceType") else []
            types += [i.get("InstanceType") for i in resource.get("Instances", [])]
            lines.append(
                f"{'/'.join(str(t) for t in types)} × {_int(resource.get('MinCount'))}–"
                f"{_int(resource.get('MaxCount'))}"
            )
            efa = efa or bool((resource.get("Efa") or {}).get("Enabled"))
        details = [str(queue.get("CapacityType", "ONDEMAND"))] + (["EFA"] if efa else [])
        lines.append(", ".join(details))
        lines.append(f"AZ {self._azs((queue.get('Networking') or {}).get('SubnetIds', []))}")
        return Node(_ident("n_queue", name), tuple(lines), "queue")

    def _database(self) -> Node | None:
        clusters = self.of_type("aws:rds/cluster:Cluster")
        if not clusters:
            return None
        inputs = _inputs(clusters[0])
        lines = ["Slurm accounting database", f"{inputs.get('engine', '')}"]
        scaling = inputs.get("serverlessv2ScalingConfiguration")
        if isinstance(scaling, dict):
            lines.append(
                f"Serverless v2, {scaling.get('minCapacity', 0):g}–{scaling.get('maxCapacity', 0):g} ACU"
            )
        node = Node("n_accounting_db", tuple(lines), "database")
        self.edges.append(Edge("n_head_node", node.id, "slurmdbd"))
        return node

    # -- observability
    def _observability(self) -> Group:
        group = Group("g_observability", "Observability", "observability")

        def add(node_id: str, token: str, *lines: str) -> str | None:
            resources = self.of_type(token)
            if not resources:
                return None
            count = f" × {len(resources)}" if len(resources) > 1 else ""
            group.nodes.append(Node(node_id, (lines[0] + count, *lines[1:]), "observability"))
            return node_id

        prometheus = add("n_prometheus", "aws:amp/workspace:Workspace", "Managed Prometheus")
        grafana = add("n_grafana", "aws:grafana/workspace:Workspace", "Managed Grafana")
        add("n_dashboard", "aws:cloudwatch/dashboard:Dashboard", "CloudWatch dashboard")
        alarms = add("n_alarms", "aws:cloudwatch/metricAlarm:MetricAlarm", "CloudWatch alarm")
        budgets = add("n_budgets", "aws:budgets/budget:Budget", "AWS budget")
        topic = add("n_alerts", "aws:sns/topic:Topic", "SNS alerts topic")
        add("n_flow_logs", "aws:ec2/flowLog:FlowLog", "VPC flow logs")
        add("n_log_groups", "aws:cloudwatch/logGroup:LogGroup", "CloudWatch log group")
        if grafana and prometheus:
            self.edges.append(Edge(grafana, prometheus, "data source"))
        for source in (alarms, budgets):
            if source and topic:
                self.edges.append(Edge(source, topic, "notify"))
        return group


def _tier_rank(tier: str) -> tuple[int, str]:
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def _wrap(items: list[str], width: int = 40) -> list[str]:
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 2 <= width:
            lines[-1] += f", {item}"
        else:
            lines.append(item)
    return lines


def build_diagram(plan: Plan) -> Diagram:
    """The architecture of an offline plan as plain data."""
    return _Builder(plan).build()


# --- renderers -----------------------------------------------------------------------------------
_MERMAID_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;"}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def render_mermaid(diagram: Diagram) -> str:
    """Mermaid flowchart text (GitHub and most Markdown viewers render it)."""
    lines = ["---", f"title: {_mermaid_text(diagram.title)}", "---", "flowchart TB"]

    def emit(group: Group, depth: int) -> None:
        indent = "  " * depth
        for node in group.nodes:
            label = "<br/>".join(_mermaid_text(line) for line in node.lines)
            lines.append(f'{indent}{node.id}["{label}"]')
        for child in group.groups:
            lines.append(f'{indent}subgraph {child.id}["{_mermaid_text(child.label)}"]')
            emit(child, depth + 1)
            lines.append(f"{indent}end")

    emit(diagram.root, 1)
    for edge in diagram.edges:
        arrow = f'-->|"{_mermaid_text(edge.label)}"|' if edge.label else "-->"
        lines.append(f"  {edge.source} {arrow} {edge.target}")
    return "\n".join(lines) + "\n"


_COLOURS = {
    "subnet": "#e8f1fb",
    "network": "#e8f1fb",
    "queue": "#fff4e0",
    "head": "#ffe3c2",
    "placement": "#fff4e0",
    "lustre": "#e6f5e6",
    "efs": "#e6f5e6",
    "bucket": "#f0e6f5",
    "database": "#fde8e8",
    "observability": "#f2f2f2",
}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(diagram: Diagram) -> str:
    """Graphviz DOT source (clusters for the VPC, AZs, placement groups; edges between them)."""
    import graphviz

    graph = graphviz.Digraph(
        "architecture",
        graph_attr={
            "label": _dot_text(diagram.title),
            "labelloc": "t",
            "fontname": "Helvetica",
            "fontsize": "18",
            "compound": "true",
            "rankdir": "LR",
            "newrank": "true",
        },
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9"},
    )
    first_node = {g.id: next(g.walk_nodes(), None) for g in diagram.groups()}

    def emit(target: Any, group: Group) -> None:
        for node in group.nodes:
            target.node(
                node.id,
                "\\n".join(_dot_text(line) for line in node.lines),
                fillcolor=_COLOURS.get(node.kind, "white"),
            )
        if group.kind == "az":
            # One row per AZ, tiers outside in, instead of a tall column of subnets.
            for left, right in zip(group.nodes, group.nodes[1:], strict=False):
                target.edge(left.id, right.id, style="invis")
        for child in group.groups:
            with target.subgraph(name=f"cluster_{child.id}") as sub:
                sub.attr(label=_dot_text(child.label), style="rounded", fontname="Helvetica", fontsize="12")
                emit(sub, child)

    emit(graph, diagram.root)
    for edge in diagram.edges:
        attrs: dict[str, str] = {"label": _dot_text(edge.label)} if edge.label else {}
        source, target = edge.source, edge.target
        if source in first_node:
            node = first_node[source]
            if node is None:
                continue
            attrs["ltail"] = f"cluster_{source}"
            source = node.id
        if target in first_node:
            node = first_node[target]
            if node is None:
                continue
            attrs["lhead"] = f"cluster_{target}"
            target = node.id
        graph.edge(source, target, **attrs)
    return str(graph.source)


def require_dot(output: Path) -> None:
    """Raises `GraphvizMissing` (with the fix) when an image is asked for and `dot` is not on PATH."""
    if output.suffix.lower() != MERMAID_SUFFIX and shutil.which(DOT_EXECUTABLE) is None:
        raise GraphvizMissing(_missing_dot_message(output))


def _missing_dot_message(output: Path) -> str:
    return (
        f"{output}: Graphviz's `{DOT_EXECUTABLE}` executable is not on PATH; install Graphviz "
        f"(Debian/Ubuntu: apt-get install graphviz) or write Mermaid text instead (-o {output.stem}.mmd)"
    )


def graphviz_available() -> bool:
    return shutil.which(DOT_EXECUTABLE) is not None


def render_svg(dot_source: str) -> bytes:
    """DOT source as an SVG image; raises `GraphvizMissing` without Graphviz's `dot`."""
    import graphviz

    try:
        image: bytes = graphviz.Source(dot_source).pipe(format="svg")
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(_missing_dot_message(Path("diagram.svg"))) from None
    return image


def write_diagram(diagram: Diagram, output: Path) -> None:
    """Writes `.mmd` as Mermaid text, `.svg`/`.png` as an image rendered by Graphviz."""
    suffix = output.suffix.lower()
    if suffix == MERMAID_SUFFIX:
        output.write_text(render_mermaid(diagram))
        return
    import graphviz

    source = graphviz.Source(render_dot(diagram))
    try:
        image: bytes = source.pipe(format=suffix.removeprefix("."))
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(_missing_dot_message(output)) from None
    output.write_bytes(image)
