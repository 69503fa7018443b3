//! The functions a format may call: Go's builtins (`and` and `or` live in
//! the evaluator, which must not evaluate what they skip) and the ones
//! docker adds (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`,
//! `truncate`). A JSON `null` stands for docker's nil map or slice: its
//! length is 0, indexing it with a key gives the zero value.

use serde_json::Value;

use super::printf::{self, as_int, type_name};

const BUILTIN: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge",
];

/// docker's functions; rendering a table header, each returns its first
/// argument (docker's `HeaderFunctions`).
const DOCKER: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

pub(super) fn exists(name: &str) -> bool {
    BUILTIN.contains(&name) || DOCKER.contains(&name)
}

/// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
pub(super) fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Calls `name`; the error is Go's message for it.
pub(super) fn call(name: &str, args: &[&Value], header: bool) -> Result<Value, String> {
    if header && DOCKER.contains(&name) {
        return Ok(args
            .first()
            .map_or(Value::String(String::new()), |v| (*v).clone()));
    }
    let calling = |why: String| format!("error calling {name}: {why}");
    Ok(match name {
        "not" => Value::Bool(!truth(exactly(name, args, 1)?[0])),
        "len" => Value::from(length(exactly(name, args, 1)?[0]).map_err(calling)?),
        "index" => index(at_least(name, args, 1)?).map_err(calling)?,
        "slice" => slice(at_least(name, args, 1)?).map_err(calling)?,
        "print" => Value::String(printf::sprint(args)),
        "println" => Value::String(printf::sprintln(args)),
        "printf" => {
            let format = string(at_least(name, args, 1)?[0])?;
            Value::String(printf::sprintf(format, &args[1..]))
        }
        "eq" => {
            let args = at_least(name, args, 1)?;
            if args.len() == 1 {
                return Err(calling("missing argument for comparison".to_owned()));
            }
            let mut found = false;
            for other in &args[1..] {
                found |= equal(args[0], other).map_err(calling)?;
            }
            Value::Bool(found)
        }
        "ne" => {
            let args = exactly(name, args, 2)?;
            Value::Bool(!equal(args[0], args[1]).map_err(calling)?)
        }
        "lt" | "le" | "gt" | "ge" => {
            let args = exactly(name, args, 2)?;
            let ordering = order(args[0], args[1]).map_err(calling)?;
            Value::Bool(match name {
                "lt" => ordering.is_lt(),
                "le" => ordering.is_le(),
                "gt" => ordering.is_gt(),
                _ => ordering.is_ge(),
            })
        }
        "json" => Value::String(go_json(exactly(name, args, 1)?[0])),
        "split" => {
            let args = exactly(name, args, 2)?;
            let (text, sep) = (string(args[0])?, string(args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep)
                    .map(|s| Value::String(s.to_owned()))
                    .collect()
            };
            Value::Array(parts)
        }
        "join" => {
            let args = exactly(name, args, 2)?;
            let sep = string(args[1])?;
            let parts: Vec<String> = match args[0] {
                Value::Null => Vec::new(),
                Value::Array(items) => items.iter().map(printf::to_text).collect(),
                other => return Err(wrong_type("[]string", other)),
            };
            Value::String(parts.join(sep))
        }
        "title" => Value::String(title(string(exactly(name, args, 1)?[0])?)),
        "lower" => Value::String(string(exactly(name, args, 1)?[0])?.to_lowercase()),
        "upper" => Value::String(string(exactly(name, args, 1)?[0])?.to_uppercase()),
        "pad" => {
            let args = exactly(name, args, 3)?;
            let (text, before, after) = (string(args[0])?, int(args[1])?, int(args[2])?);
            let (Ok(before), Ok(after)) = (usize::try_from(before), usize::try_from(after)) else {
                return Err(calling("strings: negative Repeat count".to_owned()));
            };
            if text.is_empty() {
                Value::String(String::new())
            } else {
                Value::String(format!("{}{text}{}", " ".repeat(before), " ".repeat(after)))
            }
        }
        "truncate" => {
            let args = exactly(name, args, 2)?;
            let (text, len) = (string(args[0])?, int(args[1])?);
            let Ok(len) = usize::try_from(len) else {
                return Err(calling(format!("slice bounds out of range [:{len}]")));
            };
            Value::String(text.chars().take(len).collect())
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

fn exactly<'v, 'a>(
    name: &str,
    args: &'v [&'a Value],
    want: usize,
) -> Result<&'v [&'a Value], String> {
    if args.len() == want {
        Ok(args)
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn at_least<'v, 'a>(
    name: &str,
    args: &'v [&'a Value],
    want: usize,
) -> Result<&'v [&'a Value], String> {
    if args.len() >= want {
        Ok(args)
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        ))
    }
}

