//! The metadata API of a real `maasd`, driven by real peers: Debian's
//! cloud-init (its `DataSourceMAAS` class, with the node's token) and a
//! scripted ephemeral environment (this repository's `maas-run-scripts`,
//! replaying hardware output recorded on a real machine, plus curtin- and
//! cloud-init-style webhook events), on SQLite and on PostgreSQL; and the
//! script results read back through python-libmaas's describe-driven
//! handlers (what the MAAS CLI's `node-script-results` commands call).

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::{Maasd, Postgres, maasd_binary, venv_bin};

/// Debian's interpreter: the `cloud-init` package installs its modules
/// for it (not for any virtualenv).
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check_peers() {
    let ok = Command::new(DEBIAN_PYTHON)
        .args(["-c", "import cloudinit.sources.DataSourceMAAS, oauthlib"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cloud-init's Python modules are missing: install the Debian packages cloud-init and python3-oauthlib"
    );
}

fn scenario(m: &Maasd, key: &str, name: &str) {
    check_peers();
    let out = Command::new(DEBIAN_PYTHON)
        .arg(repo().join("tests/python/metadata_flows.py"))
        .arg(name)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", key)
        .env("RUNNER", repo().join("scripts/maas-run-scripts"))
        .env("FIXTURES", repo().join("tests/fixtures/commissioning"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{} OK", name.to_ascii_uppercase());
    assert!(
        out.status.success() && stdout.trim_end().ends_with(&want),
        "metadata scenario {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cloud_init_datasource_deploys_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let key = m.admin_key("admin", "admin-secret").unwrap();
    scenario(&m, &key, "cloudinit");
}

#[test]
fn ephemeral_environment_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let key = m.admin_key("admin", "admin-secret").unwrap();
    scenario(&m, &key, "ephemeral");
}

#[test]
fn cloud_init_and_ephemeral_environment_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    let key = m.admin_key("admin", "admin-secret").unwrap();
    scenario(&m, &key, "cloudinit");
    scenario(&m, &key, "ephemeral");
}

#[test]
fn versions_slashes_and_anonymous_answers() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let (st, _, body) = m.get("/MAAS/metadata/").unwrap();
    assert_eq!((st, body.as_str()), (200, "latest\n2012-03-01"));
    let (st, _, _) = m.get("/MAAS/metadata/2009-04-04/meta-data/").unwrap();
    assert_eq!(st, 404);
    // Extra slashes are tolerated; anonymous callers get the enlistment
    // identity.
    let (st, _, body) = m
        .get("/MAAS/metadata//2012-03-01//meta-data/instance-id")
        .unwrap();
    assert_eq!((st, body.as_str()), (200, "i-maas-enlistment"));
    let (st, _, body) = m
        .get("/MAAS/metadata/latest/meta-data/local-hostname")
        .unwrap();
    assert_eq!((st, body.as_str()), (200, "maas-enlisting-node"));
    let (st, _, body) = m
        .get("/MAAS/metadata/latest/enlist-preseed/?op=get_enlist_preseed")
        .unwrap();
    assert_eq!(st, 200);
    assert!(body.starts_with("#cloud-config"), "{body}");
    assert!(body.contains("/MAAS/metadata/"), "{body}");
    let (st, _, body) = m.get("/MAAS/metadata/latest/user-data").unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("DEFAULT_MODE = \"enlist\""), "{body}");
    let (st, _, _) = m
        .get("/MAAS/metadata/latest/by-id/xxxxxx/?op=get_preseed")
        .unwrap();
    assert_eq!(st, 404);
    let (st, _, _) = m
        .get("/MAAS/metadata/latest/meta-data/no-such-item")
        .unwrap();
    assert_eq!(st, 404);
}

/// python-libmaas's bones (the real PyPI client) read the script results
/// tables as the MAAS CLI's `node-script-results read`,
/// `node-script-result read … include_output=1` and `… delete` do.
fn script_results_via_libmaas(m: &Maasd) {
    let key = m.admin_key("admin", "admin-secret").unwrap();
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(repo().join("tests/python/script_results_cli.py"))
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("RESULTS OK"),
        "script results via python-libmaas failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn script_results_read_by_libmaas_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    script_results_via_libmaas(&m);
}

#[test]
fn script_results_read_by_libmaas_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    script_results_via_libmaas(&m);
}
