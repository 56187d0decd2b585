//! Boot sources and selections, and the decision of exactly which product
//! versions and files an import wants.
//!
//! MAAS's backend allows several sources but manages images from one only
//! ([`single_source`] enforces that with a clear error). A selection matches
//! boot products by os, release, arches, subarches and labels, where `*`
//! matches anything. For each matched product the newest complete version is
//! wanted; bootloaders are wanted for every selected architecture.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::digest::Sha256;
use crate::error::{Error, Result};
use crate::simplestreams::{BootProduct, BootloaderProduct, FileType, ProductKind, Products};
use crate::verify::{Keyring, Verification};

/// Where a source's keyring comes from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyringSource {
    /// A keyring file (`keyring_filename`).
    File(PathBuf),
    /// Keyring bytes stored with the source (`keyring_data`).
    Data(Vec<u8>),
}

impl fmt::Debug for KeyringSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Data(d) => write!(f, "Data({} bytes)", d.len()),
        }
    }
}

/// A simplestreams mirror MAAS imports from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSource {
    /// Display name (defaults to the URL).
    #[serde(default)]
    pub name: Option<String>,
    /// Mirror root (`…/ephemeral-v3/stable/`) or the index itself (`…/streams/v1/index.sjson`).
    pub url: Url,
    /// Trusted keys; `None` only with `skip_keyring_verification`.
    #[serde(default)]
    pub keyring: Option<KeyringSource>,
    /// Higher first, when several sources are listed.
    #[serde(default)]
    pub priority: i32,
    /// Disabled sources are ignored.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Accept unsigned documents (MAAS's escape hatch for private mirrors).
    #[serde(default)]
    pub skip_keyring_verification: bool,
    /// What to import from this source.
    #[serde(default)]
    pub selections: Vec<Selection>,
}

fn yes() -> bool {
    true
}

impl BootSource {
    /// A source with a keyring file and no selections.
    pub fn new(url: Url, keyring: KeyringSource) -> Self {
        Self {
            name: None,
            url,
            keyring: Some(keyring),
            priority: 0,
            enabled: true,
            skip_keyring_verification: false,
            selections: Vec::new(),
        }
    }

    /// The name to show.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.url.to_string())
    }

    /// The index URL: the source URL itself when it names a `streams/v1`
    /// document, else `streams/v1/index.sjson` below it (as MAAS does).
    pub fn index_url(&self) -> Result<Url> {
        let path = self.url.path();
        if path.ends_with(".json") || path.ends_with(".sjson") {
            return Ok(self.url.clone());
        }
        let mut base = self.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join("streams/v1/index.sjson")
            .map_err(|e| Error::Invalid(format!("bad source URL {}: {e}", self.url)))
    }

    /// The mirror root that item paths are relative to.
    pub fn mirror_root(&self) -> Result<Url> {
        let index = self.index_url()?;
        // index is <root>/streams/v1/<file>; paths in documents are relative to <root>.
        index
            .join("../../")
            .map_err(|e| Error::Invalid(format!("bad source URL {}: {e}", self.url)))
    }

    /// How this source's documents are checked.
    pub fn verification(&self) -> Result<Verification> {
        if self.skip_keyring_verification {
            return Ok(Verification::Skip);
        }
        let keyring = match &self.keyring {
            Some(KeyringSource::File(p)) => Keyring::from_file(p)?,
            Some(KeyringSource::Data(d)) => Keyring::from_bytes(d)?,
            None => {
                return Err(Error::Invalid(format!(
                    "boot source {} has no keyring and does not skip verification",
                    self.display_name()
                )));
            }
        };
        Ok(Verification::Keyring(Arc::new(keyring)))
    }
}

/// The one enabled source MAAS imports from; several enabled sources are an
/// error naming them (MAAS's UI refuses to manage images in that case).
pub fn single_source(sources: &[BootSource]) -> Result<&BootSource> {
    let enabled: Vec<&BootSource> = sources.iter().filter(|s| s.enabled).collect();
    match enabled.as_slice() {
        [] => Err(Error::NoSource),
        [one] => Ok(one),
        many => Err(Error::MultipleSources(
            many.iter().map(|s| s.display_name()).collect(),
        )),
    }
}

/// A filter on boot products (`BootSourceSelection`). Empty lists mean `*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// `ubuntu`, `centos`, or `*`.
    pub os: String,
    /// `jammy`, or `*`.
    pub release: String,
    /// `amd64`, …
    #[serde(default)]
    pub arches: Vec<String>,
    /// `ga-22.04`, `hwe-22.04`, …
    #[serde(default)]
    pub subarches: Vec<String>,
    /// `stable`, `candidate`, …
    #[serde(default)]
    pub labels: Vec<String>,
}

