//! docker's text shapes: tables as Go's tabwriter lays them out, JSON as
//! Go's encoder writes it, `…` truncation, and `path.Match` globs for the
//! `reference` filter.

use std::io::Write;

use serde::Serialize;

/// docker's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
/// Every column but the last is as wide as its widest cell plus three
/// spaces, and at least ten; the last is not padded (so an empty last
/// cell leaves the padding of the one before, as docker's does).
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let last = header.len().saturating_sub(1);
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            text.push_str(cell);
            if i < last {
                let width = (widths[i] + PADDING).max(MIN_WIDTH);
                let pad = width.saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{text}")
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// One line of JSON as Go's encoder writes it: `<`, `>` and `&` escaped
/// (`"\u003cnone\u003e"`). They only occur inside strings, so the
/// replacement keeps the JSON valid.
pub fn go_json(value: &impl Serialize) -> serde_json::Result<String> {
    Ok(go_escape(serde_json::to_string(value)?))
}

/// An indented JSON document as docker's `inspect` prints it (four spaces).
pub fn go_json_pretty(value: &impl Serialize) -> serde_json::Result<String> {
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    value.serialize(&mut ser)?;
    Ok(go_escape(String::from_utf8_lossy(&bytes).into_owned()))
}

fn go_escape(json: String) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…` when
/// cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Go's `path.Match`: `*` any run of characters but `/`, `?` one
/// character but `/`, `[a-z]`/`[^...]` classes, `\` escapes. A malformed
/// pattern is an error, whatever the name.
pub fn glob(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    check_pattern(&p).map_err(|why| format!("bad pattern {pattern:?}: {why}"))?;
    let n: Vec<char> = name.chars().collect();
    Ok(matches(&p, &n))
}

fn check_pattern(p: &[char]) -> Result<(), &'static str> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("it ends with a lone \\");
                }
                i += 2;
            }
            '[' => i += 1 + class(&p[i + 1..], None).ok_or("an unclosed [")?.1,
            _ => i += 1,
        }
    }
    Ok(())
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // Shortest first; a star never reaches past a '/'.
            for i in 0..=n.len() {
                if matches(&p[1..], &n[i..]) {
                    return true;
                }
                if n.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Some('?') => n.first().is_some_and(|&c| c != '/') && matches(&p[1..], &n[1..]),
        Some('[') => match (n.first(), class(&p[1..], n.first().copied())) {
            (Some(_), Some((true, used))) => matches(&p[1 + used..], &n[1..]),
            _ => false,
        },
        Some('\\') => p.get(1).is_some_and(|c| n.first() == Some(c)) && matches(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && matches(&p[1..], &n[1..]),
    }
}

/// A class after its `[`: whether `c` is in it, and how many pattern
/// characters it took (through the `]`); `None` if unclosed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut ranges = 0;
    loop {
        // A ']' right after '[' (or '[^') is a literal, as in Go.
        if p.get(i) == Some(&']') && ranges > 0 {
            return Some((hit != negated, i + 1));
        }
        let (lo, used) = class_char(&p[i..])?;
        i += used;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            let (h, used) = class_char(&p[i + 1..])?;
            hi = h;
            i += 1 + used;
        }
        ranges += 1;
        if c.is_some_and(|c| lo <= c && c <= hi) {
            hit = true;
        }
    }
}

fn class_char(p: &[char]) -> Option<(char, usize)> {
    match p {
        ['\\', c, ..] => Some((*c, 2)),
        [c, ..] => Some((*c, 1)),
        [] => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_like_tabwriter() {
        let mut out = Vec::new();
        let rows = vec![vec!["busybox".into(), "latest".into(), "4.26MB".into()]];
        table(&mut out, &["REPOSITORY", "TAG", "SIZE"], &rows).expect("table");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
    }

    #[test]
    fn globs_follow_go_path_match() {
        let g = |p: &str, n: &str| glob(p, n).expect("pattern");
        assert!(g("busybox", "busybox"));
        assert!(g("busy*", "busybox"));
        assert!(!g("*", "localhost/busybox"));
        assert!(g("localhost/*", "localhost/busybox"));
        assert!(g("*/*:lat?st", "localhost/busybox:latest"));
        assert!(g("[a-c]usybox", "busybox"));
        assert!(!g("[^a-c]usybox", "busybox"));
        assert!(g("a\\*", "a*"));
        assert!(glob("[abc", "a").is_err());
        assert!(glob("x\\", "x").is_err());
    }

    #[test]
    fn json_escapes_as_go_and_text_cuts_with_an_ellipsis() {
        assert_eq!(go_json(&"<none>").expect("json"), "\"\\u003cnone\\u003e\"");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
