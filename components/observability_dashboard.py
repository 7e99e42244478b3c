"""The CloudWatch dashboard Observability creates: a pure function of plain values.

`dashboard_body` takes resolved ids and names (no Pulumi outputs) and returns the dashboard's JSON
document, so the layout is tested without an engine. Rows, top to bottom: title, alarms, head
node, Slurm queues, Lustre, EFS home, Spot interruptions and estimated charges; a row whose source
is absent (no head node yet, no Lustre, no EFS, no alarms) is left out rather than drawn empty.
"""

from collections.abc import Sequence
from typing import Any

from hpc_platform.domain.metrics import (
    SLURM_ALLOCATED_NODES,
    SLURM_DOWN_NODES,
    SLURM_IDLE_NODES,
    SLURM_NAMESPACE,
    SLURM_PENDING_JOBS,
    SPOT_INTERRUPTIONS,
)

# CloudWatch billing metrics exist only in us-east-1.
BILLING_REGION = "us-east-1"


def _metric_widget(
    title: str, metrics: list[list[Any]], region: str, *, x: int, y: int, width: int = 12, **props: Any
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {"title": title, "region": region, "view": "timeSeries", "metrics": metrics, **props},
    }


def dashboard_body(
    *,
    region: str,
    cluster_name: str,
    queue_names: Sequence[str],
    head_node_instance_id: str | None,
    lustre: Sequence[tuple[str, str]],
    efs_file_system_id: str | None,
    spot_rule_name: str,
    alarm_arns: Sequence[str],
) -> dict[str, Any]:
    """The CloudWatch dashboard: head node, Slurm queues, Lustre, EFS, Spot, estimated charges."""
    widgets: list[dict[str, Any]] = []
    y = 0

    def add(widget: dict[str, Any]) -> None:
        widgets.append(widget)

    add(
        {
            "type": "text",
            "x": 0,
            "y": y,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"# {cluster_name}\nSlurm metrics from namespace `{SLURM_NAMESPACE}` "
                "(published by the head node); Lustre, EFS, Spot and cost from AWS."
            },
        }
    )
    y += 2
    if alarm_arns:
        add(
            {
                "type": "alarm",
                "x": 0,
                "y": y,
                "width": 24,
                "height": 4,
                "properties": {"title": "Alarms", "alarms": sorted(alarm_arns)},
            }
        )
        y += 4
    if head_node_instance_id:
        add(
            _metric_widget(
                "Head node CPU (%)",
                [["AWS/EC2", "CPUUtilization", "InstanceId", head_node_instance_id]],
                region,
                x=0,
                y=y,
                stat="Average",
                period=300,
                yAxis={"left": {"min": 0, "max": 100}},
            )
        )
        add(
            _metric_widget(
                "Head node memory used (%)",
                [["CWAgent", "mem_used_percent", "InstanceId", head_node_instance_id]],
                region,
                x=12,
                y=y,
                stat="Average",
                period=300,
                yAxis={"left": {"min": 0, "max": 100}},
            )
        )
        y += 6
    pending = [
        [SLURM_NAMESPACE, SLURM_PENDING_JOBS, "ClusterName", cluster_name, "Queue", q, {"label": q}]
        for q in queue_names
    ]
    nodes: list[list[Any]] = []
    for q in queue_names:
        for metric in (SLURM_ALLOCATED_NODES, SLURM_IDLE_NODES):
            nodes.append(
                [SLURM_NAMESPACE, metric, "ClusterName", cluster_name, "Queue", q, {"label": f"{q} {metric}"}]
            )
    nodes.append(
        [SLURM_NAMESPACE, SLURM_DOWN_NODES, "ClusterName", cluster_name, {"label": "down (all queues)"}]
    )
    add(_metric_widget("Slurm pending jobs per queue", pending, region, x=0, y=y, stat="Maximum", period=300))
    add(
        _metric_widget(
            "Slurm nodes per queue", nodes, region, x=12, y=y, stat="Maximum", period=300, stacked=True
        )
    )
    y += 6
    if lustre:
        throughput: list[list[Any]] = []
        free: list[list[Any]] = []
        for index, (role, fs_id) in enumerate(lustre):
            for direction, metric in (("read", "DataReadBytes"), ("write", "DataWriteBytes")):
                metric_id = f"{direction[0]}{index}"
                throughput.append(
                    [
                        {
                            "expression": f"{metric_id} / PERIOD({metric_id}) / 1000000",
                            "label": f"{role} {direction} MB/s",
                        }
                    ]
                )
                throughput.append(
                    [
                        "AWS/FSx",
                        metric,
                        "FileSystemId",
                        fs_id,
                        {"id": metric_id, "stat": "Sum", "visible": False},
                    ]
                )
            free.append(
                ["AWS/FSx", "FreeDataStorageCapacity", "FileSystemId", fs_id, {"label": f"{role} free bytes"}]
            )
        add(_metric_widget("Lustre throughput (MB/s)", throughput, region, x=0, y=y, period=60))
        add(_metric_widget("Lustre free capacity", free, region, x=12, y=y, stat="Minimum", period=300))
        y += 6
    if efs_file_system_id:
        add(
            _metric_widget(
                "EFS home: I/O and connections",
                [
                    ["AWS/EFS", "TotalIOBytes", "FileSystemId", efs_file_system_id, {"stat": "Sum"}],
                    [
                        "AWS/EFS",
                        "ClientConnections",
                        "FileSystemId",
                        efs_file_system_id,
                        {"stat": "Sum", "yAxis": "right"},
                    ],
                ],
                region,
                x=0,
                y=y,
                period=300,
            )
        )
        add(
            _metric_widget(
                "EFS home: stored bytes",
                [["AWS/EFS", "StorageBytes", "FileSystemId", efs_file_system_id, "StorageClass", "Total"]],
                region,
                x=12,
                y=y,
                stat="Average",
                period=3600,
            )
        )
        y += 6
    add(
        _metric_widget(
            "Spot interruptions",
            [
                [
                    "AWS/Events",
                    "MatchedEvents",
                    "RuleName",
                    spot_rule_name,
                    {"label": "interruption warnings (EventBridge)"},
                ],
                [
                    SLURM_NAMESPACE,
                    SPOT_INTERRUPTIONS,
                    "ClusterName",
                    cluster_name,
                    {"label": "reported by Slurm"},
                ],
            ],
            region,
            x=0,
            y=y,
            stat="Sum",
            period=3600,
        )
    )
    add(
        _metric_widget(
            "Estimated charges this month (USD, account)",
            [["AWS/Billing", "EstimatedCharges", "Currency", "USD"]],
            BILLING_REGION,
            x=12,
            y=y,
            stat="Maximum",
            period=21600,
        )
    )
    return {"widgets": widgets}


__all__ = ["BILLING_REGION", "dashboard_body"]
