//! Typed messages between the runtime and a process it forked, over a
//! SOCK_SEQPACKET socket pair: one datagram per message, so no framing, and a
//! closed peer reads as end of file instead of hanging.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use crate::error::{Context, Error, Result};

/// One message. The child only ever sends errors as text: a child error is
/// shown to the user as it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// Parent → child: id maps written; go on.
    Go,
    /// Parent → child: the child is in its cgroup. Sent after Go: the
    /// first write to cgroup.procs waits out an RCU grace period (~15 ms on
    /// cgroup v1), so the child builds its rootfs meanwhile.
    Joined,
    /// Child → parent: namespaces and mounts are ready; run the runtime's
    /// prestart and createRuntime hooks now.
    RunHooks,
    /// Parent → child: the hooks ran.
    HooksDone,
    /// Child → parent: ready to exec, waiting for `start`.
    Ready,
    /// Intermediate child → parent: the pid of the process it forked.
    Pid(i32),
    /// Child → parent: the child failed and is exiting.
    Failed(String),
    /// Child → parent: the pty master, with the fd in SCM_RIGHTS.
    PtyMaster,
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: the first end for the parent, the second for the child.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context(|| "creating the runtime's sync socket".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

const MAX_MESSAGE: usize = 8192;

impl Channel {
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Message) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_fd(&self, msg: &Message, fd: BorrowedFd<'_>) -> Result<()> {
        self.send_with_fd(msg, Some(fd.as_raw_fd()))
    }

    fn send_with_fd(&self, msg: &Message, fd: Option<RawFd>) -> Result<()> {
        let mut buf = Vec::with_capacity(16);
        match msg {
            Message::Go => buf.push(b'G'),
            Message::Joined => buf.push(b'J'),
            Message::RunHooks => buf.push(b'H'),
            Message::HooksDone => buf.push(b'h'),
            Message::Ready => buf.push(b'R'),
            Message::PtyMaster => buf.push(b'T'),
            Message::Pid(pid) => {
                buf.push(b'P');
                buf.extend_from_slice(&pid.to_le_bytes());
            }
            Message::Failed(text) => {
                buf.push(b'E');
                let bytes = text.as_bytes();
                buf.extend_from_slice(&bytes[..bytes.len().min(MAX_MESSAGE - 1)]);
            }
        }
        let fds = fd.map(|fd| [fd]);
        let cmsgs: Vec<ControlMessage<'_>> = fds
            .as_ref()
            .map(|fds| vec![ControlMessage::ScmRights(fds)])
            .unwrap_or_default();
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&buf)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .context(|| "sending on the runtime's sync socket".into())?;
        Ok(())
    }

    /// Sends to a child that may have failed meanwhile: if the send fails,
    /// the child's own report (waiting in the socket) is the error to show.
    pub fn send_to_child(&self, msg: &Message) -> Result<()> {
        let Err(send_error) = self.send(msg) else {
            return Ok(());
        };
        match self.recv() {
            Ok(Some((Message::Failed(text), _))) => Err(Error::Init(text)),
            _ => Err(send_error),
        }
    }

    /// Waits for the next message. `Ok(None)` means the peer closed its end
    /// (it exited).
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = [0u8; MAX_MESSAGE];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs().context(|| "reading control message".into())? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel just installed this fd for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                // ECONNRESET: the peer exited with our last message unread;
                // what it sent before exiting is still queued behind it.
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
                Err(e) => {
                    return Err(e).context(|| "reading the runtime's sync socket".into());
                }
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = match buf[0] {
            b'G' => Message::Go,
            b'J' => Message::Joined,
            b'H' => Message::RunHooks,
            b'h' => Message::HooksDone,
            b'R' => Message::Ready,
            b'T' => Message::PtyMaster,
            b'P' if len == 5 => Message::Pid(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]])),
            b'E' => Message::Failed(String::from_utf8_lossy(&buf[1..len]).into_owned()),
            other => {
                return Err(Error::Init(format!(
                    "unexpected message {other:#x} on the sync socket"
                )));
            }
        };
        Ok(Some((msg, fd)))
    }

    /// Waits for one exact message; a failure report or an early close
    /// becomes an error.
    pub fn expect(&self, wanted: Message) -> Result<()> {
        let mut joined = false;
        self.expect_noting_joined(wanted, &mut joined)
    }

    /// Like `expect`, but a `Joined` that arrives first is noted in
    /// `joined` instead of being an error: it may come at any time after Go.
    pub fn expect_noting_joined(&self, wanted: Message, joined: &mut bool) -> Result<()> {
        match self.recv()? {
            Some((Message::Joined, _)) if wanted != Message::Joined => {
                *joined = true;
                self.expect_noting_joined(wanted, joined)
            }
            Some((msg, _)) if msg == wanted => Ok(()),
            Some((Message::Failed(text), _)) => Err(Error::Init(text)),
            Some((other, _)) => Err(Error::Init(format!(
                "expected {wanted:?} on the sync socket, got {other:?}"
            ))),
            None => Err(Error::Init(
                "the container process exited before it was ready".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_close_reads_as_none() {
        let (a, b) = pair().expect("socketpair");
        for msg in [
            Message::Go,
            Message::Ready,
            Message::Pid(4242),
            Message::Failed("mount /proc: EPERM".into()),
        ] {
            a.send(&msg).expect("send");
            let (got, fd) = b.recv().expect("recv").expect("message");
            assert_eq!(got, msg);
            assert!(fd.is_none());
        }
        drop(a);
        assert!(b.recv().expect("recv").is_none());
    }

    #[test]
    fn an_fd_travels_with_its_message() {
        let (a, b) = pair().expect("socketpair");
        let file = std::fs::File::open("/proc/self/stat").expect("open");
        use std::os::fd::AsFd;
        a.send_fd(&Message::PtyMaster, file.as_fd()).expect("send");
        let (msg, fd) = b.recv().expect("recv").expect("message");
        assert_eq!(msg, Message::PtyMaster);
        assert!(fd.is_some());
    }

    #[test]
    fn failure_report_becomes_error() {
        let (a, b) = pair().expect("socketpair");
        a.send(&Message::Failed("boom".into())).expect("send");
        let err = b.expect(Message::Ready).unwrap_err();
        assert_eq!(err.to_string(), "container init failed: boom");
    }
}
