//! The Python exception hierarchy and the conversions into it.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    maas_rs,
    MaasError,
    PyException,
    "Base class of every maas-rs error."
);
create_exception!(
    maas_rs,
    InvalidTransition,
    MaasError,
    "The machine's status does not allow this (MAAS answers 409)."
);
create_exception!(
    maas_rs,
    Forbidden,
    MaasError,
    "The actor may not do this, or the machine is locked (403)."
);
create_exception!(
    maas_rs,
    BadParameter,
    MaasError,
    "A parameter is wrong (400)."
);
create_exception!(
    maas_rs,
    ConstraintError,
    BadParameter,
    "An allocation constraint is malformed or unknown (400)."
);
create_exception!(
    maas_rs,
    CloneError,
    BadParameter,
    "A clone request cannot be carried out (400)."
);

create_exception!(
    maas_rs,
    RenderError,
    BadParameter,
    "A storage layout, network or deploy configuration cannot be built or rendered (400)."
);
create_exception!(
    maas_rs,
    VerificationError,
    MaasError,
    "A signature, digest or size check failed, or a stream is malformed."
);
create_exception!(maas_rs, PowerError, MaasError, "A BMC could not be driven.");

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MaasError", py.get_type::<MaasError>())?;
    m.add("InvalidTransition", py.get_type::<InvalidTransition>())?;
    m.add("Forbidden", py.get_type::<Forbidden>())?;
    m.add("BadParameter", py.get_type::<BadParameter>())?;
    m.add("ConstraintError", py.get_type::<ConstraintError>())?;
    m.add("CloneError", py.get_type::<CloneError>())?;
    m.add("RenderError", py.get_type::<RenderError>())?;
    m.add("VerificationError", py.get_type::<VerificationError>())?;
    m.add("PowerError", py.get_type::<PowerError>())?;
    // The HTTP status MAAS answers with, inherited by subclasses.
    py.get_type::<MaasError>().setattr("http_status", 500)?;
    py.get_type::<InvalidTransition>()
        .setattr("http_status", 409)?;
    py.get_type::<Forbidden>().setattr("http_status", 403)?;
    py.get_type::<BadParameter>().setattr("http_status", 400)?;
    Ok(())
}

/// A life-cycle refusal as the matching Python exception.
pub(crate) fn refusal(r: maas_core::Refusal) -> PyErr {
    let msg = r.to_string();
    match r {
        maas_core::Refusal::BadRequest { .. } => BadParameter::new_err(msg),
        maas_core::Refusal::Forbidden(_) => Forbidden::new_err(msg),
        maas_core::Refusal::Conflict(_) => InvalidTransition::new_err(msg),
    }
}

/// A value that did not convert from Python.
pub(crate) fn bad_input(what: &str, e: impl std::fmt::Display) -> PyErr {
    BadParameter::new_err(format!("invalid {what}: {e}"))
}
