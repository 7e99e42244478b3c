"""Metrics into Amazon Managed Prometheus: what the nodes install and the collector's config.

A pure module: no Pulumi, no AWS. The `ParallelCluster` component ships the scripts and the
config rendered here when it is given a Prometheus workspace.

- **Collector: Prometheus in agent mode** on the head node. Its own `remote_write` signs with
  SigV4 (the head-node role), its `ec2_sd_configs` finds ParallelCluster's dynamic compute nodes
  by the cluster's `parallelcluster:cluster-name` tag (no prolog or file to keep in step with
  Slurm's power saving), its write-ahead log buffers samples while the workspace is unreachable,
  and its config is checked by Prometheus's own `promtool check config`. (The ADOT collector would
  do the same with a second config language and no such checker.)
- **node_exporter** on every node (port `NODE_EXPORTER_PORT`), scraped through EC2 discovery.
- **Slurm exporter**: the head node's Slurm metrics agent (`slurm-metrics-agent.sh`, which already
  samples queues and nodes for CloudWatch) also writes them as a Prometheus text file, served by a
  second node_exporter that runs only its textfile collector (port `SLURM_EXPORTER_PORT`).
- **Binaries**: every download is pinned here, and only here: version, URL and SHA-256. They are
  Debian's builds (x86_64 Go programs linked against glibc ≥ 2.34), taken from the Debian
  archive, whose signed index gives their checksums; the scripts refuse a file whose checksum
  differs. The stack validators keep them to nodes that can run them
  (`limits.METRICS_COLLECTOR_ARCHITECTURE`, `METRICS_COLLECTOR_MIN_GLIBC`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from hpc_platform.domain.limits import PCLUSTER_RESERVED_TAG_PREFIX

NODE_EXPORTER_PORT = 9100
SLURM_EXPORTER_PORT = 9341
"""Port of the head node's textfile-only node_exporter that serves the Slurm metrics."""
SLURM_TEXTFILE_DIR = "/var/lib/hpc-platform/slurm-metrics"
"""Where the Slurm metrics agent writes `slurm.prom` for the Slurm exporter."""
SCRAPE_INTERVAL_SECONDS = 30
EC2_DISCOVERY_REFRESH_SECONDS = 60
CLUSTER_NAME_TAG = f"{PCLUSTER_RESERVED_TAG_PREFIX}cluster-name"
DEBIAN_MIRROR = "https://deb.debian.org/debian"


@dataclass(frozen=True)
class PinnedBinary:
    """One program, taken from a Debian package pinned by version and checksum."""

    package: str
    version: str
    pool_path: str
    """Path of the .deb in the Debian archive (its `Filename` in the signed Packages index)."""
    sha256: str
    """SHA-256 of the .deb (its `SHA256` in the signed Packages index)."""
    member: str
    """The program's path inside the package's data archive."""

    @property
    def url(self) -> str:
        return f"{DEBIAN_MIRROR}/{self.pool_path}"

    def placeholders(self, prefix: str) -> dict[str, str]:
        """What an install script's `@<PREFIX>_URL@`, `_SHA256@` and `_MEMBER@` become."""
        return {
            f"@{prefix}_URL@": self.url,
            f"@{prefix}_SHA256@": self.sha256,
            f"@{prefix}_MEMBER@": self.member,
        }


NODE_EXPORTER = PinnedBinary(
    package="prometheus-node-exporter",
    version="1.5.0-1+b6",
    pool_path="pool/main/p/prometheus-node-exporter/prometheus-node-exporter_1.5.0-1+b6_amd64.deb",
    sha256="8cb5b39627595ea2cf3cd27be593e0e9af87023d29e1c5b8487e2f9510097e09",
    member="./usr/bin/prometheus-node-exporter",
)
PROMETHEUS = PinnedBinary(
    package="prometheus",
    version="2.42.0+ds-5+deb12u1",
    pool_path="pool/main/p/prometheus/prometheus_2.42.0+ds-5+deb12u1_amd64.deb",
    sha256="81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55",
    member="./usr/bin/prometheus",
)
PINNED = (NODE_EXPORTER, PROMETHEUS)
_PLACEHOLDERS = {**NODE_EXPORTER.placeholders("NODE_EXPORTER"), **PROMETHEUS.placeholders("PROMETHEUS")}


