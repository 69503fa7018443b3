//! The parser: tokens → the tree the evaluator walks. It checks what Go's
//! parser checks before anything runs: functions exist, variables are
//! declared, `{{end}}`s match, `{{break}}` sits inside a `{{range}}`.

use serde_json::Value;

use super::funcs;
use super::lex::{self, Fail, Keyword, Kind, Token, fail};

#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    /// `{{pipeline}}`: printed unless it declares or assigns variables.
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    /// After `{{else}}`; an `{{else if}}` chain is one nested `If` here.
    pub otherwise: Vec<Node>,
}

/// `$a, $b := cmd | cmd | cmd`
#[derive(Debug)]
pub(super) struct Pipe {
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One stage of a pipeline: an operand alone, or a function and its
/// arguments.
#[derive(Debug)]
pub(super) struct Cmd {
    pub pos: usize,
    pub src: String,
    pub args: Vec<Operand>,
}

/// A term followed by field names: `.A.B` (dot, then A, B), `$x.A`,
/// `(pipeline).A`.
#[derive(Debug)]
pub(super) struct Operand {
    pub pos: usize,
    pub src: String,
    pub term: Term,
    pub fields: Vec<String>,
}

#[derive(Debug)]
pub(super) enum Term {
    Dot,
    Var(String),
    Func(String),
    Const(Value),
    Nil,
    Pipe(Box<Pipe>),
}

pub(super) fn parse(src: &str) -> Result<Vec<Node>, Fail> {
    let tokens = lex::lex(src)?;
    let mut parser = Parser {
        src,
        tokens: &tokens,
        at: 0,
        vars: vec!["$".to_owned()],
        ranges: 0,
    };
    let (list, stop) = parser.list()?;
    match stop {
        Stop::Eof => Ok(list),
        Stop::End(pos) => fail(pos, "unexpected {{end}}"),
        Stop::Else(pos, _) => fail(pos, "unexpected {{else}}"),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End(usize),
    /// `{{else}}`, or `{{else if`/`{{else with` with the keyword taken.
    Else(usize, Option<Keyword>),
}

struct Parser<'t> {
    src: &'t str,
    tokens: &'t [Token],
    at: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    /// How many `{{range}}` bodies we are in.
    ranges: usize,
}

fn keyword_name(keyword: Keyword) -> &'static str {
    match keyword {
        Keyword::If => "if",
        Keyword::Else => "else",
        Keyword::End => "end",
        Keyword::Range => "range",
        Keyword::With => "with",
        Keyword::Break => "break",
        Keyword::Continue => "continue",
        Keyword::Unsupported(name) => name,
    }
}

