//! The reaper `--init` puts in front of a container's command: a static
//! binary on the host, bound read-only into the container. muelle ships
//! none of its own; it uses the one docker (tini, as `docker-init`) or
//! podman (catatonit) would, and says which package gives one.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::spec::SpecError;

/// Overrides where the init binary is looked for.
pub const INIT_ENV: &str = "MUELLE_INIT";

/// Where an init is looked for, in order: muelle's own place, then
/// tini-static (Debian's `tini`), docker's and podman's.
const CANDIDATES: [&str; 5] = [
    "/usr/libexec/muelle/muelle-init",
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
];

/// The host path of the init binary: `$MUELLE_INIT`, else the first
/// candidate that is a static executable. The container has none of the
/// host's libraries, so a dynamically linked init would fail there with a
/// baffling "no such file"; it is refused here instead.
pub fn find() -> Result<PathBuf, SpecError> {
    if let Some(path) = std::env::var_os(INIT_ENV) {
        let path = PathBuf::from(path);
        return if is_static_executable(&path) {
            Ok(path)
        } else {
            Err(SpecError::InitNotStatic(path))
        };
    }
    CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| is_static_executable(p))
        .map(Path::to_path_buf)
        .ok_or(SpecError::InitUnavailable)
}

/// An ELF executable without a program interpreter (PT_INTERP).
fn is_static_executable(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = Vec::new();
    // The program headers of a real init sit in its first pages.
    if file
        .by_ref()
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return false;
    }
    elf_has_no_interpreter(&bytes)
}

/// 64-bit little-endian ELF (this host's kind) whose program headers,
/// within `bytes`, name no interpreter.
fn elf_has_no_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // Magic, ELFCLASS64, little-endian.
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        matches!(u32_at(at), Some(kind) if kind != PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit ELF header with `kinds` as its program headers' types.
    fn elf(kinds: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(kinds.len() as u16).to_le_bytes());
        for kind in kinds {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&kind.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn a_program_interpreter_makes_a_binary_dynamic() {
        assert!(elf_has_no_interpreter(&elf(&[1, 1, 4])));
        assert!(!elf_has_no_interpreter(&elf(&[6, 3, 1])));
        assert!(!elf_has_no_interpreter(b"#!/bin/sh\n"));
        // Headers cut off are not trusted.
        let mut cut = elf(&[1, 1]);
        cut.truncate(100);
        assert!(!elf_has_no_interpreter(&cut));
    }

    #[test]
    fn real_binaries_are_told_apart() {
        assert!(!is_static_executable(Path::new("/bin/sh")));
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            assert!(is_static_executable(busybox));
        }
    }
}
