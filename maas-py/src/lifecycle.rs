//! Statuses, the transition table, actions and reported events.

use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::{depythonize, pythonize};

use maas_core::actions::{self, Action, Actor};
use maas_core::lifecycle::{self, ExportFormat};
use maas_core::signals::{self, Event};
use maas_core::{Clock, LifecycleConfig, Machine, NodeStatus, SystemClock, Timestamp};

use crate::errors::{bad_input, refusal};

fn status(n: i64) -> PyResult<NodeStatus> {
    NodeStatus::from_int(n).ok_or_else(|| bad_input("node status", n))
}

fn now_or(now: Option<f64>) -> Timestamp {
    match now {
        Some(s) => Timestamp((s * 1000.0) as i64),
        None => SystemClock.now(),
    }
}

pub(crate) fn machine(obj: &Bound<'_, PyAny>) -> PyResult<Machine> {
    depythonize(obj).map_err(|e| bad_input("machine", e))
}

fn config(obj: Option<&Bound<'_, PyAny>>) -> PyResult<LifecycleConfig> {
    let mut cfg = LifecycleConfig::default();
    if let Some(o) = obj {
        let d: std::collections::HashMap<String, serde_json::Value> =
            depythonize(o).map_err(|e| bad_input("config", e))?;
        for (k, v) in d {
            match (k.as_str(), &v) {
                ("node_timeout", serde_json::Value::Number(n)) => {
                    cfg.node_timeout =
                        std::time::Duration::from_secs_f64(n.as_f64().unwrap_or(1800.0));
                }
                ("enable_disk_erasing_on_release", serde_json::Value::Bool(b)) => {
                    cfg.enable_disk_erasing_on_release = *b
                }
                ("disk_erase_with_secure_erase", serde_json::Value::Bool(b)) => {
                    cfg.disk_erase_with_secure_erase = *b
                }
                ("disk_erase_with_quick_erase", serde_json::Value::Bool(b)) => {
                    cfg.disk_erase_with_quick_erase = *b
                }
                ("default_osystem", serde_json::Value::String(s)) => {
                    cfg.default_osystem = s.clone()
                }
                ("default_distro_series", serde_json::Value::String(s)) => {
                    cfg.default_distro_series = s.clone()
                }
                _ => {
                    return Err(bad_input(
                        "config",
                        format!("unknown or mistyped key {k:?}"),
                    ));
                }
            }
        }
    }
    Ok(cfg)
}

/// `[(value, name, label, simple_label)]` for every MAAS node status.
#[pyfunction]
fn node_statuses() -> Vec<(u8, &'static str, &'static str, &'static str)> {
    NodeStatus::ALL
        .iter()
        .map(|s| (s.as_int(), s.name(), s.label(), s.simple().label()))
        .collect()
}

/// The statuses `status` may move to (names), MAAS's `NODE_TRANSITIONS`.
#[pyfunction]
fn allowed_targets(status: i64) -> PyResult<Vec<&'static str>> {
    Ok(lifecycle::allowed_targets(self::status(status)?)
        .iter()
        .map(|s| s.name())
        .collect())
}

/// Whether `from_status → to_status` is allowed (same → same always is).
#[pyfunction]
fn can_transition(from_status: i64, to_status: i64) -> PyResult<bool> {
    Ok(lifecycle::can_transition(
        status(from_status)?,
        status(to_status)?,
    ))
}

/// The failed status an operation in progress falls into, or None.
#[pyfunction]
fn failure_status(status: i64) -> PyResult<Option<u8>> {
    Ok(lifecycle::failure_status(self::status(status)?).map(NodeStatus::as_int))
}

/// The transition table as text: `table`, `markdown`, `json`, `mermaid` or `dot`.
#[pyfunction]
#[pyo3(signature = (format = "json"))]
fn export_transitions(format: &str) -> PyResult<String> {
    let f: ExportFormat = format.parse().map_err(|e: String| bad_input("format", e))?;
    Ok(lifecycle::export(f))
}

