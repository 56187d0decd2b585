//! Deployment configuration: storage layouts, deploy-time validation and the
//! documents curtin and cloud-init read.

use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::{depythonize, pythonize};

use maas_core::render::{self, AptConfig, AptSource, NodeToken, RenderContext, StaticRoute};
use maas_core::storage::{self, LayoutRequest};

use crate::errors::{RenderError, bad_input};
use crate::lifecycle::machine;

fn core_err(e: maas_core::Error) -> PyErr {
    RenderError::new_err(e.to_string())
}

/// Builds a [`RenderContext`] from a dict (every key optional): `maas_url`,
/// `token` (`{consumer_key, token_key, token_secret}`), `syslog`,
/// `ntp_servers`, `dns_servers`, `apt` (`{archive, ports_archive, proxy}`),
/// `default_user`, `owner_name`, `swap_size`, `kernel_package`,
/// `curtin_verbose`, `enable_ssh`, `force_v1_network`.
fn context(obj: Option<&Bound<'_, PyAny>>) -> PyResult<RenderContext> {
    use serde_json::Value;
    let mut ctx = RenderContext {
        curtin_verbose: true,
        ..RenderContext::default()
    };
    let Some(obj) = obj else { return Ok(ctx) };
    let map: serde_json::Map<String, Value> =
        depythonize(obj).map_err(|e| bad_input("context", e))?;
    let s = |v: &Value, k: &str| -> PyResult<String> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad_input("context", format!("{k} must be a string")))
    };
    let list = |v: &Value, k: &str| -> PyResult<Vec<String>> {
        v.as_array()
            .ok_or_else(|| bad_input("context", format!("{k} must be a list")))?
            .iter()
            .map(|x| s(x, k))
            .collect()
    };
    for (k, v) in &map {
        match k.as_str() {
            "maas_url" => ctx.maas_url = s(v, k)?,
            "token" => {
                let get = |f: &str| {
                    v.get(f)
                        .map(|x| s(x, f))
                        .transpose()
                        .map(Option::unwrap_or_default)
                };
                ctx.token = NodeToken {
                    consumer_key: get("consumer_key")?,
                    token_key: get("token_key")?,
                    token_secret: get("token_secret")?,
                };
            }
            "syslog" => ctx.syslog = Some(s(v, k)?),
            "ntp_servers" => ctx.ntp_servers = list(v, k)?,
            "dns_servers" => {
                ctx.dns_servers = list(v, k)?
                    .iter()
                    .map(|a| a.parse().map_err(|e| bad_input("dns_servers", e)))
                    .collect::<PyResult<_>>()?
            }
            "apt" => {
                let get = |f: &str| {
                    v.get(f)
                        .filter(|x| !x.is_null())
                        .map(|x| s(x, f))
                        .transpose()
                };
                let strings = |f: &str| match v.get(f) {
                    Some(x) if !x.is_null() => list(x, f),
                    _ => Ok(vec![]),
                };
                let sources = match v.get("sources") {
                    Some(x) if !x.is_null() => x
                        .as_array()
                        .ok_or_else(|| bad_input("context", "apt.sources must be a list"))?
                        .iter()
                        .map(|e| {
                            let field = |f: &str| e.get(f).filter(|x| !x.is_null());
                            Ok(AptSource {
                                name: s(
                                    field("name").unwrap_or(&Value::Null),
                                    "apt.sources[].name",
                                )?,
                                source: s(
                                    field("source").unwrap_or(&Value::Null),
                                    "apt.sources[].source",
                                )?,
                                key: field("key")
                                    .map(|k| s(k, "apt.sources[].key"))
                                    .transpose()?,
                            })
                        })
                        .collect::<PyResult<_>>()?,
                    _ => vec![],
                };
                ctx.apt = AptConfig {
                    archive: get("archive")?.unwrap_or_default(),
                    ports_archive: get("ports_archive")?.unwrap_or_default(),
                    proxy: get("proxy")?,
                    disabled_pockets: strings("disabled_pockets")?,
                    disabled_components: strings("disabled_components")?,
                    archive_key: get("archive_key")?,
                    sources,
                };
            }
            "static_routes" => {
                let routes = v
                    .as_array()
                    .ok_or_else(|| bad_input("context", "static_routes must be a list"))?;
                ctx.static_routes = routes
                    .iter()
                    .map(|r| {
                        let num = |f: &str, dflt: Option<u64>| {
                            r.get(f).and_then(Value::as_u64).or(dflt).ok_or_else(|| {
                                bad_input(
                                    "context",
                                    format!("static_routes[].{f} must be a whole number"),
                                )
                            })
                        };
                        let text = |f: &str| {
                            s(
                                r.get(f).unwrap_or(&Value::Null),
                                &format!("static_routes[].{f}"),
                            )
                        };
                        Ok(StaticRoute {
                            id: num("id", Some(0))?,
                            source: num("source", None)?,
                            destination: text("destination")?
                                .parse()
                                .map_err(|e| bad_input("static_routes[].destination", e))?,
                            gateway: text("gateway")?
                                .parse()
                                .map_err(|e| bad_input("static_routes[].gateway", e))?,
                            metric: u32::try_from(num("metric", Some(0))?)
                                .map_err(|e| bad_input("static_routes[].metric", e))?,
                        })
                    })
                    .collect::<PyResult<_>>()?;
            }
            "default_user" => ctx.default_user = Some(s(v, k)?),
            "owner_name" => ctx.owner_name = Some(s(v, k)?),
            "swap_size" => {
                ctx.swap_size = Some(
                    v.as_u64()
                        .ok_or_else(|| bad_input("swap_size", "expected bytes"))?,
                )
            }
            "kernel_package" => ctx.kernel_package = Some(s(v, k)?),
            "curtin_verbose" | "enable_ssh" | "force_v1_network" => {
                let b = v
                    .as_bool()
                    .ok_or_else(|| bad_input("context", format!("{k} must be a bool")))?;
                match k.as_str() {
                    "curtin_verbose" => ctx.curtin_verbose = b,
                    "enable_ssh" => ctx.enable_ssh = b,
                    _ => ctx.force_v1_network = b,
                }
            }
            other => return Err(bad_input("context", format!("unknown key {other:?}"))),
        }
    }
    Ok(ctx)
}

