#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests
# need, then runs formatting, lints and every test, including those that need
# root, network namespaces, QEMU, PostgreSQL or real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { echo; echo "=== $* ($(date +%T))"; }

step "install test dependencies"
MAAS_RS_VENV=$(scripts/install-deps.sh | tail -n 1)
export MAAS_RS_VENV
export PATH="$MAAS_RS_VENV/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check

step "maas-core stays pure (no async runtime, database or web crate)"
if cargo tree -p maas-core -e normal --prefix none --locked | grep -E '^(tokio|diesel|axum|hyper|reqwest|pyo3|sqlx|mio) ' ; then
  echo "maas-core must not depend on the crates above" >&2
  exit 1
fi

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (binaries the black-box tests run)"
cargo build --workspace --bins --locked

step "cargo nextest (unit, integration and black-box tests)"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --doc --locked

# Suites that are not cargo tests (Python bindings, real-peer scripts), one
# file per area; each exits non-zero on failure.
for t in scripts/test.d/*.sh; do
  step "$t"
  bash "$t"
done
step "all tests passed"
