//! # maas-py: Python bindings for maas-rs
//!
//! A thin pyo3 adapter: it converts types and errors and nothing else; the
//! logic lives in the Rust crates. Built by maturin as `maas_rs._native`,
//! wrapped by the pure-Python package `maas_rs`. Values cross the boundary
//! as plain Python dicts and lists (through `pythonize`), so a machine is
//! `{"system_id": "…", "status": 4, "cpu_count": 8, …}` with absent fields
//! taking their defaults.
#![warn(missing_docs)]
// pyo3's macros expand to code the workspace's `unsafe_code = "deny"` rejects.
#![allow(unsafe_code)]

use pyo3::prelude::*;

mod allocation;
mod boot;
mod deploy;
mod errors;
mod images;
mod lifecycle;
mod power;
mod runtime;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    lifecycle::register(m)?;
    allocation::register(m)?;
    deploy::register(m)?;
    boot::register(m)?;
    images::register(m)?;
    power::register(m)?;
    Ok(())
}
