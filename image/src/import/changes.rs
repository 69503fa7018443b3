//! docker's `--change` instructions for `import`: Dockerfile lines that set
//! the new image's config. CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
//! VOLUME, WORKDIR and STOPSIGNAL are applied; ONBUILD and HEALTHCHECK are
//! refused (an OCI image config has no place for them), as is anything
//! else (FROM, RUN, ... need a build).

use std::collections::BTreeMap;

use crate::{ImageError, Result};

/// The `config` part of an image config, as the changes left it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value`, in the order first set.
    pub env: Vec<String>,
    /// `80/tcp`.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub volumes: Vec<String>,
    pub working_dir: Option<String>,
    pub stop_signal: Option<String>,
}

/// Ports one EXPOSE may open with a range (docker has no limit; a huge
/// range is a typo, and every port is a config entry).
const MAX_PORTS: u32 = 4096;

fn invalid(change: &str, reason: impl Into<String>) -> ImageError {
    ImageError::InvalidChange {
        change: change.to_owned(),
        reason: reason.into(),
    }
}

pub fn apply(changes: &[String]) -> Result<RunConfig> {
    let mut config = RunConfig::default();
    for change in changes {
        apply_one(&mut config, change)?;
    }
    Ok(config)
}

fn apply_one(config: &mut RunConfig, change: &str) -> Result<()> {
    let line = change.trim();
    let (word, args) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(w, a)| (w, a.trim()));
    let instruction = word.to_ascii_uppercase();
    let needs_args = |what: &str| -> Result<()> {
        if args.is_empty() {
            return Err(invalid(change, format!("{what} needs an argument")));
        }
        Ok(())
    };
    match instruction.as_str() {
        "CMD" => {
            needs_args("CMD")?;
            config.cmd = Some(command(args));
        }
        "ENTRYPOINT" => {
            needs_args("ENTRYPOINT")?;
            config.entrypoint = Some(command(args));
        }
        "ENV" => {
            needs_args("ENV")?;
            for (key, value) in pairs(change, args)? {
                let prefix = format!("{key}=");
                let entry = format!("{key}={value}");
                match config.env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(old) => *old = entry,
                    None => config.env.push(entry),
                }
            }
        }
        "LABEL" => {
            needs_args("LABEL")?;
            config.labels.extend(pairs(change, args)?);
        }
        "EXPOSE" => {
            needs_args("EXPOSE")?;
            for spec in args.split_whitespace() {
                for port in ports(change, spec)? {
                    if !config.exposed_ports.contains(&port) {
                        config.exposed_ports.push(port);
                    }
                }
            }
        }
        "USER" => {
            needs_args("USER")?;
            if args.contains(char::is_whitespace) {
                return Err(invalid(change, "USER takes one user[:group]"));
            }
            config.user = Some(args.to_owned());
        }
        "VOLUME" => {
            needs_args("VOLUME")?;
            let paths = json_array(args)
                .unwrap_or_else(|| args.split_whitespace().map(str::to_owned).collect());
            for path in paths {
                if path.is_empty() {
                    return Err(invalid(change, "VOLUME with an empty path"));
                }
                if !config.volumes.contains(&path) {
                    config.volumes.push(path);
                }
            }
        }
        "WORKDIR" => {
            needs_args("WORKDIR")?;
            // A relative WORKDIR continues the previous one, as in a
            // Dockerfile.
            let dir = if args.starts_with('/') {
                args.to_owned()
            } else {
                let base = config.working_dir.as_deref().unwrap_or("/");
                format!("{}/{args}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(dir);
        }
        "STOPSIGNAL" => {
            needs_args("STOPSIGNAL")?;
            check_signal(change, args)?;
            config.stop_signal = Some(args.to_owned());
        }
        "ONBUILD" | "HEALTHCHECK" => {
            return Err(invalid(
                change,
                format!("{instruction} is not supported: OCI image configs have no place for it"),
            ));
        }
        "" => return Err(invalid(change, "empty instruction")),
        other => {
            return Err(invalid(
                change,
                format!(
                    "{other} cannot be applied by import (only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
                ),
            ));
        }
    }
    Ok(())
}

/// `["a","b"]` when the text is a JSON array of strings.
fn json_array(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// Exec form (a JSON array) or shell form (`/bin/sh -c TEXT`), as docker:
/// text that is not a valid JSON array is shell form.
fn command(args: &str) -> Vec<String> {
    json_array(args).unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), args.to_owned()])
}

