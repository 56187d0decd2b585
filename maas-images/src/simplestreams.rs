//! Simplestreams documents: `index:1.0` and `products:1.0`, their inheritance
//! rules, and the MAAS v3 reading of them (boot and bootloader products,
//! file types).
//!
//! Documents are parsed only from [`Verified`] bytes, so nothing here can see
//! text whose signature was not checked (or explicitly skipped by the source).
//! Unknown fields are kept in `extra`/`fields` maps: newer streams add fields
//! and must not break older importers.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::digest::Sha256;
use crate::error::{Error, Result};
use crate::verify::Verified;

/// The `format` of an index document.
pub const INDEX_FORMAT: &str = "index:1.0";
/// The `format` of a products document.
pub const PRODUCTS_FORMAT: &str = "products:1.0";

/// Free-form fields of a simplestreams node, kept as JSON.
pub type Fields = BTreeMap<String, Value>;

/// `streams/v1/index.(s)json`: which product streams a mirror holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// RFC 2822 date of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Content id → where its products document lives.
    pub index: BTreeMap<String, IndexEntry>,
    /// Fields this crate does not interpret.
    #[serde(flatten)]
    pub extra: Fields,
}

/// One entry of an index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// `image-ids` for MAAS streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
    /// Format of the referenced document (`products:1.0`).
    pub format: String,
    /// Path of the products document, relative to the mirror root.
    pub path: String,
    /// Product names the document holds.
    #[serde(default)]
    pub products: Vec<String>,
    /// RFC 2822 date of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Fields this crate does not interpret.
    #[serde(flatten)]
    pub extra: Fields,
}

/// A `products:1.0` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Products {
    /// Always [`PRODUCTS_FORMAT`].
    pub format: String,
    /// e.g. `com.ubuntu.maas:stable:v3:download`.
    pub content_id: String,
    /// `image-downloads` / `image-ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<String>,
    /// RFC 2822 date of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Product name → product.
    #[serde(default)]
    pub products: BTreeMap<String, Product>,
    /// Fields inherited by every product (and fields this crate does not interpret).
    #[serde(flatten)]
    pub extra: Fields,
}

/// A product: one OS release/arch/kernel (or one bootloader) in all its versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Version name (a build serial such as `20250615` or `20250615.1`) → version.
    #[serde(default)]
    pub versions: BTreeMap<String, Version>,
    /// Product fields (`arch`, `os`, `release`, `subarch`, …), inherited by versions.
    #[serde(flatten)]
    pub fields: Fields,
}

/// One build of a product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Item name (`boot-kernel`, `squashfs`, …) → item.
    #[serde(default)]
    pub items: BTreeMap<String, Item>,
    /// Version fields, inherited by items.
    #[serde(flatten)]
    pub fields: Fields,
}

/// One downloadable file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Path relative to the mirror root.
    pub path: String,
    /// File type (`boot-kernel`, `squashfs`, `archive.tar.xz`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftype: Option<String>,
    /// Expected digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Expected size in bytes.
    #[serde(
        default,
        deserialize_with = "lenient_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// Item fields this crate does not interpret (`md5`, `kpackage`, …).
    #[serde(flatten)]
    pub fields: Fields,
}

/// Some generators write sizes as strings; accept both.
fn lenient_size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("size {n} is not a byte count"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("size {s:?} is not a byte count"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "size must be a number, got {other}"
        ))),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(doc: &Verified<Bytes>) -> Result<T> {
    serde_json::from_slice(doc.get()).map_err(|e| Error::Document {
        document: doc.document().to_owned(),
        reason: e.to_string(),
    })
}

fn check_format(doc: &Verified<Bytes>, got: &str, want: &str) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Document {
            document: doc.document().to_owned(),
            reason: format!("format is {got:?}, expected {want:?}"),
        })
    }
}

impl Index {
    /// Parses a verified index document.
    pub fn parse(doc: &Verified<Bytes>) -> Result<Self> {
        let index: Index = parse_json(doc)?;
        check_format(doc, &index.format, INDEX_FORMAT)?;
        Ok(index)
    }

    /// The entries that point at `products:1.0` documents, by content id.
    pub fn product_streams(&self) -> impl Iterator<Item = (&str, &IndexEntry)> {
        self.index
            .iter()
            .filter(|(_, e)| e.format == PRODUCTS_FORMAT)
            .map(|(k, e)| (k.as_str(), e))
    }
}

/// An item with everything it inherits from its version, product and document.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatItem<'a> {
    /// Content id of the products document.
    pub content_id: &'a str,
    /// Product name.
    pub product_name: &'a str,
    /// Version name.
    pub version_name: &'a str,
    /// Item name.
    pub item_name: &'a str,
    /// The item itself.
    pub item: &'a Item,
    /// Merged fields: document, then product, then version, then item (later wins).
    pub attrs: Fields,
}

