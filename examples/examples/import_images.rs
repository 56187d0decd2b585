//! Imports boot images from a signed simplestreams mirror into a local
//! content-addressed store, with a progress bar, then prints what the boot
//! stack would serve.
//!
//! ```sh
//! cargo run -p maas-examples --example import_images -- \
//!     --url http://127.0.0.1:8080/ --keyring mirror-keyring.gpg \
//!     --store /tmp/maas-images --release jammy --arch amd64
//! ```
//!
//! `bench/images/run.sh` builds a gpg-signed mirror with python-simplestreams,
//! serves it with nginx on loopback and runs this example against it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use maas_images::{
    BootSource, Importer, KeyringSource, Progress, ResourceKind, Selection, Store, SyncOptions,
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    /// Mirror root (or its `streams/v1/index.sjson`): http, https or file URL.
    #[arg(long)]
    url: String,
    /// Keyring that signs the mirror (binary or armoured).
    #[arg(long, conflicts_with = "skip_keyring_verification")]
    keyring: Option<PathBuf>,
    /// Accept an unsigned mirror.
    #[arg(long)]
    skip_keyring_verification: bool,
    /// Store directory.
    #[arg(long)]
    store: PathBuf,
    /// OS to select.
    #[arg(long, default_value = "ubuntu")]
    os: String,
    /// Release to select (`*` for all).
    #[arg(long, default_value = "*")]
    release: String,
    /// Architectures to select.
    #[arg(long, default_values_t = ["amd64".to_string()])]
    arch: Vec<String>,
    /// Parallel downloads.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Versions of each product to keep.
    #[arg(long, default_value_t = 2)]
    keep: usize,
    /// No progress bar (for benchmarks).
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut source = BootSource::new(
        args.url.parse().context("--url")?,
        KeyringSource::File(args.keyring.clone().unwrap_or_default()),
    );
    source.skip_keyring_verification = args.skip_keyring_verification;
    if args.keyring.is_none() && !args.skip_keyring_verification {
        anyhow::bail!("give --keyring, or --skip-keyring-verification for an unsigned mirror");
    }
    let arches: Vec<&str> = args.arch.iter().map(String::as_str).collect();
    source
        .selections
        .push(Selection::new(&args.os, &args.release, &arches));

    let store = Arc::new(Store::open(&args.store)?);
    let importer = Importer::new(
        store.clone(),
        SyncOptions {
            concurrency: args.concurrency,
            keep_versions: args.keep,
            ..SyncOptions::default()
        },
    )?;

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
        )?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let b = bar.clone();
    let progress = Arc::new(move |p: Progress| match p {
        Progress::Planned {
            files,
            bytes,
            present_files,
            present_bytes,
        } => {
            b.set_length(bytes);
            b.set_position(present_bytes);
            b.set_message(format!("{files} files, {present_files} already present"));
        }
        Progress::Bytes { done, .. } => b.set_position(done),
        Progress::FileDone { path, .. } => b.set_message(path),
        _ => {}
    });

    // Ctrl-C cancels cleanly; partial files stay for the next run.
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });

    let started = Instant::now();
    let report = importer.sync(&source, Some(progress), cancel).await?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "downloaded {} files, {} bytes in {:.2} s ({:.0} MB/s); reused {}; promoted {} versions; gc freed {} bytes",
        report.downloaded_files,
        report.downloaded_bytes,
        secs,
        report.downloaded_bytes as f64 / secs / 1e6,
        report.reused_files,
        report.promoted,
        report.gc.freed_bytes,
    );
    for r in store.resources() {
        if let ResourceKind::Boot(b) = &r.kind
            && let Some(files) = store.boot_files(&b.os, &b.arch, &b.subarch, &b.release)
        {
            println!(
                "{}/{}/{}/{} {}: kernel {}",
                b.os,
                b.arch,
                b.subarch,
                b.release,
                files.version,
                files.kernel.display()
            );
        }
    }
    Ok(())
}
