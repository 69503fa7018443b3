//! Running `nft` and the iptables tools: each found once, on PATH or in the
//! sbin folders a root shell's PATH may lack; a failure becomes one line
//! naming the command, its stderr and what muelle was doing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Error, Result};

/// Where a root shell's PATH may not look.
const SBIN: [&str; 4] = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin"];

#[derive(Clone, Debug)]
pub(super) struct Tool {
    name: &'static str,
    path: PathBuf,
}

impl Tool {
    /// The program `name` on PATH or in the sbin folders; the bare name
    /// when it is nowhere (running it then fails with "not found").
    pub(super) fn find(name: &'static str) -> Tool {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::split_paths(&path_var)
            .chain(SBIN.iter().map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
            .unwrap_or_else(|| PathBuf::from(name));
        Tool { name, path }
    }

    /// The program at `path`, called `name` in errors.
    #[cfg(test)]
    pub(super) fn at(name: &'static str, path: PathBuf) -> Tool {
        Tool { name, path }
    }

    #[cfg(test)]
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the tool with `args`, writing `script` to its stdin; its stdout,
    /// or an error with its stderr when it fails.
    pub(super) fn run(&self, args: &[&str], script: Option<&str>, doing: &str) -> Result<String> {
        tracing::debug!(command = self.name, ?args, script, "firewall");
        let spawn_error = |source| Error::Spawn {
            command: self.name.to_string(),
            doing: doing.to_string(),
            source,
        };
        let mut child = Command::new(&self.path)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(if script.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(script) = script {
            // The tool reads all of it before it answers; a tool that dies
            // early shows in its status and stderr below.
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let _ = stdin.write_all(script.as_bytes());
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut message = one_line(&stderr, script);
        if message.is_empty() {
            message = format!("failed ({})", output.status);
        }
        Err(Error::Command {
            command: self.name.to_string(),
            message,
            doing: doing.to_string(),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A tool's stderr on one line: carets and warnings left out, nft's
/// location prefix cut, and for iptables-restore's "line N failed" the
/// failing line of the script added.
fn one_line(stderr: &str, script: Option<&str>) -> String {
    const MAX: usize = 1000;
    let mut parts: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with("# Warning:")
            || line.chars().all(|c| matches!(c, '^' | '~' | ' '))
        {
            continue;
        }
        // nft: "/dev/stdin:1:31-40: Error: Could not process rule: ..."
        let line = match line.find("Error: ") {
            Some(at) => &line[at..],
            None => line,
        };
        parts.push(line.to_string());
        if let (Some(script), Some(n)) = (script, restore_line(line))
            && let Some(failed) = script.lines().nth(n.saturating_sub(1))
        {
            parts.push(format!("`{failed}`"));
        }
    }
    let mut message = parts.join(": ");
    if message.len() > MAX {
        let mut end = MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// N of iptables-restore's "...: line N failed...".
fn restore_line(line: &str) -> Option<usize> {
    let rest = &line[line.find("line ")? + "line ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with(" failed")
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_errors_fit_on_one_line() {
        let stderr = "/dev/stdin:3:31-40: Error: Could not process rule: File exists\n\
                      add element ip muelle ports { tcp . 8080 : 10.88.0.9 . 81 }\n\
                      \x20                             ^^^^^^^^^^\n";
        assert_eq!(
            one_line(stderr, Some("a\nb\nc\n")),
            "Error: Could not process rule: File exists: \
             add element ip muelle ports { tcp . 8080 : 10.88.0.9 . 81 }"
        );
    }

    #[test]
    fn restore_errors_name_the_failing_line() {
        let script = "*nat\n-A MUELLE-DNAT -j RETURN\n-A NOPE -j RETURN\nCOMMIT\n";
        assert_eq!(
            one_line("iptables-restore: line 3 failed\n", Some(script)),
            "iptables-restore: line 3 failed: `-A NOPE -j RETURN`"
        );
        assert_eq!(
            one_line(
                "iptables-restore: line 2 failed: Chain already exists.\n",
                Some("*filter\n-N MUELLE-FORWARD\n")
            ),
            "iptables-restore: line 2 failed: Chain already exists.: `-N MUELLE-FORWARD`"
        );
        assert_eq!(
            restore_line("iptables-restore v1.8.9: line 12 failed"),
            Some(12)
        );
        assert_eq!(restore_line("no line here"), None);
    }

    #[test]
    fn warnings_and_long_messages() {
        assert_eq!(
            one_line(
                "# Warning: table ip nat is managed by iptables-nft, do not touch!\nError: x\n",
                None
            ),
            "Error: x"
        );
        assert!(one_line(&"é".repeat(2000), None).len() <= 1000 + '…'.len_utf8());
    }

    #[test]
    fn missing_tools_fail_to_spawn() {
        let tool = Tool::find("muelle-no-such-tool");
        let err = tool.run(&[], None, "testing").unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot run muelle-no-such-tool (testing): "),
            "{err}"
        );
    }
}
