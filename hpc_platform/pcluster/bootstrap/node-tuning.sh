#!/bin/bash
# Node tuning (OnNodeConfigured, every compute node): kernel and Lustre client settings for
# tightly coupled MPI jobs. Idempotent; settings persist across reboots.
set -euo pipefail

# Kernel: no NUMA zone reclaim, big socket buffers for 100 Gbps, fewer swaps.
cat >/etc/sysctl.d/90-hpc-platform.conf <<'SYSCTL'
vm.zone_reclaim_mode = 0
vm.swappiness = 10
net.core.rmem_max = 67108864
net.core.wmem_max = 67108864
net.ipv4.tcp_rmem = 4096 87380 67108864
net.ipv4.tcp_wmem = 4096 65536 67108864
net.core.netdev_max_backlog = 250000
kernel.numa_balancing = 0
SYSCTL
sysctl --system >/dev/null

# Transparent huge pages only where codes ask for them (madvise), not everywhere.
if [[ -w /sys/kernel/mm/transparent_hugepage/enabled ]]; then
  echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
fi

# EFA registers memory: jobs need unlimited locked memory.
cat >/etc/security/limits.d/90-hpc-platform.conf <<'LIMITS'
*    soft    memlock    unlimited
*    hard    memlock    unlimited
*    soft    nofile     65536
*    hard    nofile     65536
LIMITS

# Lustre client: more RPCs in flight and larger dirty caches per OSC for streaming I/O.
if command -v lctl >/dev/null 2>&1; then
  lctl set_param -P osc.*.max_rpcs_in_flight=32 2>/dev/null \
    || lctl set_param osc.*.max_rpcs_in_flight=32 >/dev/null 2>&1 || true
  lctl set_param osc.*.max_dirty_mb=512 >/dev/null 2>&1 || true
  lctl set_param llite.*.max_read_ahead_mb=1024 >/dev/null 2>&1 || true
fi

# Jumbo frames inside the VPC: report (not fail) when the primary interface is below 9001.
primary="$(ip route show default 2>/dev/null | awk '{print $5; exit}')"
if [[ -n "${primary}" ]]; then
  mtu="$(cat "/sys/class/net/${primary}/mtu" 2>/dev/null || echo 0)"
  if (( mtu < 9001 )); then
    echo "node-tuning: ${primary} MTU is ${mtu}, expected 9001 inside the VPC" >&2
  fi
fi
echo "node-tuning: done"