impl<'t> Parser<'t> {
    fn kind(&self, ahead: usize) -> Option<&'t Kind> {
        self.tokens.get(self.at + ahead).map(|t| &t.kind)
    }

    /// The token at hand; the lexer ends every action with `}}`, so inside
    /// one there always is one.
    fn token(&self) -> Result<&'t Token, Fail> {
        match self.tokens.get(self.at) {
            Some(token) => Ok(token),
            None => fail(self.src.len(), "unexpected EOF"),
        }
    }

    /// The source of a token, for messages: `"}}"`, `<if>`.
    fn describe(&self, token: &Token) -> String {
        match &token.kind {
            Kind::Keyword(k) => format!("<{}>", keyword_name(*k)),
            Kind::Close => "\"}}\"".to_owned(),
            _ => format!("{:?}", &self.src[token.pos..token.end]),
        }
    }

    /// The source from `pos` to the end of the last token taken.
    fn source_from(&self, pos: usize) -> String {
        let end = self.tokens[self.at - 1].end;
        self.src[pos..end].to_owned()
    }

    fn expect_close(&mut self, context: &str) -> Result<(), Fail> {
        let token = self.token()?;
        if token.kind != Kind::Close {
            return fail(
                token.pos,
                format!("unexpected {} in {context}", self.describe(token)),
            );
        }
        self.at += 1;
        Ok(())
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), Fail> {
        let mut nodes = Vec::new();
        while let Some(token) = self.tokens.get(self.at) {
            self.at += 1;
            match &token.kind {
                Kind::Text(text) => nodes.push(Node::Text(text.clone())),
                Kind::Open => {
                    if let Some(stop) = self.action(&mut nodes)? {
                        return Ok((nodes, stop));
                    }
                }
                _ => return fail(token.pos, format!("unexpected {}", self.describe(token))),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// One action after its `{{`: appended to `nodes`, or the `{{end}}` /
    /// `{{else}}` that ends the list.
    fn action(&mut self, nodes: &mut Vec<Node>) -> Result<Option<Stop>, Fail> {
        let token = self.token()?;
        let Kind::Keyword(keyword) = token.kind else {
            let pipe = self.pipeline("command", false)?;
            self.expect_close("command")?;
            nodes.push(Node::Action(pipe));
            return Ok(None);
        };
        self.at += 1;
        match keyword {
            Keyword::End => {
                self.expect_close("end")?;
                Ok(Some(Stop::End(token.pos)))
            }
            Keyword::Else => match self.kind(0) {
                Some(Kind::Keyword(chained @ (Keyword::If | Keyword::With))) => {
                    self.at += 1;
                    Ok(Some(Stop::Else(token.pos, Some(*chained))))
                }
                _ => {
                    self.expect_close("else")?;
                    Ok(Some(Stop::Else(token.pos, None)))
                }
            },
            Keyword::If | Keyword::Range | Keyword::With => {
                nodes.push(self.control(keyword)?);
                Ok(None)
            }
            Keyword::Break | Keyword::Continue => {
                let name = keyword_name(keyword);
                if self.ranges == 0 {
                    return fail(token.pos, format!("{{{{{name}}}}} outside {{{{range}}}}"));
                }
                self.expect_close(&format!("{{{{{name}}}}}"))?;
                nodes.push(if keyword == Keyword::Break {
                    Node::Break
                } else {
                    Node::Continue
                });
                Ok(None)
            }
            Keyword::Unsupported(name) => fail(
                token.pos,
                format!("{{{{{name}}}}} is not supported in a format"),
            ),
        }
    }

    /// `if`, `range` or `with` (already taken) up to its `{{end}}`.
    fn control(&mut self, keyword: Keyword) -> Result<Node, Fail> {
        let name = keyword_name(keyword);
        let scope = self.vars.len();
        let pipe = self.pipeline(name, keyword == Keyword::Range)?;
        self.expect_close(name)?;
        let in_range = usize::from(keyword == Keyword::Range);
        self.ranges += in_range;
        let (list, stop) = self.list()?;
        self.ranges -= in_range;
        let otherwise = match stop {
            Stop::Eof => return fail(self.src.len(), "unexpected EOF"),
            Stop::End(_) => Vec::new(),
            Stop::Else(_, None) => match self.list()? {
                (list, Stop::End(_)) => list,
                (_, Stop::Eof) => return fail(self.src.len(), "unexpected EOF"),
                (_, Stop::Else(pos, _)) => return fail(pos, "expected end; found {{else}}"),
            },
            // `{{else if x}}...{{end}}` is `{{else}}{{if x}}...{{end}}{{end}}`
            // with one `{{end}}` for both.
            Stop::Else(_, Some(chained)) if chained == keyword => vec![self.control(chained)?],
            Stop::Else(pos, Some(chained)) => {
                let chained = keyword_name(chained);
                return fail(pos, format!("{{{{else {chained}}}}} in {{{{{name}}}}}"));
            }
        };
        self.vars.truncate(scope);
        let branch = Branch {
            pipe,
            list,
            otherwise,
        };
        Ok(match keyword {
            Keyword::If => Node::If(branch),
            Keyword::With => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// A pipeline up to (not including) its `}}` or `)`.
    fn pipeline(&mut self, context: &str, range: bool) -> Result<Pipe, Fail> {
        let pos = self.token()?.pos;
        let (decl, assign) = self.declarations(context, range)?;
        let mut cmds = Vec::new();
        loop {
            if cmds.is_empty() && matches!(self.kind(0), Some(Kind::Close | Kind::RParen) | None) {
                return fail(pos, format!("missing value for {context}"));
            }
            cmds.push(self.command()?);
            if self.kind(0) != Some(&Kind::Pipe) {
                break;
            }
            self.at += 1;
        }
        for (stage, cmd) in cmds.iter().enumerate().skip(1) {
            let first = &cmd.args[0];
            let runnable = match first.term {
                Term::Func(_) | Term::Var(_) => true,
                Term::Dot | Term::Pipe(_) => !first.fields.is_empty(),
                Term::Const(_) | Term::Nil => false,
            };
            if !runnable {
                return fail(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", stage + 1),
                );
            }
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// `$x :=`, `$x =`, and in a range `$i, $v :=`.
    fn declarations(&mut self, context: &str, range: bool) -> Result<(Vec<String>, bool), Fail> {
        let Some(Kind::Variable(first)) = self.kind(0) else {
            return Ok((Vec::new(), false));
        };
        let pos = self.token()?.pos;
        let (decl, op) = match self.kind(1) {
            Some(op @ (Kind::Declare | Kind::Assign)) => {
                self.at += 2;
                (vec![first.clone()], op)
            }
            Some(Kind::Comma) if !range => {
                return fail(pos, format!("too many declarations in {context}"));
            }
            Some(Kind::Comma) => match (self.kind(2), self.kind(3)) {
                (Some(Kind::Variable(second)), Some(op @ (Kind::Declare | Kind::Assign))) => {
                    self.at += 4;
                    (vec![first.clone(), second.clone()], op)
                }
                (Some(Kind::Variable(_)), Some(Kind::Comma)) => {
                    return fail(pos, format!("too many declarations in {context}"));
                }
                _ => return fail(pos, "range can only initialize variables"),
            },
            _ => return Ok((Vec::new(), false)),
        };
        let assign = *op == Kind::Assign;
        for name in &decl {
            if !assign {
                self.vars.push(name.clone());
            } else if !self.vars.contains(name) {
                return fail(pos, format!("undefined variable {name:?}"));
            }
        }
        Ok((decl, assign))
    }

    fn command(&mut self) -> Result<Cmd, Fail> {
        let pos = self.token()?.pos;
        let mut args = Vec::new();
        while let Some(operand) = self.operand()? {
            args.push(operand);
            let token = self.token()?;
            match token.kind {
                Kind::Close | Kind::RParen | Kind::Pipe => break,
                _ if token.spaced => {}
                _ => {
                    return fail(
                        token.pos,
                        format!("unexpected {} in operand", self.describe(token)),
                    );
                }
            }
        }
        if args.is_empty() {
            let token = self.token()?;
            return match token.kind {
                Kind::Close | Kind::RParen | Kind::Pipe => fail(pos, "missing command"),
                _ => fail(
                    token.pos,
                    format!("unexpected {} in command", self.describe(token)),
                ),
            };
        }
        Ok(Cmd {
            pos,
            src: self.source_from(pos),
            args,
        })
    }

    fn operand(&mut self) -> Result<Option<Operand>, Fail> {
        let token = self.token()?;
        let pos = token.pos;
        let mut fields = Vec::new();
        self.at += 1;
        let term = match &token.kind {
            Kind::Ident(name) if funcs::exists(name) => Term::Func(name.clone()),
            Kind::Ident(name) => return fail(pos, format!("function {name:?} not defined")),
            Kind::Dot => Term::Dot,
            Kind::Field(name) => {
                fields.push(name.clone());
                Term::Dot
            }
            Kind::Nil => Term::Nil,
            Kind::Variable(name) if self.vars.contains(name) => Term::Var(name.clone()),
            Kind::Variable(name) => return fail(pos, format!("undefined variable {name:?}")),
            Kind::Const(value) => Term::Const(value.clone()),
            Kind::LParen => {
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                let close = self.token()?;
                if close.kind != Kind::RParen {
                    return fail(
                        close.pos,
                        format!(
                            "unexpected {} in parenthesized pipeline",
                            self.describe(close)
                        ),
                    );
                }
                self.at += 1;
                Term::Pipe(Box::new(pipe))
            }
            _ => {
                self.at -= 1;
                return Ok(None);
            }
        };
        while let Some(Token {
            kind: Kind::Field(name),
            spaced: false,
            ..
        }) = self.tokens.get(self.at)
        {
            let chainable = match term {
                Term::Var(_) | Term::Pipe(_) => true,
                Term::Dot => !fields.is_empty(),
                Term::Func(_) | Term::Const(_) | Term::Nil => false,
            };
            if !chainable {
                return fail(
                    pos,
                    format!("unexpected . after term {:?}", self.source_from(pos)),
                );
            }
            fields.push(name.clone());
            self.at += 1;
        }
        Ok(Some(Operand {
            pos,
            src: self.source_from(pos),
            term,
            fields,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(src: &str) -> String {
        parse(src).expect_err("parse error").message
    }

    #[test]
    fn builds_the_tree_go_builds() {
        let nodes = parse("a{{if .X}}b{{else if .Y}}c{{else}}d{{end}}").expect("parse");
        let [Node::Text(a), Node::If(outer)] = &nodes[..] else {
            panic!("{nodes:?}")
        };
        assert_eq!(a, "a");
        let [Node::If(inner)] = &outer.otherwise[..] else {
            panic!("{outer:?}")
        };
        assert!(matches!(&inner.otherwise[..], [Node::Text(d)] if d == "d"));

        let nodes = parse("{{range $i, $v := .A.B | len}}{{end}}").expect("parse");
        let [Node::Range(range)] = &nodes[..] else {
            panic!("{nodes:?}")
        };
        assert_eq!(range.pipe.decl, ["$i", "$v"]);
        assert_eq!(range.pipe.cmds.len(), 2);
        assert_eq!(range.pipe.cmds[0].args[0].fields, ["A", "B"]);
        assert_eq!(range.pipe.cmds[0].src, ".A.B");
    }

    #[test]
    fn variables_are_scoped_to_their_control() {
        assert!(parse("{{$x := 1}}{{$x}}{{$x = 2}}").is_ok());
        assert!(parse("{{with $x := .A}}{{$x}}{{else}}{{$x}}{{end}}").is_ok());
        assert_eq!(
            error("{{if true}}{{$x := 1}}{{end}}{{$x}}"),
            "undefined variable \"$x\""
        );
        assert_eq!(error("{{$y = 1}}"), "undefined variable \"$y\"");
        assert_eq!(error("{{$x, $y := .}}"), "too many declarations in command");
        assert_eq!(
            error("{{range $a, $b, $c := .}}{{end}}"),
            "too many declarations in range"
        );
        assert_eq!(
            error("{{range $a, 3 := .}}{{end}}"),
            "range can only initialize variables"
        );
    }

    #[test]
    fn functions_must_exist() {
        assert_eq!(error("{{foo .}}"), "function \"foo\" not defined");
        assert_eq!(error("{{. | foo}}"), "function \"foo\" not defined");
    }

    #[test]
    fn structure_errors_read_like_go() {
        assert_eq!(error("{{end}}"), "unexpected {{end}}");
        assert_eq!(error("{{else}}"), "unexpected {{else}}");
        assert_eq!(error("{{if .}}x"), "unexpected EOF");
        assert_eq!(
            error("{{if .}}{{else}}{{else}}{{end}}"),
            "expected end; found {{else}}"
        );
        assert_eq!(
            error("{{if .}}{{else with .}}{{end}}"),
            "{{else with}} in {{if}}"
        );
        assert_eq!(error("{{}}"), "missing value for command");
        assert_eq!(error("{{if}}{{end}}"), "missing value for if");
        assert_eq!(error("{{. |}}"), "missing command");
        assert_eq!(
            error("{{.A | \"x\"}}"),
            "non executable command in pipeline stage 2"
        );
        assert_eq!(error("{{.A\"x\"}}"), "unexpected \"\\\"x\\\"\" in operand");
        assert_eq!(
            error("{{\"x\".A}}"),
            "unexpected . after term \"\\\"x\\\"\""
        );
        assert_eq!(error("{{break}}"), "{{break}} outside {{range}}");
        assert_eq!(
            error("{{range .}}{{continue 1}}{{end}}"),
            "unexpected \"1\" in {{continue}}"
        );
        assert_eq!(error("{{end 1}}"), "unexpected \"1\" in end");
        assert_eq!(
            error("{{template \"x\"}}"),
            "{{template}} is not supported in a format"
        );
        assert_eq!(error("{{:= 1}}"), "unexpected \":=\" in command");
    }

    #[test]
    fn break_belongs_to_the_range_body_not_its_else() {
        assert!(parse("{{range .}}{{if .}}{{break}}{{end}}{{continue}}{{end}}").is_ok());
        assert_eq!(
            error("{{range .}}{{else}}{{break}}{{end}}"),
            "{{break}} outside {{range}}"
        );
    }
}
