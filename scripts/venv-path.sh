#!/usr/bin/env bash
# Prints the path of the test virtualenv (outside the checkout, so a clean
# clone on the same machine reuses it; created by scripts/install-deps.sh).
echo "${MAAS_RS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/maas-rs/venv}"
