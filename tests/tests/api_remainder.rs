//! python-libmaas 0.6.8 (the real client from PyPI) against a fresh `maasd`
//! with a few hundred machines: the listing written from stored templates
//! (and following a zone edit), allocation filtered in SQL picking MAAS's
//! cheapest match, the indexed MAC lookup, `set_storage_layout` without a
//! layout and `op=release` with erase flags and the `scripts` form — on
//! SQLite and on PostgreSQL.

use std::path::Path;
use std::process::Command;

use maas_e2e::{Maasd, Postgres, maasd_binary, venv_bin};

/// Machines seeded (see tests/python/api_remainder.py for their shapes).
const MACHINES: usize = 300;

fn seed(m: &Maasd) {
    let specs: Vec<serde_json::Value> = (0..MACHINES)
        .map(|i| {
            serde_json::json!({
                "hostname": format!("rem-{i:03}"),
                "cpu_count": 2 + i % 6,
                "memory_mib": 1024 * (1 + i % 4),
                "tags": if i % 2 == 0 { serde_json::json!(["even"]) } else { serde_json::json!([]) },
                "zone": if i % 2 == 1 { "z-odd" } else { "default" },
                "disks": [{"name": "sda", "size": 100_000_000_000u64}],
                "nics": [{"name": "eth0", "mac": format!("52:54:0a:00:{:02x}:{:02x}", i >> 8, i & 255)}],
            })
        })
        .collect();
    let f = m.data_dir.path().join("remainder.json");
    std::fs::write(&f, serde_json::to_string(&specs).unwrap()).unwrap();
    let ids = m.manage(&["load-machines", f.to_str().unwrap()]).unwrap();
    assert_eq!(ids.lines().count(), MACHINES);
}

fn run(m: &Maasd) {
    let key = m.admin_key("admin", "pw").unwrap();
    seed(m);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/api_remainder.py");
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(script)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .env("MACHINES", MACHINES.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("REMAINDER OK"),
        "libmaas remainder session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn libmaas_remainder_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    run(&m);
}

#[test]
fn libmaas_remainder_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    run(&m);
}