impl Products {
    /// Parses a verified products document.
    pub fn parse(doc: &Verified<Bytes>) -> Result<Self> {
        let products: Products = parse_json(doc)?;
        check_format(doc, &products.format, PRODUCTS_FORMAT)?;
        Ok(products)
    }

    /// A product's fields merged with those it inherits from the document.
    pub fn product_attrs(&self, name: &str) -> Option<Fields> {
        let product = self.products.get(name)?;
        let mut attrs = self.extra.clone();
        attrs.insert("content_id".into(), Value::String(self.content_id.clone()));
        attrs.insert("product_name".into(), Value::String(name.to_owned()));
        attrs.extend(product.fields.clone());
        Some(attrs)
    }

    /// Every item with its inherited fields, in name order.
    pub fn items(&self) -> Vec<FlatItem<'_>> {
        let mut out = Vec::new();
        for (pname, product) in &self.products {
            let Some(pattrs) = self.product_attrs(pname) else {
                continue;
            };
            for (vname, version) in &product.versions {
                let mut vattrs = pattrs.clone();
                vattrs.insert("version_name".into(), Value::String(vname.clone()));
                vattrs.extend(version.fields.clone());
                for (iname, item) in &version.items {
                    let mut attrs = vattrs.clone();
                    attrs.insert("item_name".into(), Value::String(iname.clone()));
                    attrs.extend(item.fields.clone());
                    attrs.insert("path".into(), Value::String(item.path.clone()));
                    if let Some(f) = &item.ftype {
                        attrs.insert("ftype".into(), Value::String(f.clone()));
                    }
                    if let Some(s) = &item.sha256 {
                        attrs.insert("sha256".into(), Value::String(s.to_hex()));
                    }
                    if let Some(s) = item.size {
                        attrs.insert("size".into(), Value::from(s));
                    }
                    out.push(FlatItem {
                        content_id: &self.content_id,
                        product_name: pname,
                        version_name: vname,
                        item_name: iname,
                        item,
                        attrs,
                    });
                }
            }
        }
        out
    }

    /// How MAAS reads a product: a boot image, a bootloader, or something else.
    pub fn product_kind(&self, name: &str) -> Option<ProductKind> {
        self.product_attrs(name)
            .map(|a| ProductKind::from_attrs(name, &a))
    }
}

