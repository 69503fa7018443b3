//! The socket and the request/ack plumbing: requests are encoded into one
//! buffer, sent in one datagram, and their replies read until every request
//! got its end (an ack, a refusal, or the end of a dump).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlaBuffer, NlasIterator, Parseable,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};

use super::{Error, Result};

/// Room for one datagram from the kernel: dumps fill at most 32 KiB a
/// datagram when the reader offers that much; one message larger than that
/// (a link with many VFs) still fits up to 64 KiB, and anything larger is
/// reported, never silently cut.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// Extended ack attribute with the kernel's message (`NLMSGERR_ATTR_MSG`).
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A dump interrupted by a concurrent change is started again at most this
/// many times.
const DUMP_TRIES: usize = 5;

/// One `NETLINK_ROUTE` socket, in the network namespace it was opened in.
///
/// Every call takes `&mut self`: one request (or batch) is in flight at a
/// time, so answers are never mixed up. Dropping it closes the socket;
/// while it is open it keeps its namespace alive.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
    /// Requests waiting to be sent (one or a batch).
    pub(super) out: Vec<u8>,
    input: Vec<u8>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    Done,
    Refused {
        errno: Errno,
        detail: Option<String>,
    },
}

/// A message read for one of the requests in flight.
pub(super) enum Incoming {
    Reply(RouteNetlinkMessage),
    End(End),
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    ///
    /// Extended acks (the kernel's error messages), capped acks and strict
    /// checking of dump filters are asked for; a kernel too old for them
    /// still works, without the message and with filters applied here.
    pub fn open() -> Result<Netlink> {
        let socket = Socket::new(NETLINK_ROUTE).map_err(|source| Error::Io {
            what: "opening a netlink socket".into(),
            source,
        })?;
        // Best effort: these only add detail and save bytes.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Netlink {
            socket,
            seq: 0,
            out: Vec::with_capacity(1024),
            input: Vec::with_capacity(RECEIVE_BUFFER),
        })
    }

    /// Opens a socket that lives in the network namespace `netns` (a
    /// descriptor of an nsfs file, as [`crate::netns::open`] gives).
    ///
    /// The socket is made on a short-lived thread that enters `netns`; the
    /// calling thread never changes namespace, so nothing can leave it in the
    /// wrong one. Every later request on the socket acts in `netns`.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("muelle-netns".into())
                .stack_size(64 * 1024)
                .spawn_scoped(scope, move || {
                    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Io {
                        what: "entering the network namespace for a netlink socket".into(),
                        source: errno.into(),
                    })?;
                    Netlink::open()
                })
                .map_err(|source| Error::Io {
                    what: "starting a thread to open a netlink socket in a namespace".into(),
                    source,
                })?;
            thread.join().unwrap_or_else(|_| {
                Err(Error::Io {
                    what: "opening a netlink socket in a namespace".into(),
                    source: io::Error::other("the thread panicked"),
                })
            })
        })
    }

    /// Appends a request to the ones waiting to be sent; returns its
    /// sequence number. `flags` come on top of `NLM_F_REQUEST`.
    pub(super) fn queue(&mut self, flags: u16, message: RouteNetlinkMessage) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let start = self.out.len();
        self.out.resize(start + packet.buffer_len(), 0);
        packet.serialize(&mut self.out[start..]);
        self.seq
    }

    /// Sends the queued requests in one datagram, and forgets them.
    pub(super) fn send(&mut self, what: &dyn Fn() -> String) -> Result<()> {
        let sent = loop {
            match self.socket.send(&self.out, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let len = self.out.len();
        self.out.clear();
        match sent {
            Ok(n) if n == len => Ok(()),
            Ok(n) => Err(Error::Io {
                what: what(),
                source: io::Error::other(format!("sent {n} of {len} bytes")),
            }),
            Err(source) => Err(Error::Io {
                what: what(),
                source,
            }),
        }
    }

    /// Sends one request and reads its replies (each given to `on_reply`)
    /// until it ends. A refusal becomes [`Error::Kernel`] named by `what`.
    pub(super) fn request(
        &mut self,
        flags: u16,
        message: RouteNetlinkMessage,
        what: &dyn Fn() -> String,
        on_reply: &mut dyn FnMut(RouteNetlinkMessage) -> Result<()>,
    ) -> Result<()> {
        self.out.clear();
        let seq = self.queue(flags, message);
        self.send(what)?;
        let mut end = End::Done;
        self.receive(seq, 1, what, &mut |_, incoming| {
            match incoming {
                Incoming::Reply(message) => on_reply(message)?,
                Incoming::End(e) => end = e,
            }
            Ok(())
        })?;
        match end {
            End::Done => Ok(()),
            End::Refused { errno, detail } => Err(Error::Kernel {
                what: what(),
                errno,
                detail,
            }),
        }
    }

    /// Runs a dump (`NLM_F_DUMP`) and returns its messages. A dump the
    /// kernel marks as interrupted by a concurrent change is run again.
    pub(super) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..DUMP_TRIES {
            self.out.clear();
            let seq = self.queue(netlink_packet_core::NLM_F_DUMP, message.clone());
            self.send(what)?;
            let mut end = End::Done;
            let mut replies = Vec::new();
            let interrupted = self.receive(seq, 1, what, &mut |_, incoming| {
                match incoming {
                    Incoming::Reply(message) => replies.push(message),
                    Incoming::End(e) => end = e,
                }
                Ok(())
            })?;
            if let End::Refused { errno, detail } = end {
                return Err(Error::Kernel {
                    what: what(),
                    errno,
                    detail,
                });
            }
            if !interrupted {
                return Ok(replies);
            }
        }
        Err(Error::Kernel {
            what: what(),
            errno: Errno::EINTR,
            detail: Some(format!(
                "the dump was interrupted by concurrent changes {DUMP_TRIES} times"
            )),
        })
    }

    /// Reads until the `count` requests from sequence number `first` on
    /// have ended, giving each of their messages to `on`. Messages of other
    /// sequence numbers (left over from an earlier call that failed half
    /// way) are skipped. Returns whether a dump said it was interrupted.
    pub(super) fn receive(
        &mut self,
        first: u32,
        count: u32,
        what: &dyn Fn() -> String,
        on: &mut dyn FnMut(u32, Incoming) -> Result<()>,
    ) -> Result<bool> {
        let mut open = count;
        let mut interrupted = false;
        while open > 0 {
            self.receive_datagram(what)?;
            let mut offset = 0;
            while offset < self.input.len() {
                let decode = |reason: String| Error::Decode {
                    what: what(),
                    reason,
                };
                let buffer = NetlinkBuffer::new_checked(&self.input[offset..])
                    .map_err(|e| decode(e.to_string()))?;
                let len = buffer.length() as usize;
                let seq = buffer.sequence_number();
                offset += align(len);
                if seq.wrapping_sub(first) >= count {
                    continue;
                }
                let flags = buffer.flags();
                let payload = buffer.payload();
                match buffer.message_type() {
                    NLMSG_NOOP => {}
                    NLMSG_OVERRUN => return Err(decode("overrun".into())),
                    kind @ (NLMSG_ERROR | NLMSG_DONE) => {
                        let end = parse_end(kind == NLMSG_ERROR, flags, payload).map_err(decode)?;
                        open = open.saturating_sub(1);
                        on(seq, Incoming::End(end))?;
                    }
                    _ => {
                        interrupted |= flags & NLM_F_DUMP_INTR != 0;
                        let header =
                            NetlinkHeader::parse(&buffer).map_err(|e| decode(e.to_string()))?;
                        let message = RouteNetlinkMessage::deserialize(&header, payload)
                            .map_err(|e| decode(e.to_string()))?;
                        on(seq, Incoming::Reply(message))?;
                    }
                }
            }
        }
        Ok(interrupted)
    }

    fn receive_datagram(&mut self, what: &dyn Fn() -> String) -> Result<()> {
        loop {
            self.input.clear();
            match self.socket.recv(&mut self.input, libc::MSG_TRUNC) {
                Ok(n) if n > self.input.len() => {
                    return Err(Error::Decode {
                        what: what(),
                        reason: format!(
                            "a datagram of {n} bytes is larger than {RECEIVE_BUFFER} bytes"
                        ),
                    });
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        what: what(),
                        source,
                    });
                }
            }
        }
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Netlink messages start on 4-byte boundaries.
fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads the end of a request from the payload of an `NLMSG_ERROR` (`error`)
/// or `NLMSG_DONE`: a negative errno (or 0), then for an error the request's
/// header (or the whole request when the ack is not capped), then the
/// extended ack attributes when `NLM_F_ACK_TLVS` is set.
pub(super) fn parse_end(
    error: bool,
    flags: u16,
    payload: &[u8],
) -> std::result::Result<End, String> {
    let code = payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        // The kernel may send an empty NLMSG_DONE.
        .unwrap_or(0);
    if code == 0 {
        return Ok(End::Done);
    }
    if code > 0 {
        return Err(format!("positive error code {code}"));
    }
    let errno = Errno::from_raw(code.saturating_neg());
    let detail = match (flags & NLM_F_ACK_TLVS != 0, error) {
        (false, _) => None,
        (true, true) => extended_ack_message(flags, &payload[4..]),
        (true, false) => kernel_message(&payload[4..]),
    };
    Ok(End::Refused { errno, detail })
}

