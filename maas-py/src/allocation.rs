//! Allocation constraints and cloning.

use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::{depythonize, pythonize};

use maas_core::Machine;
use maas_core::clone::{self, CloneOptions};
use maas_core::constraints::{self, Constraints};

use crate::errors::{CloneError, ConstraintError, bad_input};
use crate::lifecycle::machine;

/// Parses allocate parameters (a dict, values may be lists, or a list of
/// `(key, value)` pairs) into MAAS's constraint filter, as a dict.
fn parse(params: &Bound<'_, PyAny>) -> PyResult<Constraints> {
    let pairs: Vec<(String, String)> =
        if let Ok(list) = depythonize::<Vec<(String, String)>>(params) {
            list
        } else {
            let map: std::collections::BTreeMap<String, serde_json::Value> =
                depythonize(params).map_err(|e| bad_input("constraints", e))?;
            let mut out = Vec::new();
            for (k, v) in map {
                let values = match v {
                    serde_json::Value::Array(a) => a,
                    other => vec![other],
                };
                for v in values {
                    let s = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => continue,
                        other => other.to_string(),
                    };
                    out.push((k.clone(), s));
                }
            }
            out
        };
    Constraints::parse(&pairs).map_err(|e| {
        let body = serde_json::to_string(&e).unwrap_or_else(|_| e.to_string());
        ConstraintError::new_err(body)
    })
}

/// Parses allocate parameters; raises `ConstraintError` (its message is
/// MAAS's JSON error body) on unknown or malformed constraints.
#[pyfunction]
fn parse_constraints<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = parse(params)?;
    pythonize(py, &c).map_err(|e| bad_input("constraints", e))
}

/// Whether `machine` satisfies the constraints: None, or the
/// `constraints_by_type` dict of matched storage and interfaces.
#[pyfunction]
fn match_constraints<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
    machine: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let c = parse(params)?;
    let m = self::machine(machine)?;
    c.matches(&m)
        .map(|by| pythonize(py, &by).map_err(|e| bad_input("result", e)))
        .transpose()
}

/// Picks the cheapest Ready, unowned machine matching the constraints:
/// `(system_id, constraints_by_type)`, or None (MAAS answers 409).
#[pyfunction]
fn allocate<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
    machines: Vec<Bound<'py, PyAny>>,
) -> PyResult<Option<(String, Bound<'py, PyAny>)>> {
    let c = parse(params)?;
    let fleet: Vec<Machine> = machines.iter().map(machine).collect::<PyResult<_>>()?;
    match constraints::allocate(&c, &fleet) {
        Some((m, by)) => Ok(Some((
            m.system_id.to_string(),
            pythonize(py, &by).map_err(|e| bad_input("result", e))?,
        ))),
        None => Ok(None),
    }
}

/// Plans cloning `source`'s storage and/or interfaces onto `destinations`:
/// a list of `{system_id, storage: [(src, dst)], interfaces: [(name, id)]}`;
/// raises `CloneError` whose message is MAAS's JSON error body.
#[pyfunction]
#[pyo3(signature = (source, destinations, storage = true, interfaces = true))]
fn plan_clone<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    destinations: Vec<Bound<'py, PyAny>>,
    storage: bool,
    interfaces: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let src = machine(source)?;
    let dests: Vec<Machine> = destinations.iter().map(machine).collect::<PyResult<_>>()?;
    let refs: Vec<&Machine> = dests.iter().collect();
    let plans = clone::plan(
        &src,
        &refs,
        CloneOptions {
            storage,
            interfaces,
        },
    )
    .map_err(|e| {
        CloneError::new_err(serde_json::to_string(&e).unwrap_or_else(|_| e.to_string()))
    })?;
    pythonize(py, &plans).map_err(|e| bad_input("plan", e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_constraints, m)?)?;
    m.add_function(wrap_pyfunction!(match_constraints, m)?)?;
    m.add_function(wrap_pyfunction!(allocate, m)?)?;
    m.add_function(wrap_pyfunction!(plan_clone, m)?)?;
    Ok(())
}
