//! Kernel parameters under `/proc/sys`. Those under `net/` belong to the
//! network namespace of the calling thread (the kernel looks it up when the
//! file is opened), so a thread that entered a container's namespace sets
//! the container's.
//!
//! A value that reads equal already is not written: a write to some of
//! these files has effects even when the value does not change (and needs
//! a writable `/proc/sys`).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Sets `key` (dotted, `net.ipv4.ip_forward`) to `value`, writing
/// `/proc/sys/net/ipv4/ip_forward`. The key's parts must not be empty or
/// hold a `/`; use [`set_interface`] for per-interface keys, whose
/// interface names may hold dots.
pub fn set(key: &str, value: &str) -> io::Result<()> {
    if key.is_empty()
        || key
            .split('.')
            .any(|part| part.is_empty() || part.contains('/'))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid sysctl key {key:?}"),
        ));
    }
    write(&Path::new("/proc/sys").join(key.replace('.', "/")), value)
}

/// Sets `net.ipv4.conf.IFNAME.KEY` to `value`: the file
/// `/proc/sys/net/ipv4/conf/IFNAME/KEY`. `ifname` must be an interface name
/// (checked as the kernel does: no `/`, not `.` or `..`), or `all` or
/// `default`; `key` a plain file name.
pub fn set_interface(ifname: &str, key: &str, value: &str) -> io::Result<()> {
    crate::netlink::check_name(ifname)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if key.is_empty() || key == "." || key == ".." || key.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid sysctl key {key:?} for interface {ifname}"),
        ));
    }
    let path: PathBuf = ["/proc/sys/net/ipv4/conf", ifname, key].iter().collect();
    write(&path, value)
}

/// Writes `value` to `path` in one write, unless it reads equal already
/// (white space aside: `ip_local_port_range` reads with a tab).
fn write(path: &Path, value: &str) -> io::Result<()> {
    let context = |e: io::Error, doing: &str| {
        io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
    };
    let current = std::fs::read_to_string(path).map_err(|e| context(e, "reading"))?;
    if current.split_whitespace().eq(value.split_whitespace()) {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| context(e, "opening"))?;
    let written = file
        .write(value.as_bytes())
        .map_err(|e| context(e, &format!("writing {value:?} to")))?;
    if written != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "writing {value:?} to {}: {written} of {} bytes written",
                path.display(),
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_refused_before_any_file_is_touched() {
        for key in ["", "net..ipv4", "net/ipv4/ip_forward", ".net", "net.ipv4."] {
            let e = set(key, "1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{key:?}");
        }
        for (ifname, key) in [
            ("..", "forwarding"),
            ("a/b", "forwarding"),
            ("eth0", "../../ip_forward"),
            ("eth0", ".."),
            ("", "forwarding"),
        ] {
            let e = set_interface(ifname, key, "1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{ifname:?} {key:?}");
        }
    }

    #[test]
    fn an_equal_value_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("range");
        std::fs::write(&path, "32768\t60999\n").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        write(&path, "32768 60999").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), old);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "32768\t60999\n");
    }

    #[test]
    fn a_different_value_is_written_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ip_forward");
        std::fs::write(&file, "0\n").unwrap();
        write(&file, "1").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");
    }

    #[test]
    fn errors_name_the_file() {
        let e = write(Path::new("/nonexistent/muelle/x"), "1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/nonexistent/muelle/x"), "{e}");
    }
}
