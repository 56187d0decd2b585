//! Machine listing answered by SQL (filters, paging, visibility) and the
//! storage-layout → curtin path.

use serde_json::{Value, json};

use crate::Fixture;

/// Loads `n` Ready machines: even ones tagged `even` in zone `z-even`,
/// every third arm64, 2 NICs and 2 disks each.
fn seed(f: &Fixture, n: usize) -> Vec<String> {
    let specs: Vec<maas_server::seed::MachineSpec> = serde_json::from_value(Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "hostname": format!("m{i:03}"),
                    "architecture": if i % 3 == 0 { "arm64/generic" } else { "amd64/generic" },
                    "cpu_count": 2 + i % 4,
                    "memory_mib": 1024 * (1 + i % 8),
                    "tags": if i % 2 == 0 { json!(["even", "all"]) } else { json!(["all"]) },
                    "zone": if i % 2 == 0 { "z-even" } else { "default" },
                    "disks": [{"name": "sda", "size": 200_000_000_000u64}, {"name": "sdb", "size": 100_000_000_000u64}],
                    "nics": [{"name": "eth0", "mac": format!("52:54:00:01:00:{i:02x}")},
                             {"name": "eth1", "mac": format!("52:54:00:02:00:{i:02x}")}],
                })
            })
            .collect(),
    ))
    .unwrap();
    let mut conn = f.state.pool.get().unwrap();
    maas_server::seed::load(&mut conn, &specs, 0)
        .unwrap()
        .into_iter()
        .map(|s| s.to_string())
        .collect()
}

