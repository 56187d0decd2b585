//! Power drivers: schemas, validation and actions through MAAS's retry
//! policy (or a single attempt), with the GIL released while the BMC talks.

use std::collections::BTreeMap;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::pythonize;

use maas_power::{
    OffMode, PolicyConfig, PowerAction, PowerManager, PowerParams, PowerTarget, Registry,
};

use crate::errors::{PowerError, bad_input};
use crate::runtime::block_on;

fn power_err(e: maas_power::Error) -> PyErr {
    let fatal = e.is_fatal();
    let err = PowerError::new_err(e.to_string());
    Python::with_gil(|py| {
        let _ = err.value(py).setattr("fatal", fatal);
    });
    err
}

fn registry() -> PyResult<Registry> {
    Registry::with_builtin().map_err(power_err)
}

fn params(p: BTreeMap<String, String>) -> PowerParams {
    let mut out = PowerParams::new();
    for (k, v) in p {
        out.insert(k, v);
    }
    out
}

/// Every power type with its description, capabilities and parameter
/// schema (names as in MAAS's API).
#[pyfunction]
fn power_types<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let reg = registry()?;
    let mut out = Vec::new();
    for pt in reg.power_types() {
        let d = reg.get(pt).map_err(power_err)?;
        let caps = d.capabilities();
        out.push(serde_json::json!({
            "power_type": pt,
            "description": d.description(),
            "queryable": caps.queryable,
            "can_set_boot_order": caps.can_set_boot_order,
            "params": d.schema(),
        }));
    }
    pythonize(py, &out).map_err(|e| bad_input("schema", e))
}

/// Checks `params` against the power type's schema; raises `PowerError`.
#[pyfunction]
fn validate_power_parameters(power_type: &str, params: BTreeMap<String, String>) -> PyResult<()> {
    registry()?
        .validate(power_type, &self::params(params))
        .map_err(power_err)
}

/// Performs `action` (`on`, `off`, `cycle`, `query`, `set_boot_pxe`) on a
/// BMC and returns the power state (`on`, `off`, `unknown`). With
/// `retry=True` (the default) it goes through MAAS's policy: retries after
/// 1, 2, 2, 4, 6, 8, 12 s, confirmation by query, no retry on fatal errors.
/// Raises `PowerError` (its `fatal` attribute tells bad credentials or
/// settings from a BMC that did not answer).
#[pyfunction]
#[pyo3(signature = (power_type, params, action, stop_mode = "hard", retry = true, timeout = 30.0))]
fn power(
    py: Python<'_>,
    power_type: &str,
    params: BTreeMap<String, String>,
    action: &str,
    stop_mode: &str,
    retry: bool,
    timeout: f64,
) -> PyResult<String> {
    let mode = match stop_mode {
        "hard" => OffMode::Hard,
        "soft" => OffMode::Soft,
        other => return Err(bad_input("stop_mode", format!("{other:?} (soft or hard)"))),
    };
    let action = match action {
        "on" => PowerAction::On,
        "off" => PowerAction::Off(mode),
        "cycle" => PowerAction::Cycle,
        "query" => PowerAction::Query,
        "set_boot_pxe" => PowerAction::SetBootPxe,
        other => {
            return Err(bad_input(
                "action",
                format!("{other:?} (on, off, cycle, query, set_boot_pxe)"),
            ));
        }
    };
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(bad_input("timeout", "must be a positive number of seconds"));
    }
    let config = PolicyConfig {
        retry_waits: if retry {
            PolicyConfig::default().retry_waits
        } else {
            vec![Duration::ZERO]
        },
        call_timeout: Duration::from_secs_f64(timeout),
        ..PolicyConfig::default()
    };
    let manager = PowerManager::new(registry()?, config);
    let target = PowerTarget::new(self::params(params));
    let state = block_on(py, move || async move {
        manager.perform(power_type, &target, action).await
    })
    .map_err(power_err)?;
    Ok(state.as_str().to_owned())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(power_types, m)?)?;
    m.add_function(wrap_pyfunction!(validate_power_parameters, m)?)?;
    m.add_function(wrap_pyfunction!(power, m)?)?;
    Ok(())
}
