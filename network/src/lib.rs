//! muelle's networks. Everything this crate creates on the host carries
//! `muelle` in its name (`mu` for interface names, which are short), and
//! every host object has an owner that removes it.

pub mod firewall;
