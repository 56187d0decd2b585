//! Every way an import must fail, and that nothing is promoted when it does.

use std::sync::Arc;

use maas_images::verify::SignatureFailure;
use maas_images::{Error, Importer, Store, SyncOptions};
use tokio_util::sync::CancellationToken;

use crate::lab::{Fault, Gpg, Mirror, Server, Signing, source};

struct Case {
    gpg: Gpg,
    mirror: Mirror,
    server: Server,
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    importer: Importer,
}

async fn case(big: usize) -> Case {
    case_with(big, true).await
}

/// A case whose importer receives `http://` files on the `splice(2)` path
/// (`splice`) or only through the general HTTP client.
async fn case_with(big: usize, splice: bool) -> Case {
    let gpg = Gpg::new("Lab <lab@example.invalid>").unwrap();
    let mirror = Mirror::build(&gpg, "20250615", Signing::Clearsigned, big).unwrap();
    let server = Server::start(mirror.root()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let importer = Importer::new(
        store.clone(),
        SyncOptions {
            concurrency: 2,
            splice_http: splice,
            ..SyncOptions::default()
        },
    )
    .unwrap();
    Case {
        gpg,
        mirror,
        server,
        _dir: dir,
        store,
        importer,
    }
}

impl Case {
    async fn sync(&self) -> maas_images::Result<maas_images::SyncReport> {
        let src = source(&self.server.url(), self.gpg.export(false).unwrap());
        self.importer
            .sync(&src, None, CancellationToken::new())
            .await
    }

    fn assert_nothing_promoted(&self) {
        assert!(self.store.resources().is_empty());
        assert!(
            self.store
                .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
                .is_none()
        );
    }

    fn squashfs_in_store(&self) -> bool {
        let f = self.mirror.file("squashfs");
        self.store
            .contains(&f.sha256().parse().unwrap(), f.data.len() as u64)
    }
}

fn signature_failure(e: &Error) -> &SignatureFailure {
    match e {
        Error::Signature { failure, .. } => failure,
        other => panic!("expected a signature error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_json_is_rejected() {
    let c = case(4096).await;
    let path = c.mirror.products_sjson();
    let text = std::fs::read_to_string(&path).unwrap();
    // Point the kernel at another digest, keeping the signature.
    let real = c.mirror.file("ga-kernel").sha256();
    std::fs::write(&path, text.replace(&real, &"0".repeat(64))).unwrap();
    let e = c.sync().await.unwrap_err();
    assert!(
        matches!(signature_failure(&e), SignatureFailure::BadSignature(_)),
        "{e}"
    );
    assert!(e.to_string().contains(crate::lab::CONTENT_ID), "{e}");
    c.assert_nothing_promoted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_is_rejected() {
    let c = case(4096).await;
    let path = c.mirror.index_path(Signing::Clearsigned);
    let text = std::fs::read_to_string(&path).unwrap();
    // Damage the signature packet itself (a base64 line inside the signature block).
    let sig_start = text.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    let (head, sig) = text.split_at(sig_start);
    let mut lines: Vec<String> = sig.lines().map(str::to_owned).collect();
    let line = lines
        .iter()
        .position(|l| l.len() > 40)
        .expect("a base64 line");
    let mut chars: Vec<char> = lines[line].chars().collect();
    chars[30] = if chars[30] == 'A' { 'B' } else { 'A' };
    lines[line] = chars.into_iter().collect();
    std::fs::write(&path, format!("{head}{}\n", lines.join("\n"))).unwrap();
    let e = c.sync().await.unwrap_err();
    assert!(matches!(e, Error::Signature { .. }), "{e}");
    assert!(e.to_string().contains("index.sjson"), "{e}");
    c.assert_nothing_promoted();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_not_in_keyring_is_rejected() {
    let c = case(4096).await;
    let stranger = Gpg::new("Stranger <s@example.invalid>").unwrap();
    let src = source(&c.server.url(), stranger.export(false).unwrap());
    let e = c
        .importer
        .sync(&src, None, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(signature_failure(&e), SignatureFailure::UnknownKey { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("not in the keyring"), "{e}");
    c.assert_nothing_promoted();
}

async fn sha256_mismatch_is_rejected_and_not_kept(splice: bool) {
    let c = case_with(256 << 10, splice).await;
    let squash = c.mirror.file("squashfs").path.clone();
    c.server.fault(&squash, Fault::Corrupt);
    let e = c.sync().await.unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains("squashfs"), "{e}");
    c.assert_nothing_promoted();
    assert!(!c.squashfs_in_store());
    // Corrupt bytes are not kept for resuming.
    let sha = c.mirror.file("squashfs").sha256().parse().unwrap();
    assert!(!c.store.partial_path(&sha).exists());
}

async fn size_mismatch_is_rejected(splice: bool) {
    let c = case_with(256 << 10, splice).await;
    c.server
        .fault(&c.mirror.file("squashfs").path.clone(), Fault::Extend(10));
    let e = c.sync().await.unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { expected, actual, .. } if actual > expected),
        "{e}"
    );
    c.assert_nothing_promoted();
    assert!(!c.squashfs_in_store());
}

async fn truncated_download_is_rejected_then_resumed_with_range(splice: bool) {
    let c = case_with(256 << 10, splice).await;
    let squash = c.mirror.file("squashfs").path.clone();
    let cut = 100_000;
    c.server.fault(&squash, Fault::Truncate(cut));
    let e = c.sync().await.unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { actual, .. } if actual == cut as u64),
        "{e}"
    );
    c.assert_nothing_promoted();
    assert!(!c.squashfs_in_store());

    c.server.clear_faults();
    c.server.clear_log();
    let report = c.sync().await.unwrap();
    assert_eq!(report.promoted, 3);
    // Only the missing tail was asked for, and finished files were not fetched again.
    assert_eq!(
        c.server.requests_for(&squash),
        [Some(format!("bytes={cut}-"))]
    );
    assert_eq!(report.downloaded_files, 1);
    // The resumed tail came over the path under test.
    assert_eq!(report.spliced_files, usize::from(splice));
    assert_eq!(
        report.downloaded_bytes,
        c.mirror.file("squashfs").data.len() as u64 - cut as u64
    );
    assert!(c.squashfs_in_store());
}

async fn server_error_mid_file_then_resume_skips_finished_files(splice: bool) {
    let c = case_with(512 << 10, splice).await;
    let squash = c.mirror.file("squashfs").path.clone();
    let kernel = c.mirror.file("ga-kernel").path.clone();
    c.server.fault(&squash, Fault::AbortAfter(200_000));
    let e = c.sync().await.unwrap_err();
    assert!(matches!(e, Error::Download { .. }), "{e}");
    assert!(e.to_string().contains("squashfs"), "{e}");
    c.assert_nothing_promoted();
    assert!(!c.squashfs_in_store());

    c.server.clear_faults();
    c.server.clear_log();
    let report = c.sync().await.unwrap();
    assert_eq!(report.promoted, 3);
    assert_eq!(report.reused_files, 6);
    assert_eq!(report.downloaded_files, 1);
    // The resumed tail came over the path under test.
    assert_eq!(report.spliced_files, usize::from(splice));
    assert!(
        c.server.requests_for(&kernel).is_empty(),
        "kernel fetched again"
    );
    let ranges = c.server.requests_for(&squash);
    assert_eq!(ranges.len(), 1);
    assert!(
        ranges[0]
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=")),
        "resume without Range: {ranges:?}"
    );
}

async fn http_500_is_a_clear_error(splice: bool) {
    let c = case_with(4096, splice).await;
    c.server
        .fault(&c.mirror.file("ga-initrd").path.clone(), Fault::Status500);
    let e = c.sync().await.unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    assert!(e.to_string().contains("boot-initrd"), "{e}");
    c.assert_nothing_promoted();
}

async fn cancellation_stops_the_sync_and_keeps_nothing_promoted(splice: bool) {
    let c = case_with(4096, splice).await;
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let src = source(&c.server.url(), c.gpg.export(false).unwrap());
    // Cancel as soon as the plan is made.
    let progress: maas_images::ProgressFn = Arc::new(move |p| {
        if matches!(p, maas_images::Progress::Planned { .. }) {
            token.cancel();
        }
    });
    let e = c
        .importer
        .sync(&src, Some(progress), cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    c.assert_nothing_promoted();
}

async fn large_file_cut_mid_buffer_resumes_byte_exact(splice: bool) {
    // Several of the importer's 2 MiB pipeline buffers plus a ragged tail,
    // cut at an offset that is not a buffer boundary.
    let size = (5 << 20) + 12_345;
    let c = case_with(size, splice).await;
    let squash = c.mirror.file("squashfs").path.clone();
    let cut = (3 << 20) + 7;
    c.server.fault(&squash, Fault::Truncate(cut));
    let e = c.sync().await.unwrap_err();
    assert!(
        matches!(e, Error::SizeMismatch { actual, .. } if actual == cut as u64),
        "{e}"
    );
    assert!(!c.squashfs_in_store());

    c.server.clear_faults();
    c.server.clear_log();
    let report = c.sync().await.unwrap();
    assert_eq!(report.promoted, 3);
    assert_eq!(
        c.server.requests_for(&squash),
        [Some(format!("bytes={cut}-"))]
    );
    assert_eq!(report.downloaded_bytes, (size - cut) as u64);
    assert_eq!(report.spliced_files, usize::from(splice));
    let f = c.mirror.file("squashfs");
    let stored = std::fs::read(c.store.path_of(&f.sha256().parse().unwrap())).unwrap();
    assert!(stored == f.data, "stored bytes differ from the mirror's");
}

/// Cancelling while a body is arriving (the server has stalled mid-file)
/// stops the download promptly, promotes nothing and keeps what arrived for
/// the next run, which resumes with a Range.
async fn cancellation_mid_file_keeps_the_partial_for_resume(splice: bool) {
    let size = 5 << 20;
    let c = case_with(size, splice).await;
    let squash = c.mirror.file("squashfs").path.clone();
    let stall = 3 << 20;
    c.server.fault(&squash, Fault::StallAfter(stall));
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let src = source(&c.server.url(), c.gpg.export(false).unwrap());
    // Cancel once most of what the server will send has arrived.
    let progress: maas_images::ProgressFn = Arc::new(move |p| {
        if matches!(p, maas_images::Progress::Bytes { done, .. } if done >= (2 << 20)) {
            token.cancel();
        }
    });
    let e = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        c.importer.sync(&src, Some(progress), cancel),
    )
    .await
    .expect("cancellation did not stop the stalled download")
    .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    c.assert_nothing_promoted();
    assert!(!c.squashfs_in_store());
    let sha = c.mirror.file("squashfs").sha256().parse().unwrap();
    let kept = std::fs::metadata(c.store.partial_path(&sha)).unwrap().len();
    assert!(kept > 0 && kept <= stall as u64, "kept {kept} bytes");

    c.server.clear_faults();
    c.server.clear_log();
    let report = c.sync().await.unwrap();
    assert_eq!(report.promoted, 3);
    assert_eq!(
        c.server.requests_for(&squash),
        [Some(format!("bytes={kept}-"))]
    );
    let f = c.mirror.file("squashfs");
    let stored = std::fs::read(c.store.path_of(&f.sha256().parse().unwrap())).unwrap();
    assert!(stored == f.data, "stored bytes differ from the mirror's");
}

/// Runs each download case on both receive paths for `http://` files.
macro_rules! both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn splice() {
                super::$name(true).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn general_client() {
                super::$name(false).await;
            }
        }
    )*};
}

both_paths!(
    sha256_mismatch_is_rejected_and_not_kept,
    size_mismatch_is_rejected,
    truncated_download_is_rejected_then_resumed_with_range,
    server_error_mid_file_then_resume_skips_finished_files,
    http_500_is_a_clear_error,
    cancellation_stops_the_sync_and_keeps_nothing_promoted,
    large_file_cut_mid_buffer_resumes_byte_exact,
    cancellation_mid_file_keeps_the_partial_for_resume,
);
