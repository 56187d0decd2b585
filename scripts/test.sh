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
# Every maasd a test starts (also outside the e2e harness, e.g. maas-py's
# tests) skips the automatic image import and MAAS's default boot source
# (images.maas.io): tests reach only loopback and their own namespaces.
export MAAS_IMAGES_AUTO_IMPORT=false MAAS_IMAGES_DEFAULT_SOURCE=false

step "cargo fmt --check"
cargo fmt --all -- --check

step "maas-core stays pure (no async runtime, database or web crate)"
if cargo tree -p maas-core -e normal --prefix none --locked | grep -E '^(tokio|diesel|axum|hyper|reqwest|pyo3|sqlx|mio) ' ; then
  echo "maas-core must not depend on the crates above" >&2
  exit 1
fi

# Clippy lints while the workspace compiles for real: clippy-driver wraps rustc
# for workspace crates only (what `cargo clippy` does, but with codegen), so every
# target (lib, bins, tests, examples, benches) is linted with -D warnings in the
# same pass that builds what the tests run, and the ~500 dependencies are compiled
# once instead of once in check mode and again for the tests (minutes saved on a
# cold 2-core machine). The variables stay exported so every later cargo call
# (nextest, doc tests, maturin) reuses these artefacts.
step "cargo build --all-targets, linted by clippy -D warnings (binaries the black-box tests run)"
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo build --workspace --all-targets --locked

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
