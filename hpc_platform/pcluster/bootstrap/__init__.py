"""Bootstrap scripts ParallelCluster runs on the nodes (CustomActions), shipped as package data.

- `efa-check.sh`: EFA queues; fails the node when `fi_info -p efa` finds no EFA provider.
- `node-tuning.sh`: every compute node; kernel, limits and Lustre client settings.
- `slurm-metrics-agent.sh`: head node; a systemd timer publishing the Slurm metrics named in
  `hpc_platform.domain.metrics` to CloudWatch.
"""

from __future__ import annotations

from importlib import resources

EFA_CHECK = "efa-check.sh"
NODE_TUNING = "node-tuning.sh"
SLURM_METRICS_AGENT = "slurm-metrics-agent.sh"
SCRIPTS = (EFA_CHECK, NODE_TUNING, SLURM_METRICS_AGENT)


def script(filename: str) -> str:
    """The text of one bootstrap script."""
    if filename not in SCRIPTS:
        raise KeyError(f"{filename!r} is not a bootstrap script; one of {', '.join(SCRIPTS)}")
    return (resources.files(__name__) / filename).read_text()
