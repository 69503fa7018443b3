//! OCI hooks: programs the runtime runs at fixed points of the lifecycle,
//! with the container's state as JSON on stdin.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs each hook in order; the first failure stops the rest.
pub fn run(kind: &'static str, hooks: &[Hook], state_json: &str) -> Result<()> {
    for hook in hooks {
        run_one(kind, hook, state_json)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state_json: &str) -> Result<()> {
    let fail = |reason: String| Error::Hook {
        kind,
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        if let Some((k, v)) = entry.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = hook.timeout().map(|s| Duration::from_secs(s.max(1) as u64));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) => break status,
            None if timeout.is_some_and(|t| started.elapsed() > t) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {}s",
                    timeout.unwrap_or_default().as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    let detail = stderr.lines().next().unwrap_or("").trim().to_owned();
    Err(fail(if detail.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {detail}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str) -> Hook {
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .build()
            .expect("hook")
    }

    #[test]
    fn hooks_read_state_and_failures_name_the_hook() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("state");
        let ok = hook(&format!("cat > {}", out.display()));
        run("prestart", &[ok], r#"{"id":"x"}"#).expect("hook ran");
        assert_eq!(
            std::fs::read_to_string(&out).expect("state"),
            r#"{"id":"x"}"#
        );

        let bad = hook("echo broken >&2; exit 3");
        let err = run("poststart", &[bad], "{}").unwrap_err().to_string();
        assert!(err.contains("poststart hook /bin/sh failed"), "{err}");
        assert!(err.contains("broken"), "{err}");
    }

    #[test]
    fn a_hook_that_hangs_is_stopped() {
        let mut slow = hook("sleep 30");
        slow.set_timeout(Some(1));
        let started = Instant::now();
        let err = run("createRuntime", &[slow], "{}").unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
