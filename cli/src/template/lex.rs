//! The lexer: a format string → text pieces and the tokens of each action,
//! as Go's text/template splits them. Trim markers (`{{- `, ` -}}`) and
//! comments are settled here; in text (not inside actions) the two-character
//! escapes `\t` and `\n` become a tab and a newline, as docker's formatter
//! does before parsing.

use serde_json::Value;

/// A lexing or parsing failure: the byte offset it was found at and Go's
/// wording of it.
#[derive(Debug)]
pub(super) struct Fail {
    pub pos: usize,
    pub message: String,
}

pub(super) fn fail<T>(pos: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        pos,
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    /// `define`, `template`, `block`: named templates, which a `--format`
    /// has no use for.
    Unsupported(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Text(String),
    Open,
    Close,
    /// `.Name`, without the dot.
    Field(String),
    Dot,
    /// `$name`, with the dollar; `$` alone is the data.
    Variable(String),
    Ident(String),
    Keyword(Keyword),
    /// A constant: string, number, character, boolean.
    Const(Value),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug)]
pub(super) struct Token {
    pub kind: Kind,
    pub pos: usize,
    /// Whitespace separates it from the token before (inside an action).
    pub spaced: bool,
    /// Where the token ends, so the parser can quote the source of a node.
    pub end: usize,
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, Fail> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    tokens: Vec<Token>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn push(&mut self, kind: Kind, pos: usize, spaced: bool) {
        let end = self.pos;
        self.tokens.push(Token {
            kind,
            pos,
            spaced,
            end,
        });
    }

    fn run(&mut self) -> Result<(), Fail> {
        let mut trim_start = false;
        loop {
            let open = self.rest().find("{{").map(|i| self.pos + i);
            let text_end = open.unwrap_or(self.src.len());
            // `{{- ` trims the text before; `{{-3` is a number.
            let trim_end = open.is_some_and(|at| {
                let after = &self.src[at + 2..];
                after.starts_with('-') && after[1..].starts_with(is_space)
            });
            let mut text = self.src[self.pos..text_end]
                .replace("\\t", "\t")
                .replace("\\n", "\n");
            if trim_start {
                text = text.trim_start_matches(is_space).to_owned();
            }
            if trim_end {
                text.truncate(text.trim_end_matches(is_space).len());
            }
            if !text.is_empty() {
                self.tokens.push(Token {
                    kind: Kind::Text(text),
                    pos: self.pos,
                    spaced: false,
                    end: text_end,
                });
            }
            let Some(open) = open else { return Ok(()) };
            // Past `{{` and, when trimming, the `-` and the space after it.
            self.pos = open + if trim_end { 4 } else { 2 };
            trim_start = if self.rest().starts_with("/*") {
                self.comment(open)?
            } else {
                self.push(Kind::Open, open, false);
                self.action(open)?
            };
        }
    }

    /// At a closing delimiter: its length and whether it trims.
    fn at_close(&self) -> Option<(usize, bool)> {
        let rest = self.rest();
        let mut chars = rest.chars();
        if chars.next().is_some_and(is_space) && chars.as_str().starts_with("-}}") {
            let space = rest.chars().next().map_or(1, char::len_utf8);
            return Some((space + 3, true));
        }
        rest.starts_with("}}").then_some((2, false))
    }

    fn comment(&mut self, open: usize) -> Result<bool, Fail> {
        let Some(end) = self.rest().find("*/") else {
            return fail(open, "unclosed comment");
        };
        self.pos += end + 2;
        match self.at_close() {
            Some((len, trim)) => {
                self.pos += len;
                Ok(trim)
            }
            None => fail(open, "comment ends before closing delimiter"),
        }
    }

