//! The content-addressed image store.
//!
//! Layout under the store root:
//! - `images/<first two hex digits>/<sha256>`: verified file contents, one
//!   copy per digest however many products share it;
//! - `partial/<sha256>.part`: downloads in progress, resumed by the next sync,
//!   never read by the boot stack;
//! - `catalog.json`: the promoted resources (product, version, kind, files),
//!   replaced atomically, so readers see either the old or the new set.
//!
//! A file is renamed into `images/` only after its size and sha256 matched;
//! a resource enters the catalog only when all its files are in `images/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use maas_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::digest::{Hasher, Sha256};
use crate::error::{Error, Result};
use crate::simplestreams::FileType;
use crate::source::{CustomImage, ResourceKind, WantedVersion};

/// A file of a stored resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Item name (`boot-kernel`, `squashfs`, `root-tgz`, …).
    pub item: String,
    /// File type.
    pub ftype: FileType,
    /// Digest, which is also its name in the store.
    pub sha256: Sha256,
    /// Size in bytes.
    pub size: u64,
}

/// A resource (product version) the boot stack may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResource {
    /// Product name (`custom/<name>` for uploads).
    pub product: String,
    /// Version (build serial).
    pub version: String,
    /// What it is.
    pub kind: ResourceKind,
    /// Its files.
    pub files: Vec<StoredFile>,
}

impl From<&WantedVersion> for StoredResource {
    /// The catalog entry of a wanted version (its files as planned).
    fn from(v: &WantedVersion) -> Self {
        StoredResource {
            product: v.product.clone(),
            version: v.version.clone(),
            kind: v.kind.clone(),
            files: v
                .files
                .iter()
                .map(|f| StoredFile {
                    item: f.item.clone(),
                    ftype: f.ftype.clone(),
                    sha256: f.sha256,
                    size: f.size,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Catalog {
    resources: Vec<StoredResource>,
}

/// What the boot stack needs to netboot os/arch/subarch/release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFiles {
    /// Product it came from.
    pub product: String,
    /// Version.
    pub version: String,
    /// `boot-kernel`.
    pub kernel: PathBuf,
    /// `boot-initrd`.
    pub initrd: PathBuf,
    /// `squashfs`, when the version has one.
    pub squashfs: Option<PathBuf>,
    /// `root-image.gz`/`root-tgz`, when there is no squashfs.
    pub root_image: Option<PathBuf>,
}

/// What garbage collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// `(product, version)` pairs dropped from the catalog.
    pub dropped_versions: Vec<(String, String)>,
    /// Content files deleted.
    pub deleted_files: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// The image store on disk.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    // Held only for short, synchronous catalog updates (never across .await).
    catalog: Mutex<Catalog>,
    /// Content files a running sync needs (with how many syncs need them):
    /// neither [`Store::gc`] nor [`Store::remove_where`] deletes them.
    pins: Mutex<BTreeMap<Sha256, usize>>,
}

/// Content files kept from deletion while this lives ([`Store::pin`]).
#[derive(Debug)]
pub struct Pins<'a> {
    store: &'a Store,
    shas: Vec<Sha256>,
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut pins = self.store.lock_pins();
        for sha in &self.shas {
            if let Some(n) = pins.get_mut(sha) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(sha);
                }
            }
        }
    }
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