fn attr_str(attrs: &Fields, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn attr_list(attrs: &Fields, key: &str) -> Vec<String> {
    match attrs.get(key) {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A MAAS boot-image product (`com.ubuntu.maas.stable:v3:boot:<ver>:<arch>:<subarch>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootProduct {
    /// `ubuntu`, `centos`, …
    pub os: String,
    /// `jammy`, …
    pub release: String,
    /// Debian architecture (`amd64`, `arm64`).
    pub arch: String,
    /// Kernel flavour/track (`ga-22.04`, `hwe-22.04`).
    pub subarch: String,
    /// Kernels this one can stand in for (the `subarches` CSV).
    pub subarches: Vec<String>,
    /// Stream label (`stable`, `candidate`).
    pub label: String,
    /// Kernel flavour (`generic`, `lowlatency`).
    pub kflavor: Option<String>,
    /// OS version (`22.04`).
    pub version: Option<String>,
}

/// A MAAS bootloader product (`com.ubuntu.maas.stable:1:<os>:<type>:<arch>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootloaderProduct {
    /// `grub-efi-signed`, `grub-efi`, `grub-ieee1275`, `pxelinux`.
    pub os: String,
    /// `uefi`, `open-firmware`, `pxe`.
    pub bootloader_type: String,
    /// Debian architecture.
    pub arch: String,
    /// Architectures it boots.
    pub arches: Vec<String>,
    /// Stream label.
    pub label: String,
}

/// What a product is, for MAAS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductKind {
    /// A kernel/initrd/squashfs set.
    Boot(BootProduct),
    /// A bootloader archive.
    Bootloader(BootloaderProduct),
    /// Anything else (kept, not imported).
    Other,
}

impl ProductKind {
    /// Classifies a product from its name and inherited fields.
    pub fn from_attrs(name: &str, attrs: &Fields) -> Self {
        let label = attr_str(attrs, "label").unwrap_or_else(|| "stable".into());
        if let (Some(bootloader_type), Some(os), Some(arch)) = (
            attr_str(attrs, "bootloader-type"),
            attr_str(attrs, "os"),
            attr_str(attrs, "arch"),
        ) {
            let mut arches = attr_list(attrs, "arches");
            if arches.is_empty() {
                arches.push(arch.clone());
            }
            return ProductKind::Bootloader(BootloaderProduct {
                os,
                bootloader_type,
                arch,
                arches,
                label,
            });
        }
        // The name carries arch and subarch as its last two parts; fields win.
        let mut parts = name.rsplit(':');
        let name_subarch = parts.next().map(str::to_owned);
        let name_arch = parts.next().map(str::to_owned);
        let arch = attr_str(attrs, "arch").or(if name.contains(":boot:") {
            name_arch
        } else {
            None
        });
        let subarch = attr_str(attrs, "subarch").or(if name.contains(":boot:") {
            name_subarch
        } else {
            None
        });
        match (
            attr_str(attrs, "os"),
            attr_str(attrs, "release"),
            arch,
            subarch,
        ) {
            (Some(os), Some(release), Some(arch), Some(subarch)) => {
                let mut subarches = attr_list(attrs, "subarches");
                if subarches.is_empty() {
                    subarches.push(subarch.clone());
                }
                ProductKind::Boot(BootProduct {
                    os,
                    release,
                    arch,
                    subarch,
                    subarches,
                    label,
                    kflavor: attr_str(attrs, "kflavor"),
                    version: attr_str(attrs, "version"),
                })
            }
            _ => ProductKind::Other,
        }
    }
}

/// The file types MAAS stores (`BootResourceFileType`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    /// `boot-kernel`
    BootKernel,
    /// `boot-initrd`
    BootInitrd,
    /// `boot-dtb`
    BootDtb,
    /// `squashfs`
    Squashfs,
    /// `squashfs.manifest` / `manifest`
    Manifest,
    /// `root-image.gz`
    RootImageGz,
    /// `root-tgz`
    RootTgz,
    /// `root-tbz`
    RootTbz,
    /// `root-txz`
    RootTxz,
    /// `root-dd` and its compressed/tarred variants (the suffix after `root-dd`).
    RootDd(String),
    /// `archive.tar.xz` (bootloaders)
    ArchiveTarXz,
    /// `self-extracting`
    SelfExtracting,
    /// Anything else, kept verbatim.
    Other(String),
}

impl FileType {
    /// Reads a simplestreams `ftype` (or an item name when `ftype` is absent).
    pub fn parse(s: &str) -> Self {
        match s {
            "boot-kernel" => Self::BootKernel,
            "boot-initrd" => Self::BootInitrd,
            "boot-dtb" => Self::BootDtb,
            "squashfs" => Self::Squashfs,
            "squashfs.manifest" | "manifest" => Self::Manifest,
            "root-image.gz" => Self::RootImageGz,
            "root-tgz" => Self::RootTgz,
            "root-tbz" => Self::RootTbz,
            "root-txz" => Self::RootTxz,
            "archive.tar.xz" => Self::ArchiveTarXz,
            "self-extracting" => Self::SelfExtracting,
            s if s.starts_with("root-dd") => Self::RootDd(s["root-dd".len()..].to_owned()),
            s => Self::Other(s.to_owned()),
        }
    }

    /// The MAAS spelling.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match self {
            Self::BootKernel => Borrowed("boot-kernel"),
            Self::BootInitrd => Borrowed("boot-initrd"),
            Self::BootDtb => Borrowed("boot-dtb"),
            Self::Squashfs => Borrowed("squashfs"),
            Self::Manifest => Borrowed("squashfs.manifest"),
            Self::RootImageGz => Borrowed("root-image.gz"),
            Self::RootTgz => Borrowed("root-tgz"),
            Self::RootTbz => Borrowed("root-tbz"),
            Self::RootTxz => Borrowed("root-txz"),
            Self::RootDd(suffix) => Owned(format!("root-dd{suffix}")),
            Self::ArchiveTarXz => Borrowed("archive.tar.xz"),
            Self::SelfExtracting => Borrowed("self-extracting"),
            Self::Other(s) => Borrowed(s),
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for FileType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for FileType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const PRODUCTS: &str = r#"{
      "format": "products:1.0",
      "content_id": "com.ubuntu.maas:stable:v3:download",
      "datatype": "image-downloads",
      "label": "stable",
      "future_field": {"x": 1},
      "products": {
        "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04": {
          "arch": "amd64", "kflavor": "generic", "krel": "jammy", "os": "ubuntu",
          "release": "jammy", "subarch": "ga-22.04", "subarches": "generic,hwe-p,ga-22.04",
          "version": "22.04",
          "versions": {
            "20250615": {
              "items": {
                "boot-kernel": {"ftype": "boot-kernel", "kpackage": "linux-generic",
                  "path": "jammy/amd64/20250615/ga-22.04/generic/boot-kernel",
                  "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "size": 3},
                "squashfs": {"ftype": "squashfs", "path": "jammy/amd64/20250615/squashfs",
                  "sha256": "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "size": "3"}
              }
            }
          }
        },
        "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64": {
          "arch": "amd64", "arches": "amd64", "bootloader-type": "uefi", "label": "stable",
          "os": "grub-efi-signed",
          "versions": {"20210819.0": {"items": {"grub2-signed": {"ftype": "archive.tar.xz",
            "path": "bootloaders/uefi/amd64/20210819.0/grub2-signed.tar.xz", "size": 1,
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "src_package": "grub2-signed"}}}}
        }
      }
    }"#;

    fn doc(s: &str) -> Verified<Bytes> {
        Verified::skipped("test", Bytes::from(s.to_owned()))
    }

    #[test]
    fn parses_products_keeping_unknown_fields() {
        let p = Products::parse(&doc(PRODUCTS)).unwrap();
        assert_eq!(p.products.len(), 2);
        assert_eq!(p.extra["future_field"], serde_json::json!({"x": 1}));
        let items = p.items();
        assert_eq!(items.len(), 3);
        let kernel = items.iter().find(|i| i.item_name == "boot-kernel").unwrap();
        assert_eq!(kernel.attrs["arch"], "amd64");
        assert_eq!(kernel.attrs["label"], "stable");
        assert_eq!(kernel.attrs["kpackage"], "linux-generic");
        let squash = items.iter().find(|i| i.item_name == "squashfs").unwrap();
        assert_eq!(squash.item.size, Some(3));
        assert_eq!(squash.item.sha256, kernel.item.sha256);
    }

    #[test]
    fn classifies_boot_and_bootloader_products() {
        let p = Products::parse(&doc(PRODUCTS)).unwrap();
        let ProductKind::Boot(b) = p
            .product_kind("com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04")
            .unwrap()
        else {
            panic!("not a boot product")
        };
        assert_eq!(
            (b.os.as_str(), b.release.as_str(), b.arch.as_str()),
            ("ubuntu", "jammy", "amd64")
        );
        assert_eq!(b.subarches, ["generic", "hwe-p", "ga-22.04"]);
        let ProductKind::Bootloader(l) = p
            .product_kind("com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64")
            .unwrap()
        else {
            panic!("not a bootloader")
        };
        assert_eq!(l.bootloader_type, "uefi");
    }

    #[test]
    fn rejects_wrong_format_and_bad_digest() {
        let e = Products::parse(&doc(r#"{"format":"index:1.0","content_id":"x"}"#)).unwrap_err();
        assert!(e.to_string().contains("expected \"products:1.0\""), "{e}");
        let bad = PRODUCTS.replace("ba7816bf", "zz7816bf");
        assert!(Products::parse(&doc(&bad)).is_err());
    }

    #[test]
    fn parses_index() {
        let i = Index::parse(&doc(
            r#"{"format":"index:1.0","updated":"Sat, 21 Nov 2026 10:00:00 +0000",
               "index":{"com.ubuntu.maas:stable:v3:download":{"datatype":"image-ids",
               "format":"products:1.0","path":"streams/v1/com.ubuntu.maas:stable:v3:download.sjson",
               "products":["a"]},"x":{"format":"other:1.0","path":"p"}}}"#,
        ))
        .unwrap();
        let streams: Vec<_> = i.product_streams().collect();
        assert_eq!(streams.len(), 1);
        assert!(streams[0].1.path.ends_with(".sjson"));
    }

    #[test]
    fn file_types_round_trip() {
        for s in [
            "boot-kernel",
            "boot-initrd",
            "squashfs",
            "squashfs.manifest",
            "root-image.gz",
            "root-dd.tar.xz",
            "archive.tar.xz",
            "whatever",
        ] {
            assert_eq!(FileType::parse(s).as_str(), s);
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let d = Verified::skipped("fuzz", Bytes::from(data));
            let _ = Index::parse(&d);
            let _ = Products::parse(&d);
        }

        #[test]
        fn file_type_parsing_is_stable(s in ".{0,30}") {
            let t = FileType::parse(&s);
            prop_assert_eq!(FileType::parse(&t.as_str()), t);
        }

        #[test]
        fn parsing_mutated_documents_never_panics(pos in 0usize..PRODUCTS.len(), byte in any::<u8>()) {
            let mut data = PRODUCTS.as_bytes().to_vec();
            data[pos] = byte;
            if let Ok(p) = Products::parse(&Verified::skipped("fuzz", Bytes::from(data))) {
                let _ = p.items();
                for name in p.products.keys() {
                    let _ = p.product_kind(name);
                }
            }
        }
    }
}