    /// The tokens of one action, up to and including its closing
    /// delimiter; returns whether that delimiter trims.
    fn action(&mut self, open: usize) -> Result<bool, Fail> {
        let mut parens = 0usize;
        let mut spaced = false;
        loop {
            if let Some((len, trim)) = self.at_close() {
                if parens > 0 {
                    return fail(self.pos, "unclosed left paren");
                }
                let at = self.pos;
                self.pos += len;
                self.push(Kind::Close, at, spaced);
                return Ok(trim);
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return fail(open, "unclosed action");
            };
            if is_space(c) {
                self.pos += c.len_utf8();
                spaced = true;
                continue;
            }
            let next = self.rest()[c.len_utf8()..].chars().next();
            let kind = match c {
                '|' => self.single(Kind::Pipe),
                ',' => self.single(Kind::Comma),
                '=' => self.single(Kind::Assign),
                ':' if next == Some('=') => {
                    self.pos += 2;
                    Kind::Declare
                }
                ':' => return fail(start, "expected :="),
                '(' => {
                    parens += 1;
                    self.single(Kind::LParen)
                }
                ')' => {
                    if parens == 0 {
                        return fail(start, "unexpected right paren");
                    }
                    parens -= 1;
                    self.single(Kind::RParen)
                }
                '"' => Kind::Const(Value::String(self.quoted()?)),
                '`' => Kind::Const(Value::String(self.raw()?)),
                '\'' => Kind::Const(self.char_constant()?),
                '$' => {
                    self.pos += 1;
                    Kind::Variable(format!("${}", self.word()))
                }
                '.' if next.is_some_and(|n| n.is_ascii_digit()) => self.number()?,
                '.' => {
                    self.pos += 1;
                    if next.is_some_and(is_word) {
                        Kind::Field(self.word().to_owned())
                    } else {
                        Kind::Dot
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                c if is_word(c) => self.identifier()?,
                c => {
                    return fail(start, format!("bad character U+{:04X} '{c}'", c as u32));
                }
            };
            self.push(kind, start, spaced);
            spaced = false;
        }
    }

    fn single(&mut self, kind: Kind) -> Kind {
        self.pos += 1;
        kind
    }

    fn word(&mut self) -> &str {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !is_word(c))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.src[start..self.pos]
    }

    fn identifier(&mut self) -> Result<Kind, Fail> {
        let start = self.pos;
        let word = self.word().to_owned();
        // Go wants a word to end where a token may: `{{len"x"}}` is wrong.
        let rest = self.rest();
        if !(rest.is_empty()
            || rest.starts_with(is_space)
            || rest.starts_with(['.', ',', '|', ':', ')', '('])
            || rest.starts_with("}}"))
        {
            let c = rest.chars().next().unwrap_or(' ');
            return fail(start, format!("bad character U+{:04X} '{c}'", c as u32));
        }
        Ok(match word.as_str() {
            "if" => Kind::Keyword(Keyword::If),
            "else" => Kind::Keyword(Keyword::Else),
            "end" => Kind::Keyword(Keyword::End),
            "range" => Kind::Keyword(Keyword::Range),
            "with" => Kind::Keyword(Keyword::With),
            "break" => Kind::Keyword(Keyword::Break),
            "continue" => Kind::Keyword(Keyword::Continue),
            "define" => Kind::Keyword(Keyword::Unsupported("define")),
            "template" => Kind::Keyword(Keyword::Unsupported("template")),
            "block" => Kind::Keyword(Keyword::Unsupported("block")),
            "true" => Kind::Const(Value::Bool(true)),
            "false" => Kind::Const(Value::Bool(false)),
            "nil" => Kind::Nil,
            _ => Kind::Ident(word),
        })
    }

    fn number(&mut self) -> Result<Kind, Fail> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut end = start;
        if matches!(bytes.get(end), Some(b'+' | b'-')) {
            end += 1;
        }
        while let Some(&b) = bytes.get(end) {
            let exponent_sign = matches!(b, b'+' | b'-')
                && matches!(bytes[end - 1], b'e' | b'E' | b'p' | b'P')
                && !self.src[start..end].to_ascii_lowercase().starts_with("0x");
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                end += 1;
            } else {
                break;
            }
        }
        self.pos = end;
        let text = &self.src[start..end];
        match parse_number(text) {
            Some(value) => Ok(Kind::Const(value)),
            None => fail(start, format!("bad number syntax: {text:?}")),
        }
    }

    fn char_constant(&mut self) -> Result<Value, Fail> {
        let start = self.pos;
        self.pos += 1;
        let c = self.escaped_char('\'', start, "unterminated character constant")?;
        if !self.rest().starts_with('\'') {
            return fail(start, "unterminated character constant");
        }
        self.pos += 1;
        Ok(Value::from(c as u32))
    }

    fn quoted(&mut self) -> Result<String, Fail> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            if self.rest().starts_with('"') {
                self.pos += 1;
                return Ok(out);
            }
            out.push(self.escaped_char('"', start, "unterminated quoted string")?);
        }
    }

    /// One character of a quoted string or character constant, with Go's
    /// escapes.
    fn escaped_char(
        &mut self,
        quote: char,
        start: usize,
        unterminated: &str,
    ) -> Result<char, Fail> {
        let mut chars = self.rest().chars();
        let c = match chars.next() {
            None | Some('\n') => return fail(start, unterminated),
            Some(c) => c,
        };
        if c != '\\' {
            self.pos += c.len_utf8();
            return Ok(c);
        }
        let Some(e) = chars.next() else {
            return fail(start, unterminated);
        };
        self.pos += 1 + e.len_utf8();
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            e if e == quote => Some(e),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => return fail(start, "invalid syntax"),
        };
        let code = self
            .rest()
            .get(..digits)
            .and_then(|d| u32::from_str_radix(d, radix).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                self.pos += digits;
                Ok(c)
            }
            None => fail(start, "invalid syntax"),
        }
    }

    fn raw(&mut self) -> Result<String, Fail> {
        let start = self.pos;
        self.pos += 1;
        match self.rest().find('`') {
            Some(len) => {
                let text = self.rest()[..len].replace('\r', "");
                self.pos += len + 1;
                Ok(text)
            }
            None => fail(start, "unterminated raw quoted string"),
        }
    }
}

