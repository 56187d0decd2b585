//! Boot-image import as MAAS runs it: `boot-resources/?op=import` (or the
//! automatic import: at start, then every `[images] import_interval_secs`
//! while the `boot_images_auto_import` setting is on) starts a background
//! sync of the configured boot source's selections into the one maas-images
//! [`Store`] the rack serves from; `op=is_importing` and `op=stop_import`
//! watch and cancel it.
//!
//! [`Images`] owns that store, the running import and its live progress.
//! The import reads the sources and selections from the database, reads and
//! verifies (OpenPGP) the source's streams, records what the source offers
//! (what selections are validated against, as MAAS's `BootSourceCache`),
//! writes the versions it is about to download as incomplete sets
//! (`complete: false`; their `progress` comes live from the download
//! events), then lets `maas_images::Importer` download (resumable,
//! sha256-checked) and promote them. Only then are the sets recorded
//! complete: a failed import (a bad signature, a missing file, a stop) drops
//! the incomplete sets, keeps the previous resources and writes an `ERROR`
//! event. The rack serves from the store's catalog, which only ever holds
//! complete versions.
//!
//! [`ensure_default_source`] creates MAAS's default boot source on a
//! database that has none.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use maas_core::Clock;
use maas_images::simplestreams::ProductKind;
use maas_images::{
    BootSource, KeyringSource, Products, ResourceKind, Selection, Sha256, Store, StoredResource,
    SyncOptions,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::db::{self, DbConn, boot, events, settings};
use crate::error::{Error, Result};

/// Settings key of the last import's outcome (`{"ok":…, "message":…}`).
pub const LAST_IMPORT_KEY: &str = "images:last_import";

/// MAAS's default image source (`DEFAULT_IMAGES_URL`).
pub const DEFAULT_IMAGES_URL: &str = "http://images.maas.io/ephemeral-v3/stable/";

/// MAAS's default keyring for it (`DEFAULT_KEYRINGS_PATH`).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/// MAAS imports every hour while `boot_images_auto_import` is on.
pub const DEFAULT_IMPORT_INTERVAL_SECS: u64 = 3600;

/// `[images]` in maasd's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Run MAAS's automatic imports (one at start, then one every
    /// `import_interval_secs`) while the `boot_images_auto_import` setting
    /// is on. Tests turn this off: nothing may reach images.maas.io.
    pub auto_import: bool,
    /// Seconds between automatic imports (MAAS: an hour).
    pub import_interval_secs: u64,
    /// Create MAAS's default boot source and selection when the database
    /// has no boot source at start (as MAAS's `ensure_boot_source_definition`).
    pub default_source: bool,
    /// That source's URL (MAAS reads `MAAS_DEFAULT_IMAGES_URL`).
    pub default_source_url: String,
    /// That source's keyring file (MAAS reads `MAAS_IMAGES_KEYRING_FILEPATH`).
    pub default_keyring: String,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            auto_import: true,
            import_interval_secs: DEFAULT_IMPORT_INTERVAL_SECS,
            default_source: true,
            default_source_url: DEFAULT_IMAGES_URL.into(),
            default_keyring: DEFAULT_KEYRING.into(),
        }
    }
}

impl ImagesConfig {
    /// Refuses values that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.import_interval_secs == 0 {
            return Err(Error::Config(
                "images.import_interval_secs must be at least 1".into(),
            ));
        }
        let ok = url::Url::parse(&self.default_source_url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "file"));
        if !ok {
            return Err(Error::Config(format!(
                "images.default_source_url {:?} is not an http(s) or file URL",
                self.default_source_url
            )));
        }
        Ok(())
    }
}

/// The image store and the import running into it; cheap to clone.
#[derive(Clone, Default)]
pub struct Images {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    store: OnceLock<Arc<Store>>,
    // The running import's cancel token; `None` when idle.
    running: Mutex<Option<CancellationToken>>,
    // The running import's progress; reset when the next one starts.
    live: Mutex<Live>,
}

/// What the running import has done so far (beyond MAAS: MAAS shows only
/// per-set percentages).
#[derive(Debug, Clone, Default)]
struct Live {
    phase: &'static str,
    started_ms: i64,
    files_total: usize,
    files_done: usize,
    bytes_total: u64,
    bytes_done: u64,
    rate: f64,
    // Bytes present per file being imported (digest → bytes).
    files: HashMap<Sha256, u64>,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("store", &self.store().map(|s| s.root().to_owned()))
            .field("importing", &self.is_importing())
            .finish()
    }
}

impl Images {
    /// Opens the store at `dir` once; later calls with the same directory
    /// return the same store (its catalog is cached in memory, so the rack
    /// and the importer must share one instance), another directory is an
    /// error.
    pub fn open_store(&self, dir: &Path) -> Result<Arc<Store>> {
        if let Some(s) = self.inner.store.get() {
            return if s.root() == dir {
                Ok(s.clone())
            } else {
                Err(Error::Config(format!(
                    "image store already open at {}, not {}",
                    s.root().display(),
                    dir.display()
                )))
            };
        }
        let store = Arc::new(
            Store::open(dir)
                .map_err(|e| Error::Config(format!("image store {}: {e}", dir.display())))?,
        );
        // A racing opener may have won; use whichever is in place.
        Ok(self.inner.store.get_or_init(|| store).clone())
    }

