//! Relaying the queries that are not ours to the upstream servers, without
//! ever waiting for them.
//!
//! Each forwarded query gets a UDP socket of its own, connected to the
//! upstream it is trying (so the kernel picks a random source port and
//! drops datagrams from anyone else), and a random id; the answer must
//! carry that id and the same question, and goes back to the client with
//! the client's id. The upstream servers are tried in turn, each for its
//! share of [`TIMEOUT`]; a server that refuses (ICMP unreachable, SERVFAIL,
//! REFUSED) hands over to the next at once. When none is left the client
//! gets SERVFAIL. At most [`MAX_PENDING`] queries are in flight; past that,
//! and when there is no upstream at all, SERVFAIL straight away.
//!
//! Queries that came over TCP are forwarded over UDP too: an answer the
//! upstream truncates reaches the client truncated.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::query::{self, HEADER_LEN, Query, Rcode};

/// How long a client waits for the upstream servers, all of them together.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The most queries waiting for an upstream at once.
pub const MAX_PENDING: usize = 128;

/// The most upstream servers used (resolv.conf allows 3).
pub const MAX_UPSTREAMS: usize = 8;

/// Who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Udp(SocketAddr),
    /// A TCP connection, by its id.
    Tcp(u64),
}

/// An answer to send to a client.
#[derive(Debug)]
pub struct Relay {
    pub client: Client,
    pub answer: Vec<u8>,
}

struct Pending {
    client: Client,
    client_id: u16,
    /// The query as sent upstream (with our id).
    query: Vec<u8>,
    question_end: usize,
    /// Connected to `upstreams[tried - 1]`.
    socket: UdpSocket,
    tried: usize,
    /// When to move on to the next upstream, or give up.
    deadline: Instant,
}

pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    pending: Vec<Pending>,
}

impl Forwarder {
    pub fn new(mut upstreams: Vec<SocketAddr>) -> Forwarder {
        upstreams.truncate(MAX_UPSTREAMS);
        Forwarder {
            upstreams,
            pending: Vec::new(),
        }
    }

    /// Sends a query on its way; `Err` holds the answer to give at once
    /// (SERVFAIL) when it cannot be forwarded.
    pub fn start(
        &mut self,
        client: Client,
        msg: &[u8],
        query: &Query,
        now: Instant,
    ) -> Result<(), Vec<u8>> {
        if self.pending.len() >= MAX_PENDING {
            return Err(query.error(msg, Rcode::ServFail));
        }
        let mut sent = msg.to_vec();
        query::set_id(&mut sent, random_id());
        let Some((tried, socket)) = send_from(&self.upstreams, 0, &sent) else {
            return Err(query.error(msg, Rcode::ServFail));
        };
        self.pending.push(Pending {
            client,
            client_id: query.id,
            query: sent,
            question_end: query.question_end,
            socket,
            tried,
            deadline: now + self.share(),
        });
        Ok(())
    }

    /// How long each upstream has to answer.
    fn share(&self) -> Duration {
        TIMEOUT / self.upstreams.len().max(1) as u32
    }

