//! TFTP (RFC 1350) with options (RFC 2347), blksize (RFC 2348), timeout and
//! tsize (RFC 2349) and windowsize (RFC 7440), read-only, serving a [`BootTree`].
//!
//! [`packet`] is the wire codec, [`options`] the negotiation, [`transfer`] the
//! pure per-transfer state machine and [`server`] the tokio loop around them;
//! transfers run on worker threads with one single-threaded runtime each, and
//! a window of DATA leaves as one UDP GSO send.
//!
//! [`BootTree`]: crate::tree::BootTree

pub mod options;
pub mod packet;
pub mod server;
pub mod transfer;
mod workers;

pub use options::Limits;
pub use packet::{ErrorCode, Packet};
pub use server::{TftpConfig, serve};
