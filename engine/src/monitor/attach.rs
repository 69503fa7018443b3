//! A caller attached to the monitor: its own stdin, stdout and stderr
//! (passed as descriptors), and a control socket. The container's output
//! is written straight to the caller's streams; the caller's stdin goes to
//! the container (with `-i`). The control socket carries window sizes in
//! (`resize ROWS COLS\n`), and `detached\n` or `exit CODE\n` out; its
//! other end closing means the caller is gone, and the monitor closing it
//! means the caller is let go (after the exit, once it is recorded).
//!
//! The caller a container started with may take its exit over (`run
//! --rm`, [`super::Job::handover`]): it hears `exit CODE\n` at once, and
//! `released\n` once the runtime state is gone and the exit recorded; it
//! answers `done\n` when it removed the container, and the monitor's exit
//! command runs only if it goes without that word.
//!
//! A caller attaches from the start (`run`, `start -a`: the descriptors
//! are inherited) or later (`attach`): it connects to the monitor's
//! socket in the container's run folder (mode 0700, root's) and sends
//! `attach\n` with its stdout, stderr and, for stdin, a third descriptor
//! (SCM_RIGHTS); the connection is then the control socket.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use super::JobAttach;

/// docker's default detach keys: ctrl-p, ctrl-q.
const DETACH: [u8; 2] = [0x10, 0x11];

pub(super) struct Attached {
    pub stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pub control: OwnedFd,
    /// Detach keys are honoured (a terminal, as docker's).
    tty: bool,
    /// The caller the container started with (`run -i`): the end of its
    /// stdin is the end of the container's (docker's StdinOnce).
    stdin_once: bool,
    /// The first detach key was the last byte read.
    escape: bool,
    control_buf: Vec<u8>,
}

/// What came from the caller's stdin.
pub(super) enum Input {
    Data(Vec<u8>),
    /// End of the caller's stdin: the container's stdin closes too.
    Eof,
    /// The detach keys, after `Data` that came before them.
    Detach(Vec<u8>),
}

/// What came on the control socket.
pub(super) enum Control {
    Resize { rows: u16, cols: u16 },
    Gone,
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we were given.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

impl Attached {
    /// Takes ownership of inherited descriptors and makes them
    /// close-on-exec (the container must not inherit them).
    ///
    /// # Safety
    /// The numbers must be open descriptors of this process that nothing
    /// else owns.
    pub unsafe fn from_raw(fds: JobAttach, tty: bool) -> Attached {
        let own = |fd: RawFd| {
            set_cloexec(fd);
            // SAFETY: the caller's promise.
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        // -1: a stream the first stage dropped (the caller went away).
        let own_open = |fd: RawFd| (fd >= 0).then(|| own(fd));
        Attached {
            stdin: fds.stdin.and_then(own_open),
            stdout: own_open(fds.stdout),
            stderr: own_open(fds.stderr),
            control: own(fds.control),
            tty,
            stdin_once: true,
            escape: false,
            control_buf: Vec::new(),
        }
    }

    /// A caller that connected to the monitor's socket, once it sent its
    /// descriptors; `None` for anything else (it waits a second at most:
    /// only root can connect, and a caller sends at once).
    pub fn accept(listener: &OwnedFd, tty: bool) -> Option<Attached> {
        let listener = std::mem::ManuallyDrop::new(
            // SAFETY: borrowed for the accept; ManuallyDrop keeps it open.
            unsafe { UnixListener::from_raw_fd(listener.as_raw_fd()) },
        );
        let (conn, _) = listener.accept().ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut buf = [0u8; 16];
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ok()?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in msg.cmsgs().ok()? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: descriptors the kernel just gave us, owned by
                // nobody else.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let hello = msg.bytes;
        if !buf[..hello].starts_with(b"attach\n") || !(2..=3).contains(&fds.len()) {
            return None;
        }
        conn.set_read_timeout(None).ok()?;
        let mut fds = fds.into_iter();
        Some(Attached {
            stdout: fds.next(),
            stderr: fds.next(),
            stdin: fds.next(),
            control: conn.into(),
            tty,
            stdin_once: false,
            escape: false,
            control_buf: Vec::new(),
        })
    }

    /// The descriptor numbers, for the next stage.
    pub fn raw(&self) -> JobAttach {
        let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        JobAttach {
            stdin: self.stdin.as_ref().map(|f| f.as_raw_fd()),
            stdout: raw(&self.stdout),
            stderr: raw(&self.stderr),
            control: self.control.as_raw_fd(),
        }
    }

    pub fn tty(&self) -> bool {
        self.tty
    }

    pub fn stdin_once(&self) -> bool {
        self.stdin_once
    }

    /// Writes output of stream `stream` (0: stdout, 1: stderr); a stream
    /// that fails (the caller went away) is dropped.
    pub fn output(&mut self, stream: usize, bytes: &[u8]) {
        let slot = if stream == 0 {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let Some(fd) = slot.as_ref() else { return };
        if write_all(fd, bytes).is_err() {
            *slot = None;
        }
    }

    /// Reads what the caller's stdin has.
    pub fn read_input(&mut self) -> Input {
        let Some(fd) = self.stdin.as_ref() else {
            return Input::Eof;
        };
        let mut buf = [0u8; 16 * 1024];
        // SAFETY: reading into a buffer of that length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => {
                    Input::Data(Vec::new())
                }
                _ => Input::Eof,
            };
        }
        if n == 0 {
            return Input::Eof;
        }
        let bytes = &buf[..n as usize];
        if !self.tty {
            return Input::Data(bytes.to_vec());
        }
        self.scan_detach(bytes)
    }

