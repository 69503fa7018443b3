//! The names file: which address answers to which container name or alias.
//!
//! The engine writes it (see [`super::write_names`]) in hosts-file format,
//! one container a line: `IPV4 NAME [ALIAS...]`, `#` starting a comment.
//! A line may be scoped to one asker: `@ASKER IPV4 NAME [ALIAS...]` is
//! only answered to queries that come from the address ASKER (a container
//! of this network that is also on other networks, asking for their
//! names). The resolver keeps the parsed table and reads the file again
//! when it was replaced or changed (its device, inode, size or times
//! differ), so the answers follow containers as they come and go. Lines
//! it cannot use (an address that is not IPv4, no name, a bad asker) are
//! skipped, never fatal.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::SEARCH_DOMAIN;

/// A larger names file is read up to this size: a network holds far fewer
/// containers, and the resolver's memory stays bounded.
const MAX_FILE_LEN: u64 = 1 << 20;

/// The longest name that fits in a DNS message (in presentation form).
const MAX_NAME_LEN: usize = 253;

/// The parsed names file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The lines everyone is answered.
    all: Table,
    /// The lines answered to one asker only, by its address.
    scoped: BTreeMap<Ipv4Addr, Table>,
}

/// Names and addresses, both ways.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// Normalized name → its addresses, in file order, without repeats.
    by_name: BTreeMap<Box<str>, Vec<Ipv4Addr>>,
    /// Address → the first name given to it (what a PTR query answers).
    by_addr: BTreeMap<Ipv4Addr, Box<str>>,
}

impl Table {
    fn add(&mut self, addr: Ipv4Addr, name: String) {
        self.by_addr
            .entry(addr)
            .or_insert_with(|| name.clone().into());
        let addrs = self.by_name.entry(name.into()).or_default();
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }

    fn addresses(&self, name: &str) -> &[Ipv4Addr] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

impl Names {
    /// Reads hosts-file text; unusable lines and names are skipped.
    pub fn parse(text: &str) -> Names {
        let mut names = Names::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_ascii_whitespace();
            let Some(first) = words.next() else {
                continue;
            };
            let (asker, addr) = match first.strip_prefix('@') {
                Some(asker) => (Some(asker.parse::<Ipv4Addr>()), words.next()),
                None => (None, Some(first)),
            };
            let Some(Ok(addr)) = addr.map(str::parse::<Ipv4Addr>) else {
                continue;
            };
            let table = match asker {
                None => &mut names.all,
                Some(Ok(asker)) => names.scoped.entry(asker).or_default(),
                Some(Err(_)) => continue,
            };
            for name in words.filter_map(normalize) {
                table.add(addr, name);
            }
        }
        names.scoped.retain(|_, table| !table.by_name.is_empty());
        names
    }

    /// The addresses of a name, given in the form [`normalize`] returns,
    /// for a query from `asker`: those of the lines for everyone, then
    /// those of the lines scoped to the asker, without repeats.
    pub fn addresses(&self, name: &str, asker: IpAddr) -> Vec<Ipv4Addr> {
        let mut addrs = self.all.addresses(name).to_vec();
        if let Some(table) = self.scoped_to(asker) {
            for addr in table.addresses(name) {
                if !addrs.contains(addr) {
                    addrs.push(*addr);
                }
            }
        }
        addrs
    }

    /// The first name given to an address, for a query from `asker`: in
    /// the lines for everyone, else in those scoped to the asker.
    pub fn name_of(&self, addr: Ipv4Addr, asker: IpAddr) -> Option<&str> {
        self.all
            .by_addr
            .get(&addr)
            .or_else(|| self.scoped_to(asker)?.by_addr.get(&addr))
            .map(|name| &**name)
    }

    fn scoped_to(&self, asker: IpAddr) -> Option<&Table> {
        let asker = match asker {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
        };
        self.scoped.get(&asker)
    }

