"""Bootstrap scripts ParallelCluster runs on the nodes (CustomActions), shipped as package data.

- `efa-check.sh`: EFA queues; fails the node when `fi_info -p efa` finds no EFA provider.
- `node-tuning.sh`: every compute node; kernel, limits and Lustre client settings.
- `slurm-metrics-agent.sh`: head node; a systemd timer publishing the Slurm metrics named in
  `hpc_platform.domain.metrics` to CloudWatch (and, with Prometheus on, as a text file for the
  Slurm exporter).
- `node-exporter.sh` (Prometheus on): every node; the pinned node_exporter, and on the head node
  the Slurm exporter (see `hpc_platform.pcluster.prometheus`).
- `prometheus-agent.sh` (Prometheus on): head node; the pinned Prometheus in agent mode with the
  rendered config, remote-writing to Managed Prometheus.

Fragments are shell text written once and included by several scripts: a line
`@include <fragment>` in a script is replaced by the fragment when the script is read, so the
uploaded copy is self-contained (ParallelCluster fetches one file per action).

- `install-pinned.fragment.sh`: `install_pinned`, the download, SHA-256 check and unpacking of a
  pinned Debian package that `node-exporter.sh` and `prometheus-agent.sh` both use.
"""

from __future__ import annotations

import re
from importlib import resources

EFA_CHECK = "efa-check.sh"
NODE_TUNING = "node-tuning.sh"
SLURM_METRICS_AGENT = "slurm-metrics-agent.sh"
NODE_EXPORTER = "node-exporter.sh"
PROMETHEUS_AGENT = "prometheus-agent.sh"
SCRIPTS = (EFA_CHECK, NODE_TUNING, SLURM_METRICS_AGENT, NODE_EXPORTER, PROMETHEUS_AGENT)
INSTALL_PINNED = "install-pinned.fragment.sh"
FRAGMENTS = (INSTALL_PINNED,)
_INCLUDE = re.compile(r"^@include (\S+)\n", re.MULTILINE)


def fragment(filename: str) -> str:
    """The text of one fragment, as it appears in the scripts that include it."""
    if filename not in FRAGMENTS:
        raise KeyError(f"{filename!r} is not a bootstrap fragment; one of {', '.join(FRAGMENTS)}")
    return (resources.files(__name__) / filename).read_text()


def script(filename: str) -> str:
    """The text of one bootstrap script, its `@include` lines replaced by their fragments."""
    if filename not in SCRIPTS:
        raise KeyError(f"{filename!r} is not a bootstrap script; one of {', '.join(SCRIPTS)}")
    source = (resources.files(__name__) / filename).read_text()
    return _INCLUDE.sub(lambda include: fragment(include.group(1)), source)
