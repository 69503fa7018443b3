//! Go's `fmt` over JSON values: `%v` printing (`map[k:v]`, `[a b]`,
//! `<nil>`), `Sprint`, `Sprintln` and `Sprintf` with the verbs, flags,
//! widths and precisions people put in formats, and Go's `%!d(string=x)`
//! notes for a verb that does not fit its argument.
//!
//! Numbers: JSON keeps no Go types, so an integral number is an `int` and
//! any other a `float64`; float verbs accept either.

use std::iter::Peekable;
use std::str::Chars;

use serde_json::{Number, Value};

/// Go's `%T` of the value as `encoding/json` would have decoded it, with
/// integral numbers as `int`.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) if as_int(value).is_some() => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The value of an integral number.
pub(super) fn as_int(value: &Value) -> Option<i128> {
    let Value::Number(n) = value else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    // Past 2^63 an f64 cannot be taken for an exact integer any more.
    (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i128)
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// `%v`, as `fmt.Sprint` prints one value.
pub(super) fn print_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                print_value(&map[key.as_str()], out);
            }
            out.push(']');
        }
    }
}

pub(super) fn to_text(value: &Value) -> String {
    let mut out = String::new();
    print_value(value, &mut out);
    out
}

fn number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) => float_v(f),
        _ => n.to_string(),
    }
}

/// Go's `%v` of a float64 (shortest digits; an exponent below 1e-4 and
/// from 1e+06), except that an integral value prints as an integer below
/// 1e21: JSON does not say whether `5.0` was an int.
fn float_v(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    let (mantissa, exp) = split_exp(&format!("{f:e}"));
    if !(-4..6).contains(&exp) {
        return go_exp(&mantissa, exp, 'e');
    }
    format!("{f}")
}

/// Rust's `1.5e-7` → (`1.5`, -7).
fn split_exp(text: &str) -> (String, i32) {
    let (mantissa, exp) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
    (mantissa.to_owned(), exp.parse().unwrap_or(0))
}

/// Go writes exponents with a sign and at least two digits: `1.5e-07`.
fn go_exp(mantissa: &str, exp: i32, e: char) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}{e}{sign}{:02}", exp.unsigned_abs())
}

/// `fmt.Sprint`: a space between two operands when neither is a string.
pub(super) fn sprint(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = |v: &Value| v.is_string();
        if i > 0 && !is_string(arg) && !is_string(args[i - 1]) {
            out.push(' ');
        }
        print_value(arg, &mut out);
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands, and a newline.
pub(super) fn sprintln(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_value(arg, &mut out);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// `fmt.Sprintf`.
pub(super) fn sprintf(format: &str, args: &[&Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = count(&mut chars, args, &mut next, &mut out);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(count(&mut chars, args, &mut next, &mut out).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            Some(arg) => format_arg(&mut out, spec, verb, arg),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next += 1;
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&bad_value(arg));
        }
        out.push(')');
    }
    out
}

/// A width or precision: digits, or `*` for the next argument.
fn count(
    chars: &mut Peekable<Chars<'_>>,
    args: &[&Value],
    next: &mut usize,
    out: &mut String,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let arg = args.get(*next);
        *next += 1;
        let n = arg
            .and_then(|a| as_int(a))
            .and_then(|n| usize::try_from(n).ok());
        if n.is_none() {
            out.push_str("%!(BADWIDTH)");
        }
        return n;
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

/// `type=value`, as Go notes an argument it could not use.
fn bad_value(arg: &Value) -> String {
    match arg {
        Value::Null => "<nil>".to_owned(),
        _ => format!("{}={}", type_name(arg), to_text(arg)),
    }
}

fn format_arg(out: &mut String, spec: Spec, verb: char, arg: &Value) {
    let text = match (verb, arg) {
        ('T', _) => type_name(arg).to_owned(),
        (_, Value::Array(_) | Value::Object(_)) => {
            return format_composite(out, spec, verb, arg);
        }
        ('v', _) if arg.is_number() => {
            return pad(out, spec, &signed_text(spec, to_text(arg)), true);
        }
        ('v', _) => to_text(arg),
        ('t', Value::Bool(b)) => b.to_string(),
        ('s', Value::String(s)) => precise(s, spec.precision),
        ('q', Value::String(s)) => go_quote(&precise(s, spec.precision)),
        ('x' | 'X', Value::String(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' { hex.to_uppercase() } else { hex }
        }
        ('d' | 'b' | 'o' | 'x' | 'X' | 'c' | 'q' | 'U', _) if as_int(arg).is_some() => {
            let n = as_int(arg).unwrap_or_default();
            return format_int(out, spec, verb, n);
        }
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Number(_)) => {
            let f = as_float(arg).unwrap_or_default();
            return pad(
                out,
                spec,
                &signed_text(spec, format_float(f, verb, spec.precision)),
                true,
            );
        }
        _ => format!("%!{verb}({})", bad_value(arg)),
    };
    pad(out, spec, &text, false);
}

/// Go formats the elements of a slice or map one by one with the verb.
fn format_composite(out: &mut String, spec: Spec, verb: char, arg: &Value) {
    match arg {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, spec, verb, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, spec, verb, &Value::String(key.clone()));
                out.push(':');
                format_arg(out, spec, verb, &map[key.as_str()]);
            }
            out.push(']');
        }
        _ => format_arg(out, spec, verb, arg),
    }
}

