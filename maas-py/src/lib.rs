//! # maas-py: Python bindings for maas-rs
//!
//! A thin pyo3 adapter: it converts types and errors and nothing else; the
//! logic lives in the Rust crates. Built by maturin as `maas_rs._native`,
//! wrapped by the pure-Python package `maas_rs`.
#![warn(missing_docs)]
// pyo3's macros expand to code the workspace's `unsafe_code = "deny"` rejects.
#![allow(unsafe_code)]

use pyo3::prelude::*;

/// `[(value, name, label)]` for every MAAS node status, in integer order.
#[pyfunction]
fn node_statuses() -> Vec<(u8, &'static str, &'static str)> {
    maas_core::NodeStatus::ALL
        .iter()
        .map(|s| (s.as_int(), s.name(), s.label()))
        .collect()
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(node_statuses, m)?)?;
    Ok(())
}