    /// The store, once opened.
    pub fn store(&self) -> Option<Arc<Store>> {
        self.inner.store.get().cloned()
    }

    /// Whether an import is running.
    pub fn is_importing(&self) -> bool {
        self.lock().is_some()
    }

    /// Cancels the running import; whether there was one.
    pub fn stop_import(&self) -> bool {
        match self.lock().as_ref() {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        // A panic while holding this lock leaves only an Option behind.
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        // Counters only: a panic mid-update leaves numbers, not broken state.
        self.inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes of the file `sha256` (of `size` bytes) present now: all of it
    /// when the store has it, else what the running import received so far
    /// (from its `FileBytes` events, or the staged partial file for a
    /// transport that reports no per-file progress), else 0.
    pub fn file_bytes(&self, sha256: &Sha256, size: u64) -> u64 {
        if let Some(n) = self.live().files.get(sha256) {
            return (*n).min(size);
        }
        match self.store() {
            Some(s) if s.contains(sha256, size) => size,
            Some(s) if self.is_importing() => {
                std::fs::metadata(s.partial_path(sha256)).map_or(0, |m| m.len().min(size))
            }
            _ => 0,
        }
    }

    /// The running (or last) import's counters, for `op=import_progress`.
    pub fn progress_json(&self) -> Value {
        let importing = self.is_importing();
        let l = self.live().clone();
        json!({
            "importing": importing,
            "phase": if l.phase.is_empty() { "idle" } else { l.phase },
            "started": l.started_ms,
            "files_total": l.files_total,
            "files_done": l.files_done,
            "bytes_total": l.bytes_total,
            "bytes_done": l.bytes_done,
            "bytes_per_second": l.rate,
        })
    }

    fn on_progress(&self, p: maas_images::Progress) {
        use maas_images::Progress as P;
        let mut l = self.live();
        match p {
            P::Planned {
                files,
                bytes,
                present_files,
                present_bytes,
            } => {
                l.phase = "downloading";
                l.files_total = files;
                l.files_done = present_files;
                l.bytes_total = bytes;
                l.bytes_done = present_bytes;
            }
            P::FileBytes { sha256, done, .. } => {
                l.files.insert(sha256, done);
            }
            P::Bytes { done, rate, .. } => {
                l.bytes_done = done;
                l.rate = rate;
            }
            P::FileDone { .. } => l.files_done += 1,
            P::Promoted { .. } => l.phase = "promoting",
            _ => {}
        }
    }

    /// Starts an import in the background (its own thread) and returns at
    /// once; `false` when one is already running (MAAS starts
    /// at most one).
    pub fn start_import(
        &self,
        pool: db::Pool,
        clock: Arc<dyn Clock>,
        username: String,
    ) -> Result<bool> {
        let store = self
            .store()
            .ok_or_else(|| Error::Config("no image store is configured".into()))?;
        let cancel = {
            let mut running = self.lock();
            if running.is_some() {
                return Ok(false);
            }
            let t = CancellationToken::new();
            *running = Some(t.clone());
            t
        };
        *self.live() = Live {
            phase: "reading",
            started_ms: clock.now().as_millis(),
            ..Live::default()
        };
        let me = self.clone();
        // Its own thread and runtime: an import (hashing, splicing, store
        // writes) must not hold up the API's workers.
        let spawned = std::thread::Builder::new()
            .name("maas-import".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(async {
                        let outcome =
                            run_import(&me, &pool, &clock, store.clone(), cancel).await;
                        let now = clock.now().as_millis();
                        if let Err(e) =
                            record_outcome(&pool, store, &outcome, &username, now).await
                        {
                            tracing::error!(error = %e, "images: recording the import outcome failed");
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "images: no runtime for the import"),
                }
                {
                    let mut l = me.live();
                    l.phase = "idle";
                    // Finished files are in the store now (or the import
                    // failed): per-file counts would only mislead.
                    l.files.clear();
                }
                *me.lock() = None;
            });
        if let Err(e) = spawned {
            *self.lock() = None;
            return Err(Error::Task(format!("cannot start the import: {e}")));
        }
        Ok(true)
    }
}

/// The automatic import, as MAAS's periodic import service: starts an
/// import when the `boot_images_auto_import` setting is on and an enabled
/// source has selections. Whether an import started.
pub fn auto_import(state: &crate::AppState) -> Result<bool> {
    let mut conn = state.pool.get()?;
    let auto = settings::get(&mut conn, "config:boot_images_auto_import")?;
    if auto == Some(json!(false)) {
        return Ok(false);
    }
    let sources = boot::sources(&mut conn)?;
    let selections = boot::selections(&mut conn, None)?;
    let configured = sources
        .iter()
        .any(|s| s.enabled && selections.iter().any(|x| x.boot_source_id == s.id));
    drop(conn);
    if !configured {
        return Ok(false);
    }
    state
        .images
        .start_import(state.pool.clone(), state.clock.clone(), String::new())
}

/// Runs [`auto_import`] now and then every `interval` until `shutdown`
/// (MAAS: at start, then hourly).
pub fn spawn_auto_import(
    state: Arc<crate::AppState>,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let st = state.clone();
            match tokio::task::spawn_blocking(move || auto_import(&st)).await {
                Ok(Ok(true)) => tracing::info!("images: automatic import started"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "images: automatic import not started"),
                Err(e) => tracing::warn!(error = %e, "images: automatic import task failed"),
            }
        }
    });
    Ok(())
}

