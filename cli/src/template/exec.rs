//! The evaluator: walks the tree over a JSON value as Go's `exec.go` walks
//! it over Go data. Values are borrowed from the input wherever they can
//! be; only what functions compute is owned.

use std::borrow::Cow;

use serde_json::Value;

use super::funcs::{self, truth};
use super::parse::{Branch, Cmd, Node, Operand, Pipe, Term};
use super::printf;

type Val<'a> = Cow<'a, Value>;

/// The header names a table's caller gives for field names.
pub(super) type Headers<'h> = &'h dyn Fn(&str) -> Option<&'static str>;

/// An execution failure: where (a byte offset in the template and the
/// node's source) and Go's message.
#[derive(Debug)]
pub(super) struct Fail {
    pub pos: usize,
    pub context: String,
    pub message: String,
}

static NULL: Value = Value::Null;

pub(super) fn render(nodes: &[Node], data: &Value) -> Result<String, Fail> {
    let mut exec = Exec {
        vars: vec![("$".to_owned(), Cow::Borrowed(data))],
        out: String::new(),
        headers: None,
    };
    exec.walk(&Cow::Borrowed(data), nodes)?;
    Ok(exec.out)
}

/// docker renders a table's header with the same template over the header
/// names: here every field path prints its header, docker's functions
/// return their first argument, and what fails prints nothing. Only the
/// top level is rendered; `if`, `with` and `range` print nothing.
pub(super) fn header(nodes: &[Node], headers: Headers<'_>) -> String {
    let mut exec = Exec {
        vars: vec![("$".to_owned(), Cow::Borrowed(&NULL))],
        out: String::new(),
        headers: Some(headers),
    };
    let dot = Cow::Borrowed(&NULL);
    for node in nodes {
        match node {
            Node::Text(text) => exec.out.push_str(text),
            Node::Action(pipe) => {
                let mark = exec.out.len();
                if exec.action(&dot, pipe).is_err() {
                    exec.out.truncate(mark);
                }
            }
            _ => {}
        }
    }
    exec.out
}

/// How a list of nodes ended.
enum Flow {
    Next,
    Break,
    Continue,
}

struct Exec<'a, 'h> {
    /// Variables in scope, innermost last; `$` is the data.
    vars: Vec<(String, Val<'a>)>,
    out: String,
    headers: Option<Headers<'h>>,
}

fn fail<T>(pos: usize, context: &str, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        pos,
        context: context.to_owned(),
        message: message.into(),
    })
}

/// `.name` of a value: a missing key and a null receiver give null (Go's
/// `<no value>`); anything but an object is an error.
fn field<'a>(value: Val<'a>, name: &str) -> Result<Val<'a>, String> {
    match value {
        Cow::Borrowed(Value::Object(map)) => Ok(Cow::Borrowed(map.get(name).unwrap_or(&NULL))),
        Cow::Owned(Value::Object(mut map)) => {
            Ok(Cow::Owned(map.remove(name).unwrap_or(Value::Null)))
        }
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Ok(Cow::Borrowed(&NULL)),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            printf::type_name(&other)
        )),
    }
}

/// What `range` visits: (index or key, element), maps by sorted key.
fn elements<'a>(value: Val<'a>) -> Result<Vec<(Value, Val<'a>)>, String> {
    let mut items: Vec<(Value, Val<'a>)> = match value {
        Cow::Borrowed(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i), Cow::Borrowed(v)))
            .collect(),
        Cow::Owned(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i), Cow::Owned(v)))
            .collect(),
        Cow::Borrowed(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (Value::String(k.clone()), Cow::Borrowed(v)))
            .collect(),
        Cow::Owned(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (Value::String(k), Cow::Owned(v)))
            .collect(),
        Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Vec::new(),
        // Go 1.22 ranges over an integer: 0, 1, ..., n-1.
        other => match printf::as_int(&other) {
            Some(n) => (0..n.max(0))
                .map(|i| (Value::from(i as i64), Cow::Owned(Value::from(i as i64))))
                .collect(),
            None => {
                return Err(format!(
                    "range can't iterate over {}",
                    printf::to_text(&other)
                ));
            }
        },
    };
    items.sort_by(|(a, _), (b, _)| match (a, b) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    });
    Ok(items)
}