/// The kernel's message in the extended ack of an `NLMSG_ERROR`, if any.
/// `rest` follows the error code: the original request (its header only
/// when capped), then attributes.
fn extended_ack_message(flags: u16, rest: &[u8]) -> Option<String> {
    let request_len = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        let len = rest.get(..4)?.try_into().ok().map(u32::from_ne_bytes)?;
        align(len as usize)
    };
    kernel_message(rest.get(request_len..)?)
}

/// The `NLMSGERR_ATTR_MSG` among extended ack attributes.
fn kernel_message(attributes: &[u8]) -> Option<String> {
    NlasIterator::new(attributes)
        .filter_map(|nla: std::result::Result<NlaBuffer<&[u8]>, _>| nla.ok())
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let text = value.split(|&b| b == 0).next().unwrap_or(value);
            String::from_utf8_lossy(text).trim().to_owned()
        })
        .filter(|message| !message.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_payload(code: i32, request: &[u8], attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = code.to_ne_bytes().to_vec();
        out.extend_from_slice(request);
        for (kind, value) in attributes {
            let len = 4 + value.len();
            out.extend_from_slice(&(len as u16).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(value);
            out.resize(align(out.len()), 0);
        }
        out
    }

    fn request_header(len: u32) -> Vec<u8> {
        let mut h = len.to_ne_bytes().to_vec();
        h.extend_from_slice(&[0; 12]);
        h
    }

    #[test]
    fn an_ack_is_done() {
        assert_eq!(
            parse_end(true, 0, &error_payload(0, &request_header(16), &[])),
            Ok(End::Done)
        );
        // An NLMSG_DONE may come without a payload.
        assert_eq!(parse_end(false, 0, &[]), Ok(End::Done));
    }

    #[test]
    fn a_refusal_keeps_its_errno() {
        let payload = error_payload(-libc::EEXIST, &request_header(40), &[]);
        assert_eq!(
            parse_end(true, 0, &payload),
            Ok(End::Refused {
                errno: Errno::EEXIST,
                detail: None
            })
        );
    }

    #[test]
    fn a_capped_extended_ack_gives_the_kernels_message() {
        let payload = error_payload(
            -libc::EINVAL,
            &request_header(80),
            &[
                (2, &7u32.to_ne_bytes()),
                (1, b"Invalid MTU 70000 requested\0"),
            ],
        );
        assert_eq!(
            parse_end(true, NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload),
            Ok(End::Refused {
                errno: Errno::EINVAL,
                detail: Some("Invalid MTU 70000 requested".into())
            })
        );
    }

    #[test]
    fn an_uncapped_extended_ack_skips_the_whole_request() {
        let mut request = request_header(22);
        request.extend_from_slice(&[0xff; 6]);
        request.resize(align(request.len()), 0);
        let payload = error_payload(-libc::ENODEV, &request, &[(1, b"no such device\0")]);
        assert_eq!(
            parse_end(true, NLM_F_ACK_TLVS, &payload),
            Ok(End::Refused {
                errno: Errno::ENODEV,
                detail: Some("no such device".into())
            })
        );
    }

    #[test]
    fn a_failed_dump_may_explain_itself() {
        let payload = error_payload(-libc::EMSGSIZE, &[], &[(1, b"too big\0")]);
        assert_eq!(
            parse_end(false, NLM_F_ACK_TLVS, &payload),
            Ok(End::Refused {
                errno: Errno::EMSGSIZE,
                detail: Some("too big".into())
            })
        );
    }

    #[test]
    fn a_truncated_extended_ack_is_no_message() {
        let payload = error_payload(-libc::EPERM, &request_header(16)[..8], &[]);
        assert_eq!(
            parse_end(true, NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload),
            Ok(End::Refused {
                errno: Errno::EPERM,
                detail: None
            })
        );
    }

    #[test]
    fn queued_requests_are_aligned_and_numbered() {
        let mut netlink = Netlink::open().expect("a netlink socket");
        let a = netlink.queue(0, RouteNetlinkMessage::GetLink(Default::default()));
        let b = netlink.queue(0, RouteNetlinkMessage::GetLink(Default::default()));
        assert_eq!(b, a.wrapping_add(1));
        assert_eq!(netlink.out.len(), 2 * 32);
        let first = NetlinkBuffer::new_checked(&netlink.out[..]).unwrap();
        assert_eq!(first.length(), 32);
        assert_eq!(first.sequence_number(), a);
        assert_eq!(first.flags(), NLM_F_REQUEST);
    }
}
