//! Runnable examples live in `examples/examples/`; run one with
//! `cargo run -p maas-examples --example <name>`.
