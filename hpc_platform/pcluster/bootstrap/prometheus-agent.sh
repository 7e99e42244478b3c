#!/bin/bash
# Prometheus in agent mode (head node: OnNodeConfigured and OnNodeUpdated). Installs the pinned
# build, fetches its config (rendered by the platform: EC2 discovery of the cluster's nodes, the
# Slurm exporter, SigV4 remote write to Managed Prometheus) and runs it.
#   $1 config (s3://...)  $2 region
# The package's URL, SHA-256 and program path are filled in when the platform uploads this script
# (hpc_platform/pcluster/prometheus.py pins them).
set -euo pipefail

url="@PROMETHEUS_URL@"
sha256="@PROMETHEUS_SHA256@"
member="@PROMETHEUS_MEMBER@"
config_url="${1:?config S3 URL}"
region="${2:?region}"
binary=/opt/hpc-platform/bin/prometheus
config=/etc/hpc-platform/prometheus.yml
data=/var/lib/hpc-platform/prometheus-agent

@include install-pinned.fragment.sh

install -d -m 0755 /opt/hpc-platform/bin /etc/hpc-platform
install_pinned prometheus-agent "${url}" "${sha256}" "${member}" "${binary}"

aws s3 cp --region "${region}" --only-show-errors "${config_url}" "${config}.new"
mv "${config}.new" "${config}"
id prometheus >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin prometheus
install -d -o prometheus -m 0750 "${data}"

# The agent signs remote writes and EC2 discovery with the head node's instance profile (IMDSv2).
cat >/etc/systemd/system/hpc-prometheus-agent.service <<UNIT
[Unit]
Description=Prometheus agent: cluster metrics to Amazon Managed Prometheus (hpc-platform)
After=network-online.target

[Service]
User=prometheus
Environment=AWS_REGION=${region}
ExecStart=${binary} --enable-feature=agent --config.file=${config} --storage.agent.path=${data} --web.listen-address=127.0.0.1:9090
ExecReload=/bin/kill -HUP \$MAINPID
Restart=always

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable hpc-prometheus-agent.service
systemctl restart hpc-prometheus-agent.service
echo "prometheus-agent: running with ${config}"
