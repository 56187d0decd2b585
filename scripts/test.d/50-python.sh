#!/usr/bin/env bash
# maas-py: build the wheel with maturin, install it into a fresh virtualenv,
# check the type stubs against the extension with mypy's stubtest, run pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
base_venv="${MAAS_RS_VENV:?run through scripts/test.sh}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$base_venv/bin/maturin" build --manifest-path maas-py/Cargo.toml --out "$work/dist" --quiet >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$work"/dist/*.whl pytest mypy pyyaml pyghmi python-simplestreams
"$work/venv/bin/python" -m mypy.stubtest maas_rs._native
cd maas-py
"$work/venv/bin/python" -m pytest -q tests
