//! The sync engine: reads a source's signed streams, works out what is
//! wanted, downloads what the store lacks (concurrently, resuming partial
//! files, checking size and sha256 while streaming), then promotes the
//! versions into the store and garbage-collects old ones.
//!
//! A plain `http://` answer (200 or 206 with a `Content-Length`) is received
//! on the `splice` module's path: the kernel moves the body socket → pipe →
//! staged file and a second thread hashes the file's written range from the
//! page cache, so no body byte passes through an HTTP client's buffers. Any
//! other answer, and `https://` and `file://`, take the general path below;
//! both end in the same size/sha256 check before the atomic rename.
//!
//! The general path is a small pipeline: the network task copies the received
//! chunks into a few recycled 2 MiB buffers and hands each full one to a
//! hashing thread and a writing thread at once, so the slowest of the three
//! (sha256) sets the pace instead of their sum, and memory stays at four
//! buffers per download whatever the image size.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::digest::{Hasher, Sha256};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::simplestreams::{Index, Products};
use crate::source::{BootSource, Wanted, WantedFile, compute_wanted, unmatched_selections};
use crate::splice;
use crate::store::{GcReport, Store};
use crate::verify::Verification;

/// Knobs of a sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Files downloaded at once.
    pub concurrency: usize,
    /// Versions of each product kept by garbage collection.
    pub keep_versions: usize,
    /// Largest simplestreams document accepted, in bytes.
    pub document_limit: u64,
    /// Receive `http://` files with `splice(2)` (socket → pipe → file, see
    /// the `splice` module) when the server's answer is plain; `false`
    /// sends everything through the general HTTP client.
    pub splice_http: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            keep_versions: 2,
            document_limit: 64 << 20,
            splice_http: true,
        }
    }
}

/// What a sync reports while it runs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// Streams read and the plan made.
    Planned {
        /// Distinct files wanted.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// Of those, files already in the store.
        present_files: usize,
        /// And their size.
        present_bytes: u64,
    },
    /// A download started (`resumed_from` > 0 when a partial file was reused).
    FileStarted {
        /// Path in the mirror.
        path: String,
        /// Expected size.
        size: u64,
        /// Bytes already staged from an earlier run.
        resumed_from: u64,
    },
    /// Bytes arrived.
    Bytes {
        /// Bytes of wanted files present so far (store + staged + received).
        done: u64,
        /// Total bytes wanted.
        total: u64,
        /// Received bytes per second since this sync started.
        rate: f64,
    },
    /// Bytes of one file arrived (per pipeline buffer, so per 2 MiB at
    /// most), for per-resource progress.
    FileBytes {
        /// Path in the mirror.
        path: String,
        /// The file's digest (files are shared between products by digest).
        sha256: Sha256,
        /// Bytes of this file present so far (resumed + received).
        done: u64,
        /// Its expected size.
        size: u64,
    },
    /// A file was verified and moved into the store.
    FileDone {
        /// Path in the mirror.
        path: String,
        /// Its digest.
        sha256: Sha256,
    },
    /// Versions were promoted into the catalog.
    Promoted {
        /// How many new versions.
        versions: usize,
    },
}

/// Receives progress events; called from download tasks, so keep it cheap.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// The outcome of a sync.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// What was wanted.
    pub wanted: Wanted,
    /// Files fetched in this run.
    pub downloaded_files: usize,
    /// Of those, files received on the `splice(2)` path.
    pub spliced_files: usize,
    /// Bytes received in this run.
    pub downloaded_bytes: u64,
    /// Files that were already in the store.
    pub reused_files: usize,
    /// Versions newly promoted.
    pub promoted: usize,
    /// What garbage collection removed.
    pub gc: GcReport,
    /// Non-fatal findings (selections matching nothing).
    pub warnings: Vec<String>,
}

/// Imports boot images from a source into a store.
#[derive(Debug)]
pub struct Importer {
    fetcher: Fetcher,
    store: Arc<Store>,
    options: SyncOptions,
}

struct Counters {
    done: AtomicU64,
    received: AtomicU64,
    files: AtomicUsize,
    spliced: AtomicUsize,
    total: u64,
    started: Instant,
}

