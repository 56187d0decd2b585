//! The import's bookkeeping through the public API of `maas_server::images`:
//! settling the sets an interrupted import announced, and MAAS's default
//! boot source.

use maas_images::simplestreams::{BootProduct, FileType};
use maas_images::{ResourceKind, Sha256, Store, WantedFile, WantedVersion};
use maas_server::db::boot;
use maas_server::images;
use serde_json::json;

use crate::Fixture;

fn noble(version: &str, data: &[u8], store: &Store) -> WantedVersion {
    let sha = Sha256::of(data);
    let path = store.path_of(&sha);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    let file = |item: &str, ftype: FileType| WantedFile {
        item: item.into(),
        ftype,
        path: item.into(),
        sha256: sha,
        size: data.len() as u64,
    };
    WantedVersion {
        content_id: "com.ubuntu.maas:stable:v3:download".into(),
        product: "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04".into(),
        version: version.into(),
        kind: ResourceKind::Boot(BootProduct {
            os: "ubuntu".into(),
            release: "noble".into(),
            arch: "amd64".into(),
            subarch: "ga-24.04".into(),
            subarches: vec!["generic".into(), "ga-24.04".into()],
            label: "stable".into(),
            kflavor: Some("generic".into()),
            version: Some("24.04".into()),
        }),
        files: vec![
            file("boot-kernel", FileType::BootKernel),
            file("boot-initrd", FileType::BootInitrd),
            file("squashfs", FileType::Squashfs),
        ],
    }
}

fn set(version: &str, complete: bool) -> serde_json::Value {
    json!({"version": version, "label": "stable", "size": 3, "complete": complete,
           "progress": if complete { 100.0 } else { 0.0 }, "files": {}})
}

#[test]
fn an_interrupted_import_settles_its_sets() {
    let fx = Fixture::new();
    let store = Store::open(fx._dir.path().join("store")).unwrap();
    // The crash came after version 2 was promoted, before it was recorded.
    store.commit(&[noble("2", b"two", &store)]).unwrap();
    let mut conn = fx.state.pool.get().unwrap();
    let synced = |sets| boot::Resource {
        id: 0,
        rtype: "Synced".into(),
        name: "ubuntu/noble".into(),
        architecture: "amd64/ga-24.04".into(),
        subarches: "generic,ga-24.04".into(),
        title: "24.04".into(),
        sets,
        created: 1,
        updated: 1,
    };
    let mut sets = serde_json::Map::new();
    sets.insert("1".into(), set("1", true));
    sets.insert("2".into(), set("2", false));
    sets.insert("3".into(), set("3", false));
    let id = boot::upsert_resource(&mut conn, &synced(sets.into()), 1).unwrap();
    // A resource only an unfinished version announced goes away.
    let mut other = synced(json!({"9": set("9", false)}));
    other.architecture = "amd64/hwe-24.04".into();
    boot::upsert_resource(&mut conn, &other, 1).unwrap();
    // Uploads in progress are not the import's to settle.
    let mut upload = synced(json!({"20261122": set("20261122", false)}));
    upload.rtype = "Uploaded".into();
    upload.name = "custom/img".into();
    boot::upsert_resource(&mut conn, &upload, 1).unwrap();

    let dropped = conn
        .write_tx(|c| images::settle_incomplete(c, Some(&store)))
        .unwrap();
    assert_eq!(dropped, 2, "versions 3 and 9");
    let all = boot::resources(&mut conn).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let r = all.iter().find(|r| r.id == id).unwrap();
    let versions: Vec<&String> = r.sets.as_object().unwrap().keys().collect();
    assert_eq!(versions, ["1", "2"]);
    assert_eq!(r.sets["2"]["complete"], true, "promoted: complete");
    assert_eq!(r.sets["2"]["progress"], 100.0);
    let up = all.iter().find(|r| r.rtype == "Uploaded").unwrap();
    assert_eq!(up.sets["20261122"]["complete"], false);
    // Nothing left to settle.
    let again = conn
        .write_tx(|c| images::settle_incomplete(c, Some(&store)))
        .unwrap();
    assert_eq!(again, 0);
}

#[test]
fn the_default_source_is_created_once() {
    let fx = Fixture::new();
    let mut conn = fx.state.pool.get().unwrap();
    let url = images::DEFAULT_IMAGES_URL;
    let created = conn
        .write_tx(|c| images::ensure_default_source(c, url, images::DEFAULT_KEYRING, 5))
        .unwrap();
    assert!(created);
    let again = conn
        .write_tx(|c| images::ensure_default_source(c, url, images::DEFAULT_KEYRING, 6))
        .unwrap();
    assert!(!again, "only when there is no source");
    let sources = boot::sources(&mut conn).unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        (
            sources[0].url.as_str(),
            sources[0].priority,
            sources[0].enabled
        ),
        ("http://images.maas.io/ephemeral-v3/stable/", 1, true)
    );
    let sels = boot::selections(&mut conn, Some(sources[0].id)).unwrap();
    assert_eq!(sels.len(), 1);
    assert_eq!(
        (sels[0].os.as_str(), sels[0].arches.as_slice()),
        ("ubuntu", ["amd64".to_owned()].as_slice())
    );
    assert_eq!(sels[0].subarches, ["*"]);
    assert_eq!(sels[0].labels, ["*"]);
}
