//! `muelle-dns`: the name resolver of one user network (see `network::dns`
//! for the command line and how the engine knows it is ready). Kept small:
//! one runs per network. Prints nothing unless it fails, then one line on
//! stderr and exit status 1.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use network::dns::{self, Config, Server};

const USAGE: &str = "usage: muelle-dns --listen IP[:PORT] --names PATH [--upstream IP[:PORT]]... \
                     [--resolv-conf PATH] [--allow CIDR]... [--ready-fd N]";

#[derive(Debug, PartialEq, Eq)]
struct Options {
    config: Config,
    /// Where to find upstream servers when none is given.
    resolv_conf: PathBuf,
    ready_fd: Option<RawFd>,
}

fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("muelle-dns: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    let mut options = parse(std::env::args_os().skip(1))?;
    if let Some(fd) = options.ready_fd {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(format!("--ready-fd {fd}: not an open descriptor"));
        }
    }
    if options.config.upstreams.is_empty() {
        // A missing file means no upstream: forwarded queries get SERVFAIL.
        let text = std::fs::read_to_string(&options.resolv_conf).unwrap_or_default();
        options.config.upstreams = dns::upstreams_from_resolv_conf(&text, options.config.listen);
    }
    let server = Server::bind(options.config).map_err(|e| e.to_string())?;
    if let Some(fd) = options.ready_fd {
        let port = server.local_addr().map_err(|e| e.to_string())?.port();
        // SAFETY: the descriptor is open (checked above) and was given to
        // this process for this one use; the File closes it.
        let mut ready = unsafe { File::from_raw_fd(fd) };
        writeln!(ready, "{port}").map_err(|e| format!("--ready-fd {fd}: {e}"))?;
    }
    server.run().map(drop).map_err(|e| e.to_string())
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut listen = None;
    let mut names = None;
    let mut upstreams = Vec::new();
    let mut allow = Vec::new();
    let mut ready_fd = None;
    let mut resolv_conf = PathBuf::from("/etc/resolv.conf");

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("{arg:?}: unknown option\n{USAGE}"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(OsString::from(value))),
            None => (arg, None),
        };
        if !matches!(
            flag.as_str(),
            "--listen" | "--names" | "--upstream" | "--resolv-conf" | "--allow" | "--ready-fd"
        ) {
            return Err(format!("{flag}: unknown option\n{USAGE}"));
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--names" => {
                names = Some(PathBuf::from(value));
                continue;
            }
            "--resolv-conf" => {
                resolv_conf = PathBuf::from(value);
                continue;
            }
            _ => {}
        }
        let text = value
            .to_str()
            .ok_or_else(|| format!("{flag}: {value:?} is not text"))?;
        match flag.as_str() {
            "--listen" => listen = Some(address(&flag, text)?),
            "--upstream" => upstreams.push(address(&flag, text)?),
            "--allow" => allow.push(text.parse().map_err(|e| format!("--allow: {e}"))?),
            _ => {
                let fd = text
                    .parse::<RawFd>()
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| format!("--ready-fd: {text:?} is not a descriptor number"))?;
                ready_fd = Some(fd);
            }
        }
    }
    let listen = listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?;
    let names = names.ok_or_else(|| format!("--names is required\n{USAGE}"))?;
    Ok(Options {
        config: Config {
            listen,
            names,
            upstreams,
            allow,
        },
        resolv_conf,
        ready_fd,
    })
}

/// `IP`, `IP:PORT` or `[IPV6]:PORT`; the port defaults to 53.
fn address(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{flag}: {text:?} is not an address (IP or IP:PORT)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Options, String> {
        parse(words.split_whitespace().map(OsString::from))
    }

    #[test]
    fn the_full_command_line() {
        let options = parse_words(
            "--listen 10.88.0.1 --names /run/n --upstream 1.1.1.1 --upstream=[fd00::1]:5353 \
             --allow 10.88.0.0/16 --allow=10.89.0.0/16 --ready-fd 3",
        )
        .unwrap();
        assert_eq!(options.config.listen, "10.88.0.1:53".parse().unwrap());
        assert_eq!(options.config.names, PathBuf::from("/run/n"));
        assert_eq!(
            options.config.upstreams,
            [
                "1.1.1.1:53".parse().unwrap(),
                "[fd00::1]:5353".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(options.config.allow.len(), 2);
        assert_eq!(options.ready_fd, Some(3));
        assert_eq!(options.resolv_conf, PathBuf::from("/etc/resolv.conf"));

        let options = parse_words("--names=n --listen=127.0.0.1:0 --resolv-conf /tmp/r").unwrap();
        assert_eq!(options.resolv_conf, PathBuf::from("/tmp/r"));
        assert_eq!(options.config.listen, "127.0.0.1:0".parse().unwrap());
        assert!(options.config.upstreams.is_empty() && options.config.allow.is_empty());
        assert_eq!(options.ready_fd, None);
    }

    #[test]
    fn mistakes_are_told_in_a_line() {
        for (words, says) in [
            ("--names n", "--listen is required"),
            ("--listen 127.0.0.1", "--names is required"),
            ("--listen", "--listen needs a value"),
            ("--listen web --names n", "not an address"),
            ("--listen 127.0.0.1 --names n --allow 10/8", "not a network"),
            (
                "--listen 127.0.0.1 --names n --ready-fd -1",
                "not a descriptor number",
            ),
            (
                "--listen 127.0.0.1 --names n --verbose",
                "--verbose: unknown option",
            ),
        ] {
            let err = parse_words(words).unwrap_err();
            assert!(err.contains(says), "{words}: {err}");
        }
    }
}