/// A Go number literal: decimal, `0x`/`0o`/`0b`/leading-zero octal
/// integers with `_` separators, or a float. A float with an integral
/// value is an integer constant, as in Go.
fn parse_number(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &clean[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &clean[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &clean[2..]))
    } else if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit())
    {
        Some((8, &clean[1..]))
    } else if !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit()) {
        Some((10, clean.as_str()))
    } else {
        None
    };
    if let Some((radix, body)) = radix {
        let n = i128::from_str_radix(body, radix).ok()?;
        let n = if negative { -n } else { n };
        return i64::try_from(n)
            .map(Value::from)
            .or_else(|_| u64::try_from(n).map(Value::from))
            .ok();
    }
    if !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let f: f64 = clean.parse().ok()?;
    let f = if negative { -f } else { f };
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Some(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind> {
        lex(src).expect("lex").into_iter().map(|t| t.kind).collect()
    }

    fn error(src: &str) -> String {
        lex(src).expect_err("lex error").message
    }

    fn text(s: &str) -> Kind {
        Kind::Text(s.to_owned())
    }

    #[test]
    fn splits_text_and_actions() {
        assert_eq!(
            kinds("a {{.B.C}} d"),
            vec![
                text("a "),
                Kind::Open,
                Kind::Field("B".into()),
                Kind::Field("C".into()),
                Kind::Close,
                text(" d"),
            ]
        );
        let tokens = lex("{{.A .B}}").expect("lex");
        assert!(!tokens[1].spaced && tokens[2].spaced);
    }

    #[test]
    fn trim_markers_eat_whitespace_around_the_action() {
        assert_eq!(
            kinds("a \n {{- 1 -}} \n b"),
            vec![
                text("a"),
                Kind::Open,
                Kind::Const(Value::from(1)),
                Kind::Close,
                text("b")
            ]
        );
        // Without the space `{{-3` is a negative number, not a trim.
        assert_eq!(
            kinds("a {{-3}}"),
            vec![
                text("a "),
                Kind::Open,
                Kind::Const(Value::from(-3)),
                Kind::Close
            ]
        );
    }

    #[test]
    fn comments_vanish_and_may_trim() {
        assert_eq!(kinds("a {{/* x */}} b"), vec![text("a "), text(" b")]);
        assert_eq!(kinds("a {{- /* x */ -}} b"), vec![text("a"), text("b")]);
        assert_eq!(
            error("{{/* x */ .A}}"),
            "comment ends before closing delimiter"
        );
        assert_eq!(error("{{/* x"), "unclosed comment");
    }

    #[test]
    fn literal_backslash_escapes_in_text_become_tabs_and_newlines() {
        assert_eq!(kinds(r"a\tb\nc"), vec![text("a\tb\nc")]);
        // Inside an action they are Go string escapes as usual.
        assert_eq!(
            kinds(r#"{{"\t"}}"#),
            vec![Kind::Open, Kind::Const(Value::from("\t")), Kind::Close]
        );
    }

    #[test]
    fn constants_follow_go_literals() {
        let one = |src: &str| match &kinds(&format!("{{{{{src}}}}}"))[1] {
            Kind::Const(v) => v.clone(),
            other => panic!("not a constant: {other:?}"),
        };
        assert_eq!(one(r#""a\"b\x41\u00e9\101""#), Value::from("a\"bAéA"));
        assert_eq!(one(r"`a\tb`"), Value::from(r"a\tb"));
        assert_eq!(one("'a'"), Value::from(97));
        assert_eq!(one(r"'\n'"), Value::from(10));
        assert_eq!(one("0x1F"), Value::from(31));
        assert_eq!(one("017"), Value::from(15));
        assert_eq!(one("0b101"), Value::from(5));
        assert_eq!(one("1_000"), Value::from(1000));
        assert_eq!(one("1e3"), Value::from(1000));
        assert_eq!(one("1.5"), Value::from(1.5));
        assert_eq!(one(".5"), Value::from(0.5));
        assert_eq!(one("-2.5e-3"), Value::from(-0.0025));
        assert_eq!(one("true"), Value::Bool(true));
    }

    #[test]
    fn words_symbols_and_variables() {
        assert_eq!(
            kinds("{{range $i, $v := .X | len}}"),
            vec![
                Kind::Open,
                Kind::Keyword(Keyword::Range),
                Kind::Variable("$i".into()),
                Kind::Comma,
                Kind::Variable("$v".into()),
                Kind::Declare,
                Kind::Field("X".into()),
                Kind::Pipe,
                Kind::Ident("len".into()),
                Kind::Close,
            ]
        );
        assert_eq!(
            kinds("{{$ = (nil)}}"),
            vec![
                Kind::Open,
                Kind::Variable("$".into()),
                Kind::Assign,
                Kind::LParen,
                Kind::Nil,
                Kind::RParen,
                Kind::Close,
            ]
        );
        assert_eq!(kinds("{{.}}"), vec![Kind::Open, Kind::Dot, Kind::Close]);
    }

    #[test]
    fn actions_may_span_lines() {
        assert_eq!(
            kinds("{{\n.A\n}}"),
            vec![Kind::Open, Kind::Field("A".into()), Kind::Close]
        );
    }

    #[test]
    fn malformed_actions_are_errors() {
        assert_eq!(error("a {{.A"), "unclosed action");
        assert_eq!(error("{{.A @}}"), "bad character U+0040 '@'");
        assert_eq!(error(r#"{{"abc}}"#), "unterminated quoted string");
        assert_eq!(error("{{\"a\nb\"}}"), "unterminated quoted string");
        assert_eq!(error("{{`abc}}"), "unterminated raw quoted string");
        assert_eq!(error(r#"{{"\q"}}"#), "invalid syntax");
        assert_eq!(error("{{'ab'}}"), "unterminated character constant");
        assert_eq!(error("{{3x}}"), "bad number syntax: \"3x\"");
        assert_eq!(error("{{(.A}}"), "unclosed left paren");
        assert_eq!(error("{{.A)}}"), "unexpected right paren");
        assert_eq!(error("{{$x : 1}}"), "expected :=");
        assert_eq!(error(r#"{{len"x"}}"#), "bad character U+0022 '\"'");
    }
}
