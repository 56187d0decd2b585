//! Running the real validators as subprocesses. A missing tool fails the
//! test with the Debian package that provides it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

fn run(mut cmd: Command, package: &str) -> Output {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run {prog}: {e}; install the Debian package {package} \
             (listed in scripts/deps/deploycfg.apt; scripts/install-deps.sh installs it)"
        ),
    }
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `cloud-init schema --config-file` accepts `doc`.
pub fn cloud_init_schema(name: &str, doc: &str) {
    let dir = TempDir::new().unwrap();
    let f = dir.path().join("cloud-config.yaml");
    fs::write(&f, doc).unwrap();
    let mut cmd = Command::new("cloud-init");
    cmd.args(["schema", "--config-file"]).arg(&f);
    let o = run(cmd, "cloud-init");
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Valid cloud-config"),
        "cloud-init schema rejected {name}:\n{doc}\n{}",
        describe(&o)
    );
}

/// `netplan generate --root-dir` accepts `doc`; returns the root so the
/// systemd-networkd files under `run/systemd/network` can be inspected.
pub fn netplan_generate(name: &str, doc: &str) -> TempDir {
    let root = TempDir::new().unwrap();
    let etc = root.path().join("etc/netplan");
    fs::create_dir_all(&etc).unwrap();
    let f = etc.join("50-maas.yaml");
    fs::write(&f, doc).unwrap();
    // netplan warns about world-readable files; MAAS writes them 0600.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = Command::new("netplan");
    cmd.args(["generate", "--root-dir"]).arg(root.path());
    let o = run(cmd, "netplan.io");
    assert!(
        o.status.success(),
        "netplan generate rejected {name}:\n{doc}\n{}",
        describe(&o)
    );
    root
}

/// The generated systemd-networkd file `10-netplan-<iface>.<ext>`.
pub fn networkd_file(root: &Path, iface: &str, ext: &str) -> String {
    let p = root.join(format!("run/systemd/network/10-netplan-{iface}.{ext}"));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `cloud-init devel net-convert` renders a network config (v1 or v2) to
/// netplan; returns the produced netplan YAML.
pub fn cloud_init_net_convert(name: &str, network_yaml: &str) -> String {
    let dir = TempDir::new().unwrap();
    let f = dir.path().join("network.yaml");
    fs::write(&f, network_yaml).unwrap();
    let out = dir.path().join("out");
    let mut cmd = Command::new("cloud-init");
    cmd.args(["devel", "net-convert", "-p"])
        .arg(&f)
        .args(["-k", "yaml", "-d"])
        .arg(&out)
        .args(["-D", "ubuntu", "-O", "netplan"]);
    let o = run(cmd, "cloud-init");
    assert!(
        o.status.success(),
        "cloud-init net-convert rejected {name}:\n{network_yaml}\n{}",
        describe(&o)
    );
    let produced = out.join("etc/netplan/50-cloud-init.yaml");
    fs::read_to_string(&produced)
        .unwrap_or_else(|e| panic!("{name}: no netplan output {}: {e}", produced.display()))
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/deploycfg")
}

/// Checks storage configs against curtin's schema rules (test data) with
/// Debian's python3-jsonschema. Returns the checker's summary line.
pub fn curtin_storage_schema(configs: &[(String, serde_json::Value)]) -> String {
    let dir = TempDir::new().unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(data_dir().join("check_curtin_storage.py"))
        .arg(data_dir().join("curtin-storage-schema.json"));
    for (name, cfg) in configs {
        let f = dir.path().join(format!("{name}.json"));
        fs::write(&f, serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
        cmd.arg(f);
    }
    let o = run(cmd, "python3-jsonschema");
    assert!(
        o.status.success(),
        "curtin storage schema check failed (is python3-jsonschema installed?):\n{}",
        describe(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