impl Store {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        mkdir(&root.join("images"))?;
        mkdir(&root.join("partial"))?;
        let path = root.join("catalog.json");
        let catalog = match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| Error::Document {
                document: path.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Catalog::default(),
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(Self {
            root,
            catalog: Mutex::new(catalog),
            pins: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock_pins(&self) -> std::sync::MutexGuard<'_, BTreeMap<Sha256, usize>> {
        self.pins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps these content files from being deleted — by [`Store::gc`] or
    /// an operator's [`Store::remove_where`] — until the returned guard is
    /// dropped. A sync pins every file it wants before it looks for them and
    /// until its versions are committed, so a resource deleted meanwhile
    /// cannot take a file the sync relies on.
    pub fn pin(&self, shas: impl IntoIterator<Item = Sha256>) -> Pins<'_> {
        let shas: Vec<Sha256> = shas.into_iter().collect();
        let mut pins = self.lock_pins();
        for sha in &shas {
            *pins.entry(*sha).or_insert(0) += 1;
        }
        Pins { store: self, shas }
    }

    fn is_pinned(&self, sha: &Sha256) -> bool {
        self.lock_pins().contains_key(sha)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this digest lives (whether or not it exists yet).
    pub fn path_of(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.to_hex();
        self.root.join("images").join(&hex[..2]).join(hex)
    }

    /// Where a download of this digest is staged.
    pub fn partial_path(&self, sha256: &Sha256) -> PathBuf {
        self.root.join("partial").join(format!("{sha256}.part"))
    }

    /// Whether a verified file of this digest and size is present.
    pub fn contains(&self, sha256: &Sha256, size: u64) -> bool {
        fs::metadata(self.path_of(sha256)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Moves a fully verified staged file into place (atomic rename).
    pub(crate) fn promote_file(&self, staged: &Path, sha256: &Sha256) -> Result<PathBuf> {
        let dest = self.path_of(sha256);
        if let Some(dir) = dest.parent() {
            mkdir(dir)?;
        }
        fs::rename(staged, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(dest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Catalog> {
        // A poisoned lock only means another thread panicked mid-update; the
        // catalog on disk is still whole, so carry on with the in-memory copy.
        self.catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, catalog: &Catalog) -> Result<()> {
        let path = self.root.join("catalog.json");
        let tmp = self.root.join("catalog.json.tmp");
        let data = serde_json::to_vec_pretty(catalog)
            .map_err(|e| Error::Invalid(format!("cannot serialise catalog: {e}")))?;
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&data).map_err(|e| Error::io(&tmp, e))?;
        f.sync_data().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Adds wanted versions to the catalog. Every file must already be in
    /// the store; versions already present are left as they are.
    pub fn commit(&self, versions: &[WantedVersion]) -> Result<usize> {
        for v in versions {
            for f in &v.files {
                if !self.contains(&f.sha256, f.size) {
                    return Err(Error::Invalid(format!(
                        "cannot promote {} {}: {} is not in the store",
                        v.product, v.version, f.item
                    )));
                }
            }
        }
        let mut catalog = self.lock();
        let mut added = 0;
        for v in versions {
            if catalog
                .resources
                .iter()
                .any(|r| r.product == v.product && r.version == v.version)
            {
                continue;
            }
            catalog.resources.push(StoredResource::from(v));
            added += 1;
        }
        if added > 0 {
            self.save(&catalog)?;
        }
        Ok(added)
    }

    /// The promoted resources.
    pub fn resources(&self) -> Vec<StoredResource> {
        self.lock().resources.clone()
    }

    /// The newest kernel/initrd/root filesystem for os/arch/subarch/release.
    /// A product whose own subarch differs still answers if it lists the
    /// requested one among its compatible `subarches`; an exact match wins.
    pub fn boot_files(
        &self,
        os: &str,
        arch: &str,
        subarch: &str,
        release: &str,
    ) -> Option<BootFiles> {
        let catalog = self.lock();
        let candidates = catalog.resources.iter().filter_map(|r| match &r.kind {
            ResourceKind::Boot(b) if b.os == os && b.arch == arch && b.release == release => {
                let exact = b.subarch == subarch;
                (exact || b.subarches.iter().any(|s| s == subarch)).then_some((exact, r))
            }
            _ => None,
        });
        let (_, best) = candidates.max_by(|(ea, a), (eb, b)| {
            ea.cmp(eb)
                .then_with(|| a.version.cmp(&b.version))
                .then_with(|| a.product.cmp(&b.product))
        })?;
        let find = |t: &[FileType]| {
            t.iter().find_map(|t| {
                best.files
                    .iter()
                    .find(|f| &f.ftype == t)
                    .map(|f| self.path_of(&f.sha256))
            })
        };
        let squashfs = find(&[FileType::Squashfs]);
        Some(BootFiles {
            product: best.product.clone(),
            version: best.version.clone(),
            kernel: find(&[FileType::BootKernel])?,
            initrd: find(&[FileType::BootInitrd])?,
            root_image: if squashfs.is_none() {
                find(&[FileType::RootImageGz, FileType::RootTgz])
            } else {
                None
            },
            squashfs,
        })
    }

    /// Keeps the newest `keep` versions of every product, then deletes
    /// content files no remaining resource references.
    pub fn gc(&self, keep: usize) -> Result<GcReport> {
        let keep = keep.max(1);
        let mut report = GcReport::default();
        let mut catalog = self.lock();
        let mut by_product: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &catalog.resources {
            by_product
                .entry(r.product.clone())
                .or_default()
                .push(r.version.clone());
        }
        let mut drop = BTreeSet::new();
        for (product, mut versions) in by_product {
            versions.sort();
            let excess = versions.len().saturating_sub(keep);
            for v in versions.into_iter().take(excess) {
                drop.insert((product.clone(), v));
            }
        }
        if !drop.is_empty() {
            catalog
                .resources
                .retain(|r| !drop.contains(&(r.product.clone(), r.version.clone())));
            self.save(&catalog)?;
        }
        report.dropped_versions = drop.into_iter().collect();
        let mut live: BTreeSet<String> = catalog
            .resources
            .iter()
            .flat_map(|r| r.files.iter().map(|f| f.sha256.to_hex()))
            .collect();
        live.extend(self.lock_pins().keys().map(Sha256::to_hex));
        drop_unreferenced(&self.root.join("images"), &live, &mut report)?;
        Ok(report)
    }

    /// Removes the resources `pred` picks (an operator's delete) and the
    /// content files only they referenced: a file another resource shares
    /// (same digest) stays, so does a file a running sync has pinned, and
    /// files outside the removed resources are not touched (an import may be
    /// promoting them right now).
    pub fn remove_where(&self, pred: impl Fn(&StoredResource) -> bool) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut catalog = self.lock();
        let (removed, kept): (Vec<StoredResource>, Vec<StoredResource>) =
            std::mem::take(&mut catalog.resources)
                .into_iter()
                .partition(|r| pred(r));
        catalog.resources = kept;
        if removed.is_empty() {
            return Ok(report);
        }
        self.save(&catalog)?;
        let live: BTreeSet<Sha256> = catalog
            .resources
            .iter()
            .flat_map(|r| r.files.iter().map(|f| f.sha256))
            .collect();
        let orphans: BTreeSet<Sha256> = removed
            .iter()
            .flat_map(|r| r.files.iter().map(|f| f.sha256))
            .filter(|sha| !live.contains(sha) && !self.is_pinned(sha))
            .collect();
        for sha in orphans {
            let path = self.path_of(&sha);
            match fs::metadata(&path) {
                Ok(m) => {
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    report.deleted_files += 1;
                    report.freed_bytes += m.len();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        report.dropped_versions = removed
            .into_iter()
            .map(|r| (r.product, r.version))
            .collect();
        Ok(report)
    }

    /// Registers an uploaded custom image (MAAS `boot-resources create`):
    /// copies `upload` into the store while hashing, checks the announced
    /// sha256 and size, and promotes it as `custom/<name>`.
    pub fn register_custom(
        &self,
        image: &CustomImage,
        filetype: &str,
        upload: &Path,
        sha256: &Sha256,
        size: u64,
        now: Timestamp,
    ) -> Result<StoredResource> {
        let ftype = custom_filetype(filetype)?;
        if image.name.is_empty() || image.name.contains('/') && !image.name.starts_with("custom/") {
            return Err(Error::Invalid(format!(
                "custom image name {:?} must be a plain name",
                image.name
            )));
        }
        let staged = self.partial_path(sha256);
        let result = copy_hashing(upload, &staged);
        let (actual_sha, actual_size) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&staged);
                return Err(e);
            }
        };
        let what = upload.display().to_string();
        if actual_size != size {
            let _ = fs::remove_file(&staged);
            return Err(Error::SizeMismatch {
                what,
                expected: size,
                actual: actual_size,
            });
        }
        if &actual_sha != sha256 {
            let _ = fs::remove_file(&staged);
            return Err(Error::DigestMismatch {
                what,
                expected: sha256.to_hex(),
                actual: actual_sha.to_hex(),
            });
        }
        self.promote_file(&staged, sha256)?;
        let name = image.name.trim_start_matches("custom/");
        let resource = StoredResource {
            product: format!("custom/{name}"),
            // Zero-padded so versions of the same image sort by upload time.
            version: format!("{:015}", now.as_millis().max(0)),
            kind: ResourceKind::Custom(image.clone()),
            files: vec![StoredFile {
                item: ftype.to_string(),
                ftype,
                sha256: *sha256,
                size,
            }],
        };
        let mut catalog = self.lock();
        catalog.resources.push(resource.clone());
        self.save(&catalog)?;
        Ok(resource)
    }
}

/// Maps the upload file types MAAS accepts to stored file types.
pub fn custom_filetype(s: &str) -> Result<FileType> {
    Ok(match s {
        "tgz" | "root-tgz" => FileType::RootTgz,
        "tbz" | "root-tbz" => FileType::RootTbz,
        "txz" | "root-txz" => FileType::RootTxz,
        "ddtgz" | "dd-tgz" => FileType::RootDd(String::new()),
        "ddtar" | "dd-tar" => FileType::RootDd(".tar".into()),
        "ddraw" | "dd-raw" => FileType::RootDd(".raw".into()),
        "ddtbz" | "dd-tbz" => FileType::RootDd(".tar.bz2".into()),
        "ddtxz" | "dd-txz" => FileType::RootDd(".tar.xz".into()),
        "ddbz2" | "dd-bz2" => FileType::RootDd(".bz2".into()),
        "ddgz" | "dd-gz" => FileType::RootDd(".gz".into()),
        "ddxz" | "dd-xz" => FileType::RootDd(".xz".into()),
        other => {
            return Err(Error::Invalid(format!(
                "unknown custom image file type {other:?} (expected tgz, tbz, txz or dd-*)"
            )));
        }
    })
}

fn copy_hashing(src: &Path, dest: &Path) -> Result<(Sha256, u64)> {
    let mut input = fs::File::open(src).map_err(|e| Error::io(src, e))?;
    let mut out = fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| Error::io(src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(dest, e))?;
        total += n as u64;
    }
    out.sync_data().map_err(|e| Error::io(dest, e))?;
    Ok((hasher.finish(), total))
}

fn drop_unreferenced(dir: &Path, live: &BTreeSet<String>, report: &mut GcReport) -> Result<()> {
    for shard in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let shard = shard.map_err(|e| Error::io(dir, e))?.path();
        if !shard.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&shard).map_err(|e| Error::io(&shard, e))? {
            let path = entry.map_err(|e| Error::io(&shard, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !live.contains(name) {
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                report.deleted_files += 1;
                report.freed_bytes += size;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simplestreams::BootProduct;
    use crate::source::WantedFile;

    fn put(store: &Store, data: &[u8]) -> Sha256 {
        let sha = Sha256::of(data);
        let staged = store.partial_path(&sha);
        fs::write(&staged, data).unwrap();
        store.promote_file(&staged, &sha).unwrap();
        sha
    }

    fn version(store: &Store, subarch: &str, version: &str, tag: &str) -> WantedVersion {
        let file = |item: &str, ftype: FileType| {
            let data = format!("{tag}-{item}");
            WantedFile {
                item: item.into(),
                ftype,
                path: item.into(),
                sha256: put(store, data.as_bytes()),
                size: data.len() as u64,
            }
        };
        WantedVersion {
            content_id: "c".into(),
            product: format!("com.ubuntu.maas.stable:v3:boot:22.04:amd64:{subarch}"),
            version: version.into(),
            kind: ResourceKind::Boot(BootProduct {
                os: "ubuntu".into(),
                release: "jammy".into(),
                arch: "amd64".into(),
                subarch: subarch.into(),
                subarches: vec!["generic".into(), subarch.into()],
                label: "stable".into(),
                kflavor: None,
                version: None,
            }),
            files: vec![
                file("boot-kernel", FileType::BootKernel),
                file("boot-initrd", FileType::BootInitrd),
                // Shared between versions: stored once.
                file("squashfs", FileType::Squashfs),
            ],
        }
    }

    #[test]
    fn commit_lookup_gc_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let v1 = version(&store, "ga-22.04", "20250101", "a");
        let v2 = version(&store, "ga-22.04", "20250615", "b");
        assert_eq!(store.commit(&[v1.clone(), v2.clone()]).unwrap(), 2);
        assert_eq!(store.commit(std::slice::from_ref(&v2)).unwrap(), 0);

        let b = store
            .boot_files("ubuntu", "amd64", "ga-22.04", "jammy")
            .unwrap();
        assert_eq!(b.version, "20250615");
        assert_eq!(fs::read(&b.kernel).unwrap(), b"b-boot-kernel");
        assert!(b.squashfs.is_some());
        // "generic" is listed as compatible.
        assert!(
            store
                .boot_files("ubuntu", "amd64", "generic", "jammy")
                .is_some()
        );
        assert!(
            store
                .boot_files("ubuntu", "arm64", "ga-22.04", "jammy")
                .is_none()
        );

        let report = store.gc(1).unwrap();
        assert_eq!(report.dropped_versions.len(), 1);
        assert_eq!(report.deleted_files, 3);
        assert!(!store.contains(&v1.files[0].sha256, v1.files[0].size));
        assert!(store.contains(&v2.files[0].sha256, v2.files[0].size));

        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.resources().len(), 1);
    }

    #[test]
    fn remove_where_keeps_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Same tag: ga and hwe share every file (same digests).
        let ga = version(&store, "ga-22.04", "1", "a");
        let hwe = version(&store, "hwe-22.04", "1", "a");
        let other = version(&store, "ga-22.04", "2", "b");
        store
            .commit(&[ga.clone(), hwe.clone(), other.clone()])
            .unwrap();
        let is = |v: &WantedVersion| {
            let (p, ver) = (v.product.clone(), v.version.clone());
            move |r: &StoredResource| r.product == p && r.version == ver
        };
        let report = store.remove_where(is(&hwe)).unwrap();
        assert_eq!(report.dropped_versions.len(), 1);
        assert_eq!(report.deleted_files, 0, "ga still uses hwe's files");
        assert!(store.contains(&ga.files[0].sha256, ga.files[0].size));
        let report = store.remove_where(is(&other)).unwrap();
        assert_eq!(report.deleted_files, 3);
        assert!(!store.contains(&other.files[0].sha256, other.files[0].size));
        assert!(store.contains(&ga.files[0].sha256, ga.files[0].size));
        assert_eq!(store.resources().len(), 1);
        assert_eq!(Store::open(dir.path()).unwrap().resources().len(), 1);
        // Nothing matched: nothing removed.
        assert_eq!(store.remove_where(|_| false).unwrap(), GcReport::default());
    }

    #[test]
    fn pinned_files_survive_deletes_and_gc_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = version(&store, "ga-22.04", "1", "a");
        store.commit(std::slice::from_ref(&old)).unwrap();
        let f = &old.files[0];
        // A sync that wants the same files pins them; the operator deletes
        // the resource meanwhile.
        let pins = store.pin(old.files.iter().map(|f| f.sha256));
        let second = store.pin([f.sha256]);
        let report = store.remove_where(|_| true).unwrap();
        assert_eq!(report.dropped_versions.len(), 1);
        assert_eq!(report.deleted_files, 0, "pinned files were deleted");
        assert!(store.contains(&f.sha256, f.size));
        assert_eq!(store.gc(1).unwrap().deleted_files, 0);
        // The sync commits them again: referenced, nothing lost.
        store.commit(std::slice::from_ref(&old)).unwrap();
        store.remove_where(|_| true).unwrap();
        drop(pins);
        // One pin is left on the first file: only the others go.
        let report = store.gc(1).unwrap();
        assert_eq!(report.deleted_files, old.files.len() - 1);
        assert!(store.contains(&f.sha256, f.size));
        drop(second);
        assert_eq!(store.gc(1).unwrap().deleted_files, 1);
        assert!(!store.contains(&f.sha256, f.size));
    }

    #[test]
    fn commit_refuses_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut v = version(&store, "ga-22.04", "1", "a");
        v.files[0].sha256 = Sha256::of(b"absent");
        assert!(store.commit(&[v]).is_err());
        assert!(store.resources().is_empty());
    }

    #[test]
    fn custom_images_are_checked_and_registered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let upload = dir.path().join("img.tgz");
        fs::write(&upload, b"root filesystem").unwrap();
        let sha = Sha256::of(b"root filesystem");
        let image = CustomImage {
            name: "myimage".into(),
            architecture: "amd64/generic".into(),
        };
        let e = store
            .register_custom(&image, "tgz", &upload, &Sha256::of(b"x"), 15, Timestamp(1))
            .unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        let e = store
            .register_custom(&image, "tgz", &upload, &sha, 99, Timestamp(1))
            .unwrap_err();
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
        assert!(
            store
                .register_custom(&image, "zip", &upload, &sha, 15, Timestamp(1))
                .is_err()
        );
        assert!(store.resources().is_empty());
        let r = store
            .register_custom(&image, "dd-xz", &upload, &sha, 15, Timestamp(1))
            .unwrap();
        assert_eq!(r.product, "custom/myimage");
        assert_eq!(r.files[0].ftype.to_string(), "root-dd.xz");
        assert!(store.contains(&sha, 15));
        assert_eq!(store.resources().len(), 1);
    }
}
