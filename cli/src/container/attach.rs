//! The caller's side of an attached run (`run` without `-d`, `start -a`,
//! `attach`):
//! our own stdin/stdout/stderr go to the container's monitor, which writes
//! the output to them directly; we keep a control socket, put the
//! terminal in raw mode for `-t`, pass window sizes, forward signals, and
//! wait for the monitor's `exit CODE` (or `detached`). `run --rm` takes
//! the exit over: it waits for `released`, removes the container and
//! says `done` ([`Session::released`], [`Session::done`]).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use engine::container::{Attach, CallerStreams};
use engine::{Container, Engine};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

/// How an attached run ended.
pub enum Ended {
    Exited(i32),
    /// ctrl-p ctrl-q: the container runs on.
    Detached,
    /// The monitor went away without a word (killed).
    Lost,
}

/// Our end of an attachment, made before the container starts.
pub struct Session {
    control: UnixStream,
    raw: Option<RawTerminal>,
    signals: SignalFd,
    /// What the monitor said so far.
    received: Vec<u8>,
}

/// The signals an attached caller handles itself; blocked before any
/// thread exists so that every thread inherits the mask.
pub fn block_signals() -> anyhow::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

/// A close-on-exec copy of one of our standard descriptors.
fn dup(fd: impl AsFd) -> anyhow::Result<OwnedFd> {
    Ok(fd.as_fd().try_clone_to_owned()?)
}

/// Prepares the streams the monitor gets (stdin only with `-i`) and our
/// side. With `-t` on a terminal, the terminal goes raw until the
/// container ends. With `handover`, we take the exit over (`run --rm`).
pub fn prepare(
    signals: SigSet,
    stdin: bool,
    tty: bool,
    handover: bool,
) -> anyhow::Result<(Attach, Session)> {
    let (ours, theirs) = UnixStream::pair()?;
    let attach = Attach {
        stdin: if stdin {
            Some(dup(std::io::stdin())?)
        } else {
            None
        },
        stdout: dup(std::io::stdout())?,
        stderr: dup(std::io::stderr())?,
        control: theirs.into(),
        handover,
    };
    let mut session = Session {
        control: ours,
        raw: None,
        signals: SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?,
        received: Vec::new(),
    };
    if tty && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        session.raw = RawTerminal::enter().ok();
        session.send_size();
    }
    Ok((attach, session))
}

/// Attaches our streams (stdin too with `stdin`) to a running container
/// through its monitor's socket; with `-t`, our terminal goes raw.
pub fn connect(
    engine: &Engine,
    store: &storage::store::Store,
    text: &str,
    stdin: bool,
    signals: SigSet,
) -> anyhow::Result<(Container, Session)> {
    let (ours_in, ours_out, ours_err) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let (container, control) = engine.attach(
        store,
        text,
        CallerStreams {
            stdin: stdin.then(|| ours_in.as_fd()),
            stdout: ours_out.as_fd(),
            stderr: ours_err.as_fd(),
        },
    )?;
    let mut session = Session {
        control,
        raw: None,
        signals: SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?,
        received: Vec::new(),
    };
    if container.config.tty && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        session.raw = RawTerminal::enter().ok();
        session.send_size();
    }
    Ok((container, session))
}

impl Session {
    /// Waits for the end, forwarding signals to `container` (with
    /// `sig_proxy`) and window sizes to its terminal; the terminal is
    /// ours again when it returns.
    pub fn wait(&mut self, engine: &Engine, container: &Container, sig_proxy: bool) -> Ended {
        let ended = self.wait_for_end(engine, container, sig_proxy);
        self.raw = None;
        ended
    }

    fn wait_for_end(&mut self, engine: &Engine, container: &Container, sig_proxy: bool) -> Ended {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.control.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.signals.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: a valid array of two pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                while let Ok(Some(info)) = self.signals.read_signal() {
                    let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if signal == Signal::SIGWINCH {
                        self.send_size();
                    } else if !sig_proxy {
                        // docker's --sig-proxy=false: ctrl-c lets the
                        // caller go and the container run on.
                        if signal != Signal::SIGQUIT {
                            return Ended::Detached;
                        }
                    } else if let Err(e) = engine.send_signal(container, signal) {
                        tracing::warn!("forwarding {signal}: {e}");
                    }
                }
            }
            if fds[0].revents != 0 {
                let mut buf = [0u8; 256];
                match self.control.read(&mut buf) {
                    Ok(0) | Err(_) => return parse_end(&self.received),
                    Ok(n) => {
                        self.received.extend_from_slice(&buf[..n]);
                        if self.received.ends_with(b"\n") {
                            let ended = parse_end(&self.received);
                            if !matches!(ended, Ended::Lost) {
                                return ended;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The container's exit if the monitor says so within `wait` (a
    /// container over in no time).
    pub fn ended_within(&mut self, wait: std::time::Duration) -> Option<Ended> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.received.ends_with(b"\n")
                && let Ended::Exited(code) = parse_end(&self.received)
            {
                self.raw = None;
                return Some(Ended::Exited(code));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut fds = [libc::pollfd {
                fd: self.control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            if left.is_zero() || unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) } <= 0 {
                return None;
            }
            let mut buf = [0u8; 256];
            match self.control.read(&mut buf) {
                Ok(n) if n > 0 => self.received.extend_from_slice(&buf[..n]),
                // The monitor gone: for `wait` to see.
                _ => return None,
            }
        }
    }

    /// After the exit, with the exit taken over: waits until the monitor
    /// deleted the runtime state and recorded the exit. False when the
    /// monitor went without saying so.
    pub fn released(&mut self) -> bool {
        loop {
            if self
                .received
                .split(|b| *b == b'\n')
                .any(|l| l == b"released")
            {
                return true;
            }
            let mut buf = [0u8; 256];
            match self.control.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Tells the monitor the exit it handed over was dealt with: its exit
    /// command need not run.
    pub fn done(mut self) {
        let _ = self.control.write_all(b"done\n");
    }

    fn send_size(&mut self) {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills one winsize.
        let ok = unsafe { libc::ioctl(std::io::stdin().as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        if ok == 0 && size.ws_row > 0 {
            let _ = writeln!(self.control, "resize {} {}", size.ws_row, size.ws_col);
        }
    }
}

fn parse_end(received: &[u8]) -> Ended {
    let text = String::from_utf8_lossy(received);
    for line in text.lines() {
        if line == "detached" {
            return Ended::Detached;
        }
        if let Some(code) = line.strip_prefix("exit ").and_then(|c| c.parse().ok()) {
            return Ended::Exited(code);
        }
    }
    Ended::Lost
}

/// The terminal in raw mode; restored on drop.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> nix::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitors_last_words_are_read() {
        assert!(matches!(parse_end(b"exit 3\n"), Ended::Exited(3)));
        assert!(matches!(parse_end(b"detached\n"), Ended::Detached));
        assert!(matches!(parse_end(b""), Ended::Lost));
    }
}
