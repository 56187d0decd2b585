#!/usr/bin/env bash
# Deploy configuration benchmark: render the curtin config of a 24-disk,
# 8-NIC machine with maas-core (criterion), and, side by side in the same
# run, serialise the very same config with PyYAML's safe_dump — the last
# step MAAS's Python generator performs (CurtinStorageGenerator / the curtin
# preseed composer end in yaml.safe_dump) — pure-Python and libyaml (C).
# MAAS itself (Django + PostgreSQL) does not run here, so PyYAML's dump is
# a lower bound for MAAS's cost, not MAAS's full cost.
# Usage: bench/deploycfg/run.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

MAAS_BENCH_DUMP="$out/config.json" cargo bench -p maas-core --bench render -- \
  --warm-up-time 1 --measurement-time 3 2>/dev/null | tee "$out/criterion.txt" | grep -E "^[a-z].*|time:"

ours_us=$(grep -A1 "^curtin_config 24 disks 8 nics" "$out/criterion.txt" | grep -o 'time: *\[[^]]*\]' \
  | awk '{ v=$4; u=$5; if (u=="ns") v/=1000; if (u=="ms") v*=1000; print v }')

/usr/bin/python3 - "$out/config.json" "$ours_us" <<'PY'
import json, sys, timeit, yaml
cfg = json.load(open(sys.argv[1]))
ours = float(sys.argv[2])
def best(stmt, n):
    return min(timeit.repeat(stmt, number=n, repeat=5)) / n * 1e6
py = best(lambda: yaml.safe_dump(cfg), 50)
print(f"maas-core curtin_config (render + YAML): {ours:9.1f} us")
print(f"PyYAML safe_dump only (pure Python):     {py:9.1f} us   ratio {py/ours:6.1f}x")
if hasattr(yaml, "CSafeDumper"):
    c = best(lambda: yaml.dump(cfg, Dumper=yaml.CSafeDumper), 200)
    print(f"PyYAML dump only (libyaml CSafeDumper):  {c:9.1f} us   ratio {c/ours:6.1f}x")
print(f"config: {len(cfg['storage']['config'])} storage actions, "
      f"{sum(len(v) for k, v in cfg['network'].items() if isinstance(v, dict))} network interfaces")
PY
