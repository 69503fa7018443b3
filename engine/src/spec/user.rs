//! `-u user[:group]` and `--group-add` → uid, gid and supplementary gids,
//! as runc's `GetExecUser` resolves them for docker, from the container's
//! own /etc/passwd and /etc/group.
//!
//! The files are untrusted image content: they are opened with openat2
//! RESOLVE_IN_ROOT below the rootfs (a symlink to /etc/passwd means the
//! image's, never the host's), as O_PATH first so that a FIFO or device
//! planted there is refused before it is opened for reading, and read up
//! to a bounded size.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::{Result, SpecError};

/// Larger account files than this are refused rather than read.
const MAX_FILE: u64 = 16 << 20;
/// runc's bound on ids (they are signed 32-bit in its world).
const MAX_ID: i64 = i32::MAX as i64;

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From passwd, for HOME; `/` when the user has no entry.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` (`""` is root) and `group_add` against the rootfs.
///
/// Rules (runc's): the user part matches a passwd entry by name or by uid;
/// a number without an entry is used as is (gid 0, home `/`), a name
/// without one is an error. An explicit group matches by name or gid, a
/// number without an entry is used as is. Without an explicit group the
/// entry's gid is primary and every group listing the user is
/// supplementary. `--group-add` entries follow, by name or number.
pub fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ExecUser> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let root = RootFiles::open(rootfs)?;

    let passwd = root.read("/etc/passwd")?.map(|t| parse_passwd(&t));
    let matched = passwd
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.name == user_part || e.uid.to_string() == user_part);
    let mut exec = match matched {
        Some(entry) => ExecUser {
            uid: entry.uid,
            gid: entry.gid,
            additional_gids: Vec::new(),
            home: if entry.home.is_empty() {
                "/".to_owned()
            } else {
                entry.home.clone()
            },
        },
        None => ExecUser {
            uid: numeric_id(user_part)?.ok_or_else(|| SpecError::UnknownUser(user_part.into()))?,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".to_owned(),
        },
    };

    // /etc/group is read only when something needs it.
    let needs_groups = group_part.is_some() || matched.is_some() || !group_add.is_empty();
    let groups = if needs_groups {
        root.read("/etc/group")?
            .map(|t| parse_group(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let find_group = |text: &str| -> Result<u32> {
        if let Some(g) = groups
            .iter()
            .find(|g| g.name == text || g.gid.to_string() == text)
        {
            return Ok(g.gid);
        }
        numeric_id(text)?.ok_or_else(|| SpecError::UnknownGroup(text.into()))
    };
    match (group_part, matched) {
        (Some(group), _) => exec.gid = find_group(group)?,
        (None, Some(entry)) => {
            exec.additional_gids = groups
                .iter()
                .filter(|g| g.members.contains(&entry.name))
                .map(|g| g.gid)
                .collect();
        }
        (None, None) => {}
    }
    for group in group_add {
        let gid = find_group(group)?;
        if !exec.additional_gids.contains(&gid) {
            exec.additional_gids.push(gid);
        }
    }
    Ok(exec)
}

/// `Some(id)` for a decimal number in runc's range, `None` for a name.
fn numeric_id(text: &str) -> Result<Option<u32>> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if (0..=MAX_ID).contains(&id) => Ok(Some(id as u32)),
        _ => Err(SpecError::IdRange),
    }
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped
/// (a line runc would read as uid 0 is not worth trusting).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: (*fields.first()?).to_owned(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: (*fields.first()?).to_owned(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The rootfs as a directory descriptor that files are resolved under.
struct RootFiles {
    root: OwnedFd,
}

impl RootFiles {
    fn open(rootfs: &Path) -> Result<RootFiles> {
        let root = nix::fcntl::open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SpecError::RootfsFile {
            path: "/",
            source: e.into(),
        })?;
        Ok(RootFiles { root })
    }

    /// The file's text; `None` when it does not exist in the rootfs.
    fn read(&self, path: &'static str) -> Result<Option<String>> {
        let error = |e: std::io::Error| SpecError::RootfsFile { path, source: e };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let inside = path.trim_start_matches('/');
        let handle = match openat2(&self.root, inside, how) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(error(e.into())),
        };
        let stat = fstat(&handle).map_err(|e| error(e.into()))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(SpecError::NotRegularFile(path));
        }
        // Reopen the very file we checked for reading.
        let file =
            std::fs::File::open(format!("/proc/self/fd/{}", handle.as_raw_fd())).map_err(error)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(error)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(error(std::io::Error::other(format!(
                "larger than {MAX_FILE} bytes"
            ))));
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        # a comment\n\
        broken:x:notanumber:1:::\n\
        nohome:x:1001:1001::::\n";
    const GROUP: &str =
        "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\naudio:x:29:app\nwheel:x:10:root\n";

    fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        if let Some(text) = passwd {
            std::fs::write(dir.path().join("etc/passwd"), text).unwrap();
        }
        if let Some(text) = group {
            std::fs::write(dir.path().join("etc/group"), text).unwrap();
        }
        dir
    }

    fn resolve(dir: &tempfile::TempDir, user: &str, add: &[&str]) -> Result<ExecUser> {
        let add: Vec<String> = add.iter().map(|s| (*s).to_owned()).collect();
        resolve_user(dir.path(), user, &add)
    }

    #[test]
    fn names_and_numbers() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let root = resolve(&dir, "", &[]).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        assert_eq!(root.additional_gids, vec![10]);

        let app = resolve(&dir, "app", &[]).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.home.as_str()),
            (1000, 1000, "/home/app")
        );
        assert_eq!(app.additional_gids, vec![50, 29]);

        // By uid: the same entry, so the same groups.
        assert_eq!(resolve(&dir, "1000", &[]).unwrap(), app);

        let nobody = resolve(&dir, "4242", &[]).unwrap();
        assert_eq!(
            (nobody.uid, nobody.gid, nobody.home.as_str()),
            (4242, 0, "/")
        );
        assert!(nobody.additional_gids.is_empty());

        assert_eq!(resolve(&dir, "nohome", &[]).unwrap().home, "/");
    }

    #[test]
    fn an_explicit_group_replaces_the_supplementary_ones() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let user = resolve(&dir, "app:staff", &[]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 50));
        assert!(user.additional_gids.is_empty());
        assert_eq!(resolve(&dir, "app:777", &[]).unwrap().gid, 777);
        assert_eq!(resolve(&dir, "5:6", &[]).unwrap().gid, 6);
        assert_eq!(
            resolve(&dir, "app:nogroup", &[]).unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn group_add_appends() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        let user = resolve(&dir, "app", &["wheel", "123", "staff"]).unwrap();
        assert_eq!(user.additional_gids, vec![50, 29, 10, 123]);
        assert_eq!(
            resolve(&dir, "app", &["games"]).unwrap_err().to_string(),
            "unable to find group games: no matching entries in group file"
        );
    }

    #[test]
    fn unknown_names_read_like_docker() {
        let dir = rootfs(Some(PASSWD), Some(GROUP));
        assert_eq!(
            resolve(&dir, "postgres", &[]).unwrap_err().to_string(),
            "unable to find user postgres: no matching entries in passwd file"
        );
        assert_eq!(
            resolve(&dir, "-1", &[]).unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert!(matches!(
            resolve(&dir, "4294967296", &[]),
            Err(SpecError::IdRange)
        ));
    }

    #[test]
    fn without_account_files_only_numbers_work() {
        let dir = rootfs(None, None);
        let user = resolve(&dir, "1000:1000", &["20"]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.additional_gids, vec![20]);
        assert!(matches!(
            resolve(&dir, "root", &[]),
            Err(SpecError::UnknownUser(_))
        ));
    }

    #[test]
    fn a_symlink_to_the_hosts_passwd_reads_the_rootfs_instead() {
        // /etc/passwd -> /etc/passwd: inside the rootfs that is itself (a
        // loop), never the host's file, where "root" would resolve.
        let dir = rootfs(None, None);
        symlink("/etc/passwd", dir.path().join("etc/passwd")).unwrap();
        assert!(Path::new("/etc/passwd").exists());
        let err = resolve(&dir, "root", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                SpecError::RootfsFile {
                    path: "/etc/passwd",
                    ..
                }
            ),
            "{err}"
        );
        // Climbing out with .. stays in the rootfs too.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        symlink(
            "../../../../../../../../etc/passwd",
            dir.path().join("etc/passwd"),
        )
        .unwrap();
        assert!(resolve(&dir, "root", &[]).is_err());
    }

    #[test]
    fn an_absolute_symlink_resolves_inside_the_rootfs() {
        let dir = rootfs(None, None);
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/passwd"), PASSWD).unwrap();
        symlink("/lib/passwd", dir.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve(&dir, "app", &[]).unwrap().uid, 1000);
        // A link to a host file the rootfs lacks: missing, not the host's.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        symlink("/etc/hostname", dir.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve(&dir, "root", &[]),
            Err(SpecError::UnknownUser(_))
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = rootfs(None, None);
        nix::unistd::mkfifo(
            &dir.path().join("etc/passwd"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(matches!(
            resolve(&dir, "app", &[]),
            Err(SpecError::NotRegularFile("/etc/passwd"))
        ));
        // A numeric user still needs no passwd, but the file is looked at
        // to find the user's entry, so the refusal stands.
        assert!(resolve(&dir, "1000", &[]).is_err());
    }
}
