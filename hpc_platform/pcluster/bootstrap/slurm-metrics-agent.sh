#!/bin/bash
# Slurm monitoring agent (head node: OnNodeConfigured and OnNodeUpdated). Installs a systemd
# timer that publishes Slurm state to CloudWatch every INTERVAL seconds:
#   per queue (dimensions ClusterName, Queue): PendingJobs, RunningJobs, IdleNodes, AllocatedNodes
#   per cluster (dimension ClusterName):       DownNodes, SpotInterruptions
# SpotInterruptions counts nodes of Spot queues that Slurm holds down/drained with a reason that
# names a Spot interruption or insufficient capacity. With a text-file directory (Prometheus on),
# each sample is also written there as `slurm.prom` (slurm_queue_jobs, slurm_queue_nodes,
# slurm_down_nodes, slurm_spot_interrupted_nodes) for the head node's Slurm exporter.
#   $1 cluster name  $2 region  $3 namespace  $4 interval seconds  $5 Spot queues (comma-separated)
#   $6 Prometheus text-file directory (optional)
set -euo pipefail

cluster="${1:?cluster name}"
region="${2:?region}"
namespace="${3:-HPC/Slurm}"
interval="${4:-60}"
spot_queues="${5:-}"
textfile_dir="${6:-}"

install -d -m 0755 /opt/hpc-platform
cat >/opt/hpc-platform/slurm-metrics.env <<ENV
CLUSTER_NAME=${cluster}
AWS_REGION=${region}
METRIC_NAMESPACE=${namespace}
SPOT_QUEUES=${spot_queues}
TEXTFILE_DIR=${textfile_dir}
ENV

cat >/opt/hpc-platform/slurm-metrics.sh <<'COLLECT'
#!/bin/bash
# One sample of Slurm state → CloudWatch (PutMetricData, up to 1000 values per call).
set -euo pipefail
export PATH="/opt/slurm/bin:${PATH}"
# shellcheck disable=SC1091
source "${HPC_SLURM_METRICS_ENV:-/opt/hpc-platform/slurm-metrics.env}"

data=()
prom=()
add() { # metric value [queue]
  local dims="[{\"Name\":\"ClusterName\",\"Value\":\"${CLUSTER_NAME}\"}"
  [[ -n "${3:-}" ]] && dims+=",{\"Name\":\"Queue\",\"Value\":\"$3\"}"
  data+=("{\"MetricName\":\"$1\",\"Value\":$2,\"Unit\":\"Count\",\"Dimensions\":${dims}]}")
}
sample() { # prometheus metric, labels (may be empty), value
  if [[ -n "$2" ]]; then prom+=("$1{$2} $3"); else prom+=("$1 $3"); fi
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
  sample slurm_queue_jobs "queue=\"${queue}\",state=\"pending\"" "${pending}"
  sample slurm_queue_jobs "queue=\"${queue}\",state=\"running\"" "${running}"
  sample slurm_queue_nodes "queue=\"${queue}\",state=\"idle\"" "${idle}"
  sample slurm_queue_nodes "queue=\"${queue}\",state=\"allocated\"" "${allocated}"
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
sample slurm_down_nodes "" "${down}"
sample slurm_spot_interrupted_nodes "" "${interrupted}"

if [[ -n "${TEXTFILE_DIR:-}" && -d "${TEXTFILE_DIR}" ]]; then
  # Written whole, then renamed: the exporter never reads half a file.
  {
    echo "# HELP slurm_queue_jobs Slurm jobs per partition and state."
    echo "# TYPE slurm_queue_jobs gauge"
    echo "# HELP slurm_queue_nodes Slurm nodes per partition and state (powered-down nodes excluded)."
    echo "# TYPE slurm_queue_nodes gauge"
    echo "# HELP slurm_down_nodes Slurm nodes down, drained or failing."
    echo "# TYPE slurm_down_nodes gauge"
    echo "# HELP slurm_spot_interrupted_nodes Spot nodes Slurm holds down for an interruption."
    echo "# TYPE slurm_spot_interrupted_nodes gauge"
    printf '%s\n' "${prom[@]}"
  } >"${TEXTFILE_DIR}/slurm.prom.tmp"
  mv "${TEXTFILE_DIR}/slurm.prom.tmp" "${TEXTFILE_DIR}/slurm.prom"
fi

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