/// `k=v k2="v 2"` (quotes and backslash escapes as in a Dockerfile), or the
/// old one-pair form `k the value`.
fn pairs(change: &str, args: &str) -> Result<Vec<(String, String)>> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, value) = args
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(change, "expects KEY=value (or KEY value)"))?;
        return Ok(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    let mut out = Vec::new();
    for word in words(change, args)? {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| invalid(change, format!("{word:?} is not KEY=value")))?;
        if key.is_empty() {
            return Err(invalid(change, "a key is empty"));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Splits at unquoted whitespace, removing quotes and escapes.
fn words(change: &str, args: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => current.push(c),
            (_, '\\') => {
                let escaped = chars
                    .next()
                    .ok_or_else(|| invalid(change, "ends with a backslash"))?;
                current.push(escaped);
                started = true;
            }
            (_, c) => {
                current.push(c);
                started = true;
            }
        }
    }
    if quote.is_some() {
        return Err(invalid(change, "unterminated quote"));
    }
    if started {
        out.push(current);
    }
    Ok(out)
}

/// `80`, `80/udp`, `8000-8010/tcp` → `80/tcp`, ...
fn ports(change: &str, spec: &str) -> Result<Vec<String>> {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(
            change,
            format!("{spec}: protocol is tcp, udp or sctp"),
        ));
    }
    let number = |p: &str| -> Result<u32> {
        p.parse::<u32>()
            .ok()
            .filter(|n| (1..=65535).contains(n))
            .ok_or_else(|| invalid(change, format!("{spec}: {p:?} is not a port (1-65535)")))
    };
    let (low, high) = match range.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(range)?;
            (n, n)
        }
    };
    if high < low || high - low >= MAX_PORTS {
        return Err(invalid(change, format!("{spec}: bad port range")));
    }
    Ok((low..=high).map(|p| format!("{p}/{proto}")).collect())
}

/// A signal number (1-64) or name (`TERM`, `SIGTERM`, `SIGRTMIN+3`).
fn check_signal(change: &str, text: &str) -> Result<()> {
    if let Ok(n) = text.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(());
        }
        return Err(invalid(change, format!("signal {n} is out of range")));
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str| {
        name.strip_prefix(base).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(['+', '-'])
                    .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 30))
        })
    };
    if format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .is_ok()
        || realtime("RTMIN")
        || realtime("RTMAX")
    {
        return Ok(());
    }
    Err(invalid(change, format!("{text:?} is not a signal")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(changes: &[&str]) -> RunConfig {
        let owned: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&owned).unwrap_or_else(|e| panic!("{changes:?}: {e}"))
    }

    fn err(change: &str) -> String {
        apply(&[change.to_owned()]).expect_err(change).to_string()
    }

    #[test]
    fn exec_and_shell_forms() {
        let c = ok(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "entrypoint /bin/run --fast",
        ]);
        assert_eq!(c.cmd.expect("cmd"), ["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint.expect("entrypoint"),
            ["/bin/sh", "-c", "/bin/run --fast"]
        );
        // Not valid JSON: shell form, as docker.
        assert_eq!(
            ok(&["CMD [oops"]).cmd.expect("cmd"),
            ["/bin/sh", "-c", "[oops"]
        );
    }

    #[test]
    fn env_label_expose_volume_workdir() {
        let c = ok(&[
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV A=3",
            "ENV OLD the old form",
            r#"LABEL "com.x"=y z=''"#,
            "EXPOSE 80 53/udp 8000-8002",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(c.env, ["A=3", "B=two words", "C=x y", "OLD=the old form"]);
        assert_eq!(c.labels.get("com.x").map(String::as_str), Some("y"));
        assert_eq!(c.labels.get("z").map(String::as_str), Some(""));
        assert_eq!(
            c.exposed_ports,
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(c.volumes, ["/data", "/logs", "/cache"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn unsupported_and_malformed_changes_say_why() {
        assert!(err("ONBUILD RUN make").contains("ONBUILD is not supported"));
        assert!(err("HEALTHCHECK NONE").contains("not supported"));
        assert!(err("RUN rm -rf /").contains("RUN cannot be applied"));
        assert!(err("EXPOSE 70000").contains("not a port"));
        assert!(err("EXPOSE 80/icmp").contains("protocol"));
        assert!(err("EXPOSE 1-65535").contains("range"));
        assert!(err("STOPSIGNAL SIGNOPE").contains("not a signal"));
        assert!(err("ENV A=\"open").contains("unterminated"));
        assert!(err("CMD").contains("needs an argument"));
        assert!(err("USER a b").contains("one user"));
        assert!(
            ok(&["STOPSIGNAL 15", "STOPSIGNAL term", "STOPSIGNAL SIGRTMIN+3"])
                .stop_signal
                .is_some()
        );
    }
}
