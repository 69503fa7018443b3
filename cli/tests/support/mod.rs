//! Shared by the CLI's integration tests: a muelle with a private root
//! (and runroot inside it), and the helpers to run it and read its output.
//! `Instance` is the one place that knows how to run muelle in isolation.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const MUELLE: &str = env!("CARGO_BIN_EXE_muelle");

/// A muelle whose `--root` is a fresh temporary folder (removed on drop),
/// `--runroot` its `run` subfolder, and optionally its own `--config`.
pub struct Instance {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: Option<PathBuf>,
}

impl Instance {
    pub fn new() -> Instance {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-test-root")
            .tempdir()
            .expect("temp root");
        // What muelle prints (mountpoints, state folders) is canonical.
        let root = std::fs::canonicalize(tmp.path()).expect("canonical root");
        Instance {
            _tmp: tmp,
            root,
            config: None,
        }
    }

    /// Passes `--config PATH` to every command.
    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Instance {
        self.config = Some(path.into());
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `muelle ARGS` against this instance, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(MUELLE);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(self.root.join("run"));
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(args);
        cmd
    }

    /// `muelle ARGS` with stdin closed.
    pub fn muelle(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn muelle")
    }

    /// `muelle ARGS` that succeeds, its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.muelle(args);
        assert!(
            out.status.success(),
            "muelle {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `muelle ARGS` reading `input` on stdin.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn muelle");
        let mut stdin = child.stdin.take().expect("stdin");
        // muelle may refuse before reading it all: a broken pipe is fine.
        let _ = stdin.write_all(input);
        drop(stdin);
        child.wait_with_output().expect("wait muelle")
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