    /// The sockets to wait on, in the order of the indexes that
    /// [`Self::readable`] takes.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pending.iter().map(|p| p.socket.as_fd())
    }

    /// The earliest time something must happen.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Reads the socket of the `index`-th query (as [`Self::fds`] listed
    /// them): the answer to relay, if this ends the query. A query that
    /// ends is removed, which moves only the queries after it: walk the
    /// ready sockets from the last to the first.
    pub fn readable(&mut self, index: usize, buf: &mut [u8], now: Instant) -> Option<Relay> {
        let share = self.share();
        let pending = self.pending.get_mut(index)?;
        let answer = loop {
            match pending.socket.recv(buf) {
                Ok(len) if is_answer_to(&buf[..len], pending) => break Some(len),
                Ok(_) => continue, // Not ours: keep waiting.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Refused (ICMP) or another error: this upstream is done.
                Err(_) => break None,
            }
        };
        let failed = answer.is_none_or(|len| {
            let rcode = query::rcode_of(&buf[..len]);
            rcode == Rcode::ServFail as u16 || rcode == Rcode::Refused as u16
        });
        if failed && pending.move_on(&self.upstreams, now + share) {
            return None;
        }
        let pending = self.pending.remove(index);
        let answer = match answer {
            Some(len) => {
                let mut answer = buf[..len].to_vec();
                query::set_id(&mut answer, pending.client_id);
                answer
            }
            None => pending.servfail(),
        };
        Some(Relay {
            client: pending.client,
            answer,
        })
    }

    /// Moves on the queries whose upstream did not answer in time; those
    /// with no upstream left end in SERVFAIL.
    pub fn expire(&mut self, now: Instant) -> Vec<Relay> {
        let share = self.share();
        let mut relays = Vec::new();
        let mut index = 0;
        while let Some(pending) = self.pending.get_mut(index) {
            if pending.deadline > now || pending.move_on(&self.upstreams, now + share) {
                index += 1;
                continue;
            }
            let pending = self.pending.remove(index);
            relays.push(Relay {
                client: pending.client,
                answer: pending.servfail(),
            });
        }
        relays
    }

    /// Forgets the queries of a TCP connection that closed.
    pub fn forget(&mut self, client: Client) {
        self.pending.retain(|p| p.client != client);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Pending {
    /// Sends the query to the next upstream that takes it, to answer by
    /// `deadline`; false when none is left.
    fn move_on(&mut self, upstreams: &[SocketAddr], deadline: Instant) -> bool {
        let Some((tried, socket)) = send_from(upstreams, self.tried, &self.query) else {
            return false;
        };
        self.tried = tried;
        self.socket = socket;
        self.deadline = deadline;
        true
    }

    fn servfail(&self) -> Vec<u8> {
        let mut answer = query::error_answer(&self.query, self.question_end, Rcode::ServFail);
        query::set_id(&mut answer, self.client_id);
        answer
    }
}

/// Whether a datagram answers the query: a response with its id and its
/// question (any case; upstreams may answer an error without question).
fn is_answer_to(answer: &[u8], pending: &Pending) -> bool {
    if answer.len() < HEADER_LEN
        || !query::is_response(answer)
        || query::id_of(answer) != query::id_of(&pending.query)
    {
        return false;
    }
    match query::qdcount_of(answer) {
        0 => query::rcode_of(answer) != Rcode::NoError as u16,
        1 => {
            let question = &pending.query[HEADER_LEN..pending.question_end];
            answer
                .get(HEADER_LEN..pending.question_end)
                .is_some_and(|theirs| theirs.eq_ignore_ascii_case(question))
        }
        _ => false,
    }
}

/// Sends the query to the upstreams from `from` on, until one takes it:
/// how many were tried, and the socket it was sent on.
fn send_from(upstreams: &[SocketAddr], from: usize, query: &[u8]) -> Option<(usize, UdpSocket)> {
    let mut tried = from;
    for &upstream in upstreams.get(from..)? {
        tried += 1;
        if let Ok(socket) = send_to(upstream, query) {
            return Some((tried, socket));
        }
    }
    None
}

/// A fresh socket connected to the upstream, the query sent on it.
fn send_to(upstream: SocketAddr, query: &[u8]) -> io::Result<UdpSocket> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0))?;
    socket.connect(upstream)?;
    socket.set_nonblocking(true)?;
    socket.send(query)?;
    Ok(socket)
}

/// A query id nobody can guess.
fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // getrandom(2) for two bytes cannot fail once the pool is ready; the
    // fallback only matters on a kernel that cannot give randomness.
    // SAFETY: the buffer is valid for its length.
    let got = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if got != 2 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_ne_bytes(id)
}

