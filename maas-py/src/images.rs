//! Simplestreams: verify and parse documents, sync a source into a store.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::{depythonize, pythonize};
use tokio_util::sync::CancellationToken;

use maas_images::sync::Progress;
use maas_images::{BootSource, Importer, Keyring, Store, SyncOptions, Verification, simplestreams};

use crate::errors::{VerificationError, bad_input};
use crate::runtime::block_on;

fn images_err(e: maas_images::Error) -> PyErr {
    VerificationError::new_err(e.to_string())
}

fn verification(keyring: Option<&[u8]>) -> PyResult<Verification> {
    match keyring {
        Some(k) => Ok(Verification::Keyring(Arc::new(
            Keyring::from_bytes(k).map_err(images_err)?,
        ))),
        None => Ok(Verification::Skip),
    }
}

/// Verifies an inline-signed (clearsigned) document against an OpenPGP
/// keyring (binary or armoured) and returns the signed content. With
/// `keyring=None` the document is accepted unsigned, as MAAS's
/// `skip_keyring_verification`. Raises `VerificationError`.
#[pyfunction]
#[pyo3(signature = (data, keyring, name = "document"))]
fn verify_signed<'py>(
    py: Python<'py>,
    data: &[u8],
    keyring: Option<&[u8]>,
    name: &str,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let v = verification(keyring)?;
    let verified = v
        .verify_inline(name, Bytes::copy_from_slice(data))
        .map_err(images_err)?;
    Ok(pyo3::types::PyBytes::new(py, &verified.into_inner()))
}

/// Verifies then parses a simplestreams document (`index:1.0` or
/// `products:1.0`), returning it as a dict. Nothing is parsed before the
/// signature verified.
#[pyfunction]
#[pyo3(signature = (data, keyring, name = "document"))]
fn parse_stream<'py>(
    py: Python<'py>,
    data: &[u8],
    keyring: Option<&[u8]>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let v = verification(keyring)?;
    let verified = v
        .verify_inline(name, Bytes::copy_from_slice(data))
        .map_err(images_err)?;
    let value: serde_json::Value = serde_json::from_slice(verified.get())
        .map_err(|e| VerificationError::new_err(format!("{name}: {e}")))?;
    let format = value
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or_default()
        .to_owned();
    let doc = match format.as_str() {
        "index:1.0" => {
            serde_json::to_value(simplestreams::Index::parse(&verified).map_err(images_err)?)
        }
        "products:1.0" => {
            serde_json::to_value(simplestreams::Products::parse(&verified).map_err(images_err)?)
        }
        other => {
            return Err(VerificationError::new_err(format!(
                "{name}: unknown simplestreams format {other:?}"
            )));
        }
    }
    .map_err(|e| bad_input("document", e))?;
    pythonize(py, &doc).map_err(|e| bad_input("document", e))
}

fn progress_dict(p: &Progress) -> serde_json::Value {
    use serde_json::json;
    match p {
        Progress::Planned {
            files,
            bytes,
            present_files,
            present_bytes,
        } => json!({
            "event": "planned", "files": files, "bytes": bytes,
            "present_files": present_files, "present_bytes": present_bytes,
        }),
        Progress::FileStarted {
            path,
            size,
            resumed_from,
        } => {
            json!({"event": "file_started", "path": path, "size": size, "resumed_from": resumed_from})
        }
        Progress::Bytes { done, total, rate } => {
            json!({"event": "bytes", "done": done, "total": total, "rate": rate})
        }
        Progress::FileDone { path, sha256 } => {
            json!({"event": "file_done", "path": path, "sha256": sha256.to_string()})
        }
        Progress::Promoted { versions } => json!({"event": "promoted", "versions": versions}),
        _ => json!({"event": "other"}),
    }
}

/// Syncs a boot source into the store at `store_dir`, downloading with the
/// GIL released. `source`: `{url, keyring_data (bytes) | keyring_filename,
/// skip_keyring_verification, selections: [{os, release, arches,
/// subarches, labels}]}`. `progress` is called with event dicts
/// (`planned`, `file_started`, `bytes`, `file_done`, `promoted`).
/// Returns a report dict; raises `VerificationError` on any bad signature,
/// digest or size (nothing bad is promoted).
#[pyfunction]
#[pyo3(signature = (source, store_dir, progress = None, concurrency = 4, keep_versions = 2))]
fn sync_source<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    store_dir: &str,
    progress: Option<PyObject>,
    concurrency: usize,
    keep_versions: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let mut raw: serde_json::Map<String, serde_json::Value> =
        depythonize(source).map_err(|e| bad_input("source", e))?;
    // MAAS's API field names → the crate's keyring enum.
    if let Some(data) = raw.remove("keyring_data") {
        let bytes: Vec<u8> =
            serde_json::from_value(data).map_err(|e| bad_input("keyring_data", e))?;
        raw.insert("keyring".into(), serde_json::json!({"data": bytes}));
    }
    if let Some(file) = raw.remove("keyring_filename") {
        raw.insert("keyring".into(), serde_json::json!({"file": file}));
    }
    let source: BootSource = serde_json::from_value(serde_json::Value::Object(raw))
        .map_err(|e| bad_input("source", e))?;
    let store = Arc::new(Store::open(store_dir).map_err(images_err)?);
    let importer = Importer::new(
        store,
        SyncOptions {
            concurrency,
            keep_versions,
            ..SyncOptions::default()
        },
    )
    .map_err(images_err)?;
    let callback = progress.map(|cb| {
        let f: maas_images::ProgressFn = Arc::new(move |p: Progress| {
            Python::with_gil(|py| {
                let Ok(d) = pythonize(py, &progress_dict(&p)) else {
                    return;
                };
                if let Err(e) = cb.call1(py, (d,)) {
                    // A failing callback must not abort the download; show it.
                    e.print(py);
                }
            })
        });
        f
    });
    let report = block_on(py, move || async move {
        importer
            .sync(&source, callback, CancellationToken::new())
            .await
    })
    .map_err(images_err)?;
    let v = serde_json::json!({
        "downloaded_files": report.downloaded_files,
        "downloaded_bytes": report.downloaded_bytes,
        "reused_files": report.reused_files,
        "promoted": report.promoted,
        "warnings": report.warnings,
        "wanted_files": report.wanted.unique_files().len(),
        "wanted_bytes": report.wanted.total_bytes(),
    });
    pythonize(py, &v).map_err(|e| bad_input("report", e))
}

/// The newest kernel, initrd and root filesystem paths in the store for
/// os/arch/subarch/release, or None.
#[pyfunction]
fn boot_files<'py>(
    py: Python<'py>,
    store_dir: &str,
    os: &str,
    arch: &str,
    subarch: &str,
    release: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let store = Store::open(store_dir).map_err(images_err)?;
    let Some(f) = store.boot_files(os, arch, subarch, release) else {
        return Ok(None);
    };
    let v = serde_json::json!({
        "product": f.product,
        "version": f.version,
        "kernel": f.kernel,
        "initrd": f.initrd,
        "squashfs": f.squashfs,
        "root_image": f.root_image,
    });
    Ok(Some(
        pythonize(py, &v).map_err(|e| bad_input("boot files", e))?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify_signed, m)?)?;
    m.add_function(wrap_pyfunction!(parse_stream, m)?)?;
    m.add_function(wrap_pyfunction!(sync_source, m)?)?;
    m.add_function(wrap_pyfunction!(boot_files, m)?)?;
    Ok(())
}