/// Creates MAAS's default boot source (`url`, `keyring`, priority 1) with
/// its default selection — Ubuntu's commissioning release for amd64 (and
/// this host's architecture), all subarches and labels — when the database
/// has no boot source. Whether it did.
pub fn ensure_default_source(
    conn: &mut DbConn,
    url: &str,
    keyring: &str,
    now_ms: i64,
) -> Result<bool> {
    if !boot::sources(conn)?.is_empty() {
        return Ok(false);
    }
    let source = boot::insert_source(
        conn,
        &boot::Source {
            id: 0,
            name: String::new(),
            url: url.to_owned(),
            keyring_filename: keyring.to_owned(),
            keyring_data: String::new(),
            priority: 1,
            enabled: true,
            skip_keyring_verification: false,
            created: now_ms,
            updated: now_ms,
        },
    )?;
    let release = crate::api::resources::config_str(conn, "commissioning_distro_series")?;
    let release = if release.is_empty() {
        "noble".to_owned()
    } else {
        release
    };
    let mut arches = vec!["amd64".to_owned()];
    let host = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        _ => "amd64",
    };
    if host != "amd64" {
        arches.insert(0, host.to_owned());
    }
    boot::insert_selection(
        conn,
        &boot::Selection {
            id: 0,
            boot_source_id: source.id,
            os: "ubuntu".into(),
            release,
            arches,
            subarches: vec!["*".into()],
            labels: vec!["*".into()],
        },
    )?;
    Ok(true)
}

/// What an import did, or why it failed.
type Outcome = std::result::Result<ImportSummary, String>;

#[derive(Debug, Clone)]
struct ImportSummary {
    source: String,
    downloaded_files: usize,
    downloaded_bytes: u64,
    promoted: usize,
    resources: Vec<StoredResource>,
    warnings: Vec<String>,
}

