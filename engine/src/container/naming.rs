//! Container ids and names, as docker makes and checks them.

use super::EngineError;

/// 64 random hex characters whose first 12 are not all digits (docker's
/// rule: a short id must never read as a number).
pub fn new_id() -> String {
    loop {
        let id = storage::random::hex_id();
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; a leading `/` is dropped.
pub fn parse_name(text: &str) -> Result<String, EngineError> {
    let name = text.strip_prefix('/').unwrap_or(text);
    let mut bytes = name.bytes();
    let valid = name.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        return Err(EngineError::InvalidName(text.to_owned()));
    }
    Ok(name.to_owned())
}

const LEFT: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "cool", "eager", "fervent", "focused", "gallant",
    "happy", "jolly", "keen", "kind", "lucid", "merry", "modest", "nifty", "patient", "quirky",
    "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant",
    "wizardly", "xenial", "zealous",
];

const RIGHT: &[&str] = &[
    "allen", "babbage", "bell", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi",
    "galileo", "goldberg", "hopper", "hypatia", "kepler", "knuth", "lamport", "lovelace",
    "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wiles", "wing",
];

/// A free `adjective_scientist` name, as docker gives an unnamed
/// container; a digit is appended after a few collisions.
pub fn random_name(taken: impl Fn(&str) -> bool) -> String {
    let mut bytes = [0u8; 4];
    for attempt in 0u32.. {
        // SAFETY: getrandom writes at most `bytes.len()` bytes into `bytes`.
        unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        let n = u32::from_le_bytes(bytes) ^ attempt.wrapping_mul(2_654_435_761);
        let left = LEFT[(n % LEFT.len() as u32) as usize];
        let right = RIGHT[((n >> 8) % RIGHT.len() as u32) as usize];
        let mut name = format!("{left}_{right}");
        if attempt >= 10 {
            name.push_str(&((n >> 16) % 10).to_string());
        }
        if !taken(&name) {
            return name;
        }
    }
    unreachable!("the loop above returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_never_numeric_short_ids() {
        for _ in 0..50 {
            let id = new_id();
            assert_eq!(id.len(), 64);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(!id[..12].bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(parse_name("web").unwrap(), "web");
        assert_eq!(parse_name("/web-1.a_b").unwrap(), "web-1.a_b");
        for bad in ["", "a", "-web", "we b", "web/x", "..", "w\u{e9}b", "_x"] {
            let err = parse_name(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
        }
    }

    #[test]
    fn random_names_avoid_taken_ones() {
        let name = random_name(|n| !n.ends_with(char::is_numeric));
        assert!(name.ends_with(char::is_numeric), "{name}");
        assert!(parse_name(&random_name(|_| false)).is_ok());
    }
}
