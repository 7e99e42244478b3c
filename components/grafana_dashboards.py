"""The Grafana dashboards the platform ships, kept as JSON beside this module (`dashboards/`).

Each dashboard picks its data source through a `datasource` template variable (Prometheus for
Slurm and nodes, CloudWatch for Lustre), so the same file works provisioned through Grafana's API
(`Observability` with a Grafana token) and imported by hand (Dashboards → New → Import).
"""

import json
from importlib import resources
from typing import Any

DASHBOARDS = ("slurm", "nodes", "lustre")
"""Dashboard files (`dashboards/<name>.json`), in the order they are provisioned."""
PROMETHEUS_DASHBOARDS = ("slurm", "nodes")
"""The dashboards that read the Managed Prometheus workspace (the others read CloudWatch)."""


def dashboard_json(name: str) -> str:
    """The committed JSON model of one dashboard."""
    if name not in DASHBOARDS:
        raise KeyError(f"{name!r} is not a dashboard; one of {', '.join(DASHBOARDS)}")
    return (resources.files("components") / "dashboards" / f"{name}.json").read_text()


def dashboard(name: str) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(dashboard_json(name))
    return model


def prometheus_data_source_json(region: str) -> str:
    """Managed Grafana's Prometheus data source settings: SigV4 signed with the workspace's role."""
    return json.dumps(
        {"httpMethod": "POST", "sigV4Auth": True, "sigV4AuthType": "ec2_iam_role", "sigV4Region": region}
    )


def cloudwatch_data_source_json(region: str) -> str:
    """Managed Grafana's CloudWatch data source settings: the workspace's role, the stack's region."""
    return json.dumps({"authType": "ec2_iam_role", "defaultRegion": region})


__all__ = [
    "DASHBOARDS",
    "PROMETHEUS_DASHBOARDS",
    "cloudwatch_data_source_json",
    "dashboard",
    "dashboard_json",
    "prometheus_data_source_json",
]