fn wrong_type(want: &str, got: &Value) -> String {
    match got {
        Value::Null => format!("invalid value; expected {want}"),
        _ => format!(
            "wrong type for value; expected {want}; got {}",
            type_name(got)
        ),
    }
}

fn string(value: &Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| wrong_type("string", value))
}

fn int(value: &Value) -> Result<i128, String> {
    as_int(value).ok_or_else(|| wrong_type("int", value))
}

fn length(value: &Value) -> Result<usize, String> {
    match value {
        Value::Null => Ok(0),
        // Go's len of a string counts bytes.
        Value::String(s) => Ok(s.len()),
        Value::Array(items) => Ok(items.len()),
        Value::Object(map) => Ok(map.len()),
        other => Err(format!("len of type {}", type_name(other))),
    }
}

/// Go returns the zero value of a map's element type for a missing key.
/// JSON has no element type: it is taken from the values present, and a
/// string (docker's label maps) when there are none.
fn zero_like(sample: Option<&Value>) -> Value {
    match sample {
        None | Some(Value::String(_)) => Value::String(String::new()),
        Some(Value::Number(_)) => Value::from(0),
        Some(Value::Bool(_)) => Value::Bool(false),
        Some(Value::Array(_)) => Value::Array(Vec::new()),
        Some(Value::Object(_) | Value::Null) => Value::Null,
    }
}

fn index(args: &[&Value]) -> Result<Value, String> {
    let mut item = args[0].clone();
    for key in &args[1..] {
        item = match (&item, key) {
            (Value::Object(map), Value::String(k)) => match map.get(k) {
                Some(v) => v.clone(),
                None => zero_like(map.values().next()),
            },
            (Value::Null, Value::String(_)) => zero_like(None),
            (Value::Object(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    type_name(other)
                ));
            }
            (Value::Array(_) | Value::String(_) | Value::Null, _) => {
                let Some(i) = as_int(key) else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        type_name(key)
                    ));
                };
                let found = match &item {
                    Value::Array(items) => {
                        usize::try_from(i).ok().and_then(|i| items.get(i)).cloned()
                    }
                    Value::String(s) => usize::try_from(i)
                        .ok()
                        .and_then(|i| s.as_bytes().get(i))
                        .map(|b| Value::from(*b)),
                    _ => None,
                };
                found.ok_or_else(|| format!("index out of range: {i}"))?
            }
            (other, _) => return Err(format!("can't index item of type {}", type_name(other))),
        };
    }
    Ok(item)
}

fn slice(args: &[&Value]) -> Result<Value, String> {
    let len = match args[0] {
        Value::String(s) => s.len(),
        Value::Array(items) => items.len(),
        Value::Null => 0,
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    };
    // Up to three indexes after the item; a string takes two.
    if args.len() > 4 || (args.len() == 4 && args[0].is_string()) {
        return Err("too many slice indexes".to_owned());
    }
    let mut bounds = Vec::new();
    for arg in &args[1..] {
        let i = as_int(arg)
            .ok_or_else(|| format!("cannot index slice/array with type {}", type_name(arg)))?;
        match usize::try_from(i) {
            Ok(i) if i <= len => bounds.push(i),
            _ => return Err(format!("index out of range: {i}")),
        }
    }
    let (from, to) = (
        bounds.first().copied().unwrap_or(0),
        bounds.get(1).copied().unwrap_or(len),
    );
    if from > to {
        return Err(format!("invalid slice index: {from} > {to}"));
    }
    Ok(match args[0] {
        Value::String(s) => match s.get(from..to) {
            Some(part) => Value::String(part.to_owned()),
            None => Value::String(String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()),
        },
        Value::Array(items) => Value::Array(items[from..to].to_vec()),
        _ => Value::Null,
    })
}

