//! `/proc/self/mountinfo`, read to tell what is mounted at or below a
//! folder before anything there is unmounted or removed: a tree removal
//! must never descend into a mount, and a layer a mounted overlay uses is
//! not removed under it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The filesystem's own options (overlay's `lowerdir=...`).
    pub super_options: String,
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..=i + 3]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn lossy(field: &str) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

/// One line: `id parent maj:min root mount_point options [optional...] -
/// fstype source super_options`; None for a line not of that shape.
fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut rest = after.split(' ');
    let fstype = rest.next()?;
    let source = rest.next()?;
    let super_options = rest.next().unwrap_or("");
    Some(Mount {
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: lossy(fstype),
        source: lossy(source),
        super_options: lossy(super_options),
    })
}

pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Every mount this process sees, in mount order.
pub(crate) fn mounts() -> std::io::Result<Vec<Mount>> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|text| parse(&text))
}

/// The mounts at `path` or below it. `path` should be canonical
/// (mountinfo shows resolved paths).
pub(crate) fn at_or_below(all: &[Mount], path: &Path) -> Vec<Mount> {
    all.iter()
        .filter(|m| m.mount_point.starts_with(path))
        .cloned()
        .collect()
}

/// The overlay mounts whose layers include `dir` (a layer's diff folder).
pub(crate) fn overlays_using(all: &[Mount], dir: &Path) -> Vec<Mount> {
    let needle = dir.display().to_string();
    all.iter()
        .filter(|m| m.fstype == "overlay")
        .filter(|m| {
            m.super_options
                .split([',', ':', '='])
                .any(|part| part == needle)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:50 / /var/lib/muelle/c/a\\040b/rootfs rw,relatime - overlay muelle rw,lowerdir=/var/lib/muelle/image/layers/aa/diff:/var/lib/muelle/image/layers/bb/diff,upperdir=/x/upper,workdir=/x/work
41 40 0:51 / /var/lib/muelle/c/a\\040b/rootfs/proc rw shared:5 - proc proc rw
";

    #[test]
    fn mountinfo_lines_parse_and_unescape() {
        let all = parse(SAMPLE);
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[1].mount_point,
            Path::new("/var/lib/muelle/c/a b/rootfs")
        );
        assert_eq!(
            (all[1].fstype.as_str(), all[1].source.as_str()),
            ("overlay", "muelle")
        );
        let below = at_or_below(&all, Path::new("/var/lib/muelle/c/a b"));
        assert_eq!(below.len(), 2);
        assert!(at_or_below(&all, Path::new("/var/lib/muelle/c/a")).is_empty());
        let users = overlays_using(&all, Path::new("/var/lib/muelle/image/layers/bb/diff"));
        assert_eq!(users.len(), 1);
        assert!(overlays_using(&all, Path::new("/var/lib/muelle/image/layers/b")).is_empty());
        assert_eq!(unescape("a\\134b\\011"), b"a\\b\t");
    }
}
