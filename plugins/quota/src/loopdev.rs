//! Attaching an image file to a loop device, with the kernel's ioctls
//! (what `losetup --find` does, without depending on util-linux).
//!
//! Every device is attached with `LO_FLAGS_AUTOCLEAR`: the kernel detaches
//! it when its last user goes away. The filesystem mounted on it is one
//! user and our descriptor another, so after mounting we close ours and
//! the device lives exactly as long as the mount: unmounting frees it, and
//! a command that dies between attaching and mounting frees it too.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use muelle_plugin_sdk::DriverError;
use nix::errno::Errno;

// From <linux/loop.h>.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` (LOOP_CONFIGURE, Linux 5.8).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

// The kernel reads these by size: a layout slip would be a silent bug.
const _: () = assert!(size_of::<LoopInfo64>() == 232);
const _: () = assert!(size_of::<LoopConfig>() == 304);

/// How often we go back for another free device when a concurrent
/// `losetup`, muelle command or udev rule takes the one we were offered.
const ATTEMPTS: u32 = 32;

/// An attached loop device. Dropping it closes our descriptor: with
/// nothing mounted on the device, that detaches it (autoclear).
pub struct LoopDevice {
    pub path: PathBuf,
    _fd: OwnedFd,
}

/// Attaches `image` to a free loop device, read-write, with autoclear.
pub fn attach(image: &Path) -> Result<LoopDevice, DriverError> {
    // O_NOFOLLOW: the image is our regular file, never a symlink to a
    // disk elsewhere.
    let backing = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(image)
        .map_err(|e| DriverError::other(format!("opening {}: {e}", image.display())))?;
    let control = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")
        .map_err(|e| {
            DriverError::other(format!(
                "opening /dev/loop-control: {e} (the quota driver needs loop devices: modprobe loop)"
            ))
        })?;
    let info = info_for(image);
    for attempt in 0..ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device
        // number or -1; `control` is an open descriptor for the call.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if number < 0 {
            return Err(DriverError::other(format!(
                "finding a free loop device: {}",
                Errno::last().desc()
            )));
        }
        let path = PathBuf::from(format!("/dev/loop{number}"));
        let device = match File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(device) => device,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(DriverError::other(format!(
                    "{} is missing: /dev needs the loop device nodes (devtmpfs)",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(DriverError::other(format!(
                    "opening {}: {e}",
                    path.display()
                )));
            }
        };
        match configure(&device, &backing, &info) {
            Ok(()) => {
                return Ok(LoopDevice {
                    path,
                    _fd: device.into(),
                });
            }
            // Someone attached it between GET_FREE and our ioctl: the
            // device is theirs; ask for another after a short pause that
            // differs per process, so racers do not keep colliding.
            Err(Errno::EBUSY) => {
                let jitter = u64::from(std::process::id() % 7) + u64::from(attempt);
                std::thread::sleep(Duration::from_millis(1 + jitter));
            }
            Err(e) => {
                return Err(DriverError::other(format!(
                    "attaching {} to {}: {}",
                    image.display(),
                    path.display(),
                    e.desc()
                )));
            }
        }
    }
    Err(DriverError::busy(format!(
        "no free loop device for {} after {ATTEMPTS} attempts (others kept taking them)",
        image.display()
    )))
}

/// The status the device gets: autoclear, and the image's path as
/// `lo_file_name` for tools that read it (`losetup -l` prefers sysfs's
/// backing_file, which the kernel fills itself). The field holds 63 bytes
/// and a NUL; a longer path keeps its end, which names the volume.
fn info_for(image: &Path) -> LoopInfo64 {
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; LO_KEY_SIZE],
        lo_init: [0; 2],
    };
    let name = file_name_field(image.as_os_str().as_bytes());
    info.lo_file_name[..name.len()].copy_from_slice(name);
    info
}

fn file_name_field(path: &[u8]) -> &[u8] {
    let room = LO_NAME_SIZE - 1;
    &path[path.len().saturating_sub(room)..]
}

/// Binds `backing` to `device` in one step (LOOP_CONFIGURE), or on kernels
/// before 5.8 in two (LOOP_SET_FD, then LOOP_SET_STATUS64).
fn configure(device: &File, backing: &File, info: &LoopInfo64) -> Result<(), Errno> {
    let Ok(fd) = u32::try_from(backing.as_raw_fd()) else {
        return Err(Errno::EBADF);
    };
    let config = LoopConfig {
        fd,
        block_size: 0,
        info: *info,
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads one `struct loop_config`, which
    // `config` is (layout checked above) and outlives the call; both
    // descriptors are open.
    let done = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_CONFIGURE as _,
            &config as *const LoopConfig,
        )
    };
    if done == 0 {
        return Ok(());
    }
    match Errno::last() {
        // Kernels without LOOP_CONFIGURE answer EINVAL (or ENOTTY).
        Errno::EINVAL | Errno::ENOTTY => {}
        other => return Err(other),
    }
    // SAFETY: LOOP_SET_FD takes the backing descriptor as its integer
    // argument; both descriptors are open.
    let set = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_SET_FD as _,
            libc::c_ulong::from(fd),
        )
    };
    if set != 0 {
        return Err(Errno::last());
    }
    // SAFETY: LOOP_SET_STATUS64 reads one `struct loop_info64`, which
    // `info` is and outlives the call.
    let status = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_SET_STATUS64 as _,
            info as *const LoopInfo64,
        )
    };
    if status != 0 {
        let error = Errno::last();
        // Without autoclear the device would stay bound for good: undo the
        // binding now.
        // SAFETY: LOOP_CLR_FD takes no argument; the descriptor is open.
        unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CLR_FD as _, 0) };
        return Err(error);
    }
    Ok(())
}

/// The loop devices whose backing file is `image` (a canonical path), from
/// /sys/block/loop*/loop/backing_file. For logs and tests.
pub fn devices_backed_by(image: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(b"loop") {
            continue;
        }
        let Ok(backing) = std::fs::read(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.strip_suffix(b"\n").unwrap_or(&backing);
        if backing == image.as_os_str().as_bytes() {
            found.push(Path::new("/dev").join(name));
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_keep_their_end() {
        assert_eq!(file_name_field(b"/short/disk.img"), b"/short/disk.img");
        let long = format!("/{}/vol/disk.img", "x".repeat(100));
        let field = file_name_field(long.as_bytes());
        assert_eq!(field.len(), 63);
        assert!(field.ends_with(b"/vol/disk.img"));
    }

    #[test]
    fn info_has_autoclear_and_a_nul() {
        let info = info_for(Path::new("/var/lib/muelle/plugins-data/quota/v/disk.img"));
        assert_eq!(info.lo_flags, LO_FLAGS_AUTOCLEAR);
        assert!(info.lo_file_name.starts_with(b"/var/lib/muelle/"));
        assert_eq!(info.lo_file_name[LO_NAME_SIZE - 1], 0);
    }
}