/// Go's comparison classes.
enum Basic<'v> {
    Nil,
    Bool(bool),
    Int(i128),
    Float,
    Str(&'v str),
    Other,
}

fn basic(value: &Value) -> Basic<'_> {
    match value {
        Value::Null => Basic::Nil,
        Value::Bool(b) => Basic::Bool(*b),
        Value::Number(_) => match as_int(value) {
            Some(i) => Basic::Int(i),
            None => Basic::Float,
        },
        Value::String(s) => Basic::Str(s),
        Value::Array(_) | Value::Object(_) => Basic::Other,
    }
}

const INCOMPATIBLE: &str = "incompatible types for comparison";

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (basic(a), basic(b)) {
        (Basic::Nil, Basic::Nil) => Ok(true),
        (Basic::Nil, _) | (_, Basic::Nil) => Ok(false),
        (Basic::Other, _) => Err(format!(
            "non-comparable type {}: {}",
            printf::to_text(a),
            type_name(a)
        )),
        (_, Basic::Other) => Err(format!(
            "non-comparable type {}: {}",
            printf::to_text(b),
            type_name(b)
        )),
        (Basic::Bool(x), Basic::Bool(y)) => Ok(x == y),
        (Basic::Str(x), Basic::Str(y)) => Ok(x == y),
        (Basic::Int(x), Basic::Int(y)) => Ok(x == y),
        (Basic::Int(_) | Basic::Float, Basic::Int(_) | Basic::Float) => {
            Ok(a.as_f64().unwrap_or_default() == b.as_f64().unwrap_or_default())
        }
        _ => Err(INCOMPATIBLE.to_owned()),
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    let invalid = || "invalid type for comparison".to_owned();
    match (basic(a), basic(b)) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x.cmp(&y)),
        (Basic::Int(_) | Basic::Float, Basic::Int(_) | Basic::Float) => {
            let (x, y) = (
                a.as_f64().unwrap_or_default(),
                b.as_f64().unwrap_or_default(),
            );
            x.partial_cmp(&y).ok_or_else(invalid)
        }
        (Basic::Str(x), Basic::Str(y)) => Ok(x.cmp(y)),
        (Basic::Bool(_), Basic::Bool(_))
        | (Basic::Nil | Basic::Other, _)
        | (_, Basic::Nil | Basic::Other) => Err(invalid()),
        _ => Err(INCOMPATIBLE.to_owned()),
    }
}

