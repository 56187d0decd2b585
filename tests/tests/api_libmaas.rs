//! python-libmaas 0.6.8 (the real client from PyPI) and its `maas` CLI run
//! a full session against a fresh `maasd`, on SQLite and on PostgreSQL
//! (stored files included).

use std::path::Path;
use std::process::Command;

use maas_e2e::{Maasd, Postgres, maas_cli, maasd_binary, venv_bin};

const PASSWORD: &str = "admin-secret";

/// Three commissioned Ready machines the session allocates from.
const SEED: &str = r#"[
 {"hostname":"ready-1","cpu_count":4,"memory_mib":8192,"tags":["gpu"],
  "disks":[{"name":"sda","size":100000000000,"tags":["ssd"]},{"name":"sdb","size":500000000000}],
  "nics":[{"name":"eth0","mac":"52:54:00:10:00:01"},{"name":"eth1","mac":"52:54:00:10:00:02"}]},
 {"hostname":"ready-2","cpu_count":2,"memory_mib":4096,
  "disks":[{"name":"sda","size":50000000000}],
  "nics":[{"name":"eth0","mac":"52:54:00:20:00:01"}]},
 {"hostname":"ready-3","cpu_count":8,"memory_mib":16384,
  "disks":[{"name":"sda","size":200000000000,"tags":["ssd"]},{"name":"sdb","size":1000000000000}],
  "nics":[{"name":"eth0","mac":"52:54:00:30:00:01"},{"name":"eth1","mac":"52:54:00:30:00:02"}]}
]"#;

fn seed(m: &Maasd, json: &str) -> Vec<String> {
    let f = m.data_dir.path().join("seed.json");
    std::fs::write(&f, json).unwrap();
    m.manage(&["load-machines", f.to_str().unwrap()])
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run_session(m: &Maasd) {
    let key = m.admin_key("admin", PASSWORD).unwrap();
    assert_eq!(seed(m, SEED).len(), 3);
    let bin = venv_bin().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/libmaas_session.py");
    let out = Command::new(bin.join("python"))
        .arg(script)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .env("MAAS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("SESSION OK"),
        "libmaas session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn libmaas_session_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    run_session(&m);
}

#[test]
fn libmaas_session_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    run_session(&m);
}

fn run_cli(m: &Maasd) {
    let key = m.admin_key("admin", PASSWORD).unwrap();
    seed(m, SEED);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = m.url();
    let (ok, out) = maas_cli(h, &["login", "-p", "adm", &url, "admin", PASSWORD]);
    assert!(ok && out.contains("You are logged in"), "{out}");
    let (ok, out) = maas_cli(h, &["login", "-p", "bad", &url, "admin", "wrong"]);
    assert!(!ok, "login with a wrong password succeeded: {out}");
    let (ok, out) = maas_cli(h, &["machines"]);
    assert!(
        ok && out.contains("ready-1") && out.contains("ready-3"),
        "{out}"
    );
    let (ok, out) = maas_cli(h, &["allocate", "--tag", "gpu"]);
    assert!(ok && out.contains("Allocated ready-1"), "{out}");
    let (ok, out) = maas_cli(h, &["allocate", "--tag", "gpu"]);
    assert!(
        !ok && out.contains("No machine matching the given criteria"),
        "{out}"
    );
    let (ok, out) = maas_cli(h, &["deploy", "--no-wait", "--cpus", "8"]);
    assert!(
        ok && out.contains("Deploying") && out.contains("ready-3"),
        "{out}"
    );
    let (ok, out) = maas_cli(h, &["release", "--no-wait", "ready-3", "ready-1"]);
    assert!(ok && out.contains("Releasing ready-3"), "{out}");
    let (ok, out) = maas_cli(h, &["machines"]);
    assert!(
        ok && !out.contains("Allocated") && !out.contains("Deploying"),
        "{out}"
    );
    // (`maas users` is not checked: libmaas 0.6.8's UsersTable yields one
    // column for three and fails against any server.)
    let (ok, out) = maas_cli(h, &["tags"]);
    assert!(ok && out.contains("gpu"), "{out}");
    // Stored files: libmaas's generated handlers upload, read and delete
    // them (tests/python/files_session.py), then the CLI lists what is left.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/files_session.py");
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(script)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("FILES OK"),
        "files session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out) = maas_cli(h, &["files"]);
    assert!(ok && out.contains("kept.txt"), "{out}");
}

#[test]
fn maas_cli_session_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    run_cli(&m);
}

#[test]
fn maas_cli_session_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    run_cli(&m);
}
