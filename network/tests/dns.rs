//! The real `muelle-dns` on loopback: names and aliases, the names file
//! changing under it, forwarding, refusals, TCP, hostile input, its ends
//! and its start errors; busybox's nslookup, as the integration tests use
//! it. Every resolver started here is killed when its test ends, passed
//! or failed.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use simple_dns::rdata::{A, RData};
use simple_dns::{
    CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE,
};

use network::dns::{Scoped, write_names};

const BIN: &str = env!("CARGO_BIN_EXE_muelle-dns");

const NAMES: &str = "10.88.0.2 web www\n10.88.0.3 db\n10.88.0.4 api\n10.88.0.5 api\n";

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

/// A running resolver, killed on drop.
struct Resolver {
    child: Child,
    addr: SocketAddr,
    names: PathBuf,
    /// From spawn to the ready line.
    startup: Duration,
    _dir: tempfile::TempDir,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a resolver that did not start ended.
#[derive(Debug)]
struct Failed {
    status: ExitStatus,
    ready: String,
    stderr: String,
}

impl Resolver {
    /// On 127.0.0.1, a port chosen by the resolver, with these names.
    fn start(names: &str, args: &[&str]) -> Resolver {
        Resolver::try_start("127.0.0.1:0", Some(names), args).expect("the resolver starts")
    }

    /// Spawns the resolver with `--ready-fd 3` and waits for its line;
    /// `names` None leaves the names file missing.
    fn try_start(listen: &str, names: Option<&str>, args: &[&str]) -> Result<Resolver, Failed> {
        let dir = tempfile::tempdir().unwrap();
        let names_path = dir.path().join("names");
        if let Some(text) = names {
            fs::write(&names_path, text).unwrap();
        }
        let (mut reader, writer) = io::pipe().unwrap();
        let fd = writer.as_raw_fd();
        let mut command = Command::new(BIN);
        command
            .args(["--listen", listen, "--names"])
            .arg(&names_path)
            .args(args)
            .args(["--ready-fd", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: dup2 and fcntl are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let moved = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if moved == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = Instant::now();
        let child = command.spawn().unwrap();
        drop(writer);
        let mut resolver = Resolver {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            names: names_path,
            startup: Duration::ZERO,
            _dir: dir,
        };
        let mut ready = String::new();
        {
            let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
            let polled = poll(&mut fds, PollTimeout::from(10_000u16)).unwrap();
            assert_eq!(polled, 1, "no word from the resolver in 10 s");
        }
        reader.read_to_string(&mut ready).unwrap();
        resolver.startup = spawned.elapsed();
        let Some(port) = ready
            .strip_suffix('\n')
            .and_then(|port| port.parse::<u16>().ok())
        else {
            let status = resolver.wait_exit(Duration::from_secs(5)).expect("it ends");
            let mut stderr = String::new();
            if let Some(mut pipe) = resolver.child.stderr.take() {
                pipe.read_to_string(&mut stderr).unwrap();
            }
            return Err(Failed {
                status,
                ready,
                stderr,
            });
        };
        resolver.addr = SocketAddr::new(listen.parse::<SocketAddr>().unwrap().ip(), port);
        Ok(resolver)
    }

    /// Its exit status, if it ends within `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn udp(&self, msg: &[u8]) -> Vec<u8> {
        udp_exchange(self.addr, msg)
    }

    fn tcp(&self, msg: &[u8]) -> Vec<u8> {
        tcp_exchange(self.addr, msg)
    }

    /// An A question over UDP.
    fn ask(&self, name: &str) -> Reply {
        let msg = query(name, TYPE_A);
        let reply = Reply::read(&self.udp(&msg));
        assert_eq!(reply.id, id_of(&msg));
        reply
    }
}

static NEXT_ID: AtomicU16 = AtomicU16::new(0x100);

fn id_of(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[0], msg[1]])
}

fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut packet = Packet::new_query(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(TYPE::from(qtype)),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet.build_bytes_vec().unwrap()
}

fn udp_exchange(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    udp_exchange_from(ip("127.0.0.1"), addr, msg)
}

