#!/usr/bin/env bash
# Netboot lab timings, one run, peers side by side:
#   - `lab up` / `lab down` wall time (namespace, libvirtd, BMC emulators, VMs);
#   - power on → libvirt says running, through each BMC: maas-power (release
#     build of examples/power) vs ipmitool (IPMI, virtualbmc) and curl (Redfish,
#     sushy-emulator) on the same VM; median of N runs, ratio reported;
#   - the image build (cold, from the cache's `timings`) and the MAAS scenario
#     under maasd (tests/tests/lab/scenario.rs): wall time per phase and each
#     VM's console timeline (power-on request → iPXE → maasd's ipxe.cfg →
#     kernel → the environment's DHCP → first signal / install → disk boot →
#     cloud-init), from the test's output.
# usage: [BENCH_SCENARIO=0] bench/lab/run.sh [N]   (root; an otherwise idle machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
N=${1:-5}
VENV=$(scripts/venv-path.sh)
export MAAS_RS_VENV=$VENV PATH=$VENV/bin:$PATH
command -v ipmitool >/dev/null || { echo "ipmitool missing (Debian: ipmitool)" >&2; exit 1; }
# A debug build: what is measured is BMC and libvirt latency, not our CPU time
# (a release build of the workspace costs minutes on this machine).
cargo build -q -p maas-examples --example power
POWER=$CARGO_TARGET_DIR/debug/examples/power

export LAB_DIR=$(mktemp -d /tmp/maas-rs-lab-bench.XXXXXX) LAB_NAME=mrlbench LAB_VMS=2 LAB_SKIP_INSTALL=1
trap 'tests/lab/lab down >/dev/null 2>&1 || true; rm -rf "$LAB_DIR"' EXIT
now() { date +%s.%N; }
t0=$(now); tests/lab/lab up 2>/dev/null; t_up=$(echo "$(now) - $t0" | bc)
. "$LAB_DIR/lab.env"
URI=$LAB_LIBVIRT_URI
state() { virsh -c "$URI" domstate "$1" 2>/dev/null | head -n 1; }
wait_state() { while [[ $(state "$1") != "$2" ]]; do sleep 0.01; done; }
off() { virsh -c "$URI" destroy "$1" >/dev/null 2>&1 || true; wait_state "$1" "shut off"; }

# on_time NAME CMD...: "A B": A = seconds from the command's start until libvirt
# reports the domain running (the BMC acted), B = until the command returned
# (ours then waits MAAS's first retry interval, 1 s, and confirms by a query;
# the peers return without confirming).
on_time() {
  local name=$1; shift
  off "$name"
  local s a; s=$(now)
  "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_state "$name" running
  a=$(echo "$(now) - $s" | bc)
  wait "$pid"
  echo "$a,$(echo "$(now) - $s" | bc)"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

RF="power_address=$LAB_REDFISH_URL power_user=$LAB_BMC_USER power_pass=$LAB_BMC_PASS node_id=$LAB_VM1_UUID"
IP="power_driver=LAN_2_0 power_address=127.0.0.1:$LAB_VM2_IPMI_PORT power_user=$LAB_BMC_USER power_pass=$LAB_BMC_PASS cipher_suite_id=3 privilege_level=ADMIN"
declare -A R=()
for i in $(seq "$N"); do
  R[rf_ours]+="$(on_time "$LAB_VM1_NAME" $POWER redfish on $RF) "
  R[rf_curl]+="$(on_time "$LAB_VM1_NAME" curl -fsS -u "$LAB_BMC_USER:$LAB_BMC_PASS" -H 'Content-Type: application/json' \
      -d '{"ResetType": "On"}' "$LAB_REDFISH_URL/redfish/v1/Systems/$LAB_VM1_UUID/Actions/ComputerSystem.Reset") "
  R[ipmi_ours]+="$(on_time "$LAB_VM2_NAME" $POWER ipmi on $IP) "
  R[ipmi_tool]+="$(on_time "$LAB_VM2_NAME" ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$LAB_VM2_IPMI_PORT" \
      -U "$LAB_BMC_USER" -P "$LAB_BMC_PASS" chassis power on) "
done
off "$LAB_VM1_NAME"; off "$LAB_VM2_NAME"
t0=$(now); tests/lab/lab down 2>/dev/null; t_down=$(echo "$(now) - $t0" | bc)
trap 'rm -rf "$LAB_DIR"' EXIT

m() { tr ' ' '\n' <<<"${R[$1]}" | grep . | cut -d, -f1 | median; }   # BMC acted
c() { tr ' ' '\n' <<<"${R[$1]}" | grep . | cut -d, -f2 | median; }   # command returned
echo "load average at start of report: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo
echo "| step | maas-rs | peer | peer figure | ratio (peer / maas-rs) |"
echo "|---|---:|---|---:|---:|"
printf '| lab up (netns, libvirtd, sushy-emulator, vbmcd, 2 VMs) | %.2f s | | | |\n' "$t_up"
printf '| lab down | %.2f s | | | |\n' "$t_down"
printf '| Redfish power on → libvirt running (median of %s) | %.3f s | curl POST Reset | %.3f s | %.2f |\n' \
  "$N" "$(m rf_ours)" "$(m rf_curl)" "$(echo "$(m rf_curl) / $(m rf_ours)" | bc -l)"
printf '| Redfish power on, command returned (ours: + 1 s wait + confirming query) | %.3f s | curl | %.3f s | %.2f |\n' \
  "$(c rf_ours)" "$(c rf_curl)" "$(echo "$(c rf_curl) / $(c rf_ours)" | bc -l)"
printf '| IPMI power on → libvirt running (median of %s) | %.3f s | ipmitool -C 3 | %.3f s | %.2f |\n' \
  "$N" "$(m ipmi_ours)" "$(m ipmi_tool)" "$(echo "$(m ipmi_tool) / $(m ipmi_ours)" | bc -l)"
printf '| IPMI power on, command returned (ours: + 1 s wait + confirming query) | %.3f s | ipmitool | %.3f s | %.2f |\n' \
  "$(c ipmi_ours)" "$(c ipmi_tool)" "$(echo "$(c ipmi_tool) / $(c ipmi_ours)" | bc -l)"

echo
echo "Image build (cold, seconds per step, from the cache):"
out=$(bash tests/lab/build-images.sh 2>/dev/null | tail -n 1)
cat "$out/timings" 2>/dev/null || echo "(cached before timings were recorded)"
du -sh "$out"/mirror/*/amd64/*/generic/boot-kernel "$out"/mirror/*/amd64/*/generic/boot-initrd \
  "$out"/mirror/*/amd64/*/squashfs "$out"/mirror/*/amd64/*/root-tgz 2>/dev/null | sed 's|'"$out"'/mirror/||'

[[ ${BENCH_SCENARIO:-1} == 1 ]] || exit 0
echo
echo "The MAAS scenario under maasd (TCG, 1 vCPU, 512 MiB per VM):"
cargo nextest run -q -p maas-e2e --test lab --no-capture -E 'test(maas_scenario)' 2>&1 |
  grep -E '^scenario|^  [a-z+ ]+ vm[12]:|^\| ' || true
