#!/bin/bash
# EFA check (OnNodeConfigured, EFA queues). Fails the node's bootstrap when the EFA provider is
# missing, so ParallelCluster replaces the node instead of letting MPI jobs fall back to TCP.
#   $1  expected minimum number of EFA devices (default 1)
set -euo pipefail

expected="${1:-1}"
fi_info_bin="$(command -v fi_info || true)"
if [[ -z "${fi_info_bin}" && -x /opt/amazon/efa/bin/fi_info ]]; then
  fi_info_bin=/opt/amazon/efa/bin/fi_info
fi
if [[ -z "${fi_info_bin}" ]]; then
  echo "efa-check: fi_info not found; the EFA software (libfabric) is not installed" >&2
  exit 1
fi

if ! output="$("${fi_info_bin}" -p efa -t FI_EP_RDM 2>&1)"; then
  echo "efa-check: 'fi_info -p efa' found no EFA provider: ${output}" >&2
  exit 1
fi

devices="$(grep -cE '^[[:space:]]*provider: efa' <<<"${output}" || true)"
domains="$({ grep -oE 'domain: [^[:space:]]+' <<<"${output}" || true; } | sort -u | wc -l)"
if (( domains < expected )); then
  echo "efa-check: ${domains} EFA device(s) visible, expected at least ${expected}" >&2
  exit 1
fi
echo "efa-check: EFA provider ok (${devices} endpoint(s), ${domains} device(s))"
