//! 1,000 concurrent `op=allocate` calls (python-libmaas, async) for 100
//! Ready machines: exactly 100 succeed, each machine gets one owner, the
//! other 900 get MAAS's 409 — on SQLite and on PostgreSQL.

use std::path::Path;
use std::process::Command;

use maas_e2e::{Maasd, Postgres, maasd_binary, venv_bin};

fn race(m: &Maasd) {
    let key = m.admin_key("admin", "pw").unwrap();
    let specs: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({
                "hostname": format!("race-{i:03}"),
                "cpu_count": 2 + (i % 7),
                "memory_mib": 4096,
                "disks": [{"name": "sda", "size": 100_000_000_000u64}],
                "nics": [{"name": "eth0", "mac": format!("52:54:01:00:{:02x}:{:02x}", i / 256, i % 256)}],
            })
        })
        .collect();
    let f = m.data_dir.path().join("race.json");
    std::fs::write(&f, serde_json::to_string(&specs).unwrap()).unwrap();
    let ids = m.manage(&["load-machines", f.to_str().unwrap()]).unwrap();
    assert_eq!(ids.lines().count(), 100);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/concurrent_allocate.py");
    let out = Command::new(venv_bin().unwrap().join("python"))
        .arg(script)
        .env("MAAS_URL", m.url())
        .env("MAAS_KEY", &key)
        .env("ALLOCATIONS", "1000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], 100, "{v}");
    assert_eq!(v["distinct"], 100, "{v}");
    assert_eq!(v["conflict"], 900, "{v}");
    assert_eq!(v["other"], serde_json::json!([]), "{v}");
    let owners = v["owners"].as_object().unwrap();
    assert_eq!(owners.len(), 100);
    assert!(owners.values().all(|o| o == "admin"), "{v}");
}

#[test]
fn thousand_concurrent_allocations_on_sqlite() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    race(&m);
}

#[test]
fn thousand_concurrent_allocations_on_postgres() {
    let pg = Postgres::start().unwrap();
    let m = Maasd::start_with(&maasd_binary().unwrap(), Some(&pg.url())).unwrap();
    race(&m);
}