/// The `nameserver` lines of a resolv.conf (port 53), without `skip` (the
/// resolver's own address: asking itself would loop).
pub fn upstreams_from_resolv_conf(text: &str, skip: SocketAddr) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|addr| addr.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .filter(|&addr| addr != skip)
        .take(MAX_UPSTREAMS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Packet, QCLASS, Question, TYPE};

    fn query_bytes(name: &str) -> Vec<u8> {
        let mut packet = Packet::new_query(0x4242);
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            TYPE::A.into(),
            QCLASS::CLASS(simple_dns::CLASS::IN),
            false,
        ));
        packet.build_bytes_vec().unwrap()
    }

    fn fake_upstream() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    /// Waits for the forwarder's only socket to be readable and reads it.
    fn wait_relay(forwarder: &mut Forwarder) -> Option<Relay> {
        let mut buf = vec![0; 65536];
        for _ in 0..500 {
            if let Some(relay) = forwarder.readable(0, &mut buf, Instant::now()) {
                return Some(relay);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    #[test]
    fn answers_go_back_with_the_clients_id() {
        let upstream = fake_upstream();
        let mut forwarder = Forwarder::new(vec![upstream.local_addr().unwrap()]);
        let msg = query_bytes("example.org");
        let client = Client::Udp("127.0.0.1:9".parse().unwrap());
        forwarder
            .start(client, &msg, &Query::parse(&msg).unwrap(), Instant::now())
            .unwrap();

        let mut buf = [0; 512];
        let (len, from) = upstream.recv_from(&mut buf).unwrap();
        let relayed = &buf[..len];
        assert_eq!(relayed[2..], msg[2..], "relayed as is, but for the id");
        // A stray answer with another id is ignored; the right one is relayed.
        let mut answer = relayed.to_vec();
        answer[2] |= 0x80;
        answer.extend_from_slice(b"tail");
        let mut stray = answer.clone();
        stray[0] ^= 0xff;
        upstream.send_to(&stray, from).unwrap();
        upstream.send_to(&answer, from).unwrap();

        let relay = wait_relay(&mut forwarder).unwrap();
        assert_eq!(relay.client, client);
        assert_eq!(relay.answer[..2], msg[..2]);
        assert_eq!(relay.answer[2..], answer[2..]);
        assert!(forwarder.is_empty());
    }

    #[test]
    fn a_refusing_upstream_hands_over_to_the_next() {
        let dead = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // closed: ICMP
        let upstream = fake_upstream();
        upstream.set_nonblocking(true).unwrap();
        let mut forwarder = Forwarder::new(vec![dead, upstream.local_addr().unwrap()]);
        let msg = query_bytes("example.org");
        let client = Client::Tcp(1);
        forwarder
            .start(client, &msg, &Query::parse(&msg).unwrap(), Instant::now())
            .unwrap();
        // The refusal is read on the first socket; the query then goes to the live one.
        let mut buf = vec![0; 65536];
        let (len, from) = (0..500)
            .find_map(|_| {
                assert!(forwarder.readable(0, &mut buf, Instant::now()).is_none());
                std::thread::sleep(Duration::from_millis(2));
                upstream.recv_from(&mut buf).ok()
            })
            .unwrap();
        let mut answer = buf[..len].to_vec();
        answer[2] |= 0x80;
        upstream.send_to(&answer, from).unwrap();
        let relay = wait_relay(&mut forwarder).unwrap();
        assert_eq!(relay.client, client);
        assert_eq!(query::id_of(&relay.answer), 0x4242);
    }

    #[test]
    fn silence_ends_in_servfail() {
        let upstream = fake_upstream();
        let mut forwarder = Forwarder::new(vec![upstream.local_addr().unwrap()]);
        let msg = query_bytes("example.org");
        let start = Instant::now();
        let client = Client::Udp("127.0.0.1:9".parse().unwrap());
        forwarder
            .start(client, &msg, &Query::parse(&msg).unwrap(), start)
            .unwrap();
        assert!(forwarder.expire(start + TIMEOUT / 2).is_empty());
        let relays = forwarder.expire(start + TIMEOUT);
        assert_eq!(relays.len(), 1);
        assert_eq!(query::rcode_of(&relays[0].answer), Rcode::ServFail as u16);
        assert_eq!(query::id_of(&relays[0].answer), 0x4242);
        assert!(forwarder.is_empty());
    }

    #[test]
    fn without_upstreams_or_room_the_answer_is_servfail() {
        let msg = query_bytes("example.org");
        let query = Query::parse(&msg).unwrap();
        let client = Client::Tcp(3);
        let answer = Forwarder::new(vec![])
            .start(client, &msg, &query, Instant::now())
            .unwrap_err();
        assert_eq!(query::rcode_of(&answer), Rcode::ServFail as u16);

        let upstream = fake_upstream();
        let mut forwarder = Forwarder::new(vec![upstream.local_addr().unwrap()]);
        for _ in 0..MAX_PENDING {
            forwarder
                .start(client, &msg, &query, Instant::now())
                .unwrap();
        }
        assert_eq!(forwarder.len(), MAX_PENDING);
        assert!(
            forwarder
                .start(client, &msg, &query, Instant::now())
                .is_err()
        );
        forwarder.forget(client);
        assert!(forwarder.is_empty());
    }

    #[test]
    fn resolv_conf_nameservers() {
        let own: SocketAddr = "10.88.0.1:53".parse().unwrap();
        let text = "# generated\nsearch lan\nnameserver 127.0.0.53\nnameserver  fd00::1\n\
                    nameserver 10.88.0.1\nnameserver bogus\noptions edns0\nnameserver\n";
        assert_eq!(
            upstreams_from_resolv_conf(text, own),
            [
                "127.0.0.53:53".parse().unwrap(),
                "[fd00::1]:53".parse::<SocketAddr>().unwrap()
            ]
        );
    }
}
