#!/usr/bin/env bash
# maas-py: `pip install ./maas-py` into a fresh virtualenv exactly as the README
# tells users to (maturin's PEP 517 backend, build isolation and all), check the
# type stubs against the extension with mypy's stubtest, run pytest.
# MATURIN_PEP517_ARGS picks cargo's dev profile so the test reuses the debug
# build the Rust tests made; users get maturin's default (release) profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip=("$work/venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" pytest mypy pyyaml pyghmi python-simplestreams
MATURIN_PEP517_ARGS="${MATURIN_PEP517_ARGS:---profile dev}" "${pip[@]}" ./maas-py
"$work/venv/bin/python" -c 'import maas_rs; print("maas_rs", maas_rs.__version__, "from", maas_rs.__file__)'
"$work/venv/bin/python" -m mypy.stubtest maas_rs._native
cd maas-py
"$work/venv/bin/python" -m pytest -q tests
