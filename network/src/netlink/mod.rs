//! A small synchronous rtnetlink client: one `NETLINK_ROUTE` socket, requests
//! built with `netlink-packet-route`, replies and acks read on the calling
//! thread before a call returns. No helper process, no `ip`, no runtime.
//!
//! Guarantees:
//! - every call that changes something is one request (or one datagram of
//!   requests, see [`Batch`]) answered by the kernel before the call returns:
//!   when it returns `Ok`, the change is made; when it returns `Err`, the
//!   kernel refused it (nothing half-made stays behind for a creation: the
//!   kernel unregisters a link it could not finish);
//! - a kernel refusal keeps its errno ([`Error::errno`]), so callers match
//!   `EEXIST`, `ENODEV`, `EADDRINUSE`, and its message names the object
//!   ("creating bridge muelle0: File exists") and carries the kernel's own
//!   explanation when it gives one (extended ack);
//! - a [`Netlink`] works in the network namespace it was opened in, whatever
//!   the thread that uses it later: [`Netlink::open_in`] leaves the calling
//!   thread's namespace alone. An open socket keeps its namespace alive.
//!
//! Files: `socket.rs` holds the socket, the request/ack plumbing and the
//! parsing of acks; `link.rs` links (bridges, veth pairs, up, delete, read);
//! `address.rs` IPv4 addresses; `route.rs` IPv4 routes; `batch.rs` several
//! requests in one round trip; `error.rs` the error type.

mod address;
mod batch;
mod error;
mod link;
mod route;
mod socket;

pub use batch::Batch;
pub use error::{Error, Result};
pub use link::{IFNAMSIZ, Link, Veth, VethPair, check_name};
pub use route::Route;
pub use socket::Netlink;

/// The index of `lo` in every network namespace: the kernel registers it
/// first (`LOOPBACK_IFINDEX`).
pub const LOOPBACK_INDEX: u32 = 1;
