//! Compiled programs kept on disk, so that the same profile is compiled
//! once per boot instead of once per container: libseccomp takes 10-20 ms
//! for docker's three-architecture profile, more than a whole crun run.
//!
//! A cache file records the exact profile it was compiled from (with the
//! libseccomp version, the kernel and the architecture) and is used only
//! when all of it matches byte for byte, so a hash collision or a stale file
//! costs a compile, never a wrong filter. Failing to read or write the cache
//! also only costs a compile.
//!
//! The kernel is named by uname(2) (release and build), not by libseccomp's
//! API level: the level is what libseccomp learns of that kernel, but
//! asking for it costs nine seccomp(2) probes, on every create and exec
//! that finds its program here.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::{Filter, SeccompError, compile, parse_program, program_bytes};

/// Bump when [`compile`] starts producing another program for the same
/// profile, so that files written by an older muelle are not trusted.
const FORMAT: &str = "muelle seccomp cache 2";

/// Like [`compile`], but reuses the program compiled earlier for the same
/// profile from `dir` (created 0700 if missing; a folder of the runtime's
/// state root, on tmpfs so that a reboot clears it).
pub fn compile_cached(seccomp: &LinuxSeccomp, dir: &Path) -> Result<Filter, SeccompError> {
    let Some(key) = key(seccomp) else {
        return compile(seccomp);
    };
    let path = file_for(dir, &key);
    if let Some(filter) = read(&path, &key) {
        return Ok(filter);
    }
    let filter = compile(seccomp)?;
    if let Err(e) = write(dir, &path, &key, &filter) {
        tracing::warn!(
            "seccomp: caching the compiled filter in {}: {e}",
            path.display()
        );
    }
    Ok(filter)
}

/// Everything the compiled program depends on.
fn key(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
    let version = libseccomp::ScmpVersion::current().ok()?;
    let kernel = kernel()?;
    let mut key = format!(
        "{FORMAT}\nlibseccomp {}.{}.{} kernel {kernel} arch {}\n",
        version.major,
        version.minor,
        version.micro,
        std::env::consts::ARCH
    )
    .into_bytes();
    serde_json::to_writer(&mut key, seccomp).ok()?;
    Some(key)
}

/// The running kernel's release and build ("6.8.0-45 #45-Ubuntu SMP ...").
fn kernel() -> Option<String> {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates each field within its array.
        unsafe { std::ffi::CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some(format!("{} {}", text(&name.release), text(&name.version)))
}

fn file_for(dir: &Path, key: &[u8]) -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    dir.join(format!("{:016x}.bpf", hasher.finish()))
}

/// Layout: key length (u32 LE), key, flags (u32 LE), then the program.
fn read(path: &Path, key: &[u8]) -> Option<Filter> {
    let bytes = std::fs::read(path).ok()?;
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let (stored_key, rest) = rest.split_at_checked(len)?;
    if stored_key != key {
        return None;
    }
    let (flags, program) = rest.split_first_chunk::<4>()?;
    Some(Filter {
        program: parse_program(program).ok()?,
        flags: u32::from_le_bytes(*flags),
    })
}

fn write(dir: &Path, path: &Path, key: &[u8], filter: &Filter) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let len = u32::try_from(key.len()).map_err(std::io::Error::other)?;
    let mut bytes =
        Vec::with_capacity(4 + key.len() + 4 + std::mem::size_of_val(filter.program.as_slice()));
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(&filter.flags.to_le_bytes());
    bytes.extend_from_slice(&program_bytes(&filter.program));
    // Written aside and renamed, so a concurrent create never reads half a
    // file.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::seccomp::docker_default_profile;

    #[test]
    fn second_compile_comes_from_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("seccomp");
        let profile = docker_default_profile(&crate::capabilities::docker_default());

        let first = compile_cached(&profile, &cache).expect("compile");
        let files: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
        assert_eq!(files.len(), 1);

        let started = std::time::Instant::now();
        let second = compile_cached(&profile, &cache).expect("cached");
        eprintln!("cached docker profile in {:?}", started.elapsed());
        assert_eq!(first.instructions(), second.instructions());
        assert_eq!(first.flags(), second.flags());
        assert_eq!(
            second.instructions(),
            compile(&profile).expect("compile").instructions()
        );
    }

    #[test]
    fn the_key_names_the_kernel_without_asking_libseccomp() {
        let profile = docker_default_profile(&[]);
        let key = String::from_utf8(key(&profile).expect("key")).expect("utf-8");
        let header = key.lines().nth(1).expect("header");
        let kernel = kernel().expect("uname");
        assert!(
            header.contains(&format!("kernel {kernel} arch")),
            "{header}"
        );
        assert!(!header.contains(" api "), "{header}");
    }

    #[test]
    fn another_profile_or_a_damaged_file_is_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let docker = docker_default_profile(&[]);
        let admin = docker_default_profile(&["CAP_SYS_ADMIN".to_owned()]);
        let docker_key = key(&docker).expect("key");
        let path = file_for(dir.path(), &docker_key);

        // A file at docker's name, but recording another profile: as after
        // a hash collision.
        let admin_filter = compile(&admin).expect("compile");
        write(dir.path(), &path, &key(&admin).expect("key"), &admin_filter).expect("write");
        let got = compile_cached(&docker, dir.path()).expect("compile");
        assert_eq!(
            got.instructions(),
            compile(&docker).expect("compile").instructions()
        );
        assert_ne!(got.instructions(), admin_filter.instructions());

        // Cut short: a miss, then rewritten whole.
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        assert!(read(&path, &docker_key).is_none());
        compile_cached(&docker, dir.path()).expect("compile");
        assert!(read(&path, &docker_key).is_some());
    }
}
