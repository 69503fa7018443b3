//! A caller attached to the monitor: its own stdin, stdout and stderr
//! (passed as descriptors), and a control socket. The container's output
//! is written straight to the caller's streams; the caller's stdin goes to
//! the container (with `-i`). The control socket carries window sizes in
//! (`resize ROWS COLS\n`), and `detached\n` or `exit CODE\n` out; its
//! other end closing means the caller is gone, and the monitor closing it
//! means the caller is let go (after the exit, once it is recorded).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
        Attached {
            stdin: fds.stdin.map(own),
            stdout: Some(own(fds.stdout)),
            stderr: Some(own(fds.stderr)),
            control: own(fds.control),
            tty,
            escape: false,
            control_buf: Vec::new(),
        }
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
        self.say(&format!("exit {code}\n"));
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