    /// How many distinct names (container names and aliases) the lines
    /// for everyone know.
    pub fn len(&self) -> usize {
        self.all.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.by_name.is_empty() && self.scoped.is_empty()
    }
}

/// The form names are compared in: lower case, without a trailing dot or
/// the search domain (`Web.dns.muelle.` is `web`). `None` for what cannot
/// be a name: empty, the search domain itself, too long, or holding an
/// empty label.
pub fn normalize(name: &str) -> Option<String> {
    let mut name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if let Some(short) = name.strip_suffix(SEARCH_DOMAIN)
        && let Some(short) = short.strip_suffix('.')
    {
        name.truncate(short.len());
    }
    let usable = !name.is_empty()
        && name != SEARCH_DOMAIN
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| !label.is_empty());
    usable.then_some(name)
}

/// What identifies one version of the file: a rename brings a new inode,
/// an edit in place a new size or modification time. One change can go
/// unseen: two replacements in a row within one tick of the file system's
/// clock, the second of the same size and on the inode the first freed;
/// the next change shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Version {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The names file is gone: the network was removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Gone;

/// The names file and its last table, re-read when it changes.
#[derive(Debug)]
pub struct NamesFile {
    path: PathBuf,
    version: Version,
    names: Names,
}

impl NamesFile {
    /// Reads the file once; an unreadable file is an error.
    pub fn open(path: &Path) -> io::Result<NamesFile> {
        let (version, names) = read(path)?;
        Ok(NamesFile {
            path: path.to_owned(),
            version,
            names,
        })
    }

    /// Reads the file again if it changed since the last read. A file that
    /// cannot be read right now keeps the last table (and is tried again
    /// next time); only a missing file is reported.
    pub fn refresh(&mut self) -> Result<(), Gone> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if Version::of(&meta) == self.version => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Gone),
            Err(_) => return Ok(()),
        }
        match read(&self.path) {
            Ok((version, names)) => {
                self.version = version;
                self.names = names;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Gone),
            Err(_) => Ok(()),
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }
}

