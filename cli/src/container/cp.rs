//! `cp`: docker's `CONTAINER:SRC DEST|-` and `SRC|- CONTAINER:DEST`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::bail;
use clap::Args;
use engine::EngineError;
use engine::container::fs::{CopyOptions, CopySource, CopyTarget};

use crate::args::Global;
use crate::exit::Reported;

#[derive(Args, Debug, Clone)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is
    /// automatically suppressed if no terminal is attached.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or `-` for a tar stream on stdin.
    #[arg(value_name = "SRC_PATH")]
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or `-` for a tar stream on stdout.
    #[arg(value_name = "DEST_PATH")]
    pub dest: String,
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an
/// absolute path or starts like a relative one (`./a:b` is a local file).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

pub fn cp(global: &Global, args: CpArgs) -> anyhow::Result<()> {
    let (src_container, src) = split(&args.src);
    let (dest_container, dest) = split(&args.dest);
    if src.is_empty() {
        bail!("source can not be empty");
    }
    if dest.is_empty() {
        bail!("destination can not be empty");
    }
    let options = CopyOptions {
        follow_link: args.follow_link,
        archive: args.archive,
    };
    let engine = super::engine(global)?;
    let (copied, shown_dest) = match (src_container, dest_container) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(container), None) => {
            let mut stdout = std::io::stdout();
            let target = match dest {
                "-" => CopyTarget::Tar(&mut stdout),
                path => CopyTarget::Host(Path::new(path)),
            };
            let copied = engine.copy_out(container, src, target, options);
            (reported(copied)?, (dest != "-").then(|| dest.to_owned()))
        }
        (None, Some(container)) => {
            let mut stdin = std::io::stdin();
            let source = match src {
                "-" => {
                    if stdin.is_terminal() {
                        bail!("refusing to read a tar archive from a terminal: redirect stdin");
                    }
                    CopySource::Tar(&mut stdin)
                }
                path => CopySource::Host(Path::new(path)),
            };
            let copied = engine.copy_in(source, container, dest, options);
            (
                reported(copied)?,
                (src != "-").then(|| format!("{container}:{dest}")),
            )
        }
    };
    // docker's progress line, only for a person watching.
    let stderr = std::io::stderr();
    if let Some(dest) = shown_dest
        && !args.quiet
        && stderr.is_terminal()
    {
        let size = crate::human::size(copied, 4);
        writeln!(stderr.lock(), "Successfully copied {size} to {dest}")?;
    }
    Ok(())
}

/// The container's side of a failure as docker's daemon words it; the
/// user's own side as any other error.
fn reported(result: Result<u64, EngineError>) -> anyhow::Result<u64> {
    match result {
        Ok(bytes) => Ok(bytes),
        Err(EngineError::Files(e)) if e.is_local() => Err(e.into()),
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            Err(Reported.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn arguments_split_as_docker_splits_them() {
        assert_eq!(split("web:/etc"), (Some("web"), "/etc"));
        assert_eq!(split("web:etc"), (Some("web"), "etc"));
        assert_eq!(split("/abs:path"), (None, "/abs:path"));
        assert_eq!(split("./file:name"), (None, "./file:name"));
        assert_eq!(split("-"), (None, "-"));
        assert_eq!(split("plain"), (None, "plain"));
        assert_eq!(split("web:"), (Some("web"), ""));
    }
}
