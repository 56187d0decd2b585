//! The lab's mirror: built from Debian packages by tests/lab/build-images.sh,
//! gpg-signed; the reference reader (python-simplestreams' sstream-query)
//! verifies and lists it, `maas-images` imports it through the normal
//! boot-source path, and a tampered copy is refused.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use maas_images::{BootSource, Importer, KeyringSource, Selection, Store, SyncOptions};
use tokio_util::sync::CancellationToken;

use crate::harness::{images, run, venv_bin};

fn source(mirror: &Path, keyring: &Path) -> BootSource {
    let url = url::Url::from_directory_path(mirror).expect("file url");
    let mut s = BootSource::new(url, KeyringSource::File(keyring.to_owned()));
    s.selections
        .push(Selection::new("debian", "bookworm", &["amd64"]));
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn debian_mirror_is_signed_and_imports() {
    let out = tokio::task::spawn_blocking(|| images().to_owned())
        .await
        .expect("build");
    let mirror = out.join("mirror");
    let keyring = out.join("keyring.gpg");

    // The reference reader verifies the signatures and lists the four items.
    let listed = run(Command::new(venv_bin().join("sstream-query"))
        .arg("--keyring")
        .arg(&keyring)
        .arg(format!(
            "file://{}/streams/v1/index.sjson",
            mirror.display()
        ))
        .arg("arch=amd64")
        .arg("os=debian")
        .arg("--output-format=%(item_name)s %(sha256)s %(os)s %(release)s"))
    .expect("sstream-query");
    let mut items: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    items.sort_unstable();
    assert_eq!(
        items,
        ["boot-initrd", "boot-kernel", "root-tgz", "squashfs"],
        "{listed}"
    );
    assert!(listed.contains("debian bookworm"), "{listed}");

    // maas-images imports it.
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(store_dir.path()).expect("store"));
    let importer = Importer::new(store.clone(), SyncOptions::default()).expect("importer");
    let report = importer
        .sync(&source(&mirror, &keyring), None, CancellationToken::new())
        .await
        .expect("sync");
    assert_eq!(report.downloaded_files, 4, "{report:?}");
    let files = store
        .boot_files("debian", "amd64", "generic", "bookworm")
        .expect("boot files for debian/amd64/generic/bookworm");
    let kernel = std::fs::read(&files.kernel).expect("kernel");
    // Debian's kernel: a bzImage ("HdrS" at 0x202) with a PE header (EFI stub).
    assert_eq!(&kernel[0x202..0x206], b"HdrS");
    assert_eq!(&kernel[..2], b"MZ");
    let initrd = std::fs::read(&files.initrd).expect("initrd");
    assert_eq!(&initrd[..2], [0x1f, 0x8b], "gzip'd cpio initrd");
    let squash = std::fs::read(files.squashfs.as_ref().expect("squashfs")).expect("squashfs");
    assert_eq!(&squash[..4], b"hsqs");
    let resources = store.resources();
    assert!(
        resources
            .iter()
            .flat_map(|r| &r.files)
            .any(|f| f.item == "root-tgz"),
        "{resources:?}"
    );

    // A tampered product document is refused before anything is parsed.
    let bad = tempfile::tempdir().expect("tempdir");
    run(Command::new("cp").arg("-a").arg(&mirror).arg(bad.path())).expect("copy mirror");
    let bad_mirror = bad.path().join("mirror");
    let products = std::fs::read_dir(bad_mirror.join("streams/v1"))
        .expect("streams")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "sjson")
                && p.file_name().is_none_or(|n| n != "index.sjson")
        })
        .expect("a product .sjson");
    let text = std::fs::read_to_string(&products).expect("read");
    std::fs::write(&products, text.replacen("bookworm", "bookwarm", 1)).expect("write");
    let store2 = Arc::new(Store::open(bad.path().join("store")).expect("store"));
    let importer2 = Importer::new(store2, SyncOptions::default()).expect("importer");
    let err = importer2
        .sync(
            &source(&bad_mirror, &keyring),
            None,
            CancellationToken::new(),
        )
        .await
        .expect_err("a tampered mirror must be refused");
    assert!(
        format!("{err:#}").to_lowercase().contains("signature")
            || format!("{err:?}").to_lowercase().contains("verif"),
        "{err:?}"
    );
}
