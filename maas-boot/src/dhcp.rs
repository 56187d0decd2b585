//! The DHCPv4 server: MAAS's rack DHCP, built on `dhcproto`.
//!
//! Layers, from the wire inwards:
//! - [`server`]: the thin tokio loop. It takes an already-bound UDP socket
//!   (see [`bind_socket`]) and a cancellation token, decodes datagrams,
//!   asks the handler, group-commits the lease store and sends the replies.
//! - [`handler`]: the pure protocol logic (DISCOVER/OFFER/REQUEST/ACK/NAK,
//!   RELEASE, DECLINE, INFORM, relays, option 82, proxyDHCP). No I/O: it
//!   asks a [`DhcpBackend`] about reservations and boot answers and records
//!   lease changes in a [`LeaseStore`].
//! - [`leases`]: the in-memory lease table and address allocation.
//! - [`store`]: lease persistence (in-memory, and an append-only log with
//!   group commit so a restart gives nobody's address away).
//! - [`netboot`]: MAAS boot methods chosen from option 93 / user class.
//! - [`config`]: subnets, ranges, options and lease times.
//!
//! DHCPv6 is a later piece of work; the backend and event types carry
//! `Ipv4Addr` explicitly so a v6 sibling can sit beside them.

pub mod config;
pub mod handler;
pub mod leases;
pub mod netboot;
pub mod server;
pub mod store;
pub mod testing;

pub use config::{AddrRange, DhcpConfig, Mode, Reservation, Subnet};
pub use handler::{
    Action, Destination, DhcpBackend, DhcpEvent, DropReason, Handler, Reply, StaticBackend,
};
pub use leases::{Lease, LeaseState};
pub use netboot::{BootAnswer, BootClient, NetbootMethod};
pub use server::{ServeOptions, ServeStats, bind_socket, bind_std_socket, serve};
pub use store::{FileStore, LeaseStore, MemoryStore};
