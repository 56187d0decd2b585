//! Bringing the lab up and down from a test, and what `lab up` reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use maas_power::PowerParams;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Runs `program args` and returns stdout; fails with stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The test virtualenv's `bin/` (sushy-tools, virtualbmc, python-simplestreams).
pub fn venv_bin() -> PathBuf {
    maas_e2e::venv_bin().expect("test virtualenv (scripts/install-deps.sh)")
}

/// The signed mirror `tests/lab/build-images.sh` builds (cached by input
/// hashes under ~/.cache/maas-rs/lab), built once per test process.
pub fn images() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = run(Command::new("bash")
            .arg(repo().join("tests/lab/build-images.sh"))
            .env("MAAS_RS_VENV", venv_bin().parent().expect("venv")))
        .expect("tests/lab/build-images.sh");
        PathBuf::from(out.lines().last().expect("output directory").trim())
    })
}

/// A lab brought up by `tests/lab/lab up` under a unique name in a temporary
/// state directory; `lab down` on drop stops exactly what it started.
#[derive(Debug)]
pub struct Lab {
    dir: tempfile::TempDir,
    name: String,
    disk: String,
    env: HashMap<String, String>,
}

/// One VM of the lab and its BMC.
#[derive(Debug, Clone)]
pub struct Vm {
    pub name: String,
    pub mac: String,
    pub uuid: String,
    pub firmware: String,
    pub bmc: String,
}

impl Lab {
    /// `lab up` with `vms` VMs (odd ones BIOS behind Redfish, even ones UEFI
    /// behind IPMI). Dependencies are installed by the test command already.
    pub fn up(vms: u32) -> anyhow::Result<Self> {
        Self::up_with_disks(vms, "2G")
    }

    /// `lab up` with VM disks of `disk` (`truncate -s` syntax): MAAS's
    /// default storage layout needs a root of at least 3 GiB.
    pub fn up_with_disks(vms: u32, disk: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("maas-rs-lab-").tempdir()?;
        let name = format!("mrl{}", std::process::id());
        let mut lab = Self {
            dir,
            name,
            disk: disk.to_owned(),
            env: HashMap::new(),
        };
        lab.lab(&["up"], vms)?;
        let text = std::fs::read_to_string(lab.dir.path().join("lab.env"))?;
        lab.env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Ok(lab)
    }

    fn lab(&self, args: &[&str], vms: u32) -> anyhow::Result<String> {
        run(Command::new("bash")
            .arg(repo().join("tests/lab/lab"))
            .args(args)
            .env("LAB_DIR", self.dir.path())
            .env("LAB_NAME", &self.name)
            .env("LAB_VMS", vms.to_string())
            .env("LAB_DISK_SIZE", &self.disk)
            .env("LAB_SKIP_INSTALL", "1")
            .env("MAAS_RS_VENV", venv_bin().parent().expect("venv")))
    }

    /// A value from `lab.env`.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from lab.env"))
    }

    /// VM `n` (from 1).
    pub fn vm(&self, n: u32) -> Vm {
        let v = |k: &str| self.var(&format!("LAB_VM{n}_{k}")).to_owned();
        Vm {
            name: v("NAME"),
            mac: v("MAC"),
            uuid: v("UUID"),
            firmware: v("FIRMWARE"),
            bmc: v("BMC"),
        }
    }

    /// `power_type` and MAAS power parameters of VM `n`'s BMC, with `password`.
    pub fn power(&self, n: u32, password: &str) -> (&'static str, PowerParams) {
        let vm = self.vm(n);
        let user = self.var("LAB_BMC_USER");
        if vm.bmc == "redfish" {
            let p = PowerParams::new()
                .with("power_address", self.var("LAB_REDFISH_URL"))
                .with("power_user", user)
                .with("power_pass", password)
                .with("node_id", vm.uuid);
            ("redfish", p)
        } else {
            let port = self.var(&format!("LAB_VM{n}_IPMI_PORT"));
            let p = PowerParams::new()
                .with("power_driver", "LAN_2_0")
                .with("power_address", format!("127.0.0.1:{port}"))
                .with("power_user", user)
                .with("power_pass", password)
                .with("cipher_suite_id", "3")
                .with("privilege_level", "ADMIN");
            ("ipmi", p)
        }
    }

    /// The BMC password `lab up` configured.
    pub fn bmc_pass(&self) -> &str {
        self.var("LAB_BMC_PASS")
    }

    /// `virsh domstate` of VM `n`, as libvirt sees it.
    pub fn domstate(&self, n: u32) -> String {
        run(Command::new("virsh")
            .args(["-c", self.var("LAB_LIBVIRT_URI"), "domstate"])
            .arg(self.vm(n).name))
        .expect("virsh domstate")
        .trim()
        .to_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let vms: u32 = self
            .env
            .get("LAB_VMS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        if let Err(e) = self.lab(&["down"], vms) {
            eprintln!("lab down failed: {e:#}");
        }
    }
}
