//! What the rack tells the region about its boot images: where its image
//! store is and the URL its HTTP boot server serves it under. MAAS's region
//! asks its racks for their boot images (`get_boot_images_for`) to point the
//! installer at `http://<rack>:5248/images/…`; here the in-process rack
//! records the same facts in the `settings` table when it starts, so the
//! metadata API (a separate rack process later) can name the deployable
//! image of a release without holding the rack's objects.

use serde::{Deserialize, Serialize};

use crate::db::{DbConn, settings};
use crate::error::Result;

/// Settings key of the rack's registration.
pub const RACK_IMAGES_SETTING: &str = "rack:boot_images";

/// The rack's image store and the URL prefix its HTTP boot serves it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RackImages {
    /// Root of the maas-images store.
    pub images_dir: std::path::PathBuf,
    /// `http://<rack>:<port>/images/`: the store's `images/` directory over
    /// HTTP.
    pub http_base: String,
}

/// Records the rack's images (called when the rack starts).
pub fn register(conn: &mut DbConn, r: &RackImages) -> Result<()> {
    settings::set(conn, RACK_IMAGES_SETTING, &serde_json::to_value(r)?)
}

/// The registered rack images, if a rack with a store runs.
pub fn registered(conn: &mut DbConn) -> Result<Option<RackImages>> {
    Ok(settings::get(conn, RACK_IMAGES_SETTING)?.and_then(|v| serde_json::from_value(v).ok()))
}

/// A deployable image: curtin's source `type` and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallImage {
    /// curtin's source type: `tgz` for a root tarball, `dd-tgz`/`dd-xz`… for
    /// disk images.
    pub kind: &'static str,
    /// Where the installer downloads it.
    pub url: String,
}

/// The image that installs `os`/`series` on `arch`/`subarch` (MAAS's
/// `xinstall` image), from the store `rack` registered: a root tarball
/// (`root-tgz`) or a disk image (`root-dd*`). The newest version wins; an
/// exact subarch before a `generic` one.
pub fn install_image(
    rack: &RackImages,
    os: &str,
    arch: &str,
    subarch: &str,
    series: &str,
) -> Option<InstallImage> {
    let store = maas_images::Store::open(rack.images_dir.clone()).ok()?;
    let images = store.root().join("images");
    let mut best: Option<(bool, String, InstallImage)> = None;
    for r in store.resources() {
        let maas_images::ResourceKind::Boot(b) = &r.kind else {
            continue;
        };
        if b.os != os || b.arch != arch || b.release != series {
            continue;
        }
        let exact = b.subarch == subarch;
        if !exact && b.subarch != "generic" && !b.subarches.iter().any(|s| s == subarch) {
            continue;
        }
        let Some((kind, f)) = r.files.iter().find_map(|f| {
            let kind = match f.item.as_str() {
                "root-tgz" => "tgz",
                "root-tbz" => "tbz",
                "root-txz" => "txz",
                "root-dd" | "root-dd.tar" => "dd-tar",
                "root-dd.gz" | "root-dd.tar.gz" => "dd-tgz",
                "root-dd.xz" | "root-dd.tar.xz" => "dd-txz",
                _ => return None,
            };
            Some((kind, f))
        }) else {
            continue;
        };
        let path = store.path_of(&f.sha256);
        let Ok(rel) = path.strip_prefix(&images) else {
            continue;
        };
        let url = format!("{}/{}", rack.http_base.trim_end_matches('/'), rel.display());
        let better = match &best {
            None => true,
            Some((e, v, _)) => (exact, &r.version) > (*e, v),
        };
        if better {
            best = Some((exact, r.version.clone(), InstallImage { kind, url }));
        }
    }
    best.map(|(_, _, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_store_no_image() {
        let dir = tempfile::tempdir().unwrap();
        let r = RackImages {
            images_dir: dir.path().join("store"),
            http_base: "http://192.0.2.1:5248/images/".into(),
        };
        // An empty store opens, and has nothing to install.
        assert_eq!(
            install_image(&r, "debian", "amd64", "generic", "bookworm"),
            None
        );
    }
}
