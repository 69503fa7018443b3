//! `--format`: the part of Go's text/template that docker users write,
//! rendered over the JSON value docker would print for the object (an
//! `inspect` document, a `ps` row).
//!
//! What is there: text and `{{ }}` actions with `{{-`/`-}}` trimming and
//! comments; fields (`.A.B`, `.`, `$`, `$x.A`), constants, parenthesized
//! pipelines and `|` pipes; `if`/`else if`/`with`/`else with`/`range`
//! (arrays, maps by sorted key, integers) with `break`/`continue`;
//! variables (`:=`, `=`, `range $k, $v :=`); Go's builtins `and or not len
//! index slice print printf println eq ne lt le gt ge`, and docker's `json
//! split join title lower upper pad truncate`. Values print as Go prints
//! them (`map[k:v]`, `[a b]`, a missing value as `<no value>`). Not there:
//! named templates (`define`, `template`, `block`), `html`, `js`,
//! `urlquery`, `call`, and methods (`.Label "k"`).
//!
//! A format beginning with `table` is a table: the caller renders
//! [`Template::header`] and each row, then lays them out with
//! [`align_tabs`]. As in docker's formatter, a literal `\t` or `\n` (two
//! characters, as the shell passes them) in the text is a tab or a newline.
//!
//! JSON does not carry Go's types, so where Go's answer depends on them
//! the nearer reading for docker's data is taken: an integral number is an
//! `int`; `null` is a nil map or slice (length 0, nothing to range over,
//! field access gives `<no value>`, `index` gives the zero value); `json`
//! writes an object in its own order (a docker struct's field order, as the
//! value was built), while `%v` and `range` sort keys as Go does for maps.

// wired into commands by the lead

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
mod tabwriter;

pub use tabwriter::{align_tabs, align_tabs_with};

use serde_json::Value;

/// A format that does not parse, or fails on a value; one line each, as
/// docker prints them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template parsing error: template: :{line}: {message}")]
    Parse { line: usize, message: String },
    #[error("template: :{line}:{column}: executing \"\" at <{context}>: {message}")]
    Exec {
        line: usize,
        column: usize,
        context: String,
        message: String,
    },
}

/// A parsed `--format`.
#[derive(Debug)]
pub struct Template {
    /// The template text after the `table` directive and escapes, which
    /// error positions refer to.
    text: String,
    nodes: Vec<parse::Node>,
    table: bool,
}

/// Line (from 1) and byte column (from 0) of `pos`, as Go reports them.
fn position(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = 1 + before.matches('\n').count();
    let column = before.rfind('\n').map_or(pos, |newline| pos - newline - 1);
    (line, column)
}