async fn hostnames(f: &Fixture, query: &str) -> Vec<String> {
    let (s, b) = f.get(&format!("/MAAS/api/2.0/machines/{query}")).await;
    assert_eq!(s, 200, "{query}: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["hostname"].as_str().unwrap().to_owned())
        .collect()
}

fn names(ids: &[usize]) -> Vec<String> {
    ids.iter().map(|i| format!("m{i:03}")).collect()
}

#[tokio::test]
async fn list_filters_and_pages_in_sql() {
    let f = Fixture::new();
    seed(&f, 12);
    assert_eq!(hostnames(&f, "").await, names(&(0..12).collect::<Vec<_>>()));
    assert_eq!(
        hostnames(&f, "?tags=even").await,
        names(&[0, 2, 4, 6, 8, 10])
    );
    assert_eq!(hostnames(&f, "?tags=even&tags=all").await.len(), 6);
    assert_eq!(
        hostnames(&f, "?not_tags=even").await,
        names(&[1, 3, 5, 7, 9, 11])
    );
    assert_eq!(
        hostnames(&f, "?zone=z-even&arch=arm64").await,
        names(&[0, 6])
    );
    assert_eq!(
        hostnames(&f, "?arch=arm64/generic").await,
        names(&[0, 3, 6, 9])
    );
    assert_eq!(
        hostnames(&f, "?not_in_zone=z-even&cpu_count=5").await,
        names(&[3, 7, 11])
    );
    assert_eq!(hostnames(&f, "?mem=8192").await, names(&[7]));
    assert_eq!(
        hostnames(&f, "?mac_address=52:54:00:02:00:05").await,
        names(&[5])
    );
    assert_eq!(
        hostnames(&f, "?hostname=m004.maas&hostname=m009").await,
        names(&[4, 9])
    );
    assert_eq!(
        hostnames(&f, "?status=ready&offset=10").await,
        names(&[10, 11])
    );
    assert_eq!(hostnames(&f, "?offset=3&limit=2").await, names(&[3, 4]));
    assert!(hostnames(&f, "?status=deployed").await.is_empty());
    assert!(hostnames(&f, "?tags=nope").await.is_empty());
    let (s, b) = f.get("/MAAS/api/2.0/machines/?status=sideways").await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = f.get("/MAAS/api/2.0/machines/?mac_address=zz").await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn listed_machines_are_the_single_reads_and_follow_updates() {
    let f = Fixture::new();
    let ids = seed(&f, 3);
    let (s, b) = f.get("/MAAS/api/2.0/machines/").await;
    assert_eq!(s, 200);
    let list: Vec<Value> = serde_json::from_str(&b).unwrap();
    for (m, id) in list.iter().zip(&ids) {
        let (s, one) = f.get(&format!("/MAAS/api/2.0/machines/{id}/")).await;
        assert_eq!(s, 200);
        assert_eq!(m, &serde_json::from_str::<Value>(&one).unwrap());
        assert_eq!(m["interface_set"].as_array().unwrap().len(), 2);
        assert_eq!(m["blockdevice_set"].as_array().unwrap().len(), 2);
    }
    // A tag added through the API is seen by the tag filter at once.
    let (s, b) = f.post("/MAAS/api/2.0/tags/", "name=fresh").await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/tags/fresh/?op=update_nodes",
            &format!("add={}", ids[1]),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(hostnames(&f, "?tags=fresh").await, names(&[1]));
    let (s, b) = f.get("/MAAS/api/2.0/tags/fresh/?op=machines").await;
    assert_eq!(s, 200, "{b}");
    let tagged: Vec<Value> = serde_json::from_str(&b).unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["system_id"], ids[1].as_str());
    // Allocation moves the machine out of the Ready filter.
    let (s, b) = f
        .post("/MAAS/api/2.0/machines/?op=allocate", "tags=fresh")
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(hostnames(&f, "?status=ready").await, names(&[0, 2]));
    assert_eq!(hostnames(&f, "?owner=admin").await, names(&[1]));
    let (s, b) = f.get("/MAAS/api/2.0/machines/?op=list_allocated").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(serde_json::from_str::<Vec<Value>>(&b).unwrap().len(), 1);
    // Deleting removes it from every filter.
    let (s, _) = f
        .send(
            axum::http::Request::delete(format!("/MAAS/api/2.0/machines/{}/", ids[0]))
                .header("Authorization", f.auth())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s.status(), 204);
    assert_eq!(hostnames(&f, "?tags=all").await, names(&[1, 2]));
}

#[tokio::test]
async fn storage_layout_reaches_the_curtin_config() {
    let f = Fixture::new();
    let ids = seed(&f, 2);
    let id = &ids[1];
    let url = format!("/MAAS/api/2.0/machines/{id}/");
    let (s, b) = f
        .post(
            &format!("{url}?op=set_storage_layout"),
            "storage_layout=sideways",
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("storage_layout"), "{b}");
    let (s, b) = f
        .post(
            &format!("{url}?op=set_storage_layout"),
            "storage_layout=lvm&root_size=lots",
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("root_size"), "{b}");
    let (s, b) = f
        .post(
            &format!("{url}?op=set_storage_layout"),
            "storage_layout=lvm&vg_name=vgroot&lv_size=50%25",
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Not deploying yet: MAAS's 400.
    let (s, b) = f.get(&format!("{url}?op=get_curtin_config")).await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("not in a deployment state"), "{b}");
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/?op=allocate",
            &format!("system_id={id}"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.post(&format!("{url}?op=deploy"), "").await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.get(&format!("{url}?op=get_curtin_config")).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("lvm_volgroup"), "{b}");
    assert!(b.contains("vgroot"), "{b}");
    // Layout changes are refused once the machine left Ready (MAAS: 409).
    let (s, b) = f
        .post(
            &format!("{url}?op=set_storage_layout"),
            "storage_layout=flat",
        )
        .await;
    assert_eq!(s, 409, "{b}");
    // The other machine never got a layout: the default (flat) is rendered.
    let other = &ids[0];
    let (s, b) = f
        .post(
            "/MAAS/api/2.0/machines/?op=allocate",
            &format!("system_id={other}"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .post(&format!("/MAAS/api/2.0/machines/{other}/?op=deploy"), "")
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .get(&format!(
            "/MAAS/api/2.0/machines/{other}/?op=get_curtin_config"
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("path: /"), "{b}");
    assert!(!b.contains("lvm_volgroup"), "{b}");
}