/// A query sent from `source` (any of 127.0.0.0/8 works on loopback).
fn udp_exchange_from(source: Ipv4Addr, addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind((source, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.connect(addr).unwrap();
    socket.send(msg).unwrap();
    let mut buf = vec![0; 65536];
    let len = socket.recv(&mut buf).expect("an answer within 5 s");
    buf.truncate(len);
    buf
}

fn tcp_exchange(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    stream.write_all(&framed).unwrap();
    let mut len = [0; 2];
    stream.read_exact(&mut len).unwrap();
    let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).unwrap();
    answer
}

/// What an answer says.
#[derive(Debug)]
struct Reply {
    id: u16,
    rcode: RCODE,
    authoritative: bool,
    addrs: Vec<Ipv4Addr>,
    ptrs: Vec<String>,
}

impl Reply {
    fn read(bytes: &[u8]) -> Reply {
        let packet = Packet::parse(bytes).unwrap();
        assert!(packet.has_flags(PacketFlag::RESPONSE));
        let mut reply = Reply {
            id: packet.id(),
            rcode: packet.rcode(),
            authoritative: packet.has_flags(PacketFlag::AUTHORITATIVE_ANSWER),
            addrs: vec![],
            ptrs: vec![],
        };
        for record in &packet.answers {
            match &record.rdata {
                RData::A(a) => reply.addrs.push(a.address.into()),
                RData::PTR(ptr) => reply.ptrs.push(ptr.0.to_string()),
                other => panic!("unexpected record {other:?}"),
            }
        }
        reply
    }
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

#[test]
fn names_and_aliases_in_any_case_with_or_without_the_search_domain() {
    let resolver = Resolver::start(NAMES, &[]);
    for name in [
        "web",
        "www",
        "WeB",
        "web.dns.muelle",
        "Www.DNS.Muelle.",
        "web.",
    ] {
        let reply = resolver.ask(name);
        assert_eq!(
            (reply.rcode, reply.authoritative),
            (RCODE::NoError, true),
            "{name}"
        );
        assert_eq!(reply.addrs, [ip("10.88.0.2")], "{name}");
    }
    assert_eq!(resolver.ask("db").addrs, [ip("10.88.0.3")]);
    assert_eq!(
        resolver.ask("api").addrs,
        [ip("10.88.0.4"), ip("10.88.0.5")]
    );

    let reply = Reply::read(&resolver.udp(&query("web", TYPE_AAAA)));
    assert_eq!((reply.rcode, reply.addrs.len()), (RCODE::NoError, 0));
    let reply = Reply::read(&resolver.udp(&query("3.0.88.10.in-addr.arpa", TYPE_PTR)));
    assert_eq!(reply.ptrs, ["db"]);

    for (name, qtype) in [
        ("x.dns.muelle", TYPE_A),
        ("x.dns.muelle", TYPE_AAAA),
        ("a.web.dns.muelle", TYPE_A),
    ] {
        let reply = Reply::read(&resolver.udp(&query(name, qtype)));
        assert_eq!(
            (reply.rcode, reply.authoritative),
            (RCODE::NameError, true),
            "{name}"
        );
    }
}

#[test]
fn tcp_gets_the_same_answers() {
    let resolver = Resolver::start(NAMES, &[]);
    let msg = query("api.dns.muelle", TYPE_A);
    let reply = Reply::read(&resolver.tcp(&msg));
    assert_eq!(reply.id, id_of(&msg));
    assert_eq!(reply.addrs, [ip("10.88.0.4"), ip("10.88.0.5")]);

    // Several queries on one connection, the second before the first answer is read.
    let mut stream = TcpStream::connect(resolver.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = Vec::new();
    for name in ["web", "x.dns.muelle"] {
        let msg = query(name, TYPE_A);
        framed.extend_from_slice(&u16::try_from(msg.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&msg);
    }
    stream.write_all(&framed).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answers = Vec::new();
    stream.read_to_end(&mut answers).unwrap();
    let first_len = usize::from(u16::from_be_bytes([answers[0], answers[1]]));
    let first = Reply::read(&answers[2..2 + first_len]);
    let second = Reply::read(&answers[4 + first_len..]);
    assert_eq!(first.addrs, [ip("10.88.0.2")]);
    assert_eq!(second.rcode, RCODE::NameError);
}

#[test]
fn the_answers_follow_the_names_file() {
    let resolver = Resolver::start(NAMES, &[]);
    assert_eq!(resolver.ask("web").addrs, [ip("10.88.0.2")]);
    // The engine's writer: a temporary file renamed over the names.
    for last in 10..30u8 {
        let addr = Ipv4Addr::new(10, 88, 1, last);
        write_names(&resolver.names, &[(addr, vec!["web".into()])], &[]).unwrap();
        assert_eq!(resolver.ask("web").addrs, [addr], "after write {last}");
    }
    assert_eq!(resolver.ask("db.dns.muelle").rcode, RCODE::NameError);
    write_names(&resolver.names, &[], &[]).unwrap();
    assert_eq!(resolver.ask("web.dns.muelle").rcode, RCODE::NameError);
}

#[test]
fn scoped_names_are_answered_to_their_asker_only() {
    let resolver = Resolver::start(NAMES, &[]);
    let scoped = |asker: &str, address: &str, name: &str| Scoped {
        asker: ip(asker),
        address: ip(address),
        names: vec![name.into()],
    };
    write_names(
        &resolver.names,
        &[(ip("10.88.0.2"), vec!["web".into()])],
        &[
            scoped("127.0.0.1", "10.89.0.2", "cache"),
            scoped("127.0.0.1", "10.89.0.3", "web"),
            scoped("127.0.0.3", "10.89.0.4", "cache"),
        ],
    )
    .unwrap();
    let ask_from = |source: &str, name: &str| {
        Reply::read(&udp_exchange_from(
            ip(source),
            resolver.addr,
            &query(name, TYPE_A),
        ))
    };
    let reply = ask_from("127.0.0.1", "cache");
    assert_eq!(
        (reply.rcode, reply.addrs),
        (RCODE::NoError, vec![ip("10.89.0.2")])
    );
    assert_eq!(
        ask_from("127.0.0.1", "web.dns.muelle").addrs,
        [ip("10.88.0.2"), ip("10.89.0.3")]
    );
    let reply = Reply::read(&resolver.tcp(&query("cache", TYPE_A)));
    assert_eq!(reply.addrs, [ip("10.89.0.2")], "over TCP too");

    let reply = ask_from("127.0.0.2", "cache.dns.muelle");
    assert_eq!((reply.rcode, reply.addrs), (RCODE::NameError, vec![]));
    assert_eq!(ask_from("127.0.0.2", "web").addrs, [ip("10.88.0.2")]);
    assert_eq!(ask_from("127.0.0.3", "cache").addrs, [ip("10.89.0.4")]);
}

/// A fake upstream: answers `count` A questions with 192.0.2.7 (with the
/// id it was asked with), and tells the ids it saw.
fn fake_upstream(count: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<u16>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut ids = Vec::new();
        let mut buf = [0; 4096];
        for _ in 0..count {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let asked = Packet::parse(&buf[..len]).unwrap();
            ids.push(asked.id());
            let mut reply = Packet::new_reply(asked.id());
            reply.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
            let question = asked.questions[0].clone();
            let rdata = RData::A(A {
                address: ip("192.0.2.7").into(),
            });
            reply.answers.push(ResourceRecord::new(
                question.qname.clone(),
                CLASS::IN,
                60,
                rdata,
            ));
            reply.questions.push(question);
            socket
                .send_to(&reply.build_bytes_vec().unwrap(), from)
                .unwrap();
        }
        ids
    });
    (addr, handle)
}

#[test]
fn other_names_are_forwarded_and_the_answer_keeps_the_clients_id() {
    let (upstream, seen) = fake_upstream(2);
    let resolver = Resolver::start(NAMES, &["--upstream", &upstream.to_string()]);

    let msg = query("example.org", TYPE_A);
    let reply = Reply::read(&resolver.udp(&msg));
    assert_eq!(reply.id, id_of(&msg));
    assert_eq!((reply.rcode, reply.authoritative), (RCODE::NoError, false));
    assert_eq!(reply.addrs, [ip("192.0.2.7")]);

    let msg = query("Example.Net", TYPE_A);
    let reply = Reply::read(&resolver.tcp(&msg));
    assert_eq!(reply.id, id_of(&msg));
    assert_eq!(reply.addrs, [ip("192.0.2.7")]);

    // Our names never reach the upstream.
    assert_eq!(resolver.ask("web").addrs, [ip("10.88.0.2")]);
    assert_eq!(resolver.ask("nobody.dns.muelle").rcode, RCODE::NameError);
    assert_eq!(seen.join().unwrap().len(), 2);
}

#[test]
fn without_an_upstream_forwarded_queries_fail_at_once() {
    // No --upstream, and a resolv.conf without nameserver.
    let resolver = Resolver::start(NAMES, &["--resolv-conf", "/nonexistent/resolv.conf"]);
    let asked = Instant::now();
    let msg = query("example.org", TYPE_A);
    let reply = Reply::read(&resolver.udp(&msg));
    assert_eq!((reply.id, reply.rcode), (id_of(&msg), RCODE::ServerFailure));
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(Reply::read(&resolver.tcp(&msg)).rcode, RCODE::ServerFailure);
    assert_eq!(resolver.ask("web").addrs, [ip("10.88.0.2")]);
}

#[test]
fn a_silent_upstream_fails_after_two_seconds() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = Resolver::start(
        NAMES,
        &["--upstream", &silent.local_addr().unwrap().to_string()],
    );
    let asked = Instant::now();
    let msg = query("example.org", TYPE_A);
    let reply = Reply::read(&resolver.udp(&msg));
    let waited = asked.elapsed();
    assert_eq!((reply.id, reply.rcode), (id_of(&msg), RCODE::ServerFailure));
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[test]
fn other_networks_are_refused() {
    let resolver = Resolver::start(NAMES, &["--allow", "10.0.0.0/8"]);
    let msg = query("web", TYPE_A);
    for answer in [resolver.udp(&msg), resolver.tcp(&msg)] {
        let reply = Reply::read(&answer);
        assert_eq!((reply.id, reply.rcode), (id_of(&msg), RCODE::Refused));
        assert!(reply.addrs.is_empty());
    }
    let allowed = Resolver::start(NAMES, &["--allow", "10.0.0.0/8", "--allow", "127.0.0.0/8"]);
    assert_eq!(allowed.ask("web").addrs, [ip("10.88.0.2")]);
}

#[test]
fn hostile_input_does_not_kill_it() {
    let mut resolver = Resolver::start(NAMES, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let valid = query("web", TYPE_A);
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 11],
        vec![0xff; 12],
        vec![0xff; 4096],
        vec![0; 9000],
    ];
    // Every cut of a valid query, answers posing as queries, absurd counts,
    // a compression loop.
    junk.extend((0..valid.len()).map(|len| valid[..len].to_vec()));
    let mut answer = valid.clone();
    answer[2] |= 0x80;
    junk.push(answer);
    let mut counts = valid.clone();
    counts[4..12].fill(0xff);
    junk.push(counts);
    let mut pointer = valid[..12].to_vec();
    pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    junk.push(pointer);
    // Random bytes, from a fixed seed.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let len = (seed % 600) as usize;
        let bytes = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        junk.push(bytes);
    }
    for msg in &junk {
        socket.send_to(msg, resolver.addr).unwrap();
    }
    // Over TCP: a length too long, a zero length, bytes and a hang-up,
    // and more connections than the resolver keeps.
    for bytes in [&[0xff, 0xff, 1, 2, 3][..], &[0, 0], &[0, 40, 1, 2, 3]] {
        let mut stream = TcpStream::connect(resolver.addr).unwrap();
        stream.write_all(bytes).unwrap();
    }
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(resolver.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    assert!(resolver.running());
    assert_eq!(Reply::read(&resolver.tcp(&valid)).addrs, [ip("10.88.0.2")]);
    assert_eq!(resolver.ask("web").addrs, [ip("10.88.0.2")]);
    drop(idle);
    assert!(resolver.running());
}

#[test]
fn deleting_the_names_file_ends_it() {
    let mut resolver = Resolver::start(NAMES, &[]);
    fs::remove_file(&resolver.names).unwrap();
    let removed = Instant::now();
    let status = resolver
        .wait_exit(Duration::from_secs(2))
        .expect("it ends within 2 s");
    assert!(status.success(), "{status:?}");
    eprintln!(
        "exited {:?} after the names file was deleted",
        removed.elapsed()
    );
}

#[test]
fn sigterm_and_sigint_end_it_with_status_0() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut resolver = Resolver::start(NAMES, &[]);
        kill(resolver.pid(), signal).unwrap();
        let status = resolver
            .wait_exit(Duration::from_secs(1))
            .expect("it ends at once");
        assert_eq!(status.code(), Some(0), "{signal}");
    }
}

