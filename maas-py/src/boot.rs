//! Boot-config rendering (pxelinux, GRUB, iPXE) and the kernel command line.

use std::net::IpAddr;

use pyo3::prelude::*;
use pyo3::types::PyAny;
use pythonize::depythonize;

use maas_boot::bootconfig::{self, BootParams, Loader, Purpose, RootFs};

use crate::errors::bad_input;

fn params(obj: &Bound<'_, PyAny>) -> PyResult<BootParams> {
    let m: serde_json::Map<String, serde_json::Value> =
        depythonize(obj).map_err(|e| bad_input("boot params", e))?;
    let text = |k: &str| {
        m.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let list = |k: &str| -> Vec<String> {
        m.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "purpose"
                | "hostname"
                | "kernel"
                | "initrd"
                | "squashfs"
                | "tarball"
                | "preseed_url"
                | "apparmor_off"
                | "arch_opts"
                | "ephemeral_opts"
                | "extra_opts"
        ) {
            return Err(bad_input("boot params", format!("unknown key {k:?}")));
        }
    }
    let purpose_name = text("purpose");
    let purpose = Purpose::ALL
        .into_iter()
        .find(|p| p.as_str() == purpose_name)
        .ok_or_else(|| bad_input("purpose", format!("{purpose_name:?} is not a boot purpose")))?;
    let rootfs = match (
        m.get("squashfs").and_then(|v| v.as_str()),
        m.get("tarball").and_then(|v| v.as_str()),
    ) {
        (Some(s), None) => Some(RootFs::Squashfs(s.to_owned())),
        (None, Some(t)) => Some(RootFs::Tarball(t.to_owned())),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(bad_input(
                "boot params",
                "give squashfs or tarball, not both",
            ));
        }
    };
    Ok(BootParams {
        purpose,
        hostname: text("hostname"),
        kernel: text("kernel"),
        initrd: text("initrd"),
        rootfs,
        preseed_url: text("preseed_url"),
        apparmor_off: m
            .get("apparmor_off")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        arch_opts: list("arch_opts"),
        ephemeral_opts: list("ephemeral_opts"),
        extra_opts: list("extra_opts"),
    })
}

fn rack(s: &str) -> PyResult<IpAddr> {
    s.parse().map_err(|e| bad_input("rack address", e))
}

/// Renders the per-machine boot config a loader (`pxelinux`, `grub`,
/// `ipxe`) fetches. `params`: `purpose`, `hostname`, `kernel`, `initrd`,
/// `squashfs` or `tarball`, `preseed_url`, `apparmor_off`, `arch_opts`,
/// `ephemeral_opts`, `extra_opts`.
#[pyfunction]
fn render_boot_config(loader: &str, params: &Bound<'_, PyAny>, rack: &str) -> PyResult<String> {
    let loader = match loader {
        "pxelinux" => Loader::Pxelinux,
        "grub" => Loader::Grub,
        "ipxe" => Loader::Ipxe,
        other => {
            return Err(bad_input(
                "loader",
                format!("{other:?} (pxelinux, grub, ipxe)"),
            ));
        }
    };
    Ok(bootconfig::render(
        loader,
        &self::params(params)?,
        self::rack(rack)?,
    ))
}

/// The kernel command line MAAS composes for these boot params.
#[pyfunction]
fn kernel_command_line(params: &Bound<'_, PyAny>, rack: &str) -> PyResult<String> {
    Ok(bootconfig::cmdline::kernel_command_line(
        &self::params(params)?,
        self::rack(rack)?,
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(render_boot_config, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_command_line, m)?)?;
    Ok(())
}