/// Applies a storage layout (`{"layout": "lvm", "root_size": "50%", …}`) and
/// returns the machine with its new storage configuration.
#[pyfunction]
fn set_storage_layout<'py>(
    py: Python<'py>,
    machine: &Bound<'py, PyAny>,
    request: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut m = self::machine(machine)?;
    let mut raw: serde_json::Map<String, serde_json::Value> =
        depythonize(request).map_err(|e| bad_input("layout request", e))?;
    // Sizes as MAAS's API takes them: bytes, "10G", "512M" or "50%".
    for key in ["boot_size", "root_size", "lv_size", "cache_size"] {
        if let Some(v) = raw.get_mut(key) {
            let text = match v {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => continue,
            };
            let size: storage::Size = text.parse().map_err(core_err)?;
            *v = serde_json::to_value(size).map_err(|e| bad_input(key, e))?;
        }
    }
    for flag in ["cache_no_part", "allow_fallback"] {
        raw.entry(flag).or_insert(serde_json::Value::Bool(false));
    }
    let req: LayoutRequest = serde_json::from_value(serde_json::Value::Object(raw))
        .map_err(|e| bad_input("layout request", e))?;
    storage::layout::apply_layout(&mut m, &req).map_err(core_err)?;
    pythonize(py, &m).map_err(|e| bad_input("machine", e))
}

/// Checks the storage configuration as MAAS does before deploying; raises
/// `RenderError` naming the device and the rule.
#[pyfunction]
fn validate_for_deploy(machine: &Bound<'_, PyAny>) -> PyResult<()> {
    storage::validate_for_deploy(&self::machine(machine)?).map_err(core_err)
}

/// Renders a document for `machine`: `curtin` (the curtin config), `netplan`
/// (netplan v2), `preseed` (the `#cloud-config` preseed its status calls
/// for), `commissioning_preseed`, `curtin_preseed`, `vendor_data`, or
/// `enlist_preseed` (machine ignored). Returns YAML text.
#[pyfunction]
#[pyo3(name = "render", signature = (kind, machine, context = None))]
fn render_document(
    kind: &str,
    machine: &Bound<'_, PyAny>,
    context: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let m = self::machine(machine)?;
    let ctx = self::context(context)?;
    match kind {
        "curtin" => render::curtin_config(&m, &ctx),
        "netplan" => render::netplan::netplan_yaml(&m, &ctx),
        "preseed" => render::preseed(&m, &ctx),
        "commissioning_preseed" => render::commissioning_preseed(&m, &ctx),
        "curtin_preseed" => render::curtin_preseed(&m, &ctx),
        "vendor_data" => render::vendor_data(&m, &ctx),
        "enlist_preseed" => render::enlist_preseed(&ctx),
        other => return Err(bad_input("kind", format!("unknown document {other:?}"))),
    }
    .map_err(core_err)
}

/// Decodes stored user-data (base64) into the bytes the deployed OS receives.
#[pyfunction]
fn decode_user_data<'py>(
    py: Python<'py>,
    stored: &str,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let data = render::decode_user_data(stored).map_err(core_err)?;
    Ok(pyo3::types::PyBytes::new(py, &data))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_storage_layout, m)?)?;
    m.add_function(wrap_pyfunction!(validate_for_deploy, m)?)?;
    m.add_function(wrap_pyfunction!(render_document, m)?)?;
    m.add_function(wrap_pyfunction!(decode_user_data, m)?)?;
    Ok(())
}