/// Go's `strings.Title`: upper-cases the letter that starts each word.
fn title(text: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    for c in text.chars() {
        if separator(previous) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// docker's `json`: Go's `json.Marshal` with HTML escaping off; integral
/// floats without `.0`, exponents as Go writes them, U+2028 and U+2029
/// escaped, objects in their own order.
pub(super) fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let abs = f.abs();
            if f.fract() == 0.0 && abs < 1e21 {
                out.push_str(&format!("{f:.0}"));
            } else if !(1e-6..1e21).contains(&abs) {
                let text = format!("{f:e}");
                let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
                let sign = if exp.starts_with('-') { "" } else { "+" };
                out.push_str(&format!("{mantissa}e{sign}{exp}"));
            } else {
                out.push_str(&f.to_string());
            }
        }
        Value::String(s) => {
            let quoted = serde_json::to_string(s).unwrap_or_default();
            out.push_str(
                &quoted
                    .replace('\u{2028}', "\\u2028")
                    .replace('\u{2029}', "\\u2029"),
            );
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        // In the value's own order: docker prints a struct in field order,
        // and the value was built in it (cli keeps serde_json's order).
        Value::Object(map) => {
            out.push('{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&Value::String(key.clone()), out);
                out.push(':');
                write_json(value, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(name: &str, args: &[Value]) -> Result<Value, String> {
        let refs: Vec<&Value> = args.iter().collect();
        call(name, &refs, false)
    }

    fn ok(name: &str, args: &[Value]) -> Value {
        run(name, args).expect(name)
    }

    #[test]
    fn truth_is_gos() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truth(&falsy), "{falsy}");
        }
        for truthy in [
            json!(true),
            json!(-1),
            json!(0.5),
            json!("0"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truth(&truthy), "{truthy}");
        }
    }

    #[test]
    fn docker_functions() {
        assert_eq!(
            ok("json", &[json!({"a": [1, 2.5, 3.0, null], "b": "<a&b>"})]),
            json!(r#"{"a":[1,2.5,3,null],"b":"<a&b>"}"#)
        );
        assert_eq!(ok("json", &[json!("\u{2028}")]), json!(r#""\u2028""#));
        assert_eq!(ok("json", &[json!(1e-7)]), json!("1e-7"));
        assert_eq!(ok("json", &[json!(1e21)]), json!("1e+21"));
        assert_eq!(
            ok("split", &[json!("a,b,,c"), json!(",")]),
            json!(["a", "b", "", "c"])
        );
        assert_eq!(ok("split", &[json!("ab"), json!("")]), json!(["a", "b"]));
        assert_eq!(ok("split", &[json!(""), json!(",")]), json!([""]));
        assert_eq!(
            ok("join", &[json!(["sh", "-c", 1]), json!(" ")]),
            json!("sh -c 1")
        );
        assert_eq!(ok("join", &[json!(null), json!(",")]), json!(""));
        assert_eq!(
            ok("title", &[json!("hello wORLD-foo_bar x.y")]),
            json!("Hello WORLD-Foo_bar X.Y")
        );
        assert_eq!(ok("lower", &[json!("AbC")]), json!("abc"));
        assert_eq!(ok("upper", &[json!("AbC")]), json!("ABC"));
        assert_eq!(ok("pad", &[json!("x"), json!(2), json!(1)]), json!("  x "));
        assert_eq!(ok("pad", &[json!(""), json!(2), json!(1)]), json!(""));
        assert_eq!(ok("truncate", &[json!("abcdef"), json!(3)]), json!("abc"));
        assert_eq!(ok("truncate", &[json!("ab"), json!(3)]), json!("ab"));
        assert_eq!(ok("truncate", &[json!("héllo"), json!(2)]), json!("hé"));
    }

    #[test]
    fn header_mode_returns_the_first_argument_of_docker_functions() {
        let (a, n) = (json!("CONTAINER ID"), json!(12));
        assert_eq!(call("truncate", &[&a, &n], true), Ok(a.clone()));
        assert_eq!(call("upper", &[&a], true), Ok(a.clone()));
        assert_eq!(call("len", &[&a], true), Ok(json!(12)));
    }

    #[test]
    fn builtins() {
        assert_eq!(ok("not", &[json!("")]), json!(true));
        assert_eq!(ok("len", &[json!("héllo")]), json!(6));
        assert_eq!(ok("len", &[json!([1, 2])]), json!(2));
        assert_eq!(ok("len", &[json!({"a": 1})]), json!(1));
        assert_eq!(ok("len", &[json!(null)]), json!(0));
        assert_eq!(
            ok(
                "index",
                &[
                    json!({"a": [1, {"b": "c"}]}),
                    json!("a"),
                    json!(1),
                    json!("b")
                ]
            ),
            json!("c")
        );
        assert_eq!(ok("index", &[json!({"a": "x"}), json!("zz")]), json!(""));
        assert_eq!(
            ok("index", &[json!({"a": {"x": 1}}), json!("zz")]),
            json!(null)
        );
        assert_eq!(ok("index", &[json!(null), json!("zz")]), json!(""));
        assert_eq!(ok("index", &[json!("abc"), json!(1)]), json!(98));
        assert_eq!(ok("index", &[json!([1])]), json!([1]));
        assert_eq!(
            ok("slice", &[json!("abcd"), json!(1), json!(3)]),
            json!("bc")
        );
        assert_eq!(ok("slice", &[json!([1, 2, 3]), json!(1)]), json!([2, 3]));
        assert_eq!(
            ok("print", &[json!("a"), json!(1), json!(2)]),
            json!("a1 2")
        );
        assert_eq!(ok("println", &[json!("a"), json!(1)]), json!("a 1\n"));
        assert_eq!(
            ok("printf", &[json!("%-4s|%03d"), json!("ab"), json!(7)]),
            json!("ab  |007")
        );
    }

    #[test]
    fn comparisons() {
        assert_eq!(ok("eq", &[json!("a"), json!("b"), json!("a")]), json!(true));
        assert_eq!(ok("eq", &[json!(1), json!(1.0)]), json!(true));
        assert_eq!(ok("eq", &[json!(null), json!(null)]), json!(true));
        assert_eq!(ok("eq", &[json!(null), json!("x")]), json!(false));
        assert_eq!(ok("ne", &[json!(true), json!(false)]), json!(true));
        assert_eq!(ok("lt", &[json!(1), json!(2)]), json!(true));
        assert_eq!(ok("le", &[json!(2), json!(2.0)]), json!(true));
        assert_eq!(ok("gt", &[json!("b"), json!("a")]), json!(true));
        assert_eq!(ok("ge", &[json!(1.5), json!(2)]), json!(false));
    }

    #[test]
    fn errors_read_like_go() {
        let err = |name: &str, args: &[Value]| run(name, args).expect_err(name);
        assert_eq!(
            err("upper", &[json!(3)]),
            "wrong type for value; expected string; got int"
        );
        assert_eq!(
            err("upper", &[json!(null)]),
            "invalid value; expected string"
        );
        assert_eq!(
            err("upper", &[]),
            "wrong number of args for upper: want 1 got 0"
        );
        assert_eq!(
            err("printf", &[]),
            "wrong number of args for printf: want at least 1 got 0"
        );
        assert_eq!(
            err("truncate", &[json!("a"), json!("b")]),
            "wrong type for value; expected int; got string"
        );
        assert_eq!(
            err("join", &[json!("a"), json!(",")]),
            "wrong type for value; expected []string; got string"
        );
        assert_eq!(
            err("len", &[json!(3)]),
            "error calling len: len of type int"
        );
        assert_eq!(
            err("index", &[json!([1]), json!(5)]),
            "error calling index: index out of range: 5"
        );
        assert_eq!(
            err("index", &[json!({}), json!(5)]),
            "error calling index: value has type int; should be string"
        );
        assert_eq!(
            err("index", &[json!(true), json!(5)]),
            "error calling index: can't index item of type bool"
        );
        assert_eq!(
            err("slice", &[json!("ab"), json!(3)]),
            "error calling slice: index out of range: 3"
        );
        assert_eq!(
            err("slice", &[json!("ab"), json!(2), json!(1)]),
            "error calling slice: invalid slice index: 2 > 1"
        );
        assert_eq!(
            err("eq", &[json!(1), json!("1")]),
            "error calling eq: incompatible types for comparison"
        );
        assert_eq!(
            err("eq", &[json!(1)]),
            "error calling eq: missing argument for comparison"
        );
        assert_eq!(
            err("eq", &[json!([1]), json!([1])]),
            "error calling eq: non-comparable type [1]: []interface {}"
        );
        assert_eq!(
            err("lt", &[json!(true), json!(false)]),
            "error calling lt: invalid type for comparison"
        );
        assert_eq!(
            err("lt", &[json!(1), json!("a")]),
            "error calling lt: incompatible types for comparison"
        );
        assert_eq!(
            err("pad", &[json!("a"), json!(-1), json!(0)]),
            "error calling pad: strings: negative Repeat count"
        );
    }
}
