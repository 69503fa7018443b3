//! Making the ext4 filesystem in a new image with e2fsprogs' mkfs.ext4.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use muelle_plugin_sdk::DriverError;

/// Where distributions put mkfs.ext4; PATH comes after, since the host's
/// PATH is the user's and these are root's tools.
const PLACES: [&str; 2] = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"];

/// How long mkfs may take. With lazy initialisation it writes only the
/// metadata it cannot defer (a 1 TiB image takes well under a second).
const MKFS_TIMEOUT: Duration = Duration::from_secs(45);

/// The mkfs.ext4 to run.
pub fn find() -> Result<PathBuf, DriverError> {
    let in_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                // A relative PATH entry would run whatever sits in the
                // current folder.
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join("mkfs.ext4"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    PLACES
        .iter()
        .map(PathBuf::from)
        .chain(in_path)
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            DriverError::other(
                "mkfs.ext4 not found in /usr/sbin, /sbin or PATH: the quota driver needs e2fsprogs",
            )
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Makes an ext4 filesystem filling `image`:
/// - `-m 0`: no blocks reserved for root; the whole size is the user's;
/// - `root_owner=0:0`: the root folder belongs to root, whoever runs mkfs;
/// - lazy inode table and journal init: mkfs writes little, so a large
///   sparse image stays sparse and create stays fast (the kernel zeroes
///   the tables in the background after mounting);
/// - `-F`: the target is a file, not a block device; `-q`: no chatter.
pub fn run(mkfs: &Path, image: &Path, label: &str) -> Result<(), DriverError> {
    let mut child = Command::new(mkfs)
        .args(["-q", "-F", "-m", "0", "-E"])
        .arg("root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1")
        .arg("-L")
        .arg(label)
        .arg(image)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::other(format!("running {}: {e}", mkfs.display())))?;
    // Read stderr on the side, so a chatty mkfs cannot block on a full pipe
    // while we wait for it.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            text
        })
    });
    let status = wait_bounded(&mut child, mkfs)?;
    let said = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&said);
    let said = said
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message");
    Err(DriverError::other(format!(
        "{} failed ({status}): {}",
        mkfs.display(),
        said.chars().take(300).collect::<String>()
    )))
}

/// Waits for `child` at most [`MKFS_TIMEOUT`], then kills it: the host
/// abandons a call after 60 s, and a stuck mkfs must not outlive it.
fn wait_bounded(child: &mut Child, mkfs: &Path) -> Result<ExitStatus, DriverError> {
    let deadline = Instant::now() + MKFS_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DriverError::other(format!(
                    "{} took more than {} s; stopped it",
                    mkfs.display(),
                    MKFS_TIMEOUT.as_secs()
                )));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DriverError::other(format!(
                    "waiting for {}: {e}",
                    mkfs.display()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_mkfs_reports_its_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("mkfs.ext4");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'first' >&2\necho 'the real reason' >&2\nexit 3\n",
        )
        .expect("write");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // Another test thread may fork while our write descriptor is
        // open, and exec then fails with ETXTBSY for a moment: retry.
        let mut err = run(&fake, &dir.path().join("disk.img"), "x").expect_err("fails");
        for _ in 0..50 {
            if !err.message.contains("Text file busy") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            err = run(&fake, &dir.path().join("disk.img"), "x").expect_err("fails");
        }
        assert!(err.message.ends_with("the real reason"), "{}", err.message);
        assert!(err.message.contains("exit status: 3"), "{}", err.message);
    }

    #[test]
    fn a_real_mkfs_makes_ext4() {
        let Ok(mkfs) = find() else {
            eprintln!("skipped: no mkfs.ext4 here");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(8 << 20))
            .expect("image");
        run(&mkfs, &image, "label").expect("mkfs");
        // The ext4 magic 0xEF53 sits at 1024 + 56 in the superblock.
        let bytes = std::fs::read(&image).expect("read");
        assert_eq!(bytes.get(1080..1082), Some(&[0x53, 0xef][..]));
    }
}