def pinned_script(text: str) -> str:
    """An install script with the pins filled in, as it is uploaded. The pins live in the script,
    not in its ParallelCluster arguments: the head node's `OnNodeConfigured` cannot change without
    replacing the cluster, so a new pin must not change it."""
    for placeholder, value in _PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    left = sorted(set(re.findall(r"@[A-Z0-9_]+@", text)))
    if left:
        raise ValueError(f"no pin for {', '.join(left)}")
    return text


def remote_write_url(prometheus_endpoint: str) -> str:
    """The workspace's remote-write URL from its `prometheus_endpoint` (which ends in `/`)."""
    return f"{prometheus_endpoint.rstrip('/')}/api/v1/remote_write"


def agent_config(*, cluster_name: str, region: str, remote_write: str) -> dict[str, Any]:
    """The Prometheus agent's config: node_exporter on every running node of the cluster (found
    by its tag), the Slurm exporter on the head node itself, all written to `remote_write` with
    SigV4 in `region`."""
    tag_labels = {
        "node-type": "node_type",
        "queue-name": "queue",
        "compute-resource-name": "compute_resource",
    }
    relabel: list[dict[str, Any]] = [
        {
            # EC2 discovery sanitises tag keys: `parallelcluster:queue-name` → `..._queue_name`.
            "source_labels": [f"__meta_ec2_tag_parallelcluster_{tag.replace('-', '_')}"],
            "target_label": label,
        }
        for tag, label in tag_labels.items()
    ]
    relabel += [
        {"source_labels": ["__meta_ec2_instance_id"], "target_label": "instance_id"},
        {"source_labels": ["__meta_ec2_instance_type"], "target_label": "instance_type"},
        {"source_labels": ["__meta_ec2_availability_zone"], "target_label": "availability_zone"},
    ]
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            "scrape_timeout": "10s",
            "external_labels": {"cluster": cluster_name},
        },
        "scrape_configs": [
            {
                "job_name": "node",
                "ec2_sd_configs": [
                    {
                        "region": region,
                        "port": NODE_EXPORTER_PORT,
                        "refresh_interval": f"{EC2_DISCOVERY_REFRESH_SECONDS}s",
                        "filters": [
                            {"name": f"tag:{CLUSTER_NAME_TAG}", "values": [cluster_name]},
                            {"name": "instance-state-name", "values": ["running"]},
                        ],
                    }
                ],
                "relabel_configs": relabel,
            },
            {
                "job_name": "slurm",
                "static_configs": [
                    {"targets": [f"localhost:{SLURM_EXPORTER_PORT}"], "labels": {"node_type": "HeadNode"}}
                ],
            },
        ],
        "remote_write": [
            {
                "url": remote_write,
                "sigv4": {"region": region},
                # AMP's recommended batching: fewer, larger requests.
                "queue_config": {"max_samples_per_send": 1000, "max_shards": 200, "capacity": 2500},
            }
        ],
    }


def agent_config_yaml(*, cluster_name: str, region: str, remote_write: str) -> str:
    """`agent_config` as the prometheus.yml the head node runs with."""
    config = agent_config(cluster_name=cluster_name, region=region, remote_write=remote_write)
    return "# Rendered by hpc-platform (hpc_platform/pcluster/prometheus.py); do not edit on the node.\n" + (
        yaml.safe_dump(config, sort_keys=False)
    )


__all__ = [
    "NODE_EXPORTER",
    "NODE_EXPORTER_PORT",
    "PINNED",
    "PROMETHEUS",
    "SLURM_EXPORTER_PORT",
    "SLURM_TEXTFILE_DIR",
    "PinnedBinary",
    "agent_config",
    "agent_config_yaml",
    "pinned_script",
    "remote_write_url",
]