/// The boot purpose for a netbooting machine (None = unknown MAC).
#[pyfunction]
#[pyo3(signature = (machine = None))]
fn boot_purpose(machine: Option<&Bound<'_, PyAny>>) -> PyResult<&'static str> {
    let m = machine.map(self::machine).transpose()?;
    Ok(maas_core::boot_purpose(m.as_ref()).as_str())
}

/// Applies a user action; returns the outcome as a dict with `status`,
/// `via`, `effects`, `event` and the updated `machine`.
#[pyfunction]
#[pyo3(signature = (machine, actor, action, params = None, now = None, config = None))]
fn apply<'py>(
    py: Python<'py>,
    machine: &Bound<'py, PyAny>,
    actor: &Bound<'py, PyAny>,
    action: &str,
    params: Option<&Bound<'py, PyAny>>,
    now: Option<f64>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = self::machine(machine)?;
    let actor: Actor = depythonize(actor).map_err(|e| bad_input("actor", e))?;
    let mut obj = match params {
        Some(p) => depythonize::<serde_json::Value>(p).map_err(|e| bad_input("params", e))?,
        None => serde_json::json!({}),
    };
    let serde_json::Value::Object(map) = &mut obj else {
        return Err(bad_input("params", "expected a dict"));
    };
    map.insert(
        "action".into(),
        serde_json::Value::String(action.to_owned()),
    );
    let action: Action = serde_json::from_value(obj).map_err(|e| bad_input("action", e))?;
    let cfg = self::config(config)?;
    let out = actions::apply(&m, &actor, &action, now_or(now), &cfg).map_err(refusal)?;
    outcome(py, m, out)
}

fn outcome<'py>(
    py: Python<'py>,
    mut m: Machine,
    out: maas_core::Outcome,
) -> PyResult<Bound<'py, PyAny>> {
    out.apply_to(&mut m);
    let v = serde_json::json!({
        "status": out.status,
        "via": out.via,
        "effects": out.effects,
        "event": out.event,
        "machine": m,
    });
    pythonize(py, &v).map_err(|e| bad_input("outcome", e))
}

/// Turns a report (signal, webhook finish, user-data fetch, power
/// observation, deadline) into a transition; same result shape as `apply`.
#[pyfunction]
#[pyo3(signature = (machine, event, now = None, config = None))]
fn handle_event<'py>(
    py: Python<'py>,
    machine: &Bound<'py, PyAny>,
    event: &Bound<'py, PyAny>,
    now: Option<f64>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = self::machine(machine)?;
    let ev: Event = depythonize(event).map_err(|e| bad_input("event", e))?;
    let cfg = self::config(config)?;
    let out = signals::handle(&m, &ev, now_or(now), &cfg).map_err(refusal)?;
    outcome(py, m, out)
}

/// A new machine record: NEW, or DEPLOYED owned by its creator with `deployed=True`.
#[pyfunction]
#[pyo3(signature = (machine, creator, deployed = false))]
fn create_machine<'py>(
    py: Python<'py>,
    machine: &Bound<'py, PyAny>,
    creator: &Bound<'py, PyAny>,
    deployed: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let m = self::machine(machine)?;
    let creator: Actor = depythonize(creator).map_err(|e| bad_input("actor", e))?;
    let m = actions::create(m, &creator, deployed).map_err(refusal)?;
    pythonize(py, &m).map_err(|e| bad_input("machine", e))
}

/// A new random MAAS system id (six characters, base 24).
#[pyfunction]
fn generate_system_id() -> String {
    maas_core::SystemId::generate(&mut rand::rng()).to_string()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(node_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(allowed_targets, m)?)?;
    m.add_function(wrap_pyfunction!(can_transition, m)?)?;
    m.add_function(wrap_pyfunction!(failure_status, m)?)?;
    m.add_function(wrap_pyfunction!(export_transitions, m)?)?;
    m.add_function(wrap_pyfunction!(boot_purpose, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(handle_event, m)?)?;
    m.add_function(wrap_pyfunction!(create_machine, m)?)?;
    m.add_function(wrap_pyfunction!(generate_system_id, m)?)?;
    Ok(())
}