fn any_matches(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == "*" || v == value)
}

impl Selection {
    /// A selection of one release on some arches, every kernel and label.
    pub fn new(os: &str, release: &str, arches: &[&str]) -> Self {
        Self {
            os: os.into(),
            release: release.into(),
            arches: arches.iter().map(|s| (*s).to_owned()).collect(),
            subarches: vec!["*".into()],
            labels: vec!["*".into()],
        }
    }

    /// Whether a boot product falls under this selection.
    pub fn matches(&self, p: &BootProduct) -> bool {
        (self.os == "*" || self.os == p.os)
            && (self.release == "*" || self.release == p.release)
            && any_matches(&self.arches, &p.arch)
            && any_matches(&self.subarches, &p.subarch)
            && any_matches(&self.labels, &p.label)
    }

    fn matches_bootloader(&self, b: &BootloaderProduct) -> bool {
        b.arches.iter().any(|a| any_matches(&self.arches, a)) || any_matches(&self.arches, &b.arch)
    }
}

/// What a wanted version is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceKind {
    /// Kernel, initrd and root filesystem for os/release/arch/subarch.
    Boot(BootProduct),
    /// A bootloader archive.
    Bootloader(BootloaderProduct),
    /// An uploaded custom image.
    Custom(CustomImage),
}

/// An uploaded image's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomImage {
    /// Name as uploaded (`custom/myimage` is shown as `myimage`).
    pub name: String,
    /// Architecture (`amd64/generic`).
    pub architecture: String,
}

/// One file of a wanted version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedFile {
    /// Item name in the stream.
    pub item: String,
    /// File type.
    pub ftype: FileType,
    /// Path relative to the mirror root.
    pub path: String,
    /// Expected digest.
    pub sha256: Sha256,
    /// Expected size.
    pub size: u64,
}

/// A product version chosen for import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WantedVersion {
    /// Content id of its products document.
    pub content_id: String,
    /// Product name.
    pub product: String,
    /// Version (build serial).
    pub version: String,
    /// What it is.
    pub kind: ResourceKind,
    /// Its files.
    pub files: Vec<WantedFile>,
}

/// Everything an import wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Chosen versions, in product order.
    pub versions: Vec<WantedVersion>,
}

impl Wanted {
    /// Distinct files by digest (a squashfs shared by several kernels is fetched once).
    pub fn unique_files(&self) -> Vec<&WantedFile> {
        let mut seen = BTreeSet::new();
        self.versions
            .iter()
            .flat_map(|v| &v.files)
            .filter(|f| seen.insert(f.sha256))
            .collect()
    }

    /// Total bytes of [`unique_files`](Self::unique_files).
    pub fn total_bytes(&self) -> u64 {
        self.unique_files().iter().map(|f| f.size).sum()
    }
}

/// Whether a boot version has what booting needs: kernel, initrd and a root
/// filesystem (squashfs or root-image.gz).
fn boot_complete(types: &BTreeSet<FileType>) -> bool {
    types.contains(&FileType::BootKernel)
        && types.contains(&FileType::BootInitrd)
        && (types.contains(&FileType::Squashfs)
            || types.contains(&FileType::RootImageGz)
            || types.contains(&FileType::RootTgz))
}