fn precise(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_owned(),
    }
}

/// `+` and ` ` flags on a number's text.
fn signed_text(spec: Spec, text: String) -> String {
    if text.starts_with('-') {
        text
    } else if spec.plus {
        format!("+{text}")
    } else if spec.space {
        format!(" {text}")
    } else {
        text
    }
}

fn format_int(out: &mut String, spec: Spec, verb: char, n: i128) {
    let magnitude = n.unsigned_abs();
    let digits = match verb {
        'b' => format!("{magnitude:b}"),
        'o' if spec.sharp => format!("0{magnitude:o}"),
        'o' => format!("{magnitude:o}"),
        'x' if spec.sharp => format!("0x{magnitude:x}"),
        'x' => format!("{magnitude:x}"),
        'X' if spec.sharp => format!("0X{magnitude:X}"),
        'X' => format!("{magnitude:X}"),
        'c' | 'q' | 'U' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let text = match verb {
                'c' => c.to_string(),
                'q' => format!("'{}'", go_escape_char(c, '\'')),
                _ => format!("U+{:04X}", c as u32),
            };
            return pad(out, spec, &text, false);
        }
        _ => magnitude.to_string(),
    };
    let text = if n < 0 { format!("-{digits}") } else { digits };
    pad(out, spec, &signed_text(spec, text), true);
}

/// `%e`, `%f`, `%g` with Go's default precision of 6 for `e` and `f`, and
/// shortest digits for `g` without one.
fn format_float(f: f64, verb: char, precision: Option<usize>) -> String {
    let upper = verb.is_ascii_uppercase();
    let text = match verb.to_ascii_lowercase() {
        'e' => {
            let (mantissa, exp) = split_exp(&format!("{:.*e}", precision.unwrap_or(6), f));
            go_exp(&mantissa, exp, 'e')
        }
        'f' => format!("{:.*}", precision.unwrap_or(6), f),
        _ => match precision {
            // Go's shortest %g switches to an exponent at 1e+06, as %v.
            None => {
                let (mantissa, exp) = split_exp(&format!("{f:e}"));
                if (-4..6).contains(&exp) {
                    format!("{f}")
                } else {
                    go_exp(&mantissa, exp, 'e')
                }
            }
            Some(p) => {
                let p = p.max(1);
                let (mantissa, exp) = split_exp(&format!("{:.*e}", p - 1, f));
                let mantissa = if mantissa.contains('.') {
                    mantissa
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_owned()
                } else {
                    mantissa
                };
                let significant = mantissa.chars().filter(char::is_ascii_digit).count();
                let mut eprec = p as i64;
                if eprec > significant as i64 && significant as i64 > i64::from(exp) {
                    eprec = significant as i64;
                }
                if exp < -4 || i64::from(exp) >= eprec {
                    go_exp(&mantissa, exp, 'e')
                } else {
                    let decimals = (significant as i64 - i64::from(exp) - 1).max(0) as usize;
                    format!("{f:.decimals$}")
                }
            }
        },
    };
    if upper { text.to_uppercase() } else { text }
}

/// Pads to the width with spaces, or zeros after the sign for a number
/// with the `0` flag.
fn pad(out: &mut String, spec: Spec, text: &str, numeric: bool) {
    let len = text.chars().count();
    let Some(missing) = spec
        .width
        .and_then(|w| w.checked_sub(len))
        .filter(|m| *m > 0)
    else {
        out.push_str(text);
        return;
    };
    if spec.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', missing));
    } else if spec.zero && numeric {
        let sign_len = usize::from(text.starts_with(['-', '+', ' ']));
        out.push_str(&text[..sign_len]);
        out.extend(std::iter::repeat_n('0', missing));
        out.push_str(&text[sign_len..]);
    } else {
        out.extend(std::iter::repeat_n(' ', missing));
        out.push_str(text);
    }
}

/// Go's `strconv.Quote`.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        out.push_str(&go_escape_char(c, '"'));
    }
    out.push('"');
    out
}

