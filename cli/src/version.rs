//! `muelle version`: docker's Client/Server layout. muelle has no daemon,
//! so the "Server" is the engine this very command runs, and its header
//! says so; Go's version line is rustc's. `--format json` prints the
//! object, and any other format is a Go template over it
//! (`{{.Server.Version}}` works as with docker).

use std::io::Write;

use serde_json::{Value, json};

use crate::exit::Coded;
use crate::template::{Template, align_tabs_with};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Set by build.rs; empty when the build had no git checkout.
const GIT_COMMIT: &str = env!("MUELLE_GIT_COMMIT");
const RUSTC_VERSION: &str = env!("MUELLE_RUSTC_VERSION");

/// docker's layout, with the Engine's lines fixed and any other
/// component's details in key order.
const DEFAULT_TEMPLATE: &str = r#"{{with .Client -}}
Client:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 Rust version:	{{.RustVersion}}
 Git commit:	{{.GitCommit}}
 OS/Arch:	{{.Os}}/{{.Arch}}
{{- end}}
{{- with .Server}}

Server:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine"}}
  Version:	{{.Version}}
  Rust version:	{{index .Details "RustVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Kernel version:	{{index .Details "KernelVersion"}}
  {{- else}}
  Version:	{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:	{{$value}}
  {{- end}}
  {{- end}}
 {{- end}}
{{- end}}"#;

pub fn run(format: Option<&str>) -> anyhow::Result<()> {
    let info = version_info();
    let mut out = std::io::stdout().lock();
    if format == Some("json") {
        writeln!(out, "{}", crate::text::go_json(&info)?)?;
        return Ok(());
    }
    // docker exits 64 on a template that does not parse.
    let template =
        Template::parse(format.unwrap_or(DEFAULT_TEMPLATE)).map_err(|e| Coded::new(64, e))?;
    let text = template.render(&info)?;
    // docker's writer for this command: tabwriter(20, 1, 1, ' ').
    writeln!(out, "{}", align_tabs_with(&text, 20, 1))?;
    Ok(())
}

/// The object templates see: docker's field names where docker has the
/// fact, `RustVersion` for its `GoVersion`.
fn version_info() -> Value {
    let commit = if GIT_COMMIT.is_empty() {
        "unknown"
    } else {
        GIT_COMMIT
    };
    let rustc = if RUSTC_VERSION.is_empty() {
        "unknown"
    } else {
        RUSTC_VERSION
    };
    let arch = image::manifest::oci_arch(std::env::consts::ARCH);
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let monitor = engine::monitor::binary();
    json!({
        "Client": {
            "Platform": {"Name": "muelle"},
            "Version": VERSION,
            "RustVersion": rustc,
            "GitCommit": commit,
            "Os": std::env::consts::OS,
            "Arch": arch,
        },
        "Server": {
            "Platform": {"Name": "none: muelle has no daemon, each command runs the engine itself"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": VERSION,
                    "Details": {
                        "Arch": arch,
                        "GitCommit": commit,
                        "KernelVersion": kernel,
                        "Os": std::env::consts::OS,
                        "RustVersion": rustc,
                    },
                },
                {
                    "Name": "runtime-core",
                    "Version": VERSION,
                    "Details": {
                        "GitCommit": commit,
                        "Runs": "inside muelle-monitor (no runc)",
                    },
                },
                {
                    "Name": "muelle-monitor",
                    "Version": VERSION,
                    "Details": {
                        "Path": monitor.display().to_string(),
                    },
                },
            ],
            "Version": VERSION,
            "RustVersion": rustc,
            "GitCommit": commit,
            "Os": std::env::consts::OS,
            "Arch": arch,
            "KernelVersion": kernel,
        },
    })
}
