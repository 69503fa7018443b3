//! The users file: the callers (container ids) that mounted a volume, one
//! per line. It is read and written only under the volume's exclusive
//! lock; it says who still needs the mount, while the kernel's mount
//! table says whether there is one (see `mounts::is_mounted`).

use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use muelle_plugin_sdk::DriverError;

/// The callers in `path`; none when the file is missing.
pub fn read(path: &Path) -> Result<Vec<String>, DriverError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(DriverError::other(format!(
                "reading {}: {e}",
                path.display()
            )));
        }
    };
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if !users.iter().any(|u| u == line) {
            users.push(line.to_owned());
        }
    }
    users
}

/// Replaces the file with `users`. It is written to a temporary file and
/// renamed over, so a crash leaves the old list or the new one, never half
/// of one. No fsync: the list only matters while the mount exists, and a
/// crash that could lose the write also ends every mount (see the crate
/// docs on reboots).
pub fn write(path: &Path, users: &[String]) -> Result<(), DriverError> {
    let fail = |e: std::io::Error| DriverError::other(format!("writing {}: {e}", path.display()));
    let mut text = users.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    // Only one writer at a time (the exclusive lock), so a fixed temporary
    // name is enough; O_NOFOLLOW keeps a planted symlink from redirecting
    // the write.
    let mut file = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    drop(file);
    std::fs::rename(tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_blanks_and_repeats() {
        assert_eq!(parse(""), Vec::<String>::new());
        assert_eq!(parse("a\n\nb\na\n"), vec!["a", "b"]);
        assert_eq!(parse("a"), vec!["a"]);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users");
        assert!(read(&path).expect("missing is empty").is_empty());
        let list = vec!["c1".to_owned(), "c2".to_owned()];
        write(&path, &list).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "c1\nc2\n");
        assert_eq!(read(&path).expect("read"), list);
        write(&path, &[]).expect("write empty");
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "");
        assert!(!dir.path().join("users.tmp").exists());
    }
}
