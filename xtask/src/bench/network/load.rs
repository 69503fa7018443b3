//! A small HTTP/1.0 load client: a few threads, each sending `GET` on a
//! new connection as soon as the previous answer is read whole, until a
//! number of requests was sent or a time passed, whichever comes first.
//! An answer counts when its status is 200 and its body is
//! [`BODY_LEN`] bytes: a port that answers with something else (another
//! server, an error page) is not timed as a fast one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The size of the file the server serves.
pub const BODY_LEN: usize = 512;
/// The file's path on the server.
pub const PATH: &str = "/index.html";

/// A connection or an answer taking longer fails.
const TIMEOUT: Duration = Duration::from_secs(2);
/// A thread stops after this many failures in a row.
const FAILURES_IN_A_ROW: u32 = 20;

/// How much one load run sends and within what bounds.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub threads: u32,
    pub requests: u64,
    pub time: Duration,
}

/// What one load run got.
#[derive(Debug)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    /// From the first connection to the last answer.
    pub seconds: f64,
    pub first_error: Option<String>,
}

impl Outcome {
    /// Answers per second; an error when any request failed.
    pub fn rate(&self) -> Result<f64, String> {
        match &self.first_error {
            Some(e) => Err(format!(
                "{} of {} requests failed: {e}",
                self.failed,
                self.ok + self.failed
            )),
            None if self.ok == 0 => Err("no request was sent".to_owned()),
            None => Ok(self.ok as f64 / self.seconds),
        }
    }
}

/// Loads `addr` within `bounds`.
pub fn run(addr: SocketAddr, bounds: Bounds) -> Outcome {
    let sent = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + bounds.time;
    let results: Vec<Worker> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..bounds.threads.max(1))
            .map(|_| scope.spawn(|| worker(addr, &sent, bounds.requests, deadline)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| Worker {
                    failed: 1,
                    first_error: Some("a client thread panicked".to_owned()),
                    ..Worker::default()
                })
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    Outcome {
        ok: results.iter().map(|w| w.ok).sum(),
        failed: results.iter().map(|w| w.failed).sum(),
        seconds,
        first_error: results.into_iter().find_map(|w| w.first_error),
    }
}

/// One request, untimed: `Ok` once `addr` answers as it should.
pub fn probe(addr: SocketAddr) -> Result<(), String> {
    get(addr)
}

#[derive(Default)]
struct Worker {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

fn worker(addr: SocketAddr, sent: &AtomicU64, requests: u64, deadline: Instant) -> Worker {
    let mut me = Worker::default();
    let mut in_a_row = 0;
    while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < requests {
        match get(addr) {
            Ok(()) => {
                me.ok += 1;
                in_a_row = 0;
            }
            Err(e) => {
                me.failed += 1;
                me.first_error.get_or_insert(e);
                in_a_row += 1;
                if in_a_row >= FAILURES_IN_A_ROW {
                    break;
                }
            }
        }
    }
    me
}

/// `GET PATH HTTP/1.0` on a new connection, its answer read to the end
/// (the server closes it) and checked.
fn get(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    stream
        .write_all(format!("GET {PATH} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .map_err(io)?;
    let mut answer = Vec::with_capacity(1024);
    stream.read_to_end(&mut answer).map_err(io)?;
    check(&answer).map_err(|e| format!("{addr}: {e}"))
}

/// A 200 with a body of [`BODY_LEN`] bytes.
fn check(answer: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().unwrap_or("");
    let mut words = status.split_whitespace();
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Err(format!("no HTTP status line in {:?}", first_bytes(&text)));
    };
    if !version.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("answered {status:?}"));
    }
    let body = text
        .split_once("\r\n\r\n")
        .map_or(0, |(_, body)| body.len());
    if body != BODY_LEN {
        return Err(format!("a body of {body} bytes, not {BODY_LEN}"));
    }
    Ok(())
}

fn first_bytes(text: &str) -> &str {
    let end = text.char_indices().nth(80).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers `connections` requests with `answer`.
    fn serve(answer: Vec<u8>, connections: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.expect("accept");
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request);
                stream.write_all(&answer).expect("write");
            }
        });
        (addr, server)
    }

    fn ok_answer() -> Vec<u8> {
        let mut answer = b"HTTP/1.0 200 OK\r\nContent-Length: 512\r\n\r\n".to_vec();
        answer.extend([b'0'; BODY_LEN]);
        answer
    }

    #[test]
    fn counts_answers_up_to_the_request_bound() {
        let (addr, server) = serve(ok_answer(), 10);
        let bounds = Bounds {
            threads: 2,
            requests: 10,
            time: Duration::from_secs(10),
        };
        let outcome = run(addr, bounds);
        server.join().expect("server");
        assert_eq!(outcome.ok, 10, "{outcome:?}");
        assert!(outcome.rate().expect("rate") > 0.0);
    }

    #[test]
    fn a_wrong_answer_is_a_failure() {
        let (addr, server) = serve(b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(), 1);
        let err = probe(addr).expect_err("404");
        server.join().expect("server");
        assert!(err.contains("404"), "{err}");
        assert!(check(b"HTTP/1.1 200 OK\r\n\r\nshort").is_err());
        assert!(check(&ok_answer()).is_ok());
    }
}