/// The version is taken from the open file, so it describes exactly the
/// text that was read even when the file is replaced meanwhile.
fn read(path: &Path) -> io::Result<(Version, Names)> {
    let file = File::open(path)?;
    let version = Version::of(&file.metadata()?);
    let mut text = String::new();
    file.take(MAX_FILE_LEN).read_to_string(&mut text)?;
    Ok((version, Names::parse(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    /// The asker of the tests without scoped lines.
    const ANYONE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn parses_names_aliases_and_comments() {
        let names = Names::parse(
            "# written by muelle\n\
             10.88.0.2 web www  # the front\n\
             \n\
             10.88.0.3\tdb\n\
             fd00::5 six\n\
             not-an-ip foo\n\
             10.88.0.4\n",
        );
        assert_eq!(names.addresses("web", ANYONE), [ip("10.88.0.2")]);
        assert_eq!(names.addresses("www", ANYONE), [ip("10.88.0.2")]);
        assert_eq!(names.addresses("db", ANYONE), [ip("10.88.0.3")]);
        assert!(names.addresses("six", ANYONE).is_empty());
        assert!(names.addresses("foo", ANYONE).is_empty());
        assert!(names.addresses("the", ANYONE).is_empty());
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn a_name_on_several_containers_has_every_address_once() {
        let names = Names::parse("10.0.0.2 api\n10.0.0.3 api\n10.0.0.2 api\n");
        assert_eq!(
            names.addresses("api", ANYONE),
            [ip("10.0.0.2"), ip("10.0.0.3")]
        );
    }

    #[test]
    fn the_first_name_of_an_address_is_its_reverse_name() {
        let names = Names::parse("10.0.0.2 web alias\n10.0.0.2 other\n");
        assert_eq!(names.name_of(ip("10.0.0.2"), ANYONE), Some("web"));
        assert_eq!(names.name_of(ip("10.0.0.9"), ANYONE), None);
    }

    #[test]
    fn scoped_lines_answer_their_asker_only_after_the_others() {
        let names = Names::parse(
            "10.0.0.2 web\n\
             @10.0.0.5 10.1.0.2 db data\n\
             @10.0.0.5 10.1.0.3 web\n\
             @10.0.0.5 10.0.0.2 web\n\
             @10.0.0.6\t10.2.0.2 cache\n",
        );
        let asker = IpAddr::V4(ip("10.0.0.5"));
        assert_eq!(names.addresses("db", asker), [ip("10.1.0.2")]);
        assert_eq!(names.addresses("data", asker), [ip("10.1.0.2")]);
        assert_eq!(
            names.addresses("web", asker),
            [ip("10.0.0.2"), ip("10.1.0.3")]
        );
        assert!(names.addresses("cache", asker).is_empty());
        assert!(names.addresses("db", ANYONE).is_empty());
        assert_eq!(names.addresses("web", ANYONE), [ip("10.0.0.2")]);
        let mapped = IpAddr::V6(ip("10.0.0.6").to_ipv6_mapped());
        assert_eq!(names.addresses("cache", mapped), [ip("10.2.0.2")]);
        assert_eq!(names.name_of(ip("10.1.0.2"), asker), Some("db"));
        assert_eq!(names.name_of(ip("10.1.0.2"), ANYONE), None);
        assert_eq!(names.name_of(ip("10.0.0.2"), asker), Some("web"));
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn bad_scoped_lines_are_skipped() {
        let names = Names::parse(
            "@ 10.1.0.2 a\n\
             @10.0.0 10.1.0.2 b\n\
             @fd00::1 10.1.0.2 c\n\
             @10.0.0.5\n\
             @10.0.0.5 d\n\
             @10.0.0.5 10.1.0.2\n\
             @@10.0.0.5 10.1.0.2 e\n\
             @10.0.0.5 @10.0.0.5 10.1.0.2 f\n\
             @10.0.0.5 10.1.0.2 g # h\n",
        );
        let asker = IpAddr::V4(ip("10.0.0.5"));
        for name in ["a", "b", "c", "d", "e", "f", "h"] {
            assert!(names.addresses(name, asker).is_empty(), "{name}");
        }
        assert_eq!(names.addresses("g", asker), [ip("10.1.0.2")]);
        assert_eq!(names.scoped.len(), 1);
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("Web").as_deref(), Some("web"));
        assert_eq!(normalize("web.").as_deref(), Some("web"));
        assert_eq!(normalize("web.DNS.muelle.").as_deref(), Some("web"));
        assert_eq!(normalize("a.b").as_deref(), Some("a.b"));
        assert_eq!(normalize("xdns.muelle").as_deref(), Some("xdns.muelle"));
        assert_eq!(normalize("dns.muelle"), None);
        assert_eq!(normalize("."), None);
        assert_eq!(normalize("a..b"), None);
        assert_eq!(normalize(&"a".repeat(300)), None);
        let names = Names::parse("10.0.0.2 Web.dns.muelle\n");
        assert_eq!(names.addresses("web", ANYONE), [ip("10.0.0.2")]);
    }

    #[test]
    fn the_file_is_read_again_when_replaced_and_gone_when_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names");
        std::fs::write(&path, "10.0.0.2 web\n").unwrap();
        let mut file = NamesFile::open(&path).unwrap();
        assert_eq!(file.names().addresses("web", ANYONE), [ip("10.0.0.2")]);

        let tmp = dir.path().join("names.tmp");
        std::fs::write(&tmp, "10.0.0.3 web\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        file.refresh().unwrap();
        assert_eq!(file.names().addresses("web", ANYONE), [ip("10.0.0.3")]);

        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.refresh(), Err(Gone));
    }

    #[test]
    fn a_missing_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        assert!(NamesFile::open(&dir.path().join("none")).is_err());
    }
}
