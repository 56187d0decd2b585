//! Boot-image import as MAAS runs it: `boot-resources/?op=import` starts a
//! background sync of the configured boot source's selections into the
//! one maas-images [`Store`] the rack serves from; `op=is_importing` and
//! `op=stop_import` watch and cancel it.
//!
//! [`Images`] owns that store and the running import. The import reads the
//! sources and selections from the database, lets `maas_images::Importer`
//! verify (OpenPGP), download (resumable, sha256-checked) and promote them,
//! and only then records the store's resources as `Synced` boot resources:
//! a failed import (a bad signature, a missing file, a stop) leaves the
//! previous resource list untouched and writes an `ERROR` event.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use maas_core::Clock;
use maas_images::{
    BootSource, KeyringSource, ResourceKind, Selection, Store, StoredResource, SyncOptions,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::db::{self, DbConn, boot, events, settings};
use crate::error::{Error, Result};

/// Settings key of the last import's outcome (`{"ok":…, "message":…}`).
pub const LAST_IMPORT_KEY: &str = "images:last_import";

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
        let me = self.clone();
        // Its own thread and runtime: the sync future is not `Send` (a
        // higher-ranked lifetime in maas-images' download stream), and an
        // import must not hold up the API's workers anyway.
        let spawned = std::thread::Builder::new()
            .name("maas-import".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(async {
                        let outcome = run_import(&pool, store, cancel).await;
                        let now = clock.now().as_millis();
                        if let Err(e) = record_outcome(&pool, &outcome, &username, now).await {
                            tracing::error!(error = %e, "images: recording the import outcome failed");
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "images: no runtime for the import"),
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

/// At startup, as MAAS does when `boot_images_auto_import` is on: starts an
/// import when an enabled source has selections (a fresh server has none,
/// so nothing is contacted until an admin configures a source). Whether an
/// import started.
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

async fn run_import(pool: &db::Pool, store: Arc<Store>, cancel: CancellationToken) -> Outcome {
    let sources = pool.run(load_sources).await.map_err(|e| e.to_string())?;
    let source = maas_images::single_source(&sources)
        .map_err(|e| e.to_string())?
        .clone();
    tracing::info!(source = %source.display_name(), "images: import started");
    let importer = maas_images::Importer::new(store.clone(), SyncOptions::default())
        .map_err(|e| e.to_string())?;
    let report = importer
        .sync(&source, None, cancel)
        .await
        .map_err(|e| match e {
            maas_images::Error::Cancelled => "import stopped".to_owned(),
            e => e.to_string(),
        })?;
    Ok(ImportSummary {
        source: source.display_name(),
        downloaded_files: report.downloaded_files,
        downloaded_bytes: report.downloaded_bytes,
        promoted: report.promoted,
        // The store keeps earlier imports until garbage collection; MAAS
        // lists what the current selections want.
        resources: {
            let wanted: std::collections::BTreeSet<&str> = report
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

async fn record_outcome(pool: &db::Pool, outcome: &Outcome, user: &str, now: i64) -> Result<()> {
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
    let mut by_key: BTreeMap<(String, String), boot::Resource> = BTreeMap::new();
    for r in stored {
        let (name, arch, subarches, title, label) = match &r.kind {
            ResourceKind::Boot(b) => (
                format!("{}/{}", b.os, b.release),
                format!("{}/{}", b.arch, b.subarch),
                b.subarches.join(","),
                b.version.clone().unwrap_or_else(|| b.release.clone()),
                b.label.clone(),
            ),
            ResourceKind::Bootloader(b) => (
                format!("{}/{}", b.os, b.bootloader_type),
                format!("{}/generic", b.arch),
                String::new(),
                String::new(),
                b.label.clone(),
            ),
            // Uploads are listed by the upload path, not the import.
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
                        "complete": true,
                        "progress": 100.0,
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
                    "complete": true,
                    "progress": 100.0,
                    "files": files,
                }),
            );
        }
    }
    by_key.into_values().collect()
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
