//! The resolver's loop: one thread polling its UDP socket, its TCP
//! listener and connections, the sockets of the forwarded queries and a
//! signalfd (SIGTERM and SIGINT end it).
//!
//! Nothing in the loop waits: sockets are non-blocking, an upstream's
//! answer is just one more readable socket, and the poll wakes up for the
//! next deadline (an upstream's time, an idle connection, the check that
//! the names file still exists, every [`CHECK_EVERY`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::answer::{self, Decision};
use super::cidr::Cidr;
use super::forward::{Client, Forwarder, Relay};
use super::names::NamesFile;
use super::query::{Malformed, Query, Rcode};
use super::tcp::{self, Conn, Input, MAX_QUERY};

/// How often the loop checks that the names file still exists when no
/// query makes it look.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The most TCP connections at once; a new one closes the one idle longest.
pub const MAX_CONNS: usize = 32;

/// The most forwarded queries of one TCP connection at once; it is not
/// read meanwhile.
const MAX_IN_FLIGHT_PER_CONN: usize = 8;

/// The most datagrams, connections or TCP queries taken in one turn, so
/// that every socket gets its turn.
const BATCH: usize = 32;

/// UDP answers made here stay within the size every client takes (the
/// resolver does not speak EDNS); a longer one is cut and flagged, and the
/// client asks again over TCP.
const UDP_ANSWER_LEN: usize = 512;
const TCP_ANSWER_LEN: usize = 65535;

/// What the resolver is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen, UDP and TCP; port 0 picks a port free for both.
    pub listen: SocketAddr,
    /// The names file.
    pub names: PathBuf,
    /// The servers to forward to; none: every forwarded query fails.
    pub upstreams: Vec<SocketAddr>,
    /// The networks answered; empty: everyone.
    pub allow: Vec<Cidr>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot read the names file {}: {source}", path.display())]
    Names { path: PathBuf, source: io::Error },
    #[error("cannot take SIGTERM and SIGINT: {0}")]
    Signals(Errno),
}

/// Why the resolver stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM or SIGINT.
    Signal,
    /// The names file was deleted: the network is gone.
    NamesGone,
}

/// The part that answers queries, apart from the sockets they come on.
struct Resolver {
    names: NamesFile,
    forwarder: Forwarder,
    allow: Vec<Cidr>,
    /// The names file was found deleted.
    gone: bool,
}

enum Outcome {
    Answer(Vec<u8>),
    Forwarded,
    Nothing,
}

impl Resolver {
    fn allowed(&self, peer: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(peer))
    }

    fn handle(
        &mut self,
        msg: &[u8],
        client: Client,
        peer: IpAddr,
        max_len: usize,
        now: Instant,
    ) -> Outcome {
        let allowed = self.allowed(peer);
        let query = match Query::parse(msg) {
            Ok(query) => query,
            Err(Malformed::Answer(answer)) if allowed => return Outcome::Answer(answer),
            Err(_) => return Outcome::Nothing,
        };
        if !allowed {
            return Outcome::Answer(query.error(msg, Rcode::Refused));
        }
        if self.names.refresh().is_err() {
            self.gone = true;
        }
        match answer::decide(&query, msg, self.names.names(), peer, max_len) {
            Decision::Answer(answer) => Outcome::Answer(answer),
            Decision::Forward => match self.forwarder.start(client, msg, &query, now) {
                Ok(()) => Outcome::Forwarded,
                Err(answer) => Outcome::Answer(answer),
            },
        }
    }
}

pub struct Server {
    udp: UdpSocket,
    listener: TcpListener,
    signals: SignalFd,
    resolver: Resolver,
    conns: Vec<Conn>,
    next_conn_id: u64,
}

impl Server {
    /// Reads the names file and binds the sockets; the resolver answers
    /// as soon as this returns (queries wait in the sockets until
    /// [`Self::run`]). SIGTERM and SIGINT are blocked in the calling
    /// thread, the resolver's only one, and taken through a signalfd.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.thread_block().map_err(StartError::Signals)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(StartError::Signals)?;