    /// Passes everything but the detach sequence; a lone ctrl-p is held
    /// back until the next byte shows it was not one.
    fn scan_detach(&mut self, bytes: &[u8]) -> Input {
        let mut out = Vec::with_capacity(bytes.len() + 1);
        for &b in bytes {
            if self.escape {
                self.escape = false;
                if b == DETACH[1] {
                    return Input::Detach(out);
                }
                out.push(DETACH[0]);
            }
            if b == DETACH[0] {
                self.escape = true;
            } else {
                out.push(b);
            }
        }
        Input::Data(out)
    }

    /// Reads the control socket: the last complete message, or `Gone`.
    pub fn read_control(&mut self) -> Option<Control> {
        self.receive_control(0)
    }

    /// What the caller sent before the container started (its window
    /// size), without waiting for more.
    pub fn pending_control(&mut self) -> Option<Control> {
        self.receive_control(libc::MSG_DONTWAIT)
    }

    fn receive_control(&mut self, flags: libc::c_int) -> Option<Control> {
        let mut buf = [0u8; 512];
        // SAFETY: receiving into a buffer of that length.
        let n = unsafe {
            libc::recv(
                self.control.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        };
        if n == 0 {
            return Some(Control::Gone);
        }
        if n < 0 {
            return match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => None,
                _ => Some(Control::Gone),
            };
        }
        self.control_buf.extend_from_slice(&buf[..n as usize]);
        let mut last = None;
        while let Some(end) = self.control_buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.control_buf.drain(..=end).collect();
            if let Some(c) = parse_control(&String::from_utf8_lossy(&line)) {
                last = Some(c);
            }
        }
        if self.control_buf.len() > 4096 {
            self.control_buf.clear();
        }
        last
    }

    /// Tells the caller it was detached, and lets it go.
    pub fn detached(self) {
        self.say("detached\n");
    }

    /// Tells the caller the container's exit code, and lets it go.
    pub fn exited(self, code: i32) {
        self.say_exit(code);
    }

    /// Tells the caller the container's exit code, keeping it.
    pub fn say_exit(&self, code: i32) {
        self.say(&format!("exit {code}\n"));
    }

    /// Hands the exit over to the caller: tells it the runtime state is
    /// gone, then waits for its `done` (true) or its end (false).
    pub fn hand_over(mut self) -> bool {
        self.say("released\n");
        loop {
            let mut buf = [0u8; 256];
            // SAFETY: receiving into a buffer of that length.
            let n = unsafe {
                libc::recv(
                    self.control.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                return false;
            }
            self.control_buf.extend_from_slice(&buf[..n as usize]);
            if self
                .control_buf
                .split(|b| *b == b'\n')
                .any(|line| line == b"done")
            {
                return true;
            }
            if self.control_buf.len() > 4096 {
                self.control_buf.clear();
            }
        }
    }

    /// One message on the control socket, never blocking: a caller that
    /// does not read it still sees the socket close.
    fn say(&self, message: &str) {
        // SAFETY: a send of `message`'s bytes on our socket.
        unsafe {
            libc::send(
                self.control.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
    }
}

/// A path to `path` short enough for a socket address (108 bytes),
/// however deep the run root is: through a descriptor of its folder.
fn short_path(path: &Path) -> std::io::Result<(OwnedFd, std::path::PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("a socket path needs a file name"))?;
    let fd: OwnedFd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let short = Path::new("/proc/self/fd")
        .join(fd.as_raw_fd().to_string())
        .join(name);
    Ok((fd, short))
}

/// The monitor's listening socket at `path` (a stale one is replaced).
pub fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    let (_dir, short) = short_path(path)?;
    match std::fs::remove_file(&short) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(UnixListener::bind(&short)?.into())
}