/// Picks, for every product matching a selection, its newest complete version
/// and the files to fetch. With a squashfs present, `root-image.gz` is not
/// fetched (MAAS 3 boots from squashfs). Items without sha256 or size are an
/// error: nothing unverifiable enters the store.
pub fn compute_wanted(streams: &[Products], selections: &[Selection]) -> Result<Wanted> {
    let mut versions = Vec::new();
    for products in streams {
        for (pname, product) in &products.products {
            let kind = match products.product_kind(pname) {
                Some(ProductKind::Boot(b)) if selections.iter().any(|s| s.matches(&b)) => {
                    ResourceKind::Boot(b)
                }
                Some(ProductKind::Bootloader(b))
                    if selections.iter().any(|s| s.matches_bootloader(&b)) =>
                {
                    ResourceKind::Bootloader(b)
                }
                _ => continue,
            };
            // Build serials (YYYYMMDD[.n]) sort correctly as strings.
            for (vname, version) in product.versions.iter().rev() {
                let types: BTreeSet<FileType> = version
                    .items
                    .iter()
                    .map(|(n, i)| FileType::parse(i.ftype.as_deref().unwrap_or(n)))
                    .collect();
                if matches!(kind, ResourceKind::Boot(_)) && !boot_complete(&types) {
                    continue;
                }
                let has_squashfs = types.contains(&FileType::Squashfs);
                let mut files = Vec::new();
                for (iname, item) in &version.items {
                    let ftype = FileType::parse(item.ftype.as_deref().unwrap_or(iname));
                    if has_squashfs && ftype == FileType::RootImageGz {
                        continue;
                    }
                    let what = || format!("{pname} {vname} {iname}");
                    let sha256 = item
                        .sha256
                        .ok_or_else(|| Error::Invalid(format!("{} has no sha256", what())))?;
                    let size = item
                        .size
                        .ok_or_else(|| Error::Invalid(format!("{} has no size", what())))?;
                    check_relative_path(&item.path)?;
                    files.push(WantedFile {
                        item: iname.clone(),
                        ftype,
                        path: item.path.clone(),
                        sha256,
                        size,
                    });
                }
                versions.push(WantedVersion {
                    content_id: products.content_id.clone(),
                    product: pname.clone(),
                    version: vname.clone(),
                    kind,
                    files,
                });
                break;
            }
        }
    }
    Ok(Wanted { versions })
}

/// Item paths must stay under the mirror root.
fn check_relative_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.starts_with('/')
        || path.contains("://")
        || path.split('/').any(|c| c == "..")
    {
        return Err(Error::Invalid(format!(
            "item path {path:?} is not relative to the mirror"
        )));
    }
    Ok(())
}

