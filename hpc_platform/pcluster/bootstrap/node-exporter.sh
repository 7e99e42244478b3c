#!/bin/bash
# node_exporter (OnNodeConfigured: every compute node, and the head node). Installs the pinned
# build and runs it on the given port for the head node's Prometheus agent. With a Slurm port
# (head node), a second instance serves only the text files the Slurm metrics agent writes.
#   $1 port  $2 Slurm exporter port (head node only)  $3 Slurm text-file directory (head node only)
# The package's URL, SHA-256 and program path are filled in when the platform uploads this script
# (hpc_platform/pcluster/prometheus.py pins them): a new pin changes the script, not the cluster
# config, so it reaches new nodes without replacing the head node.
set -euo pipefail

url="@NODE_EXPORTER_URL@"
sha256="@NODE_EXPORTER_SHA256@"
member="@NODE_EXPORTER_MEMBER@"
port="${1:?port}"
slurm_port="${2:-}"
slurm_dir="${3:-}"
binary=/opt/hpc-platform/bin/node_exporter

@include install-pinned.fragment.sh

install -d -m 0755 /opt/hpc-platform/bin
install_pinned node-exporter "${url}" "${sha256}" "${member}" "${binary}"
id node_exporter >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin node_exporter

cat >/etc/systemd/system/hpc-node-exporter.service <<UNIT
[Unit]
Description=Prometheus node_exporter (hpc-platform)
After=network-online.target

[Service]
User=node_exporter
ExecStart=${binary} --web.listen-address=:${port} --no-collector.textfile
Restart=always

[Install]
WantedBy=multi-user.target
UNIT

units=(hpc-node-exporter.service)
if [[ -n "${slurm_port}" ]]; then
  install -d -m 0755 "${slurm_dir:?Slurm text-file directory}"
  cat >/etc/systemd/system/hpc-slurm-exporter.service <<UNIT
[Unit]
Description=Slurm metrics for Prometheus (text files of the Slurm metrics agent)
After=network-online.target

[Service]
User=node_exporter
ExecStart=${binary} --web.listen-address=:${slurm_port} --collector.disable-defaults --collector.textfile --collector.textfile.directory=${slurm_dir}
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
  units+=(hpc-slurm-exporter.service)
fi

systemctl daemon-reload
systemctl enable --now "${units[@]}"
echo "node-exporter: ${units[*]} running"