impl Counters {
    /// Counts `n` more bytes received for `file` (`file_done` of it so far)
    /// and reports the file's and the whole sync's progress.
    fn add_bytes(
        &self,
        file: &WantedFile,
        n: u64,
        file_done: u64,
        emit: &(dyn Fn(Progress) + Sync),
    ) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let got = self.received.fetch_add(n, Ordering::Relaxed) + n;
        let secs = self.started.elapsed().as_secs_f64();
        emit(Progress::FileBytes {
            path: file.path.clone(),
            sha256: file.sha256,
            done: file_done,
            size: file.size,
        });
        emit(Progress::Bytes {
            done,
            total: self.total,
            rate: if secs > 0.0 { got as f64 / secs } else { 0.0 },
        });
    }
}

impl Importer {
    /// An importer writing into `store`.
    pub fn new(store: Arc<Store>, options: SyncOptions) -> Result<Self> {
        Ok(Self {
            fetcher: Fetcher::new()?,
            store,
            options,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Fetches, verifies and parses the source's index and every products
    /// document it lists. A `.sjson` is verified inline; a `.json` needs a
    /// detached `.json.gpg` unless the source skips verification.
    pub async fn read_source(&self, source: &BootSource) -> Result<Vec<Products>> {
        let verification = source.verification()?;
        let index_url = source.index_url()?;
        let root = source.mirror_root()?;
        let index = Index::parse(&self.fetch_verified(&index_url, &verification).await?)?;
        let mut out = Vec::new();
        for (content_id, entry) in index.product_streams() {
            let url = join(&root, &entry.path)?;
            let doc = self.fetch_verified(&url, &verification).await?;
            let products = Products::parse(&doc)?;
            if products.content_id != content_id {
                return Err(Error::Document {
                    document: url.to_string(),
                    reason: format!(
                        "content_id {:?} differs from the index's {content_id:?}",
                        products.content_id
                    ),
                });
            }
            out.push(products);
        }
        Ok(out)
    }

    async fn fetch_verified(
        &self,
        url: &Url,
        verification: &Verification,
    ) -> Result<crate::verify::Verified<Bytes>> {
        let data = self
            .fetcher
            .document(url, self.options.document_limit)
            .await?;
        let name = url.as_str();
        if url.path().ends_with(".json") && matches!(verification, Verification::Keyring(_)) {
            let sig_url = Url::parse(&format!("{url}.gpg"))
                .map_err(|e| Error::Invalid(format!("bad URL {url}.gpg: {e}")))?;
            if self.fetcher.exists(&sig_url).await {
                let sig = self
                    .fetcher
                    .document(&sig_url, self.options.document_limit)
                    .await?;
                return verification.verify_detached(name, data, &sig);
            }
        }
        verification.verify_inline(name, data)
    }

    /// Runs one import: read and verify the streams, download what is
    /// missing, promote, garbage-collect. On any error nothing is promoted;
    /// files that finished stay in the store and partial files stay staged,
    /// so the next run resumes where this one stopped.
    pub async fn sync(
        &self,
        source: &BootSource,
        progress: Option<ProgressFn>,
        cancel: CancellationToken,
    ) -> Result<SyncReport> {
        let streams = tokio::select! {
            r = self.read_source(source) => r?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        self.sync_streams(source, &streams, progress, cancel).await
    }

    /// [`Importer::sync`] from streams the caller already read (and
    /// verified) with [`Importer::read_source`], e.g. to record what the
    /// source offers before downloading.
    pub async fn sync_streams(
        &self,
        source: &BootSource,
        streams: &[Products],
        progress: Option<ProgressFn>,
        cancel: CancellationToken,
    ) -> Result<SyncReport> {
        let warnings = unmatched_selections(streams, &source.selections)
            .into_iter()
            .map(|s| {
                format!(
                    "selection os={} release={} arches={:?} matches no product",
                    s.os, s.release, s.arches
                )
            })
            .collect::<Vec<_>>();
        for w in &warnings {
            tracing::warn!(source = %source.display_name(), "{w}");
        }
        let wanted = compute_wanted(streams, &source.selections)?;
        let root = source.mirror_root()?;
        let emit = |p: Progress| {
            if let Some(f) = &progress {
                f(p);
            }
        };

        let files = wanted.unique_files();
        // Until the versions are committed, nothing deletes what they need.
        let pins = self.store.pin(files.iter().map(|f| f.sha256));
        let (present, missing): (Vec<&WantedFile>, Vec<&WantedFile>) = files
            .iter()
            .partition(|f| self.store.contains(&f.sha256, f.size));
        let present_bytes: u64 = present.iter().map(|f| f.size).sum();
        emit(Progress::Planned {
            files: files.len(),
            bytes: wanted.total_bytes(),
            present_files: present.len(),
            present_bytes,
        });
        let counters = Counters {
            done: AtomicU64::new(present_bytes),
            received: AtomicU64::new(0),
            files: AtomicUsize::new(0),
            spliced: AtomicUsize::new(0),
            total: wanted.total_bytes(),
            started: Instant::now(),
        };

        // The futures are made first and the stream only runs them: a
        // closure mapping the stream's items to borrowing futures would be
        // part of this future's type, and rustc cannot then prove it `Send`
        // (a higher-ranked lifetime it fails to generalise).
        let downloads: Vec<_> = missing
            .iter()
            .map(|f| self.download(&root, f, &counters, &emit, &cancel))
            .collect();
        let results: Vec<Result<()>> = futures::stream::iter(downloads)
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        if let Some(err) = results.into_iter().find_map(|r| r.err()) {
            return Err(err);
        }

        let promoted = self.store.commit(&wanted.versions)?;
        drop(pins);
        emit(Progress::Promoted { versions: promoted });
        let gc = self.store.gc(self.options.keep_versions)?;
        Ok(SyncReport {
            downloaded_files: counters.files.load(Ordering::Relaxed),
            spliced_files: counters.spliced.load(Ordering::Relaxed),
            downloaded_bytes: counters.received.load(Ordering::Relaxed),
            reused_files: present.len(),
            promoted,
            gc,
            warnings,
            wanted,
        })
    }

    async fn download(
        &self,
        root: &Url,
        file: &WantedFile,
        counters: &Counters,
        emit: &(dyn Fn(Progress) + Sync),
        cancel: &CancellationToken,
    ) -> Result<()> {
        let url = join(root, &file.path)?;
        let staged = self.store.partial_path(&file.sha256);
        let mut have = tokio::fs::metadata(&staged)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if have > file.size {
            have = 0;
        }
        if self.options.splice_http && url.scheme() == "http" {
            match self
                .download_spliced(&url, file, have, counters, emit, cancel)
                .await?
            {
                None => return Ok(()),
                Some(why) => {
                    tracing::debug!(%url, reason = %why, "not spliceable: using the general client");
                }
            }
        }
        let mut body = tokio::select! {
            r = self.fetcher.open(&url, have) => r?,
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        // The server ignored the range: start over.
        if body.offset != have {
            have = 0;
        }
        emit(Progress::FileStarted {
            path: file.path.clone(),
            size: file.size,
            resumed_from: have,
        });
        counters.done.fetch_add(have, Ordering::Relaxed);

        let (hash_tx, hash_rx) = mpsc::channel::<Batch>(POOL_BUFFERS);
        let (write_tx, write_rx) = mpsc::channel::<Batch>(POOL_BUFFERS);
        let hasher = {
            let staged = staged.clone();
            tokio::task::spawn_blocking(move || hash_prefix_then_stream(&staged, have, hash_rx))
        };
        let writer = {
            let staged = staged.clone();
            tokio::task::spawn_blocking(move || write_stream(&staged, have, write_rx))
        };

        let mut received = have;
        let what = file.path.clone();
        // A reference, so the per-buffer futures below copy it.
        let file_bytes = AtomicU64::new(have);
        let file_done = &file_bytes;
        let mut pool = Pool::new();
        let mut buf = pool.take().await;
        // Hands a full buffer to both threads and reports progress; false
        // when a thread has gone (its error is reported below).
        let hand_on = |buf: Vec<u8>, pool: &Pool| {
            let n = buf.len() as u64;
            let b: Batch = Arc::new(pool.filled(buf));
            let (hash_tx, write_tx) = (&hash_tx, &write_tx);
            async move {
                if hash_tx.send(b.clone()).await.is_err() || write_tx.send(b).await.is_err() {
                    return false;
                }
                let of_file = file_done.fetch_add(n, Ordering::Relaxed) + n;
                counters.add_bytes(file, n, of_file, emit);
                true
            }
        };
        let outcome: Result<()> = async {
            loop {
                let chunk = tokio::select! {
                    c = body.stream.next() => c,
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                };
                let Some(chunk) = chunk else { break };
                let chunk = chunk?;
                received += chunk.len() as u64;
                if received > file.size {
                    return Err(Error::SizeMismatch {
                        what: what.clone(),
                        expected: file.size,
                        actual: received,
                    });
                }
                // Copy the chunk into a pooled buffer and drop it at once:
                // the HTTP client then reuses its own (cache-warm) read
                // buffer instead of allocating a fresh one per read, and the
                // threads downstream get few, large, recycled buffers.
                let mut rest: &[u8] = &chunk;
                while !rest.is_empty() {
                    let n = (BUF_BYTES - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    if buf.len() == BUF_BYTES {
                        let full = std::mem::replace(&mut buf, pool.take().await);
                        if !hand_on(full, &pool).await {
                            return Ok(());
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        // Whatever arrived (even before an error) is worth keeping for a resume.
        if !buf.is_empty() {
            hand_on(std::mem::take(&mut buf), &pool).await;
        }
        drop(hash_tx);
        drop(write_tx);
        let joined = |e: tokio::task::JoinError| Error::Invalid(format!("worker failed: {e}"));
        let written = writer.await.map_err(joined)?;
        let digest = hasher.await.map_err(joined)?;
        outcome?;
        written?;
        let digest = digest?;
        self.finish(&staged, file, received, digest, counters, emit)
            .await
    }

    /// The `splice(2)` path for one `http://` file: `Ok(None)` when the
    /// file was received, checked and stored; `Ok(Some(reason))` when the
    /// server's answer is not the plain case and the general client must
    /// fetch it instead (nothing was written then).
    async fn download_spliced(
        &self,
        url: &Url,
        file: &WantedFile,
        have: u64,
        counters: &Counters,
        emit: &(dyn Fn(Progress) + Sync),
        cancel: &CancellationToken,
    ) -> Result<Option<String>> {
        let joined = |e: tokio::task::JoinError| Error::Invalid(format!("worker failed: {e}"));
        // The blocking threads below watch this token: it is cancelled with
        // the sync's, and also when this future is dropped unfinished, so a
        // dropped sync does not leave a download running on its own.
        let cancel = &cancel.child_token();
        let _stop_on_drop = cancel.clone().drop_guard();
        let opening = {
            let (url, cancel) = (url.clone(), cancel.clone());
            tokio::task::spawn_blocking(move || splice::open(&url, have, &cancel))
        };
        let resp = tokio::select! {
            r = opening => match r.map_err(joined)?? {
                splice::Opened::Body(resp) => resp,
                splice::Opened::Unusual(why) => return Ok(Some(why)),
            },
            () = cancel.cancelled() => return Err(Error::Cancelled),
        };
        // 0 when the server ignored the range: the staged prefix is dropped.
        let from = resp.offset;
        emit(Progress::FileStarted {
            path: file.path.clone(),
            size: file.size,
            resumed_from: from,
        });
        counters.done.fetch_add(from, Ordering::Relaxed);

        let staged = self.store.partial_path(&file.sha256);
        let (hash_tx, hash_rx) = std::sync::mpsc::channel::<u64>();
        let hasher = {
            let staged = staged.clone();
            tokio::task::spawn_blocking(move || splice::hash_following(&staged, hash_rx))
        };
        let (end_tx, mut end_rx) = mpsc::unbounded_channel::<u64>();
        let receiver = {
            let (url, staged, cancel) = (url.clone(), staged.clone(), cancel.clone());
            let (what, size) = (file.path.clone(), file.size);
            tokio::task::spawn_blocking(move || {
                splice::receive(&url, &what, resp, &staged, size, &cancel, |end| {
                    // Either side may be gone after an error: nothing to tell then.
                    let _ = hash_tx.send(end);
                    let _ = end_tx.send(end);
                })
            })
        };
        let mut last = from;
        while let Some(end) = end_rx.recv().await {
            if end > last {
                let n = end - last;
                last = end;
                // At most one byte past the size (an over-long body,
                // rejected below); never report more than the file has.
                counters.add_bytes(file, n, end.min(file.size), emit);
            }
        }
        let received = receiver.await.map_err(joined)??;
        let hashed = hasher.await.map_err(joined)?;
        received.outcome?;
        let (digest, hashed) = hashed?;
        if hashed != received.end {
            return Err(Error::Invalid(format!(
                "{}: hashed {hashed} bytes of {} received",
                file.path, received.end
            )));
        }
        self.finish(&staged, file, received.end, digest, counters, emit)
            .await?;
        counters.spliced.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// Checks a staged download and moves it into the store.
    async fn finish(
        &self,
        staged: &Path,
        file: &WantedFile,
        received: u64,
        digest: Sha256,
        counters: &Counters,
        emit: &(dyn Fn(Progress) + Sync),
    ) -> Result<()> {
        let what = file.path.clone();
        if received != file.size {
            // Truncated: keep what arrived, the next run resumes from there.
            return Err(Error::SizeMismatch {
                what,
                expected: file.size,
                actual: received,
            });
        }
        if digest != file.sha256 {
            // Wrong bytes can't be resumed from: drop them.
            let _ = tokio::fs::remove_file(staged).await;
            return Err(Error::DigestMismatch {
                what,
                expected: file.sha256.to_hex(),
                actual: digest.to_hex(),
            });
        }
        self.store.promote_file(staged, &file.sha256)?;
        counters.files.fetch_add(1, Ordering::Relaxed);
        emit(Progress::FileDone {
            path: file.path.clone(),
            sha256: file.sha256,
        });
        Ok(())
    }
}

/// Size of one pipeline buffer.
const BUF_BYTES: usize = 2 << 20;

/// Buffers per download: bounds its memory (8 MiB) whatever the file size,
/// and lets the network, hashing and writing each work on one buffer while
/// a fourth fills.
const POOL_BUFFERS: usize = 4;

/// The recycled buffers of one download.
struct Pool {
    free: mpsc::UnboundedReceiver<Vec<u8>>,
    home: mpsc::UnboundedSender<Vec<u8>>,
    allocated: usize,
}

impl Pool {
    fn new() -> Self {
        let (home, free) = mpsc::unbounded_channel();
        Self {
            free,
            home,
            allocated: 0,
        }
    }

    /// An empty buffer: a returned one, a new one while fewer than
    /// [`POOL_BUFFERS`] exist, else waits for one to come back.
    async fn take(&mut self) -> Vec<u8> {
        if let Ok(b) = self.free.try_recv() {
            return b;
        }
        if self.allocated < POOL_BUFFERS {
            self.allocated += 1;
            return Vec::with_capacity(BUF_BYTES);
        }
        // `self.home` keeps the channel open, so `None` cannot happen; a
        // fresh buffer is still a correct answer if it ever did.
        self.free
            .recv()
            .await
            .unwrap_or_else(|| Vec::with_capacity(BUF_BYTES))
    }

    fn filled(&self, data: Vec<u8>) -> Filled {
        Filled {
            data,
            home: self.home.clone(),
        }
    }
}

/// A full buffer shared by the hashing and writing threads; whichever drops
/// it last sends it back to the pool.
struct Filled {
    data: Vec<u8>,
    home: mpsc::UnboundedSender<Vec<u8>>,
}

impl Drop for Filled {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        // The download may be over (receiver gone): then the buffer is freed.
        let _ = self.home.send(data);
    }
}

/// A buffer on its way to the hashing and writing threads.
type Batch = Arc<Filled>;

fn join(root: &Url, path: &str) -> Result<Url> {
    // "./" keeps a first segment with a colon (`com.ubuntu.maas:…`) from
    // being read as a URL scheme.
    root.join(&format!("./{path}"))
        .map_err(|e| Error::Invalid(format!("bad item path {path:?}: {e}")))
}

fn hash_prefix_then_stream(
    staged: &Path,
    prefix: u64,
    mut rx: mpsc::Receiver<Batch>,
) -> Result<Sha256> {
    use std::io::Read;
    let mut hasher = Hasher::new();
    if prefix > 0 {
        let f = std::fs::File::open(staged).map_err(|e| Error::io(staged, e))?;
        let mut f = f.take(prefix);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(staged, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    while let Some(batch) = rx.blocking_recv() {
        hasher.update(&batch.data);
    }
    Ok(hasher.finish())
}

fn write_stream(staged: &Path, keep: u64, mut rx: mpsc::Receiver<Batch>) -> Result<()> {
    use std::io::Write;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(staged)
        .map_err(|e| Error::io(staged, e))?;
    // Drop anything past what is being resumed (a partial from a different attempt).
    f.set_len(keep).map_err(|e| Error::io(staged, e))?;
    let mut f = f;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(keep))
        .map_err(|e| Error::io(staged, e))?;
    while let Some(batch) = rx.blocking_recv() {
        f.write_all(&batch.data).map_err(|e| Error::io(staged, e))?;
    }
    f.sync_data().map_err(|e| Error::io(staged, e))
}