impl Template {
    /// Parses a --format value (handles the leading "table " directive and literal "\t").
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        // docker: a format is a table when it starts with "table"; what
        // follows is trimmed of spaces.
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest.trim_matches(' ')),
            None => (false, text),
        };
        let nodes = parse::parse(body).map_err(|fail| TemplateError::Parse {
            line: position(body, fail.pos).0,
            message: fail.message,
        })?;
        Ok(Template {
            text: body.to_owned(),
            nodes,
            table,
        })
    }

    /// True when the format began with "table".
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders one value (no trailing newline added).
    pub fn render(&self, value: &Value) -> Result<String, TemplateError> {
        exec::render(&self.nodes, value).map_err(|fail| {
            let (line, column) = position(&self.text, fail.pos);
            TemplateError::Exec {
                line,
                column,
                context: fail.context,
                message: fail.message,
            }
        })
    }

    /// The header row for a table format: each top-level field action `{{.Name}}` replaced by headers(name) (fallback: the name upper-cased); other actions rendered empty.
    ///
    /// As docker renders it: the last name of a field path is the header
    /// (`{{.State.Status}}` → `headers("Status")`), docker's functions
    /// return their first argument (`{{truncate .ID 12}}` → the ID's
    /// header), Go's run as usual (`{{printf "%-20s" .Name}}` pads the
    /// header). An action that fails, and `if`/`with`/`range`, print
    /// nothing.
    pub fn header(&self, headers: &dyn Fn(&str) -> Option<&'static str>) -> String {
        exec::header(&self.nodes, headers)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn container() -> Value {
        json!({
            "Id": "4f66ad9a0b2e1c3d5e7f9a1b3c5d7e9f",
            "Name": "/web",
            "Args": ["-g", "daemon off;"],
            "State": {"Status": "running", "Running": true, "Paused": false, "ExitCode": 0, "Pid": 4242, "Health": null},
            "Config": {
                "Image": "nginx:latest",
                "Labels": {"com.example.team": "web", "version": "1.2"},
                "Env": [],
                "Cmd": ["nginx", "-g", "daemon off;"],
            },
            "Mounts": [
                {"Source": "/srv/www", "Destination": "/usr/share/nginx/html", "RW": false},
                {"Source": "/var/log/web", "Destination": "/var/log/nginx", "RW": true},
            ],
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "backend": {"IPAddress": "10.0.0.5"}}},
            "Ratio": 1.5,
            "Html": "<a href=\"x\">&</a>",
        })
    }

    fn render(format: &str, value: &Value) -> String {
        Template::parse(format)
            .unwrap_or_else(|e| panic!("{format}: {e}"))
            .render(value)
            .unwrap_or_else(|e| panic!("{format}: {e}"))
    }

    fn r(format: &str) -> String {
        render(format, &container())
    }

    fn parse_error(format: &str) -> String {
        Template::parse(format).expect_err(format).to_string()
    }

    fn exec_error(format: &str) -> String {
        Template::parse(format)
            .expect(format)
            .render(&container())
            .expect_err(format)
            .to_string()
    }

    #[test]
    fn text_and_fields() {
        assert_eq!(r("plain text"), "plain text");
        assert_eq!(r("{{.Name}}"), "/web");
        assert_eq!(r("{{.State.ExitCode}} {{.State.Pid}}"), "0 4242");
        assert_eq!(r("{{.State.Running}}/{{.State.Paused}}"), "true/false");
        assert_eq!(r("{{.Ratio}}"), "1.5");
        assert_eq!(r("{{.Config.Cmd}}"), "[nginx -g daemon off;]");
        assert_eq!(
            r("{{.Config.Labels}}"),
            "map[com.example.team:web version:1.2]"
        );
        assert_eq!(
            r("{{.NetworkSettings.Networks.bridge.IPAddress}}"),
            "172.17.0.2"
        );
        assert_eq!(r("{{$.Name}} {{$.State.Status}}"), "/web running");
        assert_eq!(render("{{.}}", &json!("just a string")), "just a string");
        assert_eq!(
            render("{{.}}", &json!({"a": [1, null]})),
            "map[a:[1 <nil>]]"
        );
    }

    #[test]
    fn missing_and_null_print_no_value() {
        assert_eq!(r("{{.Nope}}"), "<no value>");
        assert_eq!(r("{{.Nope.Deeper}}"), "<no value>");
        assert_eq!(r("{{.State.Health}}"), "<no value>");
        assert_eq!(r("{{.Config.Labels.missing}}"), "<no value>");
        // Inside a printed value, and through print, nil is Go's <nil>.
        assert_eq!(r("{{print .Nope}}"), "<nil>");
    }

    #[test]
    fn whitespace_trimming() {
        assert_eq!(r("a  {{- .Name -}}  b"), "a/webb");
        assert_eq!(r("{{range .Args}}\n  {{- . -}}\n{{end}}"), "-gdaemon off;");
        assert_eq!(r("x {{/* a comment */}}y"), "x y");
        assert_eq!(r("x {{- /* a comment */ -}} y"), "xy");
    }

    #[test]
    fn index_on_maps_and_arrays() {
        assert_eq!(r(r#"{{index .Config.Labels "com.example.team"}}"#), "web");
        assert_eq!(r("{{index .Args 0}}"), "-g");
        assert_eq!(r("{{index .Mounts 1 \"Source\"}}"), "/var/log/web");
        // A missing label is the zero value of the map's values: "".
        assert_eq!(r(r#"[{{index .Config.Labels "nope"}}]"#), "[]");
        assert_eq!(
            r(r#"{{(index .NetworkSettings.Networks "bridge").IPAddress}}"#),
            "172.17.0.2"
        );
    }

    #[test]
    fn docker_functions_and_pipes() {
        assert_eq!(
            r("{{json .State}}"),
            r#"{"Status":"running","Running":true,"Paused":false,"ExitCode":0,"Pid":4242,"Health":null}"#
        );
        assert_eq!(r("{{json .Html}}"), r#""<a href=\"x\">&</a>""#);
        assert_eq!(
            r("{{.Config.Cmd | json}}"),
            r#"["nginx","-g","daemon off;"]"#
        );
        assert_eq!(r("{{json .Nope}}"), "null");
        assert_eq!(r(r#"{{join .Args " "}}"#), "-g daemon off;");
        assert_eq!(
            r(r#"{{join (split .Config.Image ":") "@"}}"#),
            "nginx@latest"
        );
        assert_eq!(r(r#"{{split .Config.Image ":"}}"#), "[nginx latest]");
        assert_eq!(
            r("{{upper .State.Status}} {{.Name | upper}} {{lower \"ABC\"}}"),
            "RUNNING /WEB abc"
        );
        assert_eq!(r("{{title .State.Status}}"), "Running");
        assert_eq!(r("{{truncate .Id 12}}"), "4f66ad9a0b2e");
        assert_eq!(r("[{{pad .State.Status 1 2}}]"), "[ running  ]");
        assert_eq!(r("{{println .Name}}"), "/web\n");
        assert_eq!(r("{{.Name | printf \"%q\"}}"), "\"/web\"");
        assert_eq!(
            r(r#"{{printf "%-8s|%5d|%v" .State.Status .State.Pid .State.Running}}"#),
            "running | 4242|true"
        );
        assert_eq!(
            r("{{.State.Status | upper | printf \"<%s>\"}}"),
            "<RUNNING>"
        );
        assert_eq!(
            r("{{len .Mounts}} {{len .Name}} {{len .Config.Labels}}"),
            "2 4 2"
        );
    }

    #[test]
    fn range_over_arrays_maps_and_numbers() {
        assert_eq!(
            r("{{range .Mounts}}{{.Source}} {{end}}"),
            "/srv/www /var/log/web "
        );
        assert_eq!(
            r("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}"),
            "0=/usr/share/nginx/html;1=/var/log/nginx;"
        );
        assert_eq!(
            r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}"),
            "com.example.team=web,version=1.2,"
        );
        assert_eq!(
            r("{{range $v := .Config.Labels}}{{$v}} {{end}}"),
            "web 1.2 "
        );
        assert_eq!(
            r(
                "{{range $name, $net := .NetworkSettings.Networks}}{{$name}}:{{$net.IPAddress}} {{end}}"
            ),
            "backend:10.0.0.5 bridge:172.17.0.2 "
        );
        assert_eq!(r("{{range .Config.Env}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r("{{range .Nope}}x{{else}}none{{end}}"), "none");
        assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
        assert_eq!(
            r("{{range .Mounts}}{{if .RW}}{{break}}{{end}}{{.Source}}{{end}}"),
            "/srv/www"
        );
        assert_eq!(
            r("{{range .Mounts}}{{if not .RW}}{{continue}}{{end}}{{.Source}}{{end}}"),
            "/var/log/web"
        );
        // Inside a range, $ is still the whole value.
        assert_eq!(r("{{range .Args}}{{$.Name}}{{end}}"), "/web/web");
    }

    #[test]
    fn conditionals_and_truth() {
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
        assert_eq!(
            r("{{if .State.Paused}}p{{else if .State.Running}}r{{else}}x{{end}}"),
            "r"
        );
        assert_eq!(r("{{if .State.ExitCode}}failed{{else}}ok{{end}}"), "ok");
        assert_eq!(r("{{if .Config.Env}}env{{else}}no env{{end}}"), "no env");
        assert_eq!(r("{{if .Nope}}y{{else}}n{{end}}"), "n");
        assert_eq!(
            r("{{if \"\"}}y{{else}}n{{end}}{{if .Config.Labels}}y{{end}}"),
            "ny"
        );
        assert_eq!(r("{{with .Config}}{{.Image}}{{end}}"), "nginx:latest");
        assert_eq!(
            r("{{with .State.Health}}{{.Status}}{{else}}no healthcheck{{end}}"),
            "no healthcheck"
        );
        assert_eq!(
            r("{{with $c := .Config}}{{$c.Image}}{{end}}"),
            "nginx:latest"
        );
        assert_eq!(
            r("{{with .Nope}}a{{else with .Config}}{{.Image}}{{end}}"),
            "nginx:latest"
        );
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(
            r(r#"{{if eq .State.Status "running" "restarting"}}live{{end}}"#),
            "live"
        );
        assert_eq!(
            r("{{if ne .State.ExitCode 0}}bad{{else}}good{{end}}"),
            "good"
        );
        assert_eq!(
            r("{{lt 1 2}} {{le 2 2}} {{gt .State.Pid 4000}} {{ge 1.5 2}}"),
            "true true true false"
        );
        assert_eq!(
            r("{{and .State.Running .Name}} {{and .State.Paused .Name}}"),
            "/web false"
        );
        assert_eq!(r("{{or .Nope .Name}} {{or \"\" 0}}"), "/web 0");
        assert_eq!(r("{{not .State.Running}} {{not .Nope}}"), "false true");
        assert_eq!(
            r("{{if and .State.Running (eq (len .Mounts) 2)}}yes{{end}}"),
            "yes"
        );
        // `and` stops before an argument that would fail.
        assert_eq!(r("{{and .State.Paused (index .Args 9)}}"), "false");
    }

    #[test]
    fn variables() {
        assert_eq!(r("{{$n := .Name}}{{$n}}"), "/web");
        assert_eq!(r("{{$n := 1}}{{if true}}{{$n = 2}}{{end}}{{$n}}"), "2");
        assert_eq!(
            r("{{$x := \"a\"}}{{range .Args}}{{$x = .}}{{end}}{{$x}}"),
            "daemon off;"
        );
        assert_eq!(
            r("{{$s := split .Config.Image \":\"}}{{index $s 1}}"),
            "latest"
        );
    }

    #[test]
    fn constants_print_as_go() {
        assert_eq!(
            r("{{1}} {{-2}} {{1.50}} {{1e3}} {{0x10}} {{'a'}} {{true}} {{\"s\"}} {{`r\\n`}}"),
            "1 -2 1.5 1000 16 97 true s r\\n"
        );
    }

    #[test]
    fn literal_escapes_become_tabs_and_newlines() {
        assert_eq!(r(r"{{.Name}}\t{{.State.Status}}\n"), "/web\trunning\n");
        // docker replaces before trimming, so the newline is trimmed.
        assert_eq!(r(r"a\n{{- .Name}}"), "a/web");
    }

    #[test]
    fn table_directive() {
        let t = Template::parse(r"table {{.Name}}\t{{.State.Status}}").expect("parse");
        assert!(t.is_table());
        assert_eq!(t.render(&container()).expect("render"), "/web\trunning");
        let t = Template::parse("{{.Name}}").expect("parse");
        assert!(!t.is_table());
        let t = Template::parse("table").expect("parse");
        assert!(t.is_table());
        assert_eq!(t.render(&container()).expect("render"), "");
    }

    #[test]
    fn header_rows_use_the_callers_names() {
        let names = |name: &str| match name {
            "ID" => Some("CONTAINER ID"),
            "Names" => Some("NAMES"),
            _ => None,
        };
        let header = |format: &str| Template::parse(format).expect(format).header(&names);
        assert_eq!(
            header(r"table {{.ID}}\t{{.Image}}\t{{.Names}}"),
            "CONTAINER ID\tIMAGE\tNAMES"
        );
        assert_eq!(
            header("table {{truncate .ID 5}} {{.Names | upper}} {{json .State.Status}}"),
            "CONTAINER ID NAMES STATUS"
        );
        assert_eq!(
            header(r#"table {{printf "%-14s|" .ID}}{{"\t"}}{{.Names}}"#),
            "CONTAINER ID  |\tNAMES"
        );
        assert_eq!(
            header("table {{.ID}}{{if .X}}{{.Y}}{{end}} {{.}} {{index .Foo 3}}!"),
            "CONTAINER ID  !"
        );
    }

    #[test]
    fn a_table_lays_out_with_align_tabs() {
        let rows = [
            json!({"ID": "4f66ad9a0b2e", "Image": "nginx:latest", "Names": "web"}),
            json!({"ID": "0123456789ab", "Image": "busybox", "Names": "a-much-longer-name"}),
        ];
        let t = Template::parse(r"table {{.ID}}\t{{.Image}}\t{{.Names}}").expect("parse");
        let mut text = t.header(&|name| (name == "ID").then_some("CONTAINER ID"));
        for row in &rows {
            text.push('\n');
            text.push_str(&t.render(row).expect("render"));
        }
        text.push('\n');
        assert_eq!(
            align_tabs(&text),
            "CONTAINER ID   IMAGE          NAMES\n\
             4f66ad9a0b2e   nginx:latest   web\n\
             0123456789ab   busybox        a-much-longer-name\n"
        );
    }

    #[test]
    fn parse_errors_are_one_docker_line() {
        assert_eq!(
            parse_error("{{foo .Name}}"),
            "template parsing error: template: :1: function \"foo\" not defined"
        );
        assert_eq!(
            parse_error("{{.Name"),
            "template parsing error: template: :1: unclosed action"
        );
        assert_eq!(
            parse_error("a\nb\n{{if .X}}"),
            "template parsing error: template: :3: unexpected EOF"
        );
        assert_eq!(
            parse_error("{{end}}"),
            "template parsing error: template: :1: unexpected {{end}}"
        );
        assert_eq!(
            parse_error("{{$x}}"),
            "template parsing error: template: :1: undefined variable \"$x\""
        );
        assert_eq!(
            parse_error("table {{.A}}\n{{.B | nope}}"),
            "template parsing error: template: :2: function \"nope\" not defined"
        );
    }

    #[test]
    fn exec_errors_name_the_node_and_its_place() {
        assert_eq!(
            exec_error("{{.Name.First}}"),
            "template: :1:2: executing \"\" at <.Name.First>: can't evaluate field First in type string"
        );
        assert_eq!(
            exec_error("x\n  {{.State.Pid.X}}"),
            "template: :2:4: executing \"\" at <.State.Pid.X>: can't evaluate field X in type int"
        );
        assert_eq!(
            exec_error("{{index .Args 5}}"),
            "template: :1:2: executing \"\" at <index .Args 5>: error calling index: index out of range: 5"
        );
        assert_eq!(
            exec_error("{{upper .State.Pid}}"),
            "template: :1:2: executing \"\" at <upper .State.Pid>: wrong type for value; expected string; got int"
        );
        assert_eq!(
            exec_error("{{.Name 1}}"),
            "template: :1:2: executing \"\" at <.Name>: Name is not a method but has arguments"
        );
        assert_eq!(
            exec_error("{{\"x\" | .Name}}"),
            "template: :1:8: executing \"\" at <.Name>: Name is not a method but has arguments"
        );
        assert_eq!(
            exec_error("{{. 1}}"),
            "template: :1:2: executing \"\" at <.>: can't give argument to non-function ."
        );
        assert_eq!(
            exec_error("{{nil}}"),
            "template: :1:2: executing \"\" at <nil>: nil is not a command"
        );
        assert_eq!(
            exec_error("{{range .Name}}{{end}}"),
            "template: :1:8: executing \"\" at <.Name>: range can't iterate over /web"
        );
        assert_eq!(
            exec_error("{{eq .Name 1}}"),
            "template: :1:2: executing \"\" at <eq .Name 1>: error calling eq: incompatible types for comparison"
        );
        assert_eq!(
            exec_error("{{len}}"),
            "template: :1:2: executing \"\" at <len>: wrong number of args for len: want 1 got 0"
        );
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(
            Template::parse("{{"),
            Err(TemplateError::Parse { line: 1, .. })
        ));
        let err = Template::parse("{{.A.B}}")
            .expect("parse")
            .render(&json!({"A": 1}))
            .expect_err("exec");
        assert!(matches!(
            err,
            TemplateError::Exec {
                line: 1,
                column: 2,
                ..
            }
        ));
    }
}
