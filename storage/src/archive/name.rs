//! Archive member names as the components `unpack` may create: relative,
//! without `..`, each one a single path component.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The components of `raw`, in order; empty for the root itself (`./`).
/// A leading `/` is dropped, as GNU tar and docker drop it.
pub fn components(raw: &[u8]) -> Result<Vec<&OsStr>, String> {
    if raw.is_empty() {
        return Err("an empty name".into());
    }
    if raw.contains(&0) {
        return Err("a NUL byte in the name".into());
    }
    let mut parts = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("a `..` component in the name".into()),
            _ => parts.push(OsStr::from_bytes(part)),
        }
    }
    Ok(parts)
}

/// A name for messages: lossy UTF-8 (the error shows it quoted and escaped).
pub fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// `a/b` from components, for messages.
pub fn joined(parts: &[&OsStr]) -> String {
    let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    shown(&bytes.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Result<Vec<String>, String> {
        components(raw.as_bytes())
            .map(|v| v.iter().map(|p| p.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn names_become_safe_components() {
        assert_eq!(parts("./a/b/").expect("ok"), ["a", "b"]);
        assert_eq!(parts("/etc//passwd").expect("ok"), ["etc", "passwd"]);
        assert!(parts("./").expect("root").is_empty());
        assert!(parts("/").expect("root").is_empty());
        for bad in ["", "..", "../x", "a/../../x", "a/..", "a/../b"] {
            assert!(parts(bad).is_err(), "{bad:?}");
        }
        assert!(components(b"a\0b").is_err());
        assert_eq!(
            parts("a/..b/c..").expect("dots in names"),
            ["a", "..b", "c.."]
        );
    }
}
