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

install -d -m 0755 /opt/hpc-platform/bin /etc/hpc-platform
work="$(mktemp -d)"
curl --fail --silent --show-error --location --retry 5 --output "${work}/package.deb" "${url}"
echo "${sha256}  ${work}/package.deb" | sha256sum --check --status \
  || { echo "prometheus-agent: checksum of ${url} is not the pinned ${sha256}; refusing it" >&2; exit 1; }
python3 - "${work}/package.deb" "${member}" "${binary}" <<'PY'
import io, sys, tarfile
path, member, target = sys.argv[1:]
data = open(path, "rb").read()
assert data[:8] == b"!<arch>\n", "not a Debian package"
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    pos += 60
    if name.startswith("data.tar"):
        archive = tarfile.open(fileobj=io.BytesIO(data[pos:pos + size]), mode="r:*")
        with open(target, "wb") as out:
            out.write(archive.extractfile(member).read())
        break
    pos += size + size % 2
else:
    sys.exit(f"{member} not found in {path}")
PY
chmod 0755 "${binary}"
rm -rf "${work}"

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