impl<'a> Exec<'a, '_> {
    fn walk(&mut self, dot: &Val<'a>, nodes: &[Node]) -> Result<Flow, Fail> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.out.push_str(text);
                    Flow::Next
                }
                Node::Action(pipe) => {
                    self.action(dot, pipe)?;
                    Flow::Next
                }
                Node::If(branch) => self.scoped(|exec| {
                    let value = exec.pipeline(dot, &branch.pipe)?;
                    let list = if truth(&value) {
                        &branch.list
                    } else {
                        &branch.otherwise
                    };
                    exec.walk(dot, list)
                })?,
                Node::With(branch) => self.scoped(|exec| {
                    let value = exec.pipeline(dot, &branch.pipe)?;
                    if truth(&value) {
                        exec.walk(&value, &branch.list)
                    } else {
                        exec.walk(dot, &branch.otherwise)
                    }
                })?,
                Node::Range(branch) => self.scoped(|exec| exec.range(dot, branch))?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Next) {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    /// Runs `f` and drops the variables it declared.
    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let scope = self.vars.len();
        let result = f(self);
        self.vars.truncate(scope);
        result
    }

    fn action(&mut self, dot: &Val<'a>, pipe: &Pipe) -> Result<(), Fail> {
        let value = self.pipeline(dot, pipe)?;
        if pipe.decl.is_empty() {
            match value.as_ref() {
                // Go prints a missing value so; a header prints nothing.
                Value::Null if self.headers.is_some() => {}
                Value::Null => self.out.push_str("<no value>"),
                value => printf::print_value(value, &mut self.out),
            }
        }
        Ok(())
    }

    fn range(&mut self, dot: &Val<'a>, branch: &Branch) -> Result<Flow, Fail> {
        let pipe = &branch.pipe;
        let value = self.commands(dot, pipe)?;
        let items = elements(value).map_err(|message| {
            let cmd = &pipe.cmds[0];
            Fail {
                pos: cmd.pos,
                context: cmd.src.clone(),
                message,
            }
        })?;
        if items.is_empty() {
            return self.walk(dot, &branch.otherwise);
        }
        if !pipe.assign {
            for name in &pipe.decl {
                self.vars.push((name.clone(), Cow::Borrowed(&NULL)));
            }
        }
        for (key, element) in items {
            match pipe.decl.as_slice() {
                [value] => self.set_var(value, element.clone()),
                [key_var, value] => {
                    self.set_var(key_var, Cow::Owned(key));
                    self.set_var(value, element.clone());
                }
                _ => {}
            }
            match self.scoped(|exec| exec.walk(&element, &branch.list))? {
                Flow::Break => break,
                Flow::Next | Flow::Continue => {}
            }
        }
        Ok(Flow::Next)
    }

    fn set_var(&mut self, name: &str, value: Val<'a>) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = value;
        }
    }

    /// Evaluates a pipeline and declares or assigns its variables.
    fn pipeline(&mut self, dot: &Val<'a>, pipe: &Pipe) -> Result<Val<'a>, Fail> {
        let value = self.commands(dot, pipe)?;
        for name in &pipe.decl {
            if pipe.assign {
                self.set_var(name, value.clone());
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    /// Each command's result becomes the last argument of the next.
    fn commands(&mut self, dot: &Val<'a>, pipe: &Pipe) -> Result<Val<'a>, Fail> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value.take())?);
        }
        Ok(value.unwrap_or(Cow::Borrowed(&NULL)))
    }

    fn command(
        &mut self,
        dot: &Val<'a>,
        cmd: &Cmd,
        last: Option<Val<'a>>,
    ) -> Result<Val<'a>, Fail> {
        let first = &cmd.args[0];
        if let Term::Func(name) = &first.term {
            return self.call(dot, name, &cmd.args[1..], last, cmd.pos, &cmd.src);
        }
        if cmd.args.len() > 1 || last.is_some() {
            let message = match first.fields.last() {
                Some(name) => format!("{name} is not a method but has arguments"),
                None => format!("can't give argument to non-function {}", first.src),
            };
            return fail(first.pos, &first.src, message);
        }
        if matches!(first.term, Term::Nil) {
            return fail(first.pos, &first.src, "nil is not a command");
        }
        self.operand(dot, first)
    }

    fn operand(&mut self, dot: &Val<'a>, operand: &Operand) -> Result<Val<'a>, Fail> {
        if let (Some(headers), Some(name)) = (self.headers, operand.fields.last()) {
            let header = headers(name).map_or_else(|| name.to_uppercase(), str::to_owned);
            return Ok(Cow::Owned(Value::String(header)));
        }
        let mut value = match &operand.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => value.clone(),
                None => {
                    return fail(
                        operand.pos,
                        &operand.src,
                        format!("undefined variable: {name}"),
                    );
                }
            },
            Term::Const(value) => Cow::Owned(value.clone()),
            Term::Nil => Cow::Borrowed(&NULL),
            Term::Func(name) => self.call(dot, name, &[], None, operand.pos, &operand.src)?,
            Term::Pipe(pipe) => self.pipeline(dot, pipe)?,
        };
        for name in &operand.fields {
            value = field(value, name).map_err(|message| Fail {
                pos: operand.pos,
                context: operand.src.clone(),
                message,
            })?;
        }
        Ok(value)
    }

    fn call(
        &mut self,
        dot: &Val<'a>,
        name: &str,
        args: &[Operand],
        last: Option<Val<'a>>,
        pos: usize,
        src: &str,
    ) -> Result<Val<'a>, Fail> {
        // `and` and `or` stop at the first argument that decides, as Go's.
        if name == "and" || name == "or" {
            if args.is_empty() && last.is_none() {
                return fail(
                    pos,
                    src,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut value = Cow::Borrowed(&NULL);
            for arg in args {
                value = self.operand(dot, arg)?;
                if truth(&value) != (name == "and") {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.operand(dot, arg)?);
        }
        values.extend(last);
        let refs: Vec<&Value> = values.iter().map(AsRef::as_ref).collect();
        match funcs::call(name, &refs, self.headers.is_some()) {
            Ok(value) => Ok(Cow::Owned(value)),
            Err(message) => fail(pos, src, message),
        }
    }
}