/// The boot sources as maas-images takes them.
pub fn load_sources(conn: &mut DbConn) -> Result<Vec<BootSource>> {
    let sels = boot::selections(conn, None)?;
    boot::sources(conn)?
        .into_iter()
        .map(|s| {
            let url = s
                .url
                .parse()
                .map_err(|e| Error::Refused(format!("boot source {}: bad URL: {e}", s.url)))?;
            let keyring = if !s.keyring_data.is_empty() {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(s.keyring_data.as_bytes())
                    .map_err(|e| {
                        Error::Refused(format!("boot source {}: keyring_data: {e}", s.url))
                    })?;
                Some(KeyringSource::Data(data))
            } else if !s.keyring_filename.is_empty() {
                Some(KeyringSource::File(s.keyring_filename.clone().into()))
            } else {
                None
            };
            Ok(BootSource {
                name: (!s.name.is_empty()).then(|| s.name.clone()),
                url,
                keyring,
                priority: i32::try_from(s.priority).unwrap_or(0),
                enabled: s.enabled,
                skip_keyring_verification: s.skip_keyring_verification,
                selections: sels
                    .iter()
                    .filter(|x| x.boot_source_id == s.id)
                    .map(|x| Selection {
                        os: x.os.clone(),
                        release: x.release.clone(),
                        arches: x.arches.clone(),
                        subarches: x.subarches.clone(),
                        labels: x.labels.clone(),
                    })
                    .collect(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- source cache

fn cache_key(source_id: i64) -> String {
    format!("images:source_cache:{source_id}")
}

/// One boot image a source offers (MAAS's `BootSourceCache` row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offered {
    /// `ubuntu`, …
    pub os: String,
    /// `noble`, …
    pub release: String,
    /// `amd64`, …
    pub arch: String,
    /// `ga-24.04`, …
    pub subarch: String,
    /// `stable`, …
    pub label: String,
}

/// The boot images the streams offer (bootloaders are not selectable).
pub fn offered(streams: &[Products]) -> Vec<Offered> {
    let mut out = BTreeSet::new();
    for p in streams {
        for name in p.products.keys() {
            let Some(attrs) = p.product_attrs(name) else {
                continue;
            };
            if let ProductKind::Boot(b) = ProductKind::from_attrs(name, &attrs) {
                out.insert(Offered {
                    os: b.os,
                    release: b.release,
                    arch: b.arch,
                    subarch: b.subarch,
                    label: b.label,
                });
            }
        }
    }
    out.into_iter().collect()
}

fn store_cache(conn: &mut DbConn, source_id: i64, url: &str, items: &[Offered]) -> Result<()> {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!([o.os, o.release, o.arch, o.subarch, o.label]))
        .collect();
    settings::set(
        conn,
        &cache_key(source_id),
        &json!({"url": url, "images": rows}),
    )
}

/// What source `source` (at its current URL) offered when an import last
/// read it; `None` when it was never read (nothing to validate against).
pub fn source_cache(conn: &mut DbConn, source: &boot::Source) -> Result<Option<Vec<Offered>>> {
    let Some(v) = settings::get(conn, &cache_key(source.id))? else {
        return Ok(None);
    };
    // A cache of another URL says nothing about this one.
    if v["url"].as_str() != Some(source.url.as_str()) {
        return Ok(None);
    }
    let field = |row: &Value, i: usize| row[i].as_str().unwrap_or_default().to_owned();
    Ok(Some(
        v["images"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| Offered {
                        os: field(r, 0),
                        release: field(r, 1),
                        arch: field(r, 2),
                        subarch: field(r, 3),
                        label: field(r, 4),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    ))
}

/// MAAS's `BootSourceSelectionForm.clean`: the field → message errors of a
/// selection `os`/`release`/`arches`/`subarches`/`labels` against what its
/// source offers (`*` matches anything).
pub fn selection_errors(offered: &[Offered], sel: &boot::Selection) -> Vec<(&'static str, String)> {
    let rows: Vec<&Offered> = offered
        .iter()
        .filter(|o| o.release == sel.release && (sel.os.is_empty() || o.os == sel.os))
        .collect();
    if rows.is_empty() {
        return vec![(
            "os",
            format!(
                "OS {} with release {} has no available images for download",
                sel.os, sel.release
            ),
        )];
    }
    let mut errors = Vec::new();
    let mut check = |field: &'static str, wanted: &[String], have: BTreeSet<&str>| {
        if !wanted.iter().any(|w| w == "*") && !wanted.iter().all(|w| have.contains(w.as_str())) {
            errors.push((
                field,
                format!("No available images to download for {}", py_list(wanted)),
            ));
        }
    };
    check(
        "arches",
        &sel.arches,
        rows.iter().map(|o| o.arch.as_str()).collect(),
    );
    check(
        "subarches",
        &sel.subarches,
        rows.iter().map(|o| o.subarch.as_str()).collect(),
    );
    check(
        "labels",
        &sel.labels,
        rows.iter().map(|o| o.label.as_str()).collect(),
    );
    errors
}

/// A list as Python prints it (MAAS's messages format the list with `%s`).
fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", inner.join(", "))
}

// ---------------------------------------------------------------- the import

async fn run_import(
    images: &Images,
    pool: &db::Pool,
    clock: &Arc<dyn Clock>,
    store: Arc<Store>,
    cancel: CancellationToken,
) -> Outcome {
    let sources = pool.run(load_sources).await.map_err(|e| e.to_string())?;
    let source = maas_images::single_source(&sources)
        .map_err(|e| e.to_string())?
        .clone();
    tracing::info!(source = %source.display_name(), "images: import started");
    let importer = maas_images::Importer::new(store.clone(), SyncOptions::default())
        .map_err(|e| e.to_string())?;
    let stopped = |e: maas_images::Error| match e {
        maas_images::Error::Cancelled => "import stopped".to_owned(),
        e => e.to_string(),
    };
    let streams = tokio::select! {
        r = importer.read_source(&source) => r.map_err(stopped)?,
        () = cancel.cancelled() => return Err("import stopped".to_owned()),
    };
    // What the source offers, for selection validation; then the sets this
    // import will add, shown incomplete while they download.
    let wanted =
        maas_images::compute_wanted(&streams, &source.selections).map_err(|e| e.to_string())?;
    let have: BTreeSet<(String, String)> = store
        .resources()
        .into_iter()
        .map(|r| (r.product, r.version))
        .collect();
    let pending: Vec<StoredResource> = wanted
        .versions
        .iter()
        .filter(|v| !have.contains(&(v.product.clone(), v.version.clone())))
        .map(StoredResource::from)
        .collect();
    let url = source.url.to_string();
    let offer = offered(&streams);
    let now = clock.now().as_millis();
    pool.run(move |conn| {
        conn.write_tx(|conn| {
            if let Some(s) = boot::source_by_url(conn, &url)? {
                store_cache(conn, s.id, &url, &offer)?;
            }
            record_pending(conn, &pending, now)
        })
    })
    .await
    .map_err(|e| e.to_string())?;

    let me = images.clone();
    let progress: maas_images::ProgressFn =
        Arc::new(move |p: maas_images::Progress| me.on_progress(p));
    let report = importer
        .sync_streams(&source, &streams, Some(progress), cancel)
        .await
        .map_err(stopped)?;
    Ok(ImportSummary {
        source: source.display_name(),
        downloaded_files: report.downloaded_files,
        downloaded_bytes: report.downloaded_bytes,
        promoted: report.promoted,
        // The store keeps earlier imports until garbage collection; MAAS
        // lists what the current selections want.
        resources: {
            let wanted: BTreeSet<&str> = report
                .wanted
                .versions
                .iter()
                .map(|v| v.product.as_str())
                .collect();
            store
                .resources()
                .into_iter()
                .filter(|r| wanted.contains(r.product.as_str()))
                .collect()
        },
        warnings: report.warnings,
    })
}

/// Adds the sets an import is about to download, incomplete, to their
/// resources (created when new); complete sets already there stay.
fn record_pending(conn: &mut DbConn, pending: &[StoredResource], now: i64) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let existing = boot::resources(conn)?;
    for mut r in resource_rows(pending, false) {
        if let Some(old) = existing
            .iter()
            .find(|o| o.rtype == r.rtype && o.name == r.name && o.architecture == r.architecture)
            && let (Value::Object(new_sets), Value::Object(old_sets)) = (&mut r.sets, &old.sets)
        {
            for (version, set) in old_sets {
                new_sets.insert(version.clone(), set.clone());
            }
        }
        boot::upsert_resource(conn, &r, now)?;
    }
    Ok(())
}

/// Settles the incomplete sets of synced resources that a failed or
/// interrupted import announced: a version the store promoted (the failure
/// came later, or a crash hit before it was recorded) becomes complete, any
/// other is dropped, and so is a resource left with no set. How many sets
/// were dropped.
pub fn settle_incomplete(conn: &mut DbConn, store: Option<&Store>) -> Result<usize> {
    let catalog = store.map(Store::resources).unwrap_or_default();
    let mut dropped = 0;
    for mut r in boot::resources(conn)? {
        if r.rtype != "Synced" {
            continue;
        }
        let promoted: BTreeSet<String> = {
            let of_r = store_entries_of(&r);
            catalog
                .iter()
                .filter(|s| of_r(s))
                .map(|s| s.version.clone())
                .collect()
        };
        let Value::Object(sets) = &mut r.sets else {
            continue;
        };
        let before = sets.len();
        let mut changed = false;
        sets.retain(|version, set| {
            if set["complete"] != json!(false) {
                return true;
            }
            changed = true;
            if !promoted.contains(version) {
                return false;
            }
            mark_complete(set);
            true
        });
        if !changed {
            continue;
        }
        dropped += before - sets.len();
        if sets.is_empty() {
            boot::delete_resource(conn, r.id)?;
        } else {
            boot::upsert_resource(conn, &r, r.updated)?;
        }
    }
    Ok(dropped)
}

fn mark_complete(set: &mut Value) {
    set["complete"] = json!(true);
    set["progress"] = json!(100.0);
    if let Some(Value::Object(files)) = set.get_mut("files") {
        for f in files.values_mut() {
            f["complete"] = json!(true);
            f["progress"] = json!(100.0);
        }
    }
}

async fn record_outcome(
    pool: &db::Pool,
    store: Arc<Store>,
    outcome: &Outcome,
    user: &str,
    now: i64,
) -> Result<()> {
    let outcome = outcome.clone();
    let user = user.to_owned();
    pool.run(move |conn| {
        conn.write_tx(|conn| {
            let (level, text, ok) = match &outcome {
                Ok(s) => {
                    let rows = synced_resources(&s.resources);
                    let keep = rows
                        .iter()
                        .map(|r| boot::upsert_resource(conn, r, now))
                        .collect::<Result<Vec<i64>>>()?;
                    boot::delete_resources_except(conn, "Synced", &keep)?;
                    let mut text = format!(
                        "Imported boot resources from {}: {} files ({} bytes) downloaded, {} new versions, {} resources",
                        s.source,
                        s.downloaded_files,
                        s.downloaded_bytes,
                        s.promoted,
                        keep.len()
                    );
                    for w in &s.warnings {
                        text.push_str("; ");
                        text.push_str(w);
                    }
                    tracing::info!("images: {text}");
                    ("INFO", text, true)
                }
                Err(msg) => {
                    tracing::error!(error = %msg, "images: import failed");
                    settle_incomplete(conn, Some(&store))?;
                    ("ERROR", format!("Importing boot resources failed: {msg}"), false)
                }
            };
            events::add(
                conn,
                &events::NewEvent {
                    system_id: "",
                    hostname: "",
                    username: &user,
                    level,
                    type_name: "Importing boot resources",
                    description: &text,
                },
                now,
            )?;
            settings::set(conn, LAST_IMPORT_KEY, &json!({"ok": ok, "message": text, "time": now}))?;
            Ok(())
        })
    })
    .await
}

/// The boot resources MAAS lists for what the store holds: one per
/// os/release/arch/subarch (and per bootloader), with a set per version.
pub fn synced_resources(stored: &[StoredResource]) -> Vec<boot::Resource> {
    resource_rows(stored, true)
}

/// [`synced_resources`] with every set marked `complete` (or not).
fn resource_rows(stored: &[StoredResource], complete: bool) -> Vec<boot::Resource> {
    let mut by_key: BTreeMap<(String, String), boot::Resource> = BTreeMap::new();
    let progress = if complete { 100.0 } else { 0.0 };
    for r in stored {
        let Some((name, arch)) = resource_key(&r.kind) else {
            // Uploads are listed by the upload path, not the import.
            continue;
        };
        let (subarches, title, label) = match &r.kind {
            ResourceKind::Boot(b) => (
                b.subarches.join(","),
                b.version.clone().unwrap_or_else(|| b.release.clone()),
                b.label.clone(),
            ),
            ResourceKind::Bootloader(b) => (String::new(), String::new(), b.label.clone()),
            ResourceKind::Custom(_) => continue,
        };
        let entry = by_key
            .entry((name.clone(), arch.clone()))
            .or_insert_with(|| boot::Resource {
                id: 0,
                rtype: "Synced".into(),
                name,
                architecture: arch,
                subarches,
                title,
                sets: json!({}),
                created: 0,
                updated: 0,
            });
        let files: serde_json::Map<String, Value> = r
            .files
            .iter()
            .map(|f| {
                let ftype = f.ftype.as_str().into_owned();
                (
                    ftype.clone(),
                    json!({
                        "filename": ftype,
                        "filetype": ftype,
                        "sha256": f.sha256.to_hex(),
                        "size": f.size,
                        "complete": complete,
                        "progress": progress,
                    }),
                )
            })
            .collect();
        let size: u64 = r.files.iter().map(|f| f.size).sum();
        if let Value::Object(sets) = &mut entry.sets {
            sets.insert(
                r.version.clone(),
                json!({
                    "version": r.version,
                    "label": label,
                    "size": size,
                    "complete": complete,
                    "progress": progress,
                    "files": files,
                }),
            );
        }
    }
    by_key.into_values().collect()
}

/// A synced resource's API `name` and `architecture`; `None` for uploads.
fn resource_key(kind: &ResourceKind) -> Option<(String, String)> {
    match kind {
        ResourceKind::Boot(b) => Some((
            format!("{}/{}", b.os, b.release),
            format!("{}/{}", b.arch, b.subarch),
        )),
        ResourceKind::Bootloader(b) => Some((
            format!("{}/{}", b.os, b.bootloader_type),
            format!("{}/generic", b.arch),
        )),
        ResourceKind::Custom(_) => None,
    }
}

/// The store entries behind the API resource `r`: its synced versions, or
/// its upload (stored under a flattened name).
pub fn store_entries_of(r: &boot::Resource) -> impl Fn(&StoredResource) -> bool + '_ {
    move |s: &StoredResource| match &s.kind {
        ResourceKind::Custom(c) => {
            r.rtype == "Uploaded"
                && c.name == r.name.replace('/', "-")
                && c.architecture == r.architecture
        }
        kind => {
            r.rtype == "Synced"
                && resource_key(kind).is_some_and(|(n, a)| n == r.name && a == r.architecture)
        }
    }
}

/// The `sets` of `r` with the live state of the sets still importing: a
/// version the store has promoted is complete (the rack boots it from that
/// moment, a little before the import records it); otherwise, per file, the
/// share of its bytes present (an upload's: the chunks received) and, per
/// set, the share of all its bytes.
pub fn live_sets(images: &Images, r: &boot::Resource) -> Value {
    let mut sets = r.sets.clone();
    let Value::Object(map) = &mut sets else {
        return sets;
    };
    let promoted: BTreeSet<String> = match images.store() {
        Some(store) if map.values().any(|s| s["complete"] == json!(false)) => {
            let of_r = store_entries_of(r);
            store
                .resources()
                .into_iter()
                .filter(|s| of_r(s))
                .map(|s| s.version)
                .collect()
        }
        _ => BTreeSet::new(),
    };
    // An upload's one file grows in its staging file, chunk by chunk.
    let staged = match images.store() {
        Some(store) if r.rtype == "Uploaded" => {
            std::fs::metadata(upload_staging(&store, r.id)).map_or(Some(0), |m| Some(m.len()))
        }
        _ => None,
    };
    for (version, set) in map.iter_mut() {
        if set["complete"] != json!(false) {
            continue;
        }
        if promoted.contains(version) {
            mark_complete(set);
            continue;
        }
        let (mut done, mut total) = (0u64, 0u64);
        if let Some(Value::Object(files)) = set.get_mut("files") {
            for f in files.values_mut() {
                let size = f["size"].as_u64().unwrap_or(0);
                let sha = f["sha256"].as_str().and_then(|s| s.parse::<Sha256>().ok());
                let have = match staged {
                    Some(n) => n.min(size),
                    None => sha.map_or(0, |s| images.file_bytes(&s, size)),
                };
                f["progress"] = json!(percent(have, size));
                done += have;
                total += size;
            }
        }
        set["progress"] = json!(percent(done, total));
    }
    sets
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Two decimals, as a UI shows it; below 100 until the set is complete.
    let p = (done as f64 * 10000.0 / total as f64).floor() / 100.0;
    p.min(99.99)
}

/// Where the chunks of upload `resource_id` gather before promotion (in
/// the store, so the final rename stays on one filesystem).
pub fn upload_staging(store: &Store, resource_id: i64) -> std::path::PathBuf {
    let dir = store.root().join("uploads");
    // A failure here shows when the chunk is written.
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{resource_id}.part"))
}

/// The last import's outcome, for status displays.
pub fn last_import(conn: &mut DbConn) -> Result<Option<Value>> {
    settings::get(conn, LAST_IMPORT_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maas_images::simplestreams::{BootProduct, BootloaderProduct, FileType};
    use maas_images::{Sha256, StoredFile};

    fn boot(version: &str, subarch: &str) -> StoredResource {
        StoredResource {
            product: format!("com.ubuntu.maas.stable:v3:boot:22.04:amd64:{subarch}"),
            version: version.into(),
            kind: ResourceKind::Boot(BootProduct {
                os: "ubuntu".into(),
                release: "jammy".into(),
                arch: "amd64".into(),
                subarch: subarch.into(),
                subarches: vec!["generic".into(), subarch.into()],
                label: "stable".into(),
                kflavor: Some("generic".into()),
                version: Some("22.04".into()),
            }),
            files: vec![
                StoredFile {
                    item: "boot-kernel".into(),
                    ftype: FileType::BootKernel,
                    sha256: Sha256::of(b"k"),
                    size: 10,
                },
                StoredFile {
                    item: "boot-initrd".into(),
                    ftype: FileType::BootInitrd,
                    sha256: Sha256::of(b"i"),
                    size: 20,
                },
            ],
        }
    }

    #[test]
    fn versions_of_one_product_are_sets_of_one_resource() {
        let stored = vec![
            boot("20250101", "ga-22.04"),
            boot("20250615", "ga-22.04"),
            boot("20250615", "hwe-22.04"),
            StoredResource {
                product: "com.ubuntu.maas.stable:1:pxelinux:pxe:i386".into(),
                version: "20210819.0".into(),
                kind: ResourceKind::Bootloader(BootloaderProduct {
                    os: "pxelinux".into(),
                    bootloader_type: "pxe".into(),
                    arch: "i386".into(),
                    arches: vec!["i386".into(), "amd64".into()],
                    label: "stable".into(),
                }),
                files: vec![],
            },
        ];
        let rs = synced_resources(&stored);
        let names: Vec<(&str, &str)> = rs
            .iter()
            .map(|r| (r.name.as_str(), r.architecture.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("pxelinux/pxe", "i386/generic"),
                ("ubuntu/jammy", "amd64/ga-22.04"),
                ("ubuntu/jammy", "amd64/hwe-22.04"),
            ]
        );
        let ga = &rs[1];
        assert_eq!(ga.rtype, "Synced");
        assert_eq!(ga.subarches, "generic,ga-22.04");
        let sets = ga.sets.as_object().unwrap();
        assert_eq!(sets.keys().collect::<Vec<_>>(), ["20250101", "20250615"]);
        let s = &sets["20250615"];
        assert_eq!(s["size"], 30);
        assert_eq!(s["complete"], true);
        assert_eq!(
            s["files"]["boot-kernel"]["sha256"],
            Sha256::of(b"k").to_hex()
        );
    }

    fn offer(os: &str, release: &str, arch: &str, subarch: &str, label: &str) -> Offered {
        Offered {
            os: os.into(),
            release: release.into(),
            arch: arch.into(),
            subarch: subarch.into(),
            label: label.into(),
        }
    }

    fn sel(os: &str, release: &str, arches: &[&str], subarches: &[&str]) -> boot::Selection {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        boot::Selection {
            id: 0,
            boot_source_id: 1,
            os: os.into(),
            release: release.into(),
            arches: v(arches),
            subarches: v(subarches),
            labels: vec!["*".into()],
        }
    }

    #[test]
    fn selections_are_checked_as_maas_form_does() {
        let offered = vec![
            offer("ubuntu", "noble", "amd64", "ga-24.04", "stable"),
            offer("ubuntu", "noble", "arm64", "hwe-24.04", "stable"),
            offer("ubuntu", "jammy", "amd64", "ga-22.04", "stable"),
        ];
        let ok = |s: &boot::Selection| selection_errors(&offered, s).is_empty();
        assert!(ok(&sel("ubuntu", "noble", &["*"], &["*"])));
        assert!(ok(&sel(
            "ubuntu",
            "noble",
            &["amd64", "arm64"],
            &["hwe-24.04"]
        )));
        // An empty os matches any os (MAAS's backwards compatibility).
        assert!(ok(&sel("", "jammy", &["amd64"], &["*"])));
        assert_eq!(
            selection_errors(&offered, &sel("ubuntu", "focal", &["s390x"], &["*"])),
            [(
                "os",
                "OS ubuntu with release focal has no available images for download".to_owned()
            )],
            "an unknown release stops at os"
        );
        // Arches of another release do not count.
        assert_eq!(
            selection_errors(&offered, &sel("ubuntu", "jammy", &["arm64"], &["x"])),
            [
                (
                    "arches",
                    "No available images to download for ['arm64']".to_owned()
                ),
                (
                    "subarches",
                    "No available images to download for ['x']".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn python_list_formatting() {
        assert_eq!(py_list(&[]), "[]");
        assert_eq!(py_list(&["a".into(), "b'c".into()]), r"['a', 'b\'c']");
    }

    #[test]
    fn percent_stays_below_100_until_complete() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(3, 3), 99.99);
    }

    #[test]
    fn incomplete_sets_show_live_progress() {
        let images = Images::default();
        let pending = resource_rows(&[boot("20250101", "ga-22.04")], false);
        let sets = &pending[0];
        assert_eq!(sets.sets["20250101"]["complete"], false);
        let kernel = Sha256::of(b"k");
        // No store, no events yet: nothing present.
        assert_eq!(live_sets(&images, sets)["20250101"]["progress"], 0.0);
        images.on_progress(maas_images::Progress::FileBytes {
            path: "k".into(),
            sha256: kernel,
            done: 10,
            size: 10,
        });
        let live = live_sets(&images, sets);
        // 10 of 30 bytes: the kernel is done, the initrd not started.
        assert_eq!(live["20250101"]["progress"], 33.33);
        assert_eq!(live["20250101"]["files"]["boot-kernel"]["progress"], 99.99);
        assert_eq!(live["20250101"]["files"]["boot-initrd"]["progress"], 0.0);
        // Complete sets are shown as stored.
        let done = resource_rows(&[boot("20250101", "ga-22.04")], true);
        assert_eq!(live_sets(&images, &done[0])["20250101"]["progress"], 100.0);
        // Promoted into the store: complete, though not yet recorded so.
        let dir = tempfile::tempdir().unwrap();
        let store = images.open_store(dir.path()).unwrap();
        let data = [b"k".as_slice(), b"i".as_slice()];
        let wanted = maas_images::WantedVersion {
            content_id: "c".into(),
            product: "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04".into(),
            version: "20250101".into(),
            kind: boot("20250101", "ga-22.04").kind,
            files: boot("20250101", "ga-22.04")
                .files
                .iter()
                .zip(data)
                .map(|(f, d)| {
                    // The helper's sizes are nominal; store real bytes.
                    let staged = dir.path().join("staged");
                    std::fs::write(&staged, d).unwrap();
                    let img = store.path_of(&f.sha256);
                    std::fs::create_dir_all(img.parent().unwrap()).unwrap();
                    std::fs::rename(&staged, &img).unwrap();
                    maas_images::WantedFile {
                        item: f.item.clone(),
                        ftype: f.ftype.clone(),
                        path: f.item.clone(),
                        sha256: f.sha256,
                        size: d.len() as u64,
                    }
                })
                .collect(),
        };
        store.commit(&[wanted]).unwrap();
        let live = live_sets(&images, sets);
        assert_eq!(live["20250101"]["complete"], true);
        assert_eq!(live["20250101"]["progress"], 100.0);
        assert_eq!(live["20250101"]["files"]["boot-initrd"]["complete"], true);
    }

    #[test]
    fn partial_files_count_while_importing() {
        // A transport without per-file events: the staged file tells.
        let dir = tempfile::tempdir().unwrap();
        let images = Images::default();
        let store = images.open_store(dir.path()).unwrap();
        let sha = Sha256::of(b"kernel");
        std::fs::write(store.partial_path(&sha), b"ker").unwrap();
        assert_eq!(images.file_bytes(&sha, 6), 0, "no import: nothing counts");
        *images.lock() = Some(CancellationToken::new());
        assert_eq!(images.file_bytes(&sha, 6), 3);
        assert_eq!(images.file_bytes(&sha, 2), 2, "never above the size");
        images.on_progress(maas_images::Progress::FileBytes {
            path: "k".into(),
            sha256: sha,
            done: 5,
            size: 6,
        });
        assert_eq!(images.file_bytes(&sha, 6), 5, "events first");
    }

    #[test]
    fn one_store_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let images = Images::default();
        assert!(images.store().is_none());
        let a = images.open_store(&dir.path().join("s")).unwrap();
        let b = images.open_store(&dir.path().join("s")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(images.open_store(&dir.path().join("other")).is_err());
        assert!(!images.is_importing());
        assert!(!images.stop_import());
    }
}
