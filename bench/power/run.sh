#!/usr/bin/env bash
# Power benchmark: query 1,000 BMCs concurrently.
#   - native IPMI (maas-power) vs ipmitool processes (as MAAS/Ironic drive
#     BMCs), against the same 1,000 in-process simulated BMCs, then both
#     against one OpenIPMI ipmi_sim;
#   - native Redfish against 1,000 in-process Redfish endpoints.
# Needs: ipmitool, openipmi (scripts/deps/power.apt). Env: BMCS (default
# 1000), IPMITOOL_CONCURRENCY (default 64 processes in flight).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p maas-power --example power_bench >&2
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uname -r), ipmitool $(ipmitool -V | awk '{print $3}')"
"$CARGO_TARGET_DIR/release/examples/power_bench"
