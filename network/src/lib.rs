//! muelle's networks. Everything this crate creates on the host carries
//! `muelle` in its name (`mu` for interface names, which are short), and
//! every host object has an owner that removes it.
//!
//! - [`netlink`]: a synchronous rtnetlink client (links, veth pairs into
//!   other namespaces, addresses, routes) on one socket;
//! - [`netns`]: network namespaces kept alive by a bind mount of their file;
//! - [`sysctl`]: writes to `/proc/sys`.

pub mod netlink;
pub mod netns;
pub mod sysctl;
