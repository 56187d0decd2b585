//! # maas-images: boot images from simplestreams
//!
//! Simplestreams documents, OpenPGP verification, boot sources and selections, the sync engine and a content-addressed image store. Filled in by the images issue.
#![warn(missing_docs)]

mod error;

pub use error::{Error, Result};