        let names = NamesFile::open(&config.names).map_err(|source| StartError::Names {
            path: config.names.clone(),
            source,
        })?;
        let (udp, listener) = listen(config.listen).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        Ok(Server {
            udp,
            listener,
            signals,
            resolver: Resolver {
                names,
                forwarder: Forwarder::new(config.upstreams),
                allow: config.allow,
                gone: false,
            },
            conns: Vec::new(),
            next_conn_id: 0,
        })
    }

    /// Where the resolver listens (the port chosen, for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves until a signal or the names file's deletion.
    pub fn run(mut self) -> io::Result<Stop> {
        // One receive buffer for every datagram: an upstream's answer may
        // be as long as the client's EDNS size. Its pages are only touched
        // by long messages.
        let mut buf = vec![0u8; 65536];
        let mut next_check = Instant::now() + CHECK_EVERY;
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            match self.wait(self.timeout(now, next_check), &mut ready) {
                Ok(()) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let now = Instant::now();
            let is_ready = |flags: &PollFlags| !flags.is_empty();
            if is_ready(&ready[0]) {
                return Ok(Stop::Signal);
            }
            let (conns_ready, upstreams_ready) = ready[3..].split_at(self.conns.len());

            // Upstream answers, from the last socket to the first: a query
            // that ends moves only those after it.
            for index in (0..upstreams_ready.len()).rev() {
                if is_ready(&upstreams_ready[index])
                    && let Some(relay) = self.resolver.forwarder.readable(index, &mut buf, now)
                {
                    self.deliver(relay);
                }
            }
            for relay in self.resolver.forwarder.expire(now) {
                self.deliver(relay);
            }
            if is_ready(&ready[1]) {
                self.serve_udp(&mut buf, now);
            }
            self.serve_tcp(conns_ready, now);
            if is_ready(&ready[2]) {
                self.accept(now);
            }
            if now >= next_check {
                next_check = now + CHECK_EVERY;
                if self.resolver.names.refresh().is_err() {
                    self.resolver.gone = true;
                }
            }
            if self.resolver.gone {
                return Ok(Stop::NamesGone);
            }
        }
    }

    /// Polls everything, and tells what each descriptor is ready for: the
    /// signalfd, the UDP socket, the listener, the connections in order,
    /// the forwarded queries' sockets in order.
    fn wait(&self, timeout: PollTimeout, ready: &mut Vec<PollFlags>) -> nix::Result<()> {
        let forwarder = &self.resolver.forwarder;
        let mut fds = Vec::with_capacity(3 + self.conns.len() + forwarder.len());
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.udp.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        for conn in &self.conns {
            let mut events = PollFlags::empty();
            if conn.open_for_reading() && conn.in_flight < MAX_IN_FLIGHT_PER_CONN {
                events |= PollFlags::POLLIN;
            }
            if conn.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(conn.stream.as_fd(), events));
        }
        fds.extend(forwarder.fds().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        poll(&mut fds, timeout)?;
        ready.clear();
        ready.extend(
            fds.iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty())),
        );
        Ok(())
    }

    /// Until the next deadline, rounded up to the millisecond.
    fn timeout(&self, now: Instant, next_check: Instant) -> PollTimeout {
        let wake = self
            .conns
            .iter()
            .map(|conn| conn.last_active + tcp::IDLE)
            .chain(self.resolver.forwarder.next_deadline())
            .fold(next_check, Instant::min);
        let micros = wake.saturating_duration_since(now).as_micros();
        PollTimeout::from(u16::try_from(micros.div_ceil(1000)).unwrap_or(u16::MAX))
    }

    fn deliver(&mut self, relay: Relay) {
        match relay.client {
            Client::Udp(addr) => {
                // A full socket buffer drops the answer: the client asks again.
                let _ = self.udp.send_to(&relay.answer, addr);
            }
            Client::Tcp(id) => {
                if let Some(conn) = self.conns.iter_mut().find(|conn| conn.id == id) {
                    conn.in_flight = conn.in_flight.saturating_sub(1);
                    if !conn.queue(&relay.answer) {
                        conn.closing = true;
                    }
                }
            }
        }
    }

    fn serve_udp(&mut self, buf: &mut [u8], now: Instant) {
        for _ in 0..BATCH {
            let (len, peer) = match self.udp.recv_from(buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors of earlier answers and the like: go on.
                Err(_) => continue,
            };
            if len > MAX_QUERY {
                continue;
            }
            let msg = &buf[..len];
            match self
                .resolver
                .handle(msg, Client::Udp(peer), peer.ip(), UDP_ANSWER_LEN, now)
            {
                Outcome::Answer(answer) => {
                    let _ = self.udp.send_to(&answer, peer);
                }
                Outcome::Forwarded | Outcome::Nothing => {}
            }
        }
    }

    /// Reads, answers and writes the connections, and closes those that
    /// are done, broken or idle. `ready` is what the poll said of each.
    fn serve_tcp(&mut self, ready: &[PollFlags], now: Instant) {
        for index in (0..self.conns.len()).rev() {
            let conn = &mut self.conns[index];
            let revents = ready.get(index).copied().unwrap_or(PollFlags::empty());
            // Reset, or shut both ways: nobody to answer any more.
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                conn.closing = true;
            }
            let may_read =
                revents.contains(PollFlags::POLLIN) && conn.open_for_reading() && !conn.closing;
            if may_read {
                for _ in 0..BATCH {
                    if conn.in_flight >= MAX_IN_FLIGHT_PER_CONN {
                        break;
                    }
                    let msg = match conn.read(now) {
                        Input::Message(msg) => msg,
                        Input::Nothing => break,
                        Input::Close => {
                            conn.closing = true;
                            break;
                        }
                    };
                    let client = Client::Tcp(conn.id);
                    match self
                        .resolver
                        .handle(&msg, client, conn.peer, TCP_ANSWER_LEN, now)
                    {
                        Outcome::Answer(answer) => {
                            if !conn.queue(&answer) {
                                conn.closing = true;
                                break;
                            }
                        }
                        Outcome::Forwarded => conn.in_flight += 1,
                        Outcome::Nothing => {}
                    }
                }
            }
            if conn.wants_write() && !conn.closing && !conn.flush(now) {
                conn.closing = true;
            }
            let idle = now.saturating_duration_since(conn.last_active) >= tcp::IDLE;
            if conn.closing || idle || conn.finished() {
                let conn = self.conns.swap_remove(index);
                self.resolver.forwarder.forget(Client::Tcp(conn.id));
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..BATCH {
            let (stream, peer) = match self.listener.accept() {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The connection went before it was taken, or no
                // descriptor is left: try the next one.
                Err(_) => continue,
            };
            if self.conns.len() >= MAX_CONNS
                && let Some(oldest) =
                    (0..self.conns.len()).min_by_key(|&i| self.conns[i].last_active)
            {
                let conn = self.conns.swap_remove(oldest);
                self.resolver.forwarder.forget(Client::Tcp(conn.id));
            }
            self.next_conn_id += 1;
            if let Ok(conn) = Conn::new(self.next_conn_id, stream, peer.ip(), now) {
                self.conns.push(conn);
            }
        }
    }
}

/// Binds UDP and TCP on the address; for port 0, on a port free for both.
fn listen(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut tries = 0;
    let (udp, listener) = loop {
        let udp = UdpSocket::bind(addr)?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((addr.ip(), port)) {
            Ok(listener) => break (udp, listener),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse && tries < 16 => {
                tries += 1
            }
            Err(e) => return Err(e),
        }
    };
    udp.set_nonblocking(true)?;
    listener.set_nonblocking(true)?;
    Ok((udp, listener))
}