/// Which selections matched nothing, for a clear warning.
pub fn unmatched_selections<'a>(
    streams: &[Products],
    selections: &'a [Selection],
) -> Vec<&'a Selection> {
    let mut hits: BTreeMap<usize, bool> = BTreeMap::new();
    for products in streams {
        for name in products.products.keys() {
            if let Some(ProductKind::Boot(b)) = products.product_kind(name) {
                for (i, s) in selections.iter().enumerate() {
                    if s.matches(&b) {
                        hits.insert(i, true);
                    }
                }
            }
        }
    }
    selections
        .iter()
        .enumerate()
        .filter(|(i, _)| !hits.contains_key(i))
        .map(|(_, s)| s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Verified;
    use bytes::Bytes;
    use serde_json::json;

    fn sha(n: u8) -> String {
        hex::encode([n; 32])
    }

    fn item(ftype: &str, n: u8) -> serde_json::Value {
        json!({"ftype": ftype, "path": format!("p/{ftype}/{n}"), "sha256": sha(n), "size": n})
    }

    fn stream() -> Products {
        let doc = json!({
            "format": "products:1.0", "content_id": "com.ubuntu.maas:stable:v3:download",
            "label": "stable",
            "products": {
                "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04": {
                    "os": "ubuntu", "release": "jammy", "arch": "amd64", "subarch": "ga-22.04",
                    "versions": {
                        "20250101": {"items": {"boot-kernel": item("boot-kernel", 1),
                            "boot-initrd": item("boot-initrd", 2), "squashfs": item("squashfs", 3)}},
                        "20250615": {"items": {"boot-kernel": item("boot-kernel", 4),
                            "boot-initrd": item("boot-initrd", 5), "squashfs": item("squashfs", 6),
                            "root-image.gz": item("root-image.gz", 7),
                            "manifest": item("squashfs.manifest", 8)}},
                        "20250701": {"items": {"boot-kernel": item("boot-kernel", 9)}}
                    }
                },
                "com.ubuntu.maas.stable:v3:boot:22.04:amd64:hwe-22.04": {
                    "os": "ubuntu", "release": "jammy", "arch": "amd64", "subarch": "hwe-22.04",
                    "versions": {"20250615": {"items": {"boot-kernel": item("boot-kernel", 10),
                        "boot-initrd": item("boot-initrd", 11), "squashfs": item("squashfs", 6)}}}
                },
                "com.ubuntu.maas.stable:v3:boot:22.04:arm64:ga-22.04": {
                    "os": "ubuntu", "release": "jammy", "arch": "arm64", "subarch": "ga-22.04",
                    "versions": {"20250615": {"items": {"boot-kernel": item("boot-kernel", 12),
                        "boot-initrd": item("boot-initrd", 13), "squashfs": item("squashfs", 14)}}}
                },
                "com.ubuntu.maas.stable:1:pxelinux:pxe:i386": {
                    "os": "pxelinux", "arch": "i386", "arches": "i386,amd64",
                    "bootloader-type": "pxe",
                    "versions": {"20210819.0": {"items": {"syslinux": item("archive.tar.xz", 15)}}}
                },
                "com.ubuntu.maas.stable:1:grub-ieee1275:open-firmware:ppc64el": {
                    "os": "grub-ieee1275", "arch": "ppc64el", "bootloader-type": "open-firmware",
                    "versions": {"20210819.0": {"items": {"grub2": item("archive.tar.xz", 16)}}}
                }
            }
        });
        Products::parse(&Verified::skipped("t", Bytes::from(doc.to_string()))).unwrap()
    }

    #[test]
    fn newest_complete_version_of_matching_products() {
        let w = compute_wanted(
            &[stream()],
            &[Selection::new("ubuntu", "jammy", &["amd64"])],
        )
        .unwrap();
        let names: Vec<_> = w
            .versions
            .iter()
            .map(|v| (v.product.rsplit(':').next().unwrap(), v.version.as_str()))
            .collect();
        // 20250701 lacks initrd and squashfs, so 20250615 is the newest complete one;
        // arm64 and the ppc64el bootloader are not selected.
        assert_eq!(
            names,
            [
                ("i386", "20210819.0"),
                ("ga-22.04", "20250615"),
                ("hwe-22.04", "20250615")
            ]
        );
        let ga = &w.versions[1];
        let types: Vec<_> = ga.files.iter().map(|f| f.ftype.to_string()).collect();
        assert_eq!(
            types,
            [
                "boot-initrd",
                "boot-kernel",
                "squashfs.manifest",
                "squashfs"
            ]
        );
        // The squashfs (6) is shared by ga and hwe: fetched once.
        assert_eq!(w.unique_files().len(), 1 + 4 + 2);
        assert_eq!(w.total_bytes(), 15 + 5 + 4 + 8 + 6 + 11 + 10);
    }

    #[test]
    fn subarch_and_label_filters() {
        let mut sel = Selection::new("ubuntu", "*", &["*"]);
        sel.subarches = vec!["hwe-22.04".into()];
        let w = compute_wanted(&[stream()], std::slice::from_ref(&sel)).unwrap();
        let boot: Vec<_> = w
            .versions
            .iter()
            .filter(|v| matches!(v.kind, ResourceKind::Boot(_)))
            .collect();
        assert_eq!(boot.len(), 1);
        sel.labels = vec!["candidate".into()];
        let w = compute_wanted(&[stream()], std::slice::from_ref(&sel)).unwrap();
        assert!(
            w.versions
                .iter()
                .all(|v| !matches!(v.kind, ResourceKind::Boot(_)))
        );
        assert_eq!(unmatched_selections(&[stream()], &[sel]).len(), 1);
    }

    #[test]
    fn single_source_rule() {
        let url: Url = "http://127.0.0.1/m/".parse().unwrap();
        let a = BootSource::new(url.clone(), KeyringSource::File("/k".into()));
        let mut b = a.clone();
        b.name = Some("second".into());
        assert!(matches!(single_source(&[]), Err(Error::NoSource)));
        assert_eq!(single_source(std::slice::from_ref(&a)).unwrap(), &a);
        let e = single_source(&[a.clone(), b.clone()]).unwrap_err();
        assert!(e.to_string().contains("single source"), "{e}");
        assert!(e.to_string().contains("second"), "{e}");
        b.enabled = false;
        assert_eq!(single_source(&[a.clone(), b]).unwrap(), &a);
    }

    #[test]
    fn index_url_rules() {
        let s = |u: &str| BootSource::new(u.parse().unwrap(), KeyringSource::Data(vec![]));
        assert_eq!(
            s("http://h/ephemeral-v3/stable")
                .index_url()
                .unwrap()
                .as_str(),
            "http://h/ephemeral-v3/stable/streams/v1/index.sjson"
        );
        let direct = s("http://h/m/streams/v1/index.json");
        assert_eq!(
            direct.index_url().unwrap().as_str(),
            "http://h/m/streams/v1/index.json"
        );
        assert_eq!(direct.mirror_root().unwrap().as_str(), "http://h/m/");
    }

    #[test]
    fn escaping_item_paths_are_refused() {
        for p in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "http://evil/x",
            "",
        ] {
            assert!(check_relative_path(p).is_err(), "{p}");
        }
        assert!(check_relative_path("jammy/amd64/squashfs").is_ok());
    }

    #[test]
    fn keyring_data_is_not_printed() {
        let k = KeyringSource::Data(vec![1, 2, 3]);
        assert_eq!(format!("{k:?}"), "Data(3 bytes)");
    }
}