fn go_escape_char(c: char, quote: char) -> String {
    match c {
        '\x07' => "\\a".to_owned(),
        '\x08' => "\\b".to_owned(),
        '\x0c' => "\\f".to_owned(),
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        '\t' => "\\t".to_owned(),
        '\x0b' => "\\v".to_owned(),
        '\\' => "\\\\".to_owned(),
        c if c == quote => format!("\\{c}"),
        c if (c as u32) < 0x20 || c == '\x7f' => format!("\\x{:02x}", c as u32),
        c if c.is_control() => match c as u32 {
            code @ 0..=0xFFFF => format!("\\u{code:04x}"),
            code => format!("\\U{code:08x}"),
        },
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn printf(format: &str, args: &[Value]) -> String {
        let refs: Vec<&Value> = args.iter().collect();
        sprintf(format, &refs)
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(to_text(&json!("a b")), "a b");
        assert_eq!(to_text(&json!(42)), "42");
        assert_eq!(to_text(&json!(-7)), "-7");
        assert_eq!(to_text(&json!(5.0)), "5");
        assert_eq!(to_text(&json!(1.5)), "1.5");
        assert_eq!(to_text(&json!(0.0001)), "0.0001");
        assert_eq!(to_text(&json!(0.00001)), "1e-05");
        assert_eq!(to_text(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(to_text(&json!(1e22)), "1e+22");
        assert_eq!(to_text(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(to_text(&json!(true)), "true");
        assert_eq!(to_text(&Value::Null), "<nil>");
        assert_eq!(
            to_text(&json!(["a", 1, null, [true]])),
            "[a 1 <nil> [true]]"
        );
        assert_eq!(
            to_text(&json!({"b": 2, "a": {"x": "y"}, "c": []})),
            "map[a:map[x:y] b:2 c:[]]"
        );
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        let (a, one, two) = (json!("a"), json!(1), json!(2));
        assert_eq!(sprint(&[&a, &one, &two, &a, &a]), "a1 2aa");
        assert_eq!(sprintln(&[&a, &one, &a]), "a 1 a\n");
        assert_eq!(sprintln(&[]), "\n");
    }

    #[test]
    fn printf_verbs_widths_and_flags() {
        assert_eq!(
            printf(
                "%s|%-6s|%6s|%.2s",
                &[json!("ab"), json!("ab"), json!("ab"), json!("abc")]
            ),
            "ab|ab    |    ab|ab"
        );
        assert_eq!(
            printf(
                "%d|%5d|%-5d|%05d|%+d",
                &[json!(42), json!(42), json!(42), json!(-42), json!(3)]
            ),
            "42|   42|42   |-0042|+3"
        );
        assert_eq!(
            printf("%v %v %v", &[json!("x"), json!(1.5), json!(null)]),
            "x 1.5 <nil>"
        );
        assert_eq!(
            printf("%q %q", &[json!("a\"b\n"), json!(97)]),
            "\"a\\\"b\\n\" 'a'"
        );
        assert_eq!(
            printf(
                "%x %X %#x %o %b %c %U",
                &[
                    json!(255),
                    json!(255),
                    json!(255),
                    json!(8),
                    json!(5),
                    json!(65),
                    json!(65)
                ]
            ),
            "ff FF 0xff 10 101 A U+0041"
        );
        assert_eq!(printf("%x", &[json!("hi")]), "6869");
        assert_eq!(printf("%t %v", &[json!(true), json!(false)]), "true false");
        assert_eq!(
            printf(
                "%.2f %f %8.3f %e %E",
                &[
                    json!(1.23456),
                    json!(1.5),
                    json!(2.0),
                    json!(1234.5678),
                    json!(0.5)
                ]
            ),
            "1.23 1.500000    2.000 1.234568e+03 5.000000E-01"
        );
        assert_eq!(
            printf(
                "%g %g %.3g %.3g %g",
                &[
                    json!(1.5),
                    json!(0.00001),
                    json!(1234.5678),
                    json!(1.0),
                    json!(100000.5)
                ]
            ),
            "1.5 1e-05 1.23e+03 1 100000.5"
        );
        assert_eq!(
            printf(
                "%T %T %T %T",
                &[json!("s"), json!(1), json!([1]), json!(null)]
            ),
            "string int []interface {} <nil>"
        );
        assert_eq!(
            printf("%*d|%-*d|", &[json!(4), json!(7), json!(3), json!(1)]),
            "   7|1  |"
        );
        assert_eq!(printf("100%%", &[]), "100%");
    }

    #[test]
    fn printf_applies_the_verb_to_elements() {
        assert_eq!(printf("%s", &[json!(["a", "b"])]), "[a b]");
        assert_eq!(printf("%3s", &[json!(["a", "b"])]), "[  a   b]");
        assert_eq!(printf("%d", &[json!({"k": 1})]), "map[%!d(string=k):1]");
        assert_eq!(printf("%v", &[json!({"k": [1, 2]})]), "map[k:[1 2]]");
    }

    #[test]
    fn printf_notes_misfits_as_go_does() {
        assert_eq!(printf("%d", &[json!("x")]), "%!d(string=x)");
        assert_eq!(printf("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(printf("%d", &[json!(1.5)]), "%!d(float64=1.5)");
        assert_eq!(printf("%s", &[Value::Null]), "%!s(<nil>)");
        assert_eq!(printf("%t", &[json!(1)]), "%!t(int=1)");
        assert_eq!(printf("%s %d", &[json!("a")]), "a %!d(MISSING)");
        assert_eq!(
            printf("%s", &[json!("a"), json!(1), json!("b")]),
            "a%!(EXTRA int=1, string=b)"
        );
        assert_eq!(printf("%", &[]), "%!(NOVERB)");
    }

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(go_quote("a\tb\\c\u{1}é"), "\"a\\tb\\\\c\\x01é\"");
    }
}
