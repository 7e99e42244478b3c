#!/bin/bash
# Slurm monitoring agent (head node: OnNodeConfigured and OnNodeUpdated). Installs a systemd
# timer that publishes Slurm state to CloudWatch every INTERVAL seconds:
#   per queue (dimensions ClusterName, Queue): PendingJobs, RunningJobs, IdleNodes, AllocatedNodes
#   per cluster (dimension ClusterName):       DownNodes, SpotInterruptions
# SpotInterruptions counts nodes of Spot queues that Slurm holds down/drained with a reason that
# names a Spot interruption or insufficient capacity.
#   $1 cluster name  $2 region  $3 namespace  $4 interval seconds  $5 Spot queues (comma-separated)
set -euo pipefail

cluster="${1:?cluster name}"
region="${2:?region}"
namespace="${3:-HPC/Slurm}"
interval="${4:-60}"
spot_queues="${5:-}"

install -d -m 0755 /opt/hpc-platform
cat >/opt/hpc-platform/slurm-metrics.env <<ENV
CLUSTER_NAME=${cluster}
AWS_REGION=${region}
METRIC_NAMESPACE=${namespace}
SPOT_QUEUES=${spot_queues}
ENV

cat >/opt/hpc-platform/slurm-metrics.sh <<'COLLECT'
#!/bin/bash
# One sample of Slurm state → CloudWatch (PutMetricData, up to 1000 values per call).
set -euo pipefail
export PATH="/opt/slurm/bin:${PATH}"
# shellcheck disable=SC1091
source "${HPC_SLURM_METRICS_ENV:-/opt/hpc-platform/slurm-metrics.env}"

data=()
add() { # metric value [queue]
  local dims="[{\"Name\":\"ClusterName\",\"Value\":\"${CLUSTER_NAME}\"}"
  [[ -n "${3:-}" ]] && dims+=",{\"Name\":\"Queue\",\"Value\":\"$3\"}"
  data+=("{\"MetricName\":\"$1\",\"Value\":$2,\"Unit\":\"Count\",\"Dimensions\":${dims}]}")
}

# Node states in compact form (%t): `idle~` is a powered-down cloud node, not an idle one.
node_states() { sinfo --noheader --Node --format='%N %t' "$@" | sort -u; }

for queue in $(sinfo --noheader --format=%R | sort -u); do
  pending="$(squeue --noheader --partition="${queue}" --states=PENDING --format=%i | wc -l)"
  running="$(squeue --noheader --partition="${queue}" --states=RUNNING --format=%i | wc -l)"
  states="$(node_states --partition="${queue}")"
  idle="$(awk '$2 == "idle"' <<<"${states}" | wc -l)"
  allocated="$(awk '$2 == "alloc" || $2 == "mix"' <<<"${states}" | wc -l)"
  add PendingJobs "${pending}" "${queue}"
  add RunningJobs "${running}" "${queue}"
  add IdleNodes "${idle}" "${queue}"
  add AllocatedNodes "${allocated}" "${queue}"
done

down="$(node_states | awk '$2 ~ /^(down|drain|drng|fail)/' | wc -l)"
add DownNodes "${down}"

interrupted=0
IFS=',' read -r -a spot <<<"${SPOT_QUEUES}"
for queue in "${spot[@]}"; do
  [[ -z "${queue}" ]] && continue
  count="$(sinfo --noheader --list-reasons --partition="${queue}" --format='%E|%N' \
    | grep -Eic 'spot|interrupt|InsufficientInstanceCapacity' || true)"
  interrupted=$((interrupted + count))
done
add SpotInterruptions "${interrupted}"

joined="$(IFS=','; echo "${data[*]}")"
aws cloudwatch put-metric-data --region "${AWS_REGION}" --namespace "${METRIC_NAMESPACE}" \
  --metric-data "[${joined}]"
COLLECT
chmod 0755 /opt/hpc-platform/slurm-metrics.sh

cat >/etc/systemd/system/hpc-slurm-metrics.service <<UNIT
[Unit]
Description=Publish Slurm queue and node metrics to CloudWatch
After=network-online.target slurmctld.service

[Service]
Type=oneshot
ExecStart=/opt/hpc-platform/slurm-metrics.sh
UNIT

cat >/etc/systemd/system/hpc-slurm-metrics.timer <<UNIT
[Unit]
Description=Publish Slurm metrics every ${interval}s

[Timer]
OnBootSec=60
OnUnitActiveSec=${interval}
AccuracySec=5

[Install]
WantedBy=timers.target
UNIT

systemctl daemon-reload
systemctl enable --now hpc-slurm-metrics.timer
echo "slurm-metrics-agent: publishing to ${namespace} every ${interval}s"
