//! Waiting for a container's monitor to exit, without the store.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::record::MonitorRef;

/// Waits until `monitor` has exited, at most `timeout` (forever when
/// `None`). True when it is gone.
pub fn wait_for_exit(monitor: MonitorRef, timeout: Option<Duration>) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, monitor.pid, 0) };
    if fd < 0 {
        // ESRCH: already gone (and reaped by its parent).
        return !monitor.is_alive() || poll_until_gone(monitor, timeout);
    }
    // SAFETY: a new descriptor that nobody else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pid may have been reused between reading the record and opening
    // the pidfd: the start time tells.
    if !monitor.is_alive() {
        return true;
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let wait_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return !monitor.is_alive();
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return poll_until_gone(monitor, timeout);
        }
    }
}

/// The fallback without a pidfd: checks every 10 ms.
fn poll_until_gone(monitor: MonitorRef, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    while monitor.is_alive() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}
