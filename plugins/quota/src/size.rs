//! Volume sizes as users write them: plain bytes or a number with a binary
//! unit (`64m`, `1G`, `512M`, `2t`; `k`, `m`, `g`, `t` in either case,
//! optionally followed by `b` or `ib` as docker's `units.RAMInBytes`
//! accepts). Whole numbers only: a size is a count of bytes, and `1.5g`
//! invites rounding questions nobody needs.

/// ext4 needs room for its superblock, group descriptors, inode tables and
/// journal; below a few MiB mkfs refuses or leaves no space for data.
pub const MIN_SIZE: u64 = 8 << 20;

/// A sanity bound, not a limit of ext4: a typo such as `size=10000t` should
/// fail here rather than as a puzzling mkfs or set_len error.
pub const MAX_SIZE: u64 = 16 << 40;

/// Parses `text` into bytes, checking the bounds. The error is one line
/// for the user.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size {text:?}: give bytes or a number with k, m, g or t (binary units), \
             for example size=1g"
        )
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad());
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let too_big = || format!("size {text:?} is more than the maximum of 16t");
    // u64 parsing rejects signs we did not see, and overflow is an error,
    // not a wrap.
    let number: u64 = digits.parse().map_err(|_| too_big())?;
    let bytes = number.checked_mul(1u64 << shift).ok_or_else(too_big)?;
    if bytes < MIN_SIZE {
        return Err(format!(
            "size {text:?} is less than the minimum of 8m (ext4 needs room for its own metadata)"
        ));
    }
    if bytes > MAX_SIZE {
        return Err(too_big());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_in_both_cases() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size("16T"), Ok(16 << 40));
        assert_eq!(parse_size("8192k"), Ok(8 << 20));
        assert_eq!(parse_size("8192K"), Ok(8 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("8388608"), Ok(8 << 20));
        assert_eq!(parse_size("8388608b"), Ok(8 << 20));
        assert_eq!(parse_size("0064m"), Ok(64 << 20));
    }

    #[test]
    fn bounds() {
        assert_eq!(parse_size("8m"), Ok(MIN_SIZE));
        assert!(parse_size("8388607").is_err());
        assert!(parse_size("7m").unwrap_err().contains("minimum"));
        assert!(parse_size("0").is_err());
        assert!(parse_size("17t").unwrap_err().contains("maximum"));
        assert!(parse_size("16385g").is_err());
        // Overflow while multiplying, and while parsing.
        assert!(parse_size("18446744073709551615t").is_err());
        assert!(parse_size("99999999999999999999999").is_err());
    }

    #[test]
    fn garbage() {
        for bad in [
            "", "m", "g1", "1.5g", "-1g", "+1g", " 1g", "1g ", "1 g", "1x", "1gg", "1p", "1ib",
            "1e9", "0x10m", "１g",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains("size"), "{bad:?}: {err}");
        }
    }
}
