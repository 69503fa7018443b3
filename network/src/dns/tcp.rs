//! DNS over TCP: each message preceded by its length in two octets.
//!
//! A connection holds what it read of the next query and the answers the
//! client has not read yet, both bounded: a query longer than
//! [`MAX_QUERY`] or answers piling up past [`MAX_OUTPUT`] close it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

/// The longest query taken, over UDP or TCP (queries hold one question and
/// a few options; a name is at most 255 octets).
pub const MAX_QUERY: usize = 4096;

/// The most answer bytes waiting for a client that does not read.
const MAX_OUTPUT: usize = 2 * (2 + 65535);

/// A connection that says nothing for this long is closed (RFC 7766
/// suggests seconds).
pub const IDLE: Duration = Duration::from_secs(10);

pub struct Conn {
    pub id: u64,
    pub stream: TcpStream,
    pub peer: IpAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The client closed its side: answer what it asked, then close.
    eof: bool,
    pub last_active: Instant,
    /// How many of its queries wait for an upstream.
    pub in_flight: usize,
    /// To be closed: broken, or reading too slowly.
    pub closing: bool,
}

/// What reading a connection gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A whole query (without its length).
    Message(Vec<u8>),
    /// Nothing more for now.
    Nothing,
    /// The connection must be closed: an error, or a query too long.
    Close,
}

impl Conn {
    pub fn new(id: u64, stream: TcpStream, peer: IpAddr, now: Instant) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        Ok(Conn {
            id,
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            eof: false,
            last_active: now,
            in_flight: 0,
            closing: false,
        })
    }

    /// Reads until a whole query is in or the socket has nothing more.
    /// Call again after a `Message`: more may be buffered.
    pub fn read(&mut self, now: Instant) -> Input {
        loop {
            if let Some(message) = self.take_message() {
                return message;
            }
            if self.eof {
                return Input::Nothing;
            }
            let mut chunk = [0u8; 1024];
            // Never read past the message in progress: `input` stays
            // under MAX_QUERY + 2.
            let want = self.wanted().clamp(1, chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => self.eof = true,
                Ok(len) => {
                    self.input.extend_from_slice(&chunk[..len]);
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Nothing,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Close,
            }
        }
    }

    /// How many more octets the message in progress needs.
    fn wanted(&self) -> usize {
        match self.input.as_slice() {
            [high, low, body @ ..] => {
                usize::from(u16::from_be_bytes([*high, *low])).saturating_sub(body.len())
            }
            partial => 2 - partial.len(),
        }
    }

    fn take_message(&mut self) -> Option<Input> {
        let [high, low, body @ ..] = self.input.as_slice() else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*high, *low]));
        if len == 0 || len > MAX_QUERY {
            return Some(Input::Close);
        }
        if body.len() < len {
            return None;
        }
        let message = body.to_vec();
        self.input.clear();
        Some(Input::Message(message))
    }

    /// Queues an answer; false (close it) if the client reads too slowly.
    pub fn queue(&mut self, answer: &[u8]) -> bool {
        let Ok(len) = u16::try_from(answer.len()) else {
            return true; // Cannot be sent over DNS; dropped.
        };
        if self.output.len() + 2 + answer.len() > MAX_OUTPUT {
            return false;
        }
        self.output.extend_from_slice(&len.to_be_bytes());
        self.output.extend_from_slice(answer);
        true
    }

    /// Writes what the socket takes; false on an error (close it).
    pub fn flush(&mut self, now: Instant) -> bool {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return false,
                Ok(len) => {
                    self.output.drain(..len);
                    self.last_active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.output.is_empty() {
            // Give the memory of a large answer back.
            self.output.shrink_to(512);
        }
        true
    }

    /// Whether the connection waits to write.
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Whether the client may still send queries.
    pub fn open_for_reading(&self) -> bool {
        !self.eof
    }

    /// Whether the connection has nothing left to do: the client closed
    /// its side, everything was answered and written.
    pub fn finished(&self) -> bool {
        self.eof && self.in_flight == 0 && self.output.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        (
            Conn::new(1, server, peer.ip(), Instant::now()).unwrap(),
            client,
        )
    }

    fn read_until(conn: &mut Conn, want: impl Fn(&Input) -> bool) -> Input {
        for _ in 0..500 {
            let input = conn.read(Instant::now());
            if want(&input) {
                return input;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("nothing came");
    }

    #[test]
    fn messages_are_split_by_their_length() {
        let (mut conn, mut client) = pair();
        assert_eq!(conn.read(Instant::now()), Input::Nothing);
        // Two messages in one write, the second cut in its length.
        client.write_all(&[0, 3, b'a', b'b', b'c', 0]).unwrap();
        let first = read_until(&mut conn, |i| *i != Input::Nothing);
        assert_eq!(first, Input::Message(b"abc".to_vec()));
        assert_eq!(conn.read(Instant::now()), Input::Nothing);
        client.write_all(&[2, b'x', b'y']).unwrap();
        let second = read_until(&mut conn, |i| *i != Input::Nothing);
        assert_eq!(second, Input::Message(b"xy".to_vec()));
    }

    #[test]
    fn answers_are_framed() {
        let (mut conn, mut client) = pair();
        assert!(conn.queue(b"hello"));
        assert!(conn.wants_write());
        assert!(conn.flush(Instant::now()));
        assert!(!conn.wants_write());
        let mut got = [0; 7];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\0\x05hello");
    }

    #[test]
    fn the_end_of_the_client_finishes_the_connection() {
        let (mut conn, client) = pair();
        drop(client);
        for _ in 0..500 {
            conn.read(Instant::now());
            if !conn.open_for_reading() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(!conn.open_for_reading());
        assert!(conn.finished());
        conn.in_flight = 1;
        assert!(!conn.finished());
    }

    #[test]
    fn oversized_queries_and_slow_readers_close() {
        let (mut conn, mut client) = pair();
        client.write_all(&[0x10, 0x01]).unwrap(); // 4097 octets announced
        assert_eq!(
            read_until(&mut conn, |i| *i != Input::Nothing),
            Input::Close
        );

        let (mut conn, mut client) = pair();
        client.write_all(&[0, 0]).unwrap();
        assert_eq!(
            read_until(&mut conn, |i| *i != Input::Nothing),
            Input::Close
        );

        let answer = vec![0; 65535];
        assert!(conn.queue(&answer));
        assert!(conn.queue(&answer));
        assert!(!conn.queue(&answer));
    }
}
