//! An entry's owner, mode, mtime and xattrs: read from its header and pax
//! records, applied to what `unpack` created.

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::fd::BorrowedFd;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FchmodatFlags, Mode, UtimensatFlags, fchmod, fchmodat, futimens, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat};

use super::Failure;
use super::xattr;

pub struct Meta {
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

fn id(value: std::io::Result<u64>, what: &str) -> Result<u32, Failure> {
    let value = value.map_err(|e| Failure::Refused(format!("its {what} is unreadable: {e}")))?;
    // u32::MAX is chown's "leave unchanged", never a real owner.
    u32::try_from(value)
        .ok()
        .filter(|v| *v != u32::MAX)
        .ok_or_else(|| Failure::Refused(format!("its {what} {value} is out of range")))
}

/// pax `mtime`: seconds, optionally negative, optionally with a fraction.
fn pax_time(text: &str) -> Option<TimeSpec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    nanos *= 10_i64.pow(9 - digits.len() as u32);
    // -1.5 is 1.5 s before the epoch: -2 s + 0.5 s.
    if text.starts_with('-') && nanos > 0 {
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

impl Meta {
    pub fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, Failure> {
        let header = entry.header();
        let mode = header
            .mode()
            .map_err(|e| Failure::Refused(format!("its mode is unreadable: {e}")))?
            & 0o7777;
        // The tar crate already applied pax uid/gid to the header.
        let uid = id(header.uid(), "uid")?;
        let gid = id(header.gid(), "gid")?;
        let secs = header
            .mtime()
            .map_err(|e| Failure::Refused(format!("its mtime is unreadable: {e}")))?;
        let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        let pax = entry
            .pax_extensions()
            .map_err(|e| Failure::Refused(format!("its pax records are unreadable: {e}")))?;
        for record in pax.into_iter().flatten() {
            let record =
                record.map_err(|e| Failure::Refused(format!("a malformed pax record: {e}")))?;
            let Ok(key) = record.key() else { continue };
            if key == "mtime" {
                mtime = record
                    .value()
                    .ok()
                    .and_then(pax_time)
                    .ok_or_else(|| Failure::Refused("a malformed pax mtime".into()))?;
            } else if key.starts_with("GNU.sparse.") {
                return Err(Failure::Unsupported("pax-format sparse file".into()));
            } else if let Some(name) = key.strip_prefix(xattr::PAX_PREFIX)
                && xattr::is_kept(name)
            {
                let name = CString::new(name)
                    .map_err(|_| Failure::Refused("a NUL byte in an xattr name".into()))?;
                xattrs.push((name, record.value_bytes().to_vec()));
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    /// Gives the entry to `uid:gid` instead of its archived owner. A
    /// setuid or setgid bit goes when the owner changes: re-owning a file
    /// must not make it run as its new owner.
    pub fn own(&mut self, uid: u32, gid: u32) {
        if self.uid != uid {
            self.mode &= !0o4000;
        }
        if self.gid != gid {
            self.mode &= !0o2000;
        }
        self.uid = uid;
        self.gid = gid;
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }

    fn mode_bits(&self) -> Mode {
        Mode::from_bits_truncate(self.mode)
    }

    /// Owner (when root), then xattrs: what a folder gets at once.
    pub fn apply_owner_xattrs(&self, fd: BorrowedFd<'_>, same_owner: bool) -> Result<(), Failure> {
        if same_owner {
            let (u, g) = self.owner();
            fchown(fd, u, g).map_err(Failure::io("setting the owner"))?;
        }
        for (name, value) in &self.xattrs {
            xattr::write(fd, name, value)
                .map_err(|e| Failure::Io(format!("setting xattr {name:?}"), e))?;
        }
        Ok(())
    }

    /// Mode and time: a folder gets them once everything inside is written.
    pub fn apply_mode_time(fd: BorrowedFd<'_>, mode: u32, mtime: TimeSpec) -> nix::Result<()> {
        fchmod(fd, Mode::from_bits_truncate(mode))?;
        futimens(fd, &TimeSpec::UTIME_OMIT, &mtime)
    }

    /// A regular file, written and open: owner before mode (chown clears
    /// setuid), xattrs after (writing data drops security.capability).
    pub fn apply_file(&self, fd: BorrowedFd<'_>, same_owner: bool) -> Result<(), Failure> {
        if same_owner {
            let (u, g) = self.owner();
            fchown(fd, u, g).map_err(Failure::io("setting the owner"))?;
        }
        fchmod(fd, self.mode_bits()).map_err(Failure::io("setting the mode"))?;
        for (name, value) in &self.xattrs {
            xattr::write(fd, name, value)
                .map_err(|e| Failure::Io(format!("setting xattr {name:?}"), e))?;
        }
        futimens(fd, &TimeSpec::UTIME_OMIT, &self.mtime).map_err(Failure::io("setting the mtime"))
    }

    /// A symlink, fifo or device node, by name in its parent, never
    /// following a symlink (glibc's fchmodat NOFOLLOW goes through an
    /// O_PATH descriptor); symlinks have no mode of their own.
    pub fn apply_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        symlink: bool,
        same_owner: bool,
    ) -> Result<(), Failure> {
        if same_owner {
            let (u, g) = self.owner();
            fchownat(parent, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(Failure::io("setting the owner"))?;
        }
        if !symlink {
            fchmodat(
                parent,
                name,
                self.mode_bits(),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(Failure::io("setting the mode"))?;
        }
        utimensat(
            parent,
            name,
            &TimeSpec::UTIME_OMIT,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(Failure::io("setting the mtime"))
    }
}

#[cfg(test)]
mod tests {
    use super::pax_time;
    use nix::sys::time::TimeSpec;

    #[test]
    fn pax_times_parse_with_fractions_and_signs() {
        assert_eq!(pax_time("12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(pax_time("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(pax_time("-1.5"), Some(TimeSpec::new(-2, 500_000_000)));
        assert_eq!(pax_time("1.0000000019"), Some(TimeSpec::new(1, 1)));
        assert_eq!(pax_time("x"), None);
        assert_eq!(pax_time("1.x"), None);
    }
}