fn start_failure(listen: &str, names: Option<&str>, args: &[&str]) -> Failed {
    let failed = Resolver::try_start(listen, names, args)
        .err()
        .expect("the start fails");
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert_eq!(failed.ready, "", "nothing on the ready descriptor");
    assert!(failed.stderr.starts_with("muelle-dns: "), "{failed:?}");
    failed
}

#[test]
fn start_errors_are_one_line_and_status_1() {
    let failed = start_failure("127.0.0.1:0", None, &[]);
    assert!(
        failed.stderr.contains("cannot read the names file"),
        "{failed:?}"
    );
    assert_eq!(failed.stderr.lines().count(), 1);

    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let failed = start_failure(&taken.local_addr().unwrap().to_string(), Some(NAMES), &[]);
    assert!(
        failed.stderr.contains("cannot listen on 127.0.0.1:"),
        "{failed:?}"
    );
    assert!(failed.stderr.contains("in use"), "{failed:?}");
    assert_eq!(failed.stderr.lines().count(), 1);

    let failed = start_failure("127.0.0.1:0", Some(NAMES), &["--allow", "10.0.0.0/33"]);
    assert!(failed.stderr.contains("not a network"), "{failed:?}");
}

fn busybox() -> Option<&'static str> {
    Path::new("/bin/busybox").exists().then_some("/bin/busybox")
}

