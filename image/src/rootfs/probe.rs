//! Whether overlay root filesystems work under this data root: one tiny
//! overlay mounted in `ROOT/image/.probe-<pid>/` with a whiteout and an
//! opaque folder, the merged view checked, a write checked to land in the
//! upper folder. The answer is kept in `ROOT/image/rootfs-driver` (delete
//! the file to ask again, after a kernel or filesystem change): overlay
//! can be missing (no module), or refuse the data root (an upper folder on
//! overlayfs itself, as in a container without a volume for the data root,
//! or a filesystem without `trusted.*` xattrs or tmpfile support).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, mknod};

use super::overlay::{self, Overlay};
use super::{Driver, mountinfo};
use crate::Result;
use crate::error::io;

const CACHE_FILE: &str = "rootfs-driver";

/// The driver for `data_root`: the cached answer, or a probe (cached when
/// root ran it; others cannot mount, so their answer says nothing).
pub fn driver(data_root: &Path) -> Result<Driver> {
    let image = data_root.join("image");
    let cache = image.join(CACHE_FILE);
    if let Ok(text) = std::fs::read_to_string(&cache) {
        match text.lines().next() {
            Some("overlay") => return Ok(Driver::Overlay),
            Some("copy") => return Ok(Driver::Copy),
            _ => tracing::warn!("{} is not understood: probing again", cache.display()),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok(Driver::Copy);
    }
    std::fs::create_dir_all(&image).map_err(io(format!("creating {}", image.display())))?;
    let (driver, why) = match probe(&image) {
        Ok(()) => (Driver::Overlay, String::new()),
        Err(reason) => {
            tracing::warn!(
                "overlay root filesystems unavailable, copying layers instead: {reason}"
            );
            (Driver::Copy, reason)
        }
    };
    let text = format!("{}\n{why}\n", driver.name());
    let tmp = image.join(format!(".{CACHE_FILE}-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &cache))
        .map_err(io(format!("writing {}", cache.display())))?;
    Ok(driver)
}

/// The probe folder, unmounted and removed however the probe ends.
struct ProbeDir {
    path: PathBuf,
    merged: PathBuf,
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        let mounted = std::fs::canonicalize(&self.merged).ok().is_some_and(|m| {
            mountinfo::mounts().is_ok_and(|all| all.iter().any(|x| x.mount_point == m))
        });
        if mounted && let Err(e) = overlay::unmount(&self.merged) {
            // Never remove a tree with a mount in it.
            tracing::warn!("{} left mounted: {e}", self.merged.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("{} not removed: {e}", self.path.display());
        }
    }
}

/// Ok when an overlay works here as muelle uses it; else why not.
fn probe(image: &Path) -> Result<(), String> {
    let path = image.join(format!(".probe-{}", std::process::id()));
    let dir = ProbeDir {
        merged: path.join("merged"),
        path,
    };
    let made = |p: &Path| {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .recursive(true)
            .create(p)
            .map_err(|e| format!("creating {}: {e}", p.display()))
    };
    let (lower, top, upper, work) = (
        dir.path.join("lower"),
        dir.path.join("top"),
        dir.path.join("upper"),
        dir.path.join("work"),
    );
    for p in [
        &lower.join("op"),
        &top.join("op"),
        &upper,
        &work,
        &dir.merged,
    ] {
        made(p)?;
    }
    let write =
        |p: PathBuf| std::fs::write(&p, "x").map_err(|e| format!("writing {}: {e}", p.display()));
    write(lower.join("gone"))?;
    write(lower.join("op/old"))?;
    write(top.join("op/new"))?;
    mknod(&top.join("gone"), SFlag::S_IFCHR, Mode::empty(), 0)
        .map_err(|e| format!("making a whiteout: {e}"))?;
    xattr_opaque(&top.join("op"))?;
    let lowers = [lower, top];
    let overlay = Overlay {
        lowers: &lowers,
        upper: &upper,
        work: &work,
        // A throwaway mount: its unmount need not sync the host.
        volatile: true,
    };
    overlay::mount(&overlay, &dir.merged).map_err(|e| e.into_io().to_string())?;
    let m = &dir.merged;
    if m.join("gone").symlink_metadata().is_ok() {
        return Err("a whiteout in a lower layer does not hide the file below".into());
    }
    if m.join("op/old").exists() || !m.join("op/new").exists() {
        return Err("an opaque folder does not hide the content below".into());
    }
    write(m.join("written"))?;
    if !upper.join("written").is_file() {
        return Err("a write did not land in the upper folder".into());
    }
    Ok(())
}

fn xattr_opaque(dir: &Path) -> Result<(), String> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| "a NUL byte in the data root".to_owned())?;
    // SAFETY: a NUL-terminated path, name and a live 1-byte value.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc != 0 {
        return Err(format!(
            "setting trusted.overlay.opaque: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