/// The caller's side: connects to the monitor's socket at `path` and
/// hands it our streams (`stdin` only to feed the container). The
/// returned connection is the control socket.
pub fn connect(
    path: &Path,
    stdin: Option<BorrowedFd<'_>>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
) -> std::io::Result<UnixStream> {
    let (_dir, short) = short_path(path)?;
    let conn = UnixStream::connect(&short)?;
    let mut fds = vec![stdout.as_raw_fd(), stderr.as_raw_fd()];
    fds.extend(stdin.map(|fd| fd.as_raw_fd()));
    let hello = [IoSlice::new(b"attach\n")];
    sendmsg::<()>(
        conn.as_fd().as_raw_fd(),
        &hello,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(conn)
}

/// Writes all of `bytes` to `fd`, which stays ours.
pub(super) fn write_all(fd: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::mem::ManuallyDrop::new(
        // SAFETY: borrowed for the write; ManuallyDrop keeps it open.
        unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) },
    );
    file.write_all(bytes)
}

fn parse_control(line: &str) -> Option<Control> {
    let mut words = line.split_whitespace();
    match words.next()? {
        "resize" => {
            let rows = words.next()?.parse().ok()?;
            let cols = words.next()?.parse().ok()?;
            Some(Control::Resize { rows, cols })
        }
        _ => None,
    }
}

/// Sets the terminal's window size.
pub(super) fn resize(pty: RawFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    unsafe { libc::ioctl(pty, libc::TIOCSWINSZ, &size) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> Attached {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
        Attached {
            stdin: None,
            stdout: Some(a.into()),
            stderr: Some(b.into()),
            control: c.into(),
            tty: true,
            stdin_once: true,
            escape: false,
            control_buf: Vec::new(),
        }
    }

    #[test]
    fn detach_keys_are_found_across_reads_and_lone_escapes_pass() {
        let mut a = scanner();
        assert!(matches!(a.scan_detach(b"ab\x10"), Input::Data(d) if d == b"ab"));
        assert!(matches!(a.scan_detach(b"c"), Input::Data(d) if d == b"\x10c"));
        assert!(matches!(a.scan_detach(b"x\x10\x11y"), Input::Detach(d) if d == b"x"));
        let mut b = scanner();
        assert!(matches!(b.scan_detach(b"\x10"), Input::Data(d) if d.is_empty()));
        assert!(matches!(b.scan_detach(b"\x11"), Input::Detach(d) if d.is_empty()));
    }

    #[test]
    fn control_lines_parse() {
        assert!(matches!(
            parse_control("resize 40 120\n"),
            Some(Control::Resize {
                rows: 40,
                cols: 120
            })
        ));
        assert!(parse_control("resize x 1").is_none());
        assert!(parse_control("bogus").is_none());
    }
}
