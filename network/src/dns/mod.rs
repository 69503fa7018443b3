//! `muelle-dns`, the name resolver of a user network, and the engine's side
//! of it.
//!
//! Containers on a user network find each other by name and alias through
//! it. The engine starts one `muelle-dns` per network, in the host's
//! namespaces, at the first container attached, and kills it at `network
//! rm` (it also exits by itself within a second of its names file being
//! deleted). It listens on the network's gateway address, port 53, UDP and
//! TCP; containers get `nameserver GATEWAY` and `search dns.muelle` in
//! their resolv.conf.
//!
//! ```text
//! muelle-dns --listen IP[:PORT] --names PATH [--upstream IP[:PORT]]...
//!            [--resolv-conf PATH] [--allow CIDR]... [--ready-fd N]
//! ```
//!
//! - `--names`: the names file, which the engine writes with
//!   [`write_names`] (hosts format, replaced atomically by a rename). The
//!   resolver reads it again when it changed, before answering. Lines
//!   scoped to one asker give a container on several networks the names
//!   of its other networks too (docker's resolver answers across all of a
//!   container's networks); see `names.rs`.
//! - `--upstream`: where to forward the other names; none given, the
//!   `nameserver` lines of `--resolv-conf` (the host's /etc/resolv.conf by
//!   default), read at start. Loopback servers work: the resolver runs in
//!   the host's namespace. No server at all: forwarded queries get
//!   SERVFAIL at once.
//! - `--allow`: only these networks are answered (the engine passes the
//!   network's subnet); others get REFUSED.
//! - `--ready-fd N`: once both sockets are bound, the resolver writes the
//!   port it listens on, in decimal and a newline (`53\n`), to descriptor
//!   N and closes it. The engine passes the write end of a pipe, closes
//!   its own copy and reads to the end: a line means ready (and gives the
//!   port, for `--listen IP:0`); nothing means the resolver failed, and
//!   its exit status (1) and the one line on its stderr say why.
//!
//! The files: `names.rs` reads the names file, `query.rs` a query's
//! question, `answer.rs` holds the rules of what is answered here (and
//! builds the answers), `forward.rs` relays the rest upstream (over UDP,
//! even queries that came over TCP), `tcp.rs` frames DNS over TCP, and
//! `server.rs` is the loop. SIGTERM or SIGINT end the resolver with
//! status 0, as does the deletion of the names file.
//!
//! Bounds: one thread, no buffer larger than 64 KiB, at most 128 forwarded
//! queries and 32 TCP connections at once, queries of at most 4 KiB;
//! malformed messages are dropped or get FORMERR, never a panic. Measured
//! (release build, idle after 200 queries): about 2.1 MB RSS, of which
//! some 200 kB anonymous (the rest is libc and the binary's text, shared);
//! ready about 1 ms after the spawn.

mod answer;
mod cidr;
mod forward;
mod names;
mod query;
mod server;
mod tcp;

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub use cidr::{Cidr, CidrError};
pub use forward::upstreams_from_resolv_conf;
pub use names::Names;
pub use server::{Config, Server, StartError, Stop};

/// The domain of the container names, and the search domain of the
/// containers' resolv.conf.
pub const SEARCH_DOMAIN: &str = "dns.muelle";

/// Names answered to one asker only: a container of the network, by its
/// address there, is told `names` are at `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoped {
    pub asker: Ipv4Addr,
    pub address: Ipv4Addr,
    pub names: Vec<String>,
}

/// Writes the names file: one line per address, its names and aliases
/// after it, for everyone (`entries`), then for one asker (`scoped`).
/// Written to a temporary file beside it, then renamed over it, so the
/// resolver never reads half a file. Mode 0644: the resolver may run as
/// another user. Entries without a name are left out; a name with white
/// space or `#` is refused (it would change the file's meaning).
pub fn write_names(
    path: &Path,
    entries: &[(Ipv4Addr, Vec<String>)],
    scoped: &[Scoped],
) -> io::Result<()> {
    let mut text = String::from("# muelle-dns names: [@ASKER] ADDRESS NAME [ALIAS...]\n");
    let lines = entries
        .iter()
        .map(|(addr, names)| (None, addr, names))
        .chain(scoped.iter().map(|s| (Some(s.asker), &s.address, &s.names)));
    for (asker, addr, names) in lines {
        if names.is_empty() {
            continue;
        }
        if let Some(asker) = asker {
            let _ = write!(text, "@{asker} ");
        }
        text.push_str(&addr.to_string());
        for name in names {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '#') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name:?} cannot be a name in the names file"),
                ));
            }
            text.push(' ');
            text.push_str(name);
        }
        text.push('\n');
    }

    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the names file needs a file name",
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        // The mode given to open is reduced by the umask.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn written_names_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names");
        let web: Ipv4Addr = "10.88.0.2".parse().unwrap();
        let db: Ipv4Addr = "10.88.0.3".parse().unwrap();
        let entries = [
            (web, vec!["web".to_owned(), "www".to_owned()]),
            (db, vec!["db".to_owned()]),
            ("10.88.0.4".parse().unwrap(), vec![]),
        ];
        let other: Ipv4Addr = "10.89.0.2".parse().unwrap();
        let scoped = [Scoped {
            asker: db,
            address: other,
            names: vec!["cache".to_owned()],
        }];
        write_names(&path, &entries, &scoped).unwrap();
        let names = Names::parse(&fs::read_to_string(&path).unwrap());
        let anyone = std::net::IpAddr::V4(web);
        assert_eq!(names.addresses("www", anyone), [web]);
        assert_eq!(names.addresses("db", anyone), [db]);
        assert!(names.addresses("cache", anyone).is_empty());
        assert_eq!(names.addresses("cache", db.into()), [other]);
        assert_eq!(names.len(), 3);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        // Nothing else is left in the folder.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let inode = fs::metadata(&path).unwrap().ino();
        write_names(&path, &entries[1..], &[]).unwrap();
        assert_ne!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "replaced, not rewritten"
        );
        let names = Names::parse(&fs::read_to_string(&path).unwrap());
        assert!(names.addresses("web", anyone).is_empty());
    }

    #[test]
    fn names_that_would_change_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names");
        let addr: Ipv4Addr = "10.88.0.2".parse().unwrap();
        for bad in ["two words", "new\nline", "hash#tag", ""] {
            let err = write_names(&path, &[(addr, vec![bad.to_owned()])], &[]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let scoped = Scoped {
                asker: addr,
                address: addr,
                names: vec![bad.to_owned()],
            };
            let err = write_names(&path, &[], &[scoped]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(!path.exists());
    }
}
