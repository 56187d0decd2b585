//! # maas-images: boot images from simplestreams
//!
//! Simplestreams documents, OpenPGP verification, boot sources and selections,
//! the sync engine and a content-addressed image store.
#![warn(missing_docs)]

mod digest;
mod error;
pub mod simplestreams;
pub mod verify;

pub use digest::{Hasher, Sha256};
pub use error::{Error, Result};
pub use verify::{Keyring, Signer, Verification, Verified};