/// `busybox nslookup NAME SERVER`: its output, and whether it succeeded.
fn nslookup(name: &str, server: &str) -> (bool, String) {
    let output = Command::new(busybox().unwrap())
        .args(["nslookup", name, server])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn busybox_nslookup_resolves_names_on_a_port() {
    if busybox().is_none() {
        eprintln!("skipped: no /bin/busybox");
        return;
    }
    let resolver = Resolver::start(NAMES, &["--resolv-conf", "/nonexistent"]);
    let server = resolver.addr.to_string();
    let (ok, text) = nslookup("web", &server);
    assert!(ok && text.contains("Address: 10.88.0.2"), "{text}");
    let (ok, text) = nslookup("api.dns.muelle", &server);
    assert!(
        ok && text.contains("Address: 10.88.0.4") && text.contains("Address: 10.88.0.5"),
        "{text}"
    );
    let (ok, text) = nslookup("nobody.dns.muelle", &server);
    assert!(!ok && text.contains("NXDOMAIN"), "{text}");
}

/// As the integration tests will: port 53 of 127.0.0.1, in a network
/// namespace of this test's own (a thread that unshared it; the resolver
/// and nslookup are its children).
#[test]
fn busybox_nslookup_resolves_names_on_port_53_in_a_private_namespace() {
    if busybox().is_none() {
        eprintln!("skipped: no /bin/busybox");
        return;
    }
    let outcome = std::thread::spawn(|| {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            return Err(format!(
                "skipped: cannot unshare the network namespace: {e}"
            ));
        }
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        if !up.is_ok_and(|status| status.success()) {
            return Err("skipped: `ip link set lo up` failed".to_owned());
        }
        let resolver = Resolver::try_start(
            "127.0.0.1:53",
            Some(NAMES),
            &["--resolv-conf", "/nonexistent"],
        )
        .expect("the resolver starts on port 53");
        assert_eq!(resolver.addr.port(), 53);
        let (ok, text) = nslookup("web", "127.0.0.1");
        assert!(ok && text.contains("Address: 10.88.0.2"), "{text}");
        let (ok, text) = nslookup("db.dns.muelle", "127.0.0.1");
        assert!(ok && text.contains("Address: 10.88.0.3"), "{text}");
        Ok(())
    })
    .join()
    .unwrap();
    if let Err(skipped) = outcome {
        eprintln!("{skipped}");
    }
}

/// Prints the time from spawn to ready (median of 20) and the idle RSS;
/// fails only when they are far off.
#[test]
fn startup_time_and_idle_memory() {
    let mut times: Vec<Duration> = (0..20)
        .map(|_| Resolver::start(NAMES, &[]).startup)
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "spawn to ready: median {median:?}, min {:?}, max {:?}",
        times[0],
        times[times.len() - 1]
    );
    assert!(median < Duration::from_millis(500), "{median:?}");

    let resolver = Resolver::start(NAMES, &["--resolv-conf", "/nonexistent"]);
    for name in ["web", "api", "example.org", "x.dns.muelle"] {
        resolver.ask(name);
    }
    resolver.tcp(&query("web", TYPE_A));
    std::thread::sleep(Duration::from_millis(100));
    let status = fs::read_to_string(format!("/proc/{}/status", resolver.child.id())).unwrap();
    let rss = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    eprintln!("idle {rss}");
    let kib: u64 = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(kib < 16 * 1024, "{rss}");
}
