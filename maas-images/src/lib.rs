//! # maas-images: boot images from simplestreams
//!
//! What a MAAS region does before anything can be deployed: read a boot
//! source (a simplestreams mirror plus an OpenPGP keyring), keep only what
//! the operator's selections ask for, and download it into a local store the
//! boot stack serves from.
//!
//! - [`simplestreams`]: the `index:1.0` / `products:1.0` model, MAAS v3 boot
//!   and bootloader products, file types. Unknown fields are kept.
//! - [`verify`]: sequoia-openpgp verification of clearsigned and detached
//!   signatures; parsers take only [`Verified`] bytes.
//! - [`source`]: [`BootSource`], [`Selection`], the single-source rule and
//!   [`compute_wanted`] (exactly which versions and files).
//! - [`sync`]: the [`Importer`]: concurrent, resumable, streaming-verified
//!   downloads with progress events and cancellation.
//! - [`store`]: the content-addressed [`Store`] (`images/<sha256 prefix>/…`),
//!   garbage collection, custom uploads, and the boot-stack lookup
//!   [`Store::boot_files`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use maas_images::{BootSource, Importer, KeyringSource, Selection, Store, SyncOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(Store::open(dir.path().join("store"))?);
//! let mut source = BootSource::new(
//!     "http://images.maas.io/ephemeral-v3/stable/".parse()?,
//!     KeyringSource::File("/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg".into()),
//! );
//! source.selections.push(Selection::new("ubuntu", "noble", &["amd64"]));
//! assert_eq!(
//!     source.index_url()?.as_str(),
//!     "http://images.maas.io/ephemeral-v3/stable/streams/v1/index.sjson"
//! );
//! let importer = Importer::new(store.clone(), SyncOptions::default())?;
//! // importer.sync(&source, None, CancellationToken::new()).await? downloads;
//! // afterwards the boot stack asks the store:
//! assert!(store.boot_files("ubuntu", "amd64", "ga-24.04", "noble").is_none());
//! # let _ = importer;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod digest;
mod error;
pub mod fetch;
pub mod simplestreams;
pub mod source;
mod splice;
pub mod store;
pub mod sync;
pub mod verify;

pub use digest::{Hasher, Sha256};
pub use error::{Error, Result};
pub use fetch::Fetcher;
pub use simplestreams::{FileType, Index, Products};
pub use source::{
    BootSource, CustomImage, KeyringSource, ResourceKind, Selection, Wanted, WantedFile,
    WantedVersion, compute_wanted, single_source,
};
pub use store::{BootFiles, GcReport, Store, StoredFile, StoredResource};
pub use sync::{Importer, Progress, ProgressFn, SyncOptions, SyncReport};
pub use verify::{Keyring, Signer, Verification, Verified};
