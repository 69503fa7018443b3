//! The container's terminal: a pty made inside the container (from its own
//! devpts), whose master goes to whoever asked for it: the engine's console
//! socket (runc's --console-socket) or the runtime itself for `run`.

use std::ffi::CStr;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::error::{Context, Error, Result};

/// Connects to the console socket; done in the runtime before the fork so
/// that a wrong path fails `create` early.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .context(|| format!("connecting to console socket {}", path.display()))?;
    Ok(stream.into())
}

/// A new pty pair from the devpts mounted at the container's /dev/pts.
pub struct Pty {
    pub master: OwnedFd,
    pub slave_path: PathBuf,
}

pub fn open_pty() -> Result<Pty> {
    // SAFETY: plain libc calls; the returned fd is checked before use.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(nix::Error::last()).context(|| "opening /dev/ptmx".into());
    }
    // SAFETY: the fd was just returned to us.
    let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(master) };
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(nix::Error::last()).context(|| "unlocking the pty".into());
    }
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: buf is large enough for any /dev/pts/N name.
    if unsafe { libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr(), buf.len()) } != 0 {
        return Err(nix::Error::last()).context(|| "naming the pty".into());
    }
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(Pty {
        master,
        slave_path: PathBuf::from(name.to_string_lossy().into_owned()),
    })
}

/// Sends the pty master over the console socket, as runc does: the payload
/// is a name, the fd rides in SCM_RIGHTS.
pub fn send_master(socket: RawFd, master: BorrowedFd<'_>) -> Result<()> {
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket,
        &[IoSlice::new(b"/dev/ptmx")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context(|| "sending the pty to the console socket".into())?;
    Ok(())
}

/// Makes the pty slave the caller's controlling terminal and stdio.
pub fn become_session_leader_on(slave_path: &Path, size: Option<(u16, u16)>) -> Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let slave = open(slave_path, OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())
        .context(|| format!("opening {}", slave_path.display()))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(nix::Error::last()).context(|| "attaching stdio to the pty".into());
        }
    }
    // The container's init is already a session leader (setsid in init);
    // an exec'd process becomes one here.
    let _ = nix::unistd::setsid();
    // SAFETY: TIOCSCTTY on our own stdin.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(nix::Error::last()).context(|| "taking the pty as controlling terminal".into());
    }
    Ok(())
}

/// Copies the pty to and from the runtime's own stdio until the container
/// side closes: `run` in the foreground with a terminal.
pub fn proxy(master: OwnedFd) -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let _raw = RawMode::enter(stdin);
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "waiting on the pty".into()),
            Ok(_) => {}
        }
        let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => return Ok(()),
                Ok(n) => write_all(1, &buf[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context(|| "reading the pty".into()),
            }
        }
        if stdin_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(master.as_raw_fd(), &buf[..n]),
            }
        }
    }
}

/// Gives the pty the size of the runtime's own terminal, if it has one.
pub fn copy_window_size(pty: BorrowedFd<'_>) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) {
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The terminal in raw mode while the guard lives (if stdin is a terminal).
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> RawMode {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let Ok(saved) = tcgetattr(fd) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let fd = unsafe { BorrowedFd::borrow_raw(0) };
            let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Refuses a terminal that nobody could read.
pub fn check_console_request(terminal: bool, has_socket: bool, detached: bool) -> Result<()> {
    if terminal && !has_socket && detached {
        return Err(Error::InvalidSpec(
            "process.terminal is true but no --console-socket was given: the terminal would have no reader".into(),
        ));
    }
    if !terminal && has_socket {
        return Err(Error::InvalidSpec(
            "--console-socket was given but process.terminal is false".into(),
        ));
    }
    Ok(())
}
