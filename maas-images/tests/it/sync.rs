//! Importing real-tool mirrors: the happy paths.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

use maas_images::{Error, Importer, KeyringSource, Progress, ResourceKind, Store, SyncOptions};
use tokio_util::sync::CancellationToken;

use crate::lab::{Fault, Gpg, Mirror, Server, Signing, source, tool};

fn store_files(store: &Store) -> usize {
    walk(&store.root().join("images"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { 1 }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpg_signed_json2streams_mirror_syncs_over_http() {
    syncs_over_http(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpg_signed_json2streams_mirror_syncs_over_http_general_client() {
    syncs_over_http(false).await;
}

async fn syncs_over_http(splice: bool) {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Clearsigned, 1 << 20).unwrap();
    let server = Server::start(mirror.root()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(
        store.clone(),
        SyncOptions {
            splice_http: splice,
            ..SyncOptions::default()
        },
    )
    .unwrap();
    let src = source(&server.url(), gpg.export(false).unwrap());

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = importer
        .sync(
            &src,
            Some(Arc::new(move |p| sink.lock().unwrap().push(p))),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    // ga + hwe (amd64) and the pxelinux bootloader (it boots amd64); arm64 not selected.
    assert_eq!(report.promoted, 3, "{:?}", report.wanted);
    // 2 kernels, 2 initrds, 1 shared squashfs, 1 shared manifest, 1 bootloader.
    assert_eq!(report.downloaded_files, 7);
    // Every file took the path under test (the splice path is chosen for
    // plain http answers, which ServeDir's are).
    assert_eq!(report.spliced_files, if splice { 7 } else { 0 });
    assert_eq!(store_files(&store), 7);
    let expected_bytes: u64 = [
        "ga-kernel",
        "ga-initrd",
        "hwe-kernel",
        "hwe-initrd",
        "squashfs",
        "manifest",
        "pxelinux",
    ]
    .iter()
    .map(|k| mirror.file(k).data.len() as u64)
    .sum();
    assert_eq!(report.downloaded_bytes, expected_bytes);

    let boot = store
        .boot_files("ubuntu", "amd64", "hwe-22.04", "jammy")
        .unwrap();
    assert_eq!(boot.version, "20250615");
    assert_eq!(
        std::fs::read(&boot.kernel).unwrap(),
        mirror.file("hwe-kernel").data
    );
    assert_eq!(
        std::fs::read(&boot.initrd).unwrap(),
        mirror.file("hwe-initrd").data
    );
    assert_eq!(
        std::fs::read(boot.squashfs.as_ref().unwrap()).unwrap(),
        mirror.file("squashfs").data
    );
    let ga = store
        .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
        .unwrap();
    assert_eq!(ga.squashfs, boot.squashfs, "shared squashfs stored once");
    assert!(
        store
            .boot_files("ubuntu", "arm64", "ga-22.04", "jammy")
            .is_none()
    );
    assert!(store.resources().iter().any(|r| matches!(
        &r.kind,
        ResourceKind::Bootloader(b) if b.os == "pxelinux" && b.bootloader_type == "pxe"
    )));

    let events = std::mem::take(&mut *events.lock().unwrap());
    assert!(matches!(
        events.first(),
        Some(Progress::Planned {
            files: 7,
            present_files: 0,
            ..
        })
    ));
    let last_bytes = events.iter().rev().find_map(|e| match e {
        Progress::Bytes { done, total, .. } => Some((*done, *total)),
        _ => None,
    });
    assert_eq!(last_bytes, Some((expected_bytes, expected_bytes)));
    // Per-file progress grows and ends at each file's size.
    let mut per_file = std::collections::BTreeMap::new();
    for e in &events {
        if let Progress::FileBytes {
            sha256, done, size, ..
        } = e
        {
            assert!(done <= size, "{e:?}");
            let last = per_file.insert(*sha256, (*done, *size));
            assert!(last.is_none_or(|(d, _)| d < *done), "grows: {e:?}");
        }
    }
    // Both receive paths report per-file progress, covering every file.
    assert_eq!(per_file.len(), 7, "splice path: {splice}");
    assert!(per_file.values().all(|(done, size)| done == size));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::FileDone { .. }))
            .count(),
        7
    );

    // A second run finds everything present and downloads nothing.
    server.clear_log();
    let again = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (again.downloaded_files, again.reused_files, again.promoted),
        (0, 7, 0)
    );
    assert!(
        server
            .requests_for(&mirror.file("squashfs").path)
            .is_empty()
    );
}

/// Our reading of a signed mirror equals python-simplestreams' own
/// (`sstream-query`, which verifies with gpgv against the same keyring).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_match_sstream_query() {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Clearsigned, 4096).unwrap();
    let keyring = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keyring.path(), gpg.export(false).unwrap()).unwrap();

    let out = Command::new(tool("sstream-query", "PyPI package python-simplestreams"))
        .arg("--keyring")
        .arg(keyring.path())
        .arg(format!(
            "file://{}",
            mirror.index_path(Signing::Clearsigned).display()
        ))
        .arg("--output-format=%(product_name)s %(version_name)s %(item_name)s %(sha256)s %(size)s")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();

    let mut src = source(&format!("file://{}/", mirror.root().display()), Vec::new());
    src.keyring = Some(KeyringSource::File(keyring.path().to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let importer = Importer::new(
        Arc::new(Store::open(dir.path()).unwrap()),
        SyncOptions::default(),
    )
    .unwrap();
    let streams = importer.read_source(&src).await.unwrap();
    let ours: BTreeSet<String> = streams
        .iter()
        .flat_map(|p| p.items())
        .map(|i| {
            format!(
                "{} {} {} {} {}",
                i.product_name,
                i.version_name,
                i.item_name,
                i.item.sha256.unwrap(),
                i.item.size.unwrap()
            )
        })
        .collect();
    assert_eq!(ours.len(), 12);
    assert_eq!(ours, theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_signatures_and_armoured_keyring() {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Detached, 4096).unwrap();
    let server = Server::start(mirror.root()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(store.clone(), SyncOptions::default()).unwrap();
    // The source names the index itself (`…/streams/v1/index.json`).
    let src = source(
        &format!("{}streams/v1/index.json", server.url()),
        gpg.export(true).unwrap(),
    );
    let report = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.promoted, 3);
    assert!(
        store
            .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
            .is_some()
    );
    assert_eq!(
        server
            .requests_for(&format!("streams/v1/{}.json.gpg", crate::lab::CONTENT_ID))
            .len(),
        2,
        "HEAD then GET of the detached signature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_urls_and_unsigned_mirror_with_skip() {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Detached, 4096).unwrap();
    // Remove the signatures: an unsigned mirror.
    for e in std::fs::read_dir(mirror.root().join("streams/v1")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "gpg") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(store.clone(), SyncOptions::default()).unwrap();
    let mut src = source(
        &format!("file://{}/streams/v1/index.json", mirror.root().display()),
        gpg.export(false).unwrap(),
    );
    // With a keyring an unsigned mirror is refused ...
    let e = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    assert!(store.resources().is_empty());
    // ... and accepted only when the source says to skip verification.
    src.skip_keyring_verification = true;
    let report = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.promoted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_serial_replaces_older_and_gc_keeps_newest() {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let keyring = gpg.export(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(
        store.clone(),
        SyncOptions {
            keep_versions: 1,
            ..SyncOptions::default()
        },
    )
    .unwrap();
    let old = Mirror::build(&gpg, "20250615", Signing::Clearsigned, 4096).unwrap();
    let src = source(
        &format!("file://{}/", old.root().display()),
        keyring.clone(),
    );
    importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    let old_kernel = store
        .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
        .unwrap()
        .kernel;
    assert!(old_kernel.exists());

    let new = Mirror::build(&gpg, "20250701", Signing::Clearsigned, 4096).unwrap();
    let src = source(&format!("file://{}/", new.root().display()), keyring);
    let report = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    let b = store
        .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
        .unwrap();
    assert_eq!(b.version, "20250701");
    assert_eq!(
        std::fs::read(&b.kernel).unwrap(),
        new.file("ga-kernel").data
    );
    // ga and hwe 20250615 dropped; the bootloader version is unchanged.
    assert_eq!(report.gc.dropped_versions.len(), 2, "{:?}", report.gc);
    assert!(!old_kernel.exists());
    assert_eq!(store_files(&store), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_sources_are_refused_with_a_clear_error() {
    let a = source("http://127.0.0.1:1/a/", Vec::new());
    let mut b = source("http://127.0.0.1:1/b/", Vec::new());
    b.name = Some("mirror-b".into());
    let e = maas_images::single_source(&[a, b]).unwrap_err();
    assert!(matches!(e, Error::MultipleSources(ref names) if names.len() == 2));
    assert!(e.to_string().contains("mirror-b"), "{e}");
}

/// An answer that is not the plain case (here a chunked body) is fetched by
/// the general client instead; the other files still take the splice path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_answer_falls_back_to_the_general_client() {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Clearsigned, 300_000).unwrap();
    let server = Server::start(mirror.root()).await.unwrap();
    server.fault(&mirror.file("squashfs").path.clone(), Fault::Chunked);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(store.clone(), SyncOptions::default()).unwrap();
    let src = source(&server.url(), gpg.export(false).unwrap());
    let report = importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.downloaded_files, report.spliced_files), (7, 6));
    // Asked twice: once by the splice path (which gave up on the head), once
    // by the general client.
    assert_eq!(server.requests_for(&mirror.file("squashfs").path).len(), 2);
    let f = mirror.file("squashfs");
    let stored = std::fs::read(store.path_of(&f.sha256().parse().unwrap())).unwrap();
    assert!(stored == f.data, "stored bytes differ from the mirror's");
}

/// `Importer::sync` can be spawned on a multi-threaded runtime.
#[test]
fn sync_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(store, SyncOptions::default()).unwrap();
    let src = source("http://127.0.0.1:1/", Vec::new());
    let fut = importer.sync(&src, None, CancellationToken::new());
    assert_send(&fut);
}
