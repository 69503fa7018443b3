//! Networks end to end: bridge networks, published ports, names, and
//! what clean-up leaves. Each instance runs in a network namespace of its
//! own (see `support`), which plays the host.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{IMAGE, code, instance, stderr, stdout};

/// The links of the instance's namespace whose names start with `prefix`.
fn links(instance: &support::Instance, prefix: &str) -> Vec<String> {
    let out = instance
        .host_command("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    stdout(&out)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Waits (10 s at most) until no container's veth is left: the kernel
/// takes them down with their namespaces, a moment after `rm`.
fn no_veths_left(instance: &support::Instance) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !veths(instance).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        veths(instance).is_empty(),
        "veths left: {:?}",
        veths(instance)
    );
}

/// An HTTP GET of `/` at `address:port` from the instance's "host".
fn http_get(instance: &support::Instance, address: Ipv4Addr, port: u16) -> std::io::Result<String> {
    instance.in_netns(|| get(address, port))
}

/// An HTTP GET of `/` at `address:port` from the caller's namespace.
fn get(address: Ipv4Addr, port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// A free TCP port of the instance's namespace.
fn free_port(instance: &support::Instance) -> u16 {
    instance.in_netns(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    })
}

/// Runs busybox httpd serving `text` as its index, detached.
fn httpd(instance: &support::Instance, args: &[&str], text: &str) -> String {
    httpd_of(instance, IMAGE, args, text)
}

/// `httpd` in a container of `image`.
fn httpd_of(instance: &support::Instance, image: &str, args: &[&str], text: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut all = vec!["run", "-d"];
    all.extend(args);
    all.extend([image, "sh", "-c", &script]);
    instance.ok(&all).trim().to_owned()
}

fn wait_for_http(instance: &support::Instance, address: Ipv4Addr, port: u16) -> String {
    wait_for_answer(|| http_get(instance, address, port), address, port)
}

/// Asks `fetch` (5 s at most) until an answer says 200 OK.
fn wait_for_answer(
    fetch: impl Fn() -> std::io::Result<String>,
    address: Ipv4Addr,
    port: u16,
) -> String {
    let mut last = None;
    for _ in 0..50 {
        match fetch() {
            Ok(answer) if answer.contains("200 OK") => return answer,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no answer from {address}:{port}: {last:?}");
}

#[test]
fn a_published_port_answers_on_127_0_0_1_and_port_lists_it() {
    let Some(instance) = instance() else { return };
    let port = free_port(&instance);
    let publish = format!("127.0.0.1:{port}:80");
    let id = httpd(&instance, &["-p", &publish], "hello-from-muelle");
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, port);
    assert!(answer.contains("hello-from-muelle"), "{answer}");
    assert_eq!(
        instance.ok(&["port", &id]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(
        instance.ok(&["ps", "--format", "{{.Ports}}"]),
        format!("127.0.0.1:{port}->80/tcp\n")
    );

    // The port is taken while the container runs: a second one fails
    // with docker's words and leaves nothing behind.
    let before = links(&instance, "mu");
    let out = instance.muelle(&["run", "-d", "-p", &publish, IMAGE, "sleep", "60"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "Bind for 127.0.0.1:{port} failed: port is already allocated"
        )),
        "{}",
        stderr(&out)
    );
    // A namespace's veths go with it, on the kernel's time.
    support::wait_until(|| links(&instance, "mu") == before);

    let rule = format!(". {port} ");
    assert!(
        nft_table(&instance).unwrap_or_default().contains(&rule),
        "{}",
        nft_table(&instance).unwrap_or_default()
    );
    instance.ok(&["rm", "-f", &id]);
    assert!(
        http_get(&instance, Ipv4Addr::LOCALHOST, port).is_err(),
        "still answering after rm"
    );
    assert!(
        !nft_table(&instance).unwrap_or_default().contains(&rule),
        "rule left: {}",
        nft_table(&instance).unwrap_or_default()
    );
    instance.remove_all_and_check();
    no_veths_left(&instance);
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_others_cannot_reach_them() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "front"]);
    instance.ok(&["network", "create", "back"]);
    httpd(
        &instance,
        &[
            "--network",
            "front",
            "--name",
            "web",
            "--network-alias",
            "www",
        ],
        "web",
    );
    let inspect = instance.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.front.IPAddress}}",
        "web",
    ]);
    let web_ip = inspect.trim().to_owned();
    assert!(web_ip.starts_with("10."), "{web_ip}");
    // Its address is its own while it runs.
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--ip",
        &web_ip,
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Address already in use"),
        "{}",
        stderr(&out)
    );

    // By name and by alias, from the same network.
    for name in ["web", "www", "web.dns.muelle"] {
        let out = instance.muelle(&["run", "--rm", "--network", "front", IMAGE, "nslookup", name]);
        assert_eq!(
            code(&out),
            0,
            "nslookup {name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains(&web_ip),
            "nslookup {name}: {}",
            stdout(&out)
        );
    }
    let fetch = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web 80";
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "front",
        IMAGE,
        "sh",
        "-c",
        fetch,
    ]);
    assert!(
        stdout(&out).contains("200 OK"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // Another network: no name, and no way through by address.
    let out = instance.muelle(&["run", "--rm", "--network", "back", IMAGE, "nslookup", "web"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    let by_ip = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {web_ip} 80");
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "back",
        IMAGE,
        "sh",
        "-c",
        &by_ip,
    ]);
    assert!(
        !stdout(&out).contains("200 OK"),
        "reached across networks: {}",
        stdout(&out)
    );

    // The default network resolves no names, as docker's.
    let out = instance.muelle(&["run", "--rm", IMAGE, "nslookup", "web"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));

    let out = instance.muelle(&["network", "rm", "front"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("has active endpoints"),
        "{}",
        stderr(&out)
    );
    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "front", "back"]);
    no_veths_left(&instance);
}

#[test]
fn twenty_parallel_runs_get_distinct_addresses_and_give_them_back() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.123.0.0/24", "many"]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    let out =
                        instance.muelle(&["run", "-d", "--network", "many", IMAGE, "sleep", "60"]);
                    assert_eq!(code(&out), 0, "{}", stderr(&out));
                    stdout(&out).trim().to_owned()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("run")).collect()
    });
    let mut addresses: Vec<String> = ids
        .iter()
        .map(|id| {
            // What the container itself sees on eth0.
            let out = instance.ok(&["exec", id, "sh", "-c", "ip -4 -o addr show eth0"]);
            let address = out.split_whitespace().nth(3).unwrap_or_default().to_owned();
            assert!(
                address.starts_with("10.123.0.") && address.ends_with("/24"),
                "{out}"
            );
            address
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(
        addresses.len(),
        20,
        "an address was handed out twice: {addresses:?}"
    );
    assert_eq!(
        links(&instance, "mu")
            .iter()
            .filter(|l| *l != "muelle-" && l.len() == 13)
            .count(),
        20
    );

    instance.remove_all_and_check();
    let inspect = instance.ok(&[
        "network",
        "inspect",
        "--format",
        "{{len .Containers}}",
        "many",
    ]);
    assert_eq!(inspect.trim(), "0");
    no_veths_left(&instance);
    // The addresses are free again: one more container gets the first.
    let id = instance.ok(&["run", "-d", "--network", "many", IMAGE, "sleep", "60"]);
    let out = instance.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.many.IPAddress}}",
        id.trim(),
    ]);
    assert_eq!(out.trim(), "10.123.0.2");
    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "many"]);
    let netns = std::fs::read_dir(instance.root().join("run/netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(netns, 0, "network namespaces left");
}

// ---- Helpers of the tests below ----

/// The host ends of containers' veths (`mu` and 11 characters; bridges are
/// `muelle0` and `muelle-` with 8).
fn veths(instance: &support::Instance) -> Vec<String> {
    links(instance, "mu")
        .into_iter()
        .filter(|l| l.len() == 13)
        .collect()
}

/// Nothing of a container is left on `network`: no veth, no namespace
/// file, no endpoint, no published port to an address starting `address`.
fn no_network_left(instance: &support::Instance, network: &str, address: &str, when: &str) {
    no_veths_left(instance);
    let netns = netns_files(instance);
    assert!(netns.is_empty(), "{when}: {netns:?}");
    let endpoints = field(
        instance,
        &["network", "inspect"],
        "{{len .Containers}}",
        network,
    );
    assert_eq!(endpoints, "0", "{when}");
    if let Some(table) = nft_table(instance) {
        assert!(!maps_to(&table, address), "{when}: {table}");
    }
}

/// The network namespaces muelle holds for its containers.
fn netns_files(instance: &support::Instance) -> Vec<String> {
    std::fs::read_dir(instance.root().join("run/netns"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// muelle's nftables table in the instance's namespace; `None` without nft.
fn nft_table(instance: &support::Instance) -> Option<String> {
    let out = instance
        .host_command("nft")
        .args(["list", "table", "ip", "muelle"])
        .output()
        .ok()?;
    Some(stdout(&out))
}

/// Whether a map element of muelle's table sends a port to an address
/// that starts with `address` (`... : 10.88.0.2 . 80`).
fn maps_to(table: &str, address: &str) -> bool {
    table.contains(&format!(": {address}"))
}

/// One `inspect --format` field of a container (or network, with
/// `network inspect`), trimmed.
fn field(instance: &support::Instance, verb: &[&str], format: &str, target: &str) -> String {
    let mut args = verb.to_vec();
    args.extend(["--format", format, target]);
    instance.ok(&args).trim().to_owned()
}

/// `muelle exec ID sh -c SCRIPT`.
fn exec(instance: &support::Instance, id: &str, script: &str) -> std::process::Output {
    instance.muelle(&["exec", id, "sh", "-c", script])
}

/// A GET of `address:80` from inside a container, through busybox nc.
fn fetch_script(address: &str) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} 80")
}

/// Runs `f` on a thread inside the network namespace `netns`.
fn in_ns<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in a network namespace")
    })
}

fn ip(cmd: &mut Command, args: &[&str]) {
    let out = cmd.args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", stderr(&out));
}

/// The instance's address on the link to `OtherHost`.
const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// `OtherHost`'s address.
const OTHER_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The instance's end of the link to `OtherHost`.
const OTHER_LINK: &str = "xhost0";

/// Another host: a network namespace of its own linked to the instance's
/// by a veth pair (`xhost0`, 192.0.2.1/24, on the instance's side; `eth0`,
/// 192.0.2.2/24, on the other). The pair and the namespace go on drop.
struct OtherHost<'a> {
    instance: &'a support::Instance,
    netns: OwnedFd,
}

impl<'a> OtherHost<'a> {
    fn new(instance: &'a support::Instance) -> OtherHost<'a> {
        let netns: OwnedFd = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            std::fs::File::open("/proc/thread-self/ns/net")
                .expect("the thread's network namespace")
                .into()
        })
        .join()
        .expect("netns thread");
        // `ip` in the instance's namespace puts the peer into the one of
        // this thread (by its id), which waits for it.
        in_ns(netns.as_fd(), || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() }.to_string();
            ip(
                &mut instance.host_command("ip"),
                &[
                    "link", "add", OTHER_LINK, "type", "veth", "peer", "name", "eth0", "netns",
                    &tid,
                ],
            );
        });
        let other = OtherHost { instance, netns };
        let host_ip = || instance.host_command("ip");
        ip(
            &mut host_ip(),
            &["addr", "add", "192.0.2.1/24", "dev", OTHER_LINK],
        );
        ip(&mut host_ip(), &["link", "set", OTHER_LINK, "up"]);
        other.run(|| {
            ip(&mut Command::new("ip"), &["link", "set", "lo", "up"]);
            ip(
                &mut Command::new("ip"),
                &["addr", "add", "192.0.2.2/24", "dev", "eth0"],
            );
            ip(&mut Command::new("ip"), &["link", "set", "eth0", "up"]);
        });
        other
    }

    /// Runs `f` on a thread on the other host.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        in_ns(self.netns.as_fd(), f)
    }
}

impl Drop for OtherHost<'_> {
    fn drop(&mut self) {
        let _ = self
            .instance
            .host_command("ip")
            .args(["link", "del", OTHER_LINK])
            .output();
    }
}

#[test]
fn published_ports_answer_another_host_and_the_hosts_own_address() {
    let Some(instance) = instance() else { return };
    let other = OtherHost::new(&instance);
    let port = free_port(&instance);
    let local_port = loop {
        let p = free_port(&instance);
        if p != port {
            break p;
        }
    };
    let everywhere = format!("{port}:80");
    let loopback = format!("127.0.0.1:{local_port}:80");
    let id = httpd(
        &instance,
        &["-p", &everywhere, "-p", &loopback],
        "seen-from-afar",
    );

    // From the other host, to the instance's address.
    let answer = wait_for_answer(|| other.run(|| get(HOST_ADDRESS, port)), HOST_ADDRESS, port);
    assert!(answer.contains("seen-from-afar"), "{answer}");
    // From the instance itself, on that same (non-loopback) address.
    let answer = wait_for_http(&instance, HOST_ADDRESS, port);
    assert!(answer.contains("seen-from-afar"), "{answer}");
    // The one published on 127.0.0.1 answers there, and only there.
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, local_port);
    assert!(answer.contains("seen-from-afar"), "{answer}");
    let afar = other.run(|| get(HOST_ADDRESS, local_port));
    assert!(
        afar.is_err(),
        "a 127.0.0.1 port reached from afar: {afar:?}"
    );
    let mut ports: Vec<String> = instance
        .ok(&["port", &id])
        .lines()
        .map(str::to_owned)
        .collect();
    ports.sort();
    let mut expected = vec![
        format!("80/tcp -> 0.0.0.0:{port}"),
        format!("80/tcp -> 127.0.0.1:{local_port}"),
    ];
    expected.sort();
    assert_eq!(ports, expected);

    instance.ok(&["rm", "-f", &id]);
    let after = other.run(|| get(HOST_ADDRESS, port));
    assert!(after.is_err(), "still answering after rm: {after:?}");
    instance.remove_all_and_check();
    drop(other);
    assert!(links(&instance, OTHER_LINK).is_empty(), "the test's veth");
    no_veths_left(&instance);
}

/// Imports the test image again as `name`, with `changes` applied.
fn import_with(instance: &support::Instance, name: &str, changes: &[&str]) {
    let tar = support::busybox_rootfs_tar().expect("busybox");
    let path = instance
        .root()
        .join(format!("{}.tar", name.replace('/', "_")));
    std::fs::write(&path, tar).expect("write the image's tar");
    let mut args = vec!["import", "--change", "CMD [\"sh\"]"];
    for change in changes {
        args.extend(["--change", change]);
    }
    args.extend([path.to_str().expect("utf-8"), name]);
    instance.ok(&args);
}

/// The host port of `port`'s only line (`80/tcp -> 0.0.0.0:PORT`).
fn host_port_of(line: &str) -> u16 {
    line.trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {line:?}"))
}

#[test]
fn free_host_ports_all_exposed_ports_ranges_and_udp_are_listed_and_held() {
    let Some(instance) = instance() else { return };

    // -p CONTAINER_PORT: a free host port, on every address.
    let id = httpd(&instance, &["-p", "80"], "any-port");
    let listed = instance.ok(&["port", &id]);
    assert!(listed.starts_with("80/tcp -> 0.0.0.0:"), "{listed}");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let port = host_port_of(&listed);
    assert_ne!(port, 0);
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, port);
    assert!(answer.contains("any-port"), "{answer}");
    assert_eq!(
        instance.ok(&["port", &id, "80"]),
        format!("0.0.0.0:{port}\n")
    );

    // -P: each port the image exposes.
    import_with(&instance, "localhost/exposing", &["EXPOSE 80"]);
    let all = httpd_of(&instance, "localhost/exposing", &["-P"], "exposed");
    let listed = instance.ok(&["port", &all]);
    assert!(listed.starts_with("80/tcp -> 0.0.0.0:"), "{listed}");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let exposed_port = host_port_of(&listed);
    assert_ne!(exposed_port, port);
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, exposed_port);
    assert!(answer.contains("exposed"), "{answer}");
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{.HostConfig.PublishAllPorts}}",
            &all
        ),
        "true"
    );

    // A range: one binding per port. (The instance's namespace is ours
    // alone: these ports are free.)
    let range = httpd(&instance, &["-p", "127.0.0.1:18080-18081:80-81"], "ranged");
    assert_eq!(
        instance.ok(&["port", &range]),
        "80/tcp -> 127.0.0.1:18080\n81/tcp -> 127.0.0.1:18081\n"
    );
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, 18080);
    assert!(answer.contains("ranged"), "{answer}");

    // UDP: listed as such, held, and mapped by the firewall.
    let udp = instance.ok(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1:18053:53/udp",
        IMAGE,
        "sleep",
        "60",
    ]);
    let udp = udp.trim();
    assert_eq!(instance.ok(&["port", udp]), "53/udp -> 127.0.0.1:18053\n");
    assert_eq!(instance.ok(&["port", udp, "53/udp"]), "127.0.0.1:18053\n");
    let out = instance.muelle(&["port", udp, "53"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No public port '53/tcp' published"),
        "{}",
        stderr(&out)
    );
    let taken = instance.in_netns(|| std::net::UdpSocket::bind("127.0.0.1:18053"));
    assert!(taken.is_err(), "the UDP host port is not held");
    if let Some(table) = nft_table(&instance) {
        assert!(table.contains("udp . 18053"), "{table}");
    }

    instance.remove_all_and_check();
    let free = instance.in_netns(|| std::net::UdpSocket::bind("127.0.0.1:18053").map(drop));
    assert!(free.is_ok(), "the UDP host port is still held: {free:?}");
    if let Some(table) = nft_table(&instance) {
        assert!(
            !table.contains("udp . 18053") && !table.contains("tcp . 18080"),
            "{table}"
        );
    }
}

/// A TCP server on its own thread: it says `reached` to each connection,
/// then closes it; it stops on drop.
struct Server {
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(listener: std::net::TcpListener) -> Server {
        listener.set_nonblocking(true).expect("nonblocking");
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (served, stop) = (served.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut connection, _)) => {
                            let _ = connection.write_all(b"reached\n");
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        });
        Server {
            served,
            stop,
            thread: Some(thread),
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn an_internal_network_joins_its_containers_and_nothing_else() {
    let Some(instance) = instance() else { return };
    let other = OtherHost::new(&instance);
    // Something outside to reach: a server on the other host that says
    // `reached` to each connection and closes it.
    let listener = other.run(|| std::net::TcpListener::bind((OTHER_ADDRESS, 0)).expect("listen"));
    let outside = listener.local_addr().expect("address").port();
    let reach_outside = format!("nc -w 3 {OTHER_ADDRESS} {outside} </dev/null");
    let server = Server::start(listener);

    instance.ok(&["network", "create", "--subnet", "10.127.1.0/24", "open"]);
    instance.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.127.2.0/24",
        "closed",
    ]);
    assert_eq!(
        field(
            &instance,
            &["network", "inspect"],
            "{{.Internal}}",
            "closed"
        ),
        "true"
    );

    // The control: a container on an ordinary network gets out.
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "open",
        IMAGE,
        "sh",
        "-c",
        &reach_outside,
    ]);
    assert!(
        stdout(&out).contains("reached"),
        "the open network did not get out: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(server.served(), 1);

    // On the internal network: each other, by name; no way out.
    httpd(
        &instance,
        &["--network", "closed", "--name", "inner"],
        "inner",
    );
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "closed",
        IMAGE,
        "sh",
        "-c",
        &fetch_script("inner"),
    ]);
    assert!(
        stdout(&out).contains("200 OK"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = instance.muelle(&["run", "--rm", "--network", "closed", IMAGE, "ip", "route"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains("default"), "{}", stdout(&out));
    assert!(stdout(&out).contains("10.127.2.0/24"), "{}", stdout(&out));
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "closed",
        IMAGE,
        "sh",
        "-c",
        &reach_outside,
    ]);
    assert!(
        !stdout(&out).contains("reached"),
        "reached out: {}",
        stdout(&out)
    );
    // Not even with a route of its own (through the gateway).
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "--cap-add",
        "NET_ADMIN",
        IMAGE,
        "sh",
        "-c",
        &format!("ip route add default via 10.127.2.1 && {reach_outside}"),
    ]);
    assert!(
        !stdout(&out).contains("reached"),
        "reached out: {}",
        stdout(&out)
    );
    assert_eq!(server.served(), 1, "the internal network got out");

    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "open", "closed"]);
    drop(other);
}

#[test]
fn connect_and_disconnect_change_a_running_containers_interfaces_and_names() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.127.3.0/24", "left"]);
    instance.ok(&["network", "create", "--subnet", "10.127.4.0/24", "right"]);
    httpd(
        &instance,
        &["--network", "right", "--name", "server"],
        "right",
    );
    let server_ip = field(
        &instance,
        &["inspect"],
        "{{.NetworkSettings.Networks.right.IPAddress}}",
        "server",
    );
    instance.ok(&[
        "run",
        "-d",
        "--network",
        "left",
        "--name",
        "client",
        IMAGE,
        "sleep",
        "120",
    ]);
    let out = exec(&instance, "client", "ip link show eth1");
    assert_ne!(code(&out), 0, "an eth1 before connect: {}", stdout(&out));
    // A connect that fails changes nothing.
    let out = instance.muelle(&[
        "network",
        "connect",
        "--ip",
        "10.127.9.9",
        "right",
        "client",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("invalid IP address 10.127.9.9"),
        "{}",
        stderr(&out)
    );
    let out = exec(&instance, "client", "ip link show eth1");
    assert_ne!(
        code(&out),
        0,
        "an eth1 after a failed connect: {}",
        stdout(&out)
    );
    assert_eq!(veths(&instance).len(), 2, "{:?}", veths(&instance));
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{len .NetworkSettings.Networks}}",
            "client"
        ),
        "1"
    );
    let out = instance.muelle(&["network", "connect", "nope", "client"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("network nope not found"),
        "{}",
        stderr(&out)
    );

    assert_eq!(instance.ok(&["network", "connect", "right", "client"]), "");
    let out = exec(&instance, "client", "ip -4 -o addr show eth1");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let address = stdout(&out)
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_owned();
    assert!(
        address.starts_with("10.127.4.") && address.ends_with("/24"),
        "{address}"
    );
    let address = address.trim_end_matches("/24").to_owned();
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{.NetworkSettings.Networks.right.IPAddress}}",
            "client"
        ),
        address
    );
    let on_right = field(
        &instance,
        &["network", "inspect"],
        "{{range .Containers}}{{.Name}} {{end}}",
        "right",
    );
    assert!(on_right.contains("client"), "{on_right}");
    // Names, through the network's resolver, both ways.
    let out = exec(&instance, "server", "nslookup client");
    assert!(
        code(&out) == 0 && stdout(&out).contains(&address),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = exec(&instance, "client", "nslookup server 10.127.4.1");
    assert!(
        code(&out) == 0 && stdout(&out).contains(&server_ip),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = exec(&instance, "client", &fetch_script(&server_ip));
    assert!(
        stdout(&out).contains("200 OK"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // And by bare name through its own resolv.conf, still left's resolver:
    // it answers the names of the client's other networks too.
    let out = exec(&instance, "client", "cat /etc/resolv.conf");
    assert!(
        stdout(&out).contains("nameserver 10.127.3.1"),
        "{}",
        stdout(&out)
    );
    let out = exec(&instance, "client", "nslookup server");
    assert!(
        code(&out) == 0 && stdout(&out).contains(&server_ip),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // Twice: refused.
    let out = instance.muelle(&["network", "connect", "right", "client"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("endpoint with name client already exists in network right"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        instance.ok(&["network", "disconnect", "right", "client"]),
        ""
    );
    let out = exec(&instance, "client", "ip link show eth1");
    assert_ne!(code(&out), 0, "eth1 after disconnect: {}", stdout(&out));
    let out = exec(&instance, "server", "nslookup client");
    assert_ne!(code(&out), 0, "still a name: {}", stdout(&out));
    let out = exec(&instance, "client", "nslookup server");
    assert_ne!(code(&out), 0, "still a name: {}", stdout(&out));
    let out = exec(&instance, "client", &fetch_script(&server_ip));
    assert!(!stdout(&out).contains("200 OK"), "{}", stdout(&out));
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{len .NetworkSettings.Networks}}",
            "client"
        ),
        "1"
    );
    let on_right = field(
        &instance,
        &["network", "inspect"],
        "{{range .Containers}}{{.Name}} {{end}}",
        "right",
    );
    assert_eq!(on_right, "server");
    assert_eq!(veths(&instance).len(), 2, "{:?}", veths(&instance));

    // Not on it: refused.
    let out = instance.muelle(&["network", "disconnect", "right", "client"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("container client is not connected to network right"),
        "{}",
        stderr(&out)
    );
    // And back: the same interface name, an address of the network.
    instance.ok(&["network", "connect", "right", "client"]);
    let out = exec(&instance, "client", "ip -4 -o addr show eth1");
    assert!(stdout(&out).contains("10.127.4."), "{}", stdout(&out));

    // A container of the default network (no resolver: the host's
    // servers) gets right's resolver at connect, and the host's back at
    // disconnect.
    instance.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "120"]);
    let host_conf = stdout(&exec(&instance, "plain", "cat /etc/resolv.conf"));
    assert!(!host_conf.contains("dns.muelle"), "{host_conf}");
    instance.ok(&["network", "connect", "right", "plain"]);
    let out = exec(&instance, "plain", "cat /etc/resolv.conf");
    assert!(
        stdout(&out).contains("search dns.muelle")
            && stdout(&out).contains("nameserver 10.127.4.1"),
        "{}",
        stdout(&out)
    );
    let out = exec(&instance, "plain", "nslookup server");
    assert!(
        code(&out) == 0 && stdout(&out).contains(&server_ip),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    instance.ok(&["network", "disconnect", "right", "plain"]);
    let out = exec(&instance, "plain", "cat /etc/resolv.conf");
    assert_eq!(stdout(&out), host_conf);

    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "left", "right"]);
    no_veths_left(&instance);
}

#[test]
fn network_container_shares_a_running_containers_namespace_only() {
    let Some(instance) = instance() else { return };
    let web = httpd(&instance, &["--name", "web"], "shared");
    let theirs = exec(&instance, &web, "ip addr");
    assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        IMAGE,
        "ip",
        "addr",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&theirs));
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        IMAGE,
        "sh",
        "-c",
        &fetch_script("127.0.0.1"),
    ]);
    assert!(
        stdout(&out).contains("200 OK") && stdout(&out).contains("shared"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(veths(&instance).len(), 1, "{:?}", veths(&instance));

    // Not running: docker's words, and nothing made for it.
    instance.ok(&["create", "--name", "idle", IMAGE, "sleep", "60"]);
    let out = instance.muelle(&["run", "--rm", "--network", "container:idle", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot join network of a non running container: idle"),
        "{}",
        stderr(&out)
    );
    let out = instance.muelle(&["run", "--rm", "--network", "container:nope", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No such container: nope"),
        "{}",
        stderr(&out)
    );
    assert_eq!(veths(&instance).len(), 1, "{:?}", veths(&instance));
    assert_eq!(
        netns_files(&instance).len(),
        1,
        "{:?}",
        netns_files(&instance)
    );

    instance.remove_all_and_check();
    assert!(
        netns_files(&instance).is_empty(),
        "{:?}",
        netns_files(&instance)
    );
}

#[test]
fn mac_ip_hosts_and_dns_flags_reach_the_container() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.127.5.0/24", "flags"]);
    let id = instance.ok(&[
        "run",
        "-d",
        "--network",
        "flags",
        "--ip",
        "10.127.5.50",
        "--mac-address",
        "02:42:AA:BB:CC:DD",
        "--hostname",
        "six",
        "--add-host",
        "db.example:10.1.2.3",
        IMAGE,
        "sleep",
        "60",
    ]);
    let id = id.trim();
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{.NetworkSettings.Networks.flags.IPAddress}} {{.NetworkSettings.Networks.flags.MacAddress}} {{.NetworkSettings.Networks.flags.Gateway}}",
            id
        ),
        "10.127.5.50 02:42:aa:bb:cc:dd 10.127.5.1"
    );
    let out = exec(
        &instance,
        id,
        "ip -o link show eth0; ip -4 -o addr show eth0",
    );
    assert!(
        stdout(&out).contains("link/ether 02:42:aa:bb:cc:dd")
            && stdout(&out).contains("10.127.5.50/24"),
        "{}",
        stdout(&out)
    );
    let hosts = exec(&instance, id, "cat /etc/hosts");
    let hosts = stdout(&hosts);
    assert!(hosts.contains("10.1.2.3\tdb.example\n"), "{hosts}");
    assert!(hosts.contains("10.127.5.50\tsix\n"), "{hosts}");
    let resolv = stdout(&exec(&instance, id, "cat /etc/resolv.conf"));
    assert!(
        resolv.contains("nameserver 10.127.5.1\n") && resolv.contains("search dns.muelle"),
        "{resolv}"
    );
    assert_eq!(resolv.matches("nameserver").count(), 1, "{resolv}");

    // The default network: --ip refused with docker's words; --dns and
    // the host name's address.
    for network in [&[][..], &["--network", "bridge"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend(network);
        args.extend(["--ip", "10.77.0.99", IMAGE, "true"]);
        let out = instance.muelle(&args);
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("user specified IP address is supported on user defined networks only"),
            "{}",
            stderr(&out)
        );
    }
    let out = instance.muelle(&[
        "run",
        "--rm",
        "--hostname",
        "plain",
        "--dns",
        "192.0.2.53",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; ip -4 -o addr show eth0",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let parts: Vec<&str> = text.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    let nameservers: Vec<&str> = parts[0]
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(nameservers, ["nameserver 192.0.2.53"], "{text}");
    let address = parts[2].split_whitespace().nth(3).unwrap_or_default();
    let address = address.split('/').next().unwrap_or_default();
    assert!(address.starts_with("10.77."), "{text}");
    assert!(parts[1].contains(&format!("{address}\tplain\n")), "{text}");

    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "flags"]);
}

#[test]
fn a_killed_monitor_leaves_no_network_behind_after_ps_and_rm() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.127.6.0/24", "lost"]);
    let port = free_port(&instance);
    let publish = format!("{port}:80");
    let id = httpd(&instance, &["--network", "lost", "-p", &publish], "lost");
    let address = field(
        &instance,
        &["inspect"],
        "{{.NetworkSettings.Networks.lost.IPAddress}}",
        &id,
    );
    assert_eq!(address, "10.127.6.2");
    wait_for_http(&instance, Ipv4Addr::LOCALHOST, port);
    assert_eq!(veths(&instance).len(), 1);
    assert_eq!(netns_files(&instance), std::slice::from_ref(&id));
    let table = nft_table(&instance);
    if let Some(table) = &table {
        assert!(maps_to(table, &address), "{table}");
    }

    let monitors = instance.monitors();
    assert_eq!(monitors.len(), 1, "one monitor: {monitors:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitors[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the monitor");
    support::wait_until(|| instance.monitors().is_empty());

    let ps = instance.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Exited (255)"), "{ps}");
    let gone = |when: &str| {
        no_network_left(&instance, "lost", &address, when);
        let refused = http_get(&instance, Ipv4Addr::LOCALHOST, port);
        assert!(refused.is_err(), "{when}: {refused:?}");
    };
    gone("after ps");
    instance.ok(&["rm", &id]);
    gone("after rm");

    // The address and the port are free again.
    let again = httpd(
        &instance,
        &["--network", "lost", "--ip", &address, "-p", &publish],
        "again",
    );
    let answer = wait_for_http(&instance, Ipv4Addr::LOCALHOST, port);
    assert!(answer.contains("again"), "{answer}");
    instance.ok(&["rm", "-f", &again]);
    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "lost"]);
}

#[test]
fn network_ls_and_inspect_show_what_docker_shows() {
    let Some(instance) = instance() else { return };
    let id = instance.ok(&[
        "network",
        "create",
        "--subnet",
        "10.127.7.0/24",
        "--gateway",
        "10.127.7.254",
        "--label",
        "team=blue",
        "listed",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let member = httpd(&instance, &["--network", "listed", "--name", "member"], "m");

    let table = instance.ok(&["network", "ls"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(header, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"], "{table}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        rows.contains(&vec![&id[..12], "listed", "bridge", "local"]),
        "{table}"
    );
    assert!(
        rows.iter().any(|r| r[1..] == ["muelle", "bridge", "local"]),
        "{table}"
    );
    assert_eq!(rows.len(), 2, "{table}");

    let quiet = instance.ok(&["network", "ls", "-q"]);
    assert_eq!(quiet.lines().count(), 2, "{quiet}");
    assert!(quiet.lines().any(|l| l == &id[..12]), "{quiet}");
    let json = instance.ok(&["network", "ls", "--format", "json"]);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let listed = objects
        .iter()
        .find(|o| o["Name"] == "listed")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(listed["ID"], &id[..12]);
    assert_eq!(listed["Driver"], "bridge");
    assert_eq!(listed["Scope"], "local");
    assert_eq!(listed["Internal"], "false");
    assert_eq!(listed["Labels"], "team=blue");

    let inspect: serde_json::Value =
        serde_json::from_str(&instance.ok(&["network", "inspect", "listed"])).expect("json");
    let n = &inspect[0];
    assert_eq!(n["Name"], "listed");
    assert_eq!(n["Id"], id);
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Internal"], false);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.127.7.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.127.7.254");
    assert_eq!(n["Labels"]["team"], "blue");
    let bridge = n["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        links(&instance, &bridge),
        std::slice::from_ref(&bridge),
        "the bridge"
    );
    let containers = n["Containers"].as_object().expect("Containers");
    assert_eq!(containers.len(), 1, "{containers:?}");
    let entry = &containers[&member];
    assert_eq!(entry["Name"], "member");
    assert_eq!(entry["IPv4Address"], "10.127.7.1/24");
    assert_eq!(entry["MacAddress"], "02:42:0a:7f:07:01");
    // Its gateway answers on the bridge.
    let out = instance
        .host_command("ip")
        .args(["-4", "-o", "addr", "show", &bridge])
        .output()
        .expect("ip");
    assert!(stdout(&out).contains("10.127.7.254/24"), "{}", stdout(&out));

    // Many at once; a missing one is an error after the others.
    let out = instance.muelle(&[
        "network",
        "inspect",
        "--format",
        "{{.Name}}",
        "listed",
        "nope",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "listed\n");
    assert!(
        stderr(&out).contains("network nope not found"),
        "{}",
        stderr(&out)
    );

    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "listed"]);
    assert!(links(&instance, &bridge).is_empty(), "the bridge stayed");
}

#[test]
fn network_create_rm_and_prune_refuse_and_remove_as_docker() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.127.8.0/24", "first"]);
    let bridges = links(&instance, "muelle-");
    assert_eq!(bridges.len(), 1, "{bridges:?}");
    for (args, words) in [
        (
            &["--subnet", "10.127.8.128/25", "second"][..],
            "Pool overlaps with other one on this address space",
        ),
        (&["first"][..], "network with name first already exists"),
        (
            &["-d", "macvlan", "mac"][..],
            "plugin \"macvlan\" not found",
        ),
        (&["bad name"][..], "invalid network name"),
        (&["_under"][..], "invalid network name"),
        (&["a/b"][..], "invalid network name"),
        (&["host"][..], "already exists"),
    ] {
        let mut all = vec!["network", "create"];
        all.extend(args);
        let out = instance.muelle(&all);
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(words), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    assert_eq!(
        links(&instance, "muelle-"),
        bridges,
        "a refused create made a bridge"
    );

    let out = instance.muelle(&["network", "rm", "nope"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("network nope not found"),
        "{}",
        stderr(&out)
    );
    let out = instance.muelle(&["network", "rm", "bridge"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("pre-defined"), "{}", stderr(&out));

    // prune: the unused user networks only.
    instance.ok(&["network", "create", "--subnet", "10.127.9.0/24", "used"]);
    instance.ok(&["run", "-d", "--network", "used", IMAGE, "sleep", "60"]);
    // The default network is in use too, and stays anyway.
    instance.ok(&["run", "-d", IMAGE, "sleep", "60"]);
    assert_eq!(
        instance.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nfirst\n"
    );
    let names = instance.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["muelle", "used"]);
    assert_eq!(
        links(&instance, "muelle-").len(),
        1,
        "first's bridge stayed"
    );
    assert_eq!(instance.ok(&["network", "prune", "-f"]), "");
    instance.remove_all_and_check();
    assert_eq!(
        instance.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nused\n"
    );
    assert!(links(&instance, "muelle-").is_empty());
}

#[test]
fn a_run_that_fails_on_the_network_leaves_nothing_but_its_record() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "--subnet", "10.127.10.0/24", "failing"]);
    let held = instance.in_netns(|| std::net::TcpListener::bind("0.0.0.0:0").expect("bind"));
    let taken = held.local_addr().expect("address").port();
    let publish = format!("{taken}:80");
    let free = free_port(&instance).to_string();
    // Flags, the command, the exit code and the words.
    let cases: [(&[&str], &str, i32, String); 3] = [
        (
            &["--ip", "10.127.11.5"],
            "sleep",
            125,
            "invalid IP address 10.127.11.5".to_owned(),
        ),
        (
            &["-p", &publish],
            "sleep",
            125,
            format!("Bind for 0.0.0.0:{taken} failed: port is already allocated"),
        ),
        // Past the network: its sandbox is made, then undone.
        (
            &["-p", &free],
            "no-such-command",
            127,
            "executable file not found".to_owned(),
        ),
    ];
    let nothing_left = |what: &str| no_network_left(&instance, "failing", "10.127.10.", what);
    for (flags, command, exit, words) in &cases {
        for rm in [false, true] {
            let name = format!("failed{}", if rm { "-rm" } else { "" });
            let mut args = vec!["run", "--name", &name, "--network", "failing"];
            if rm {
                args.push("--rm");
            } else {
                args.push("-d");
            }
            args.extend(*flags);
            args.extend([IMAGE, command, "60"]);
            let out = instance.muelle(&args);
            assert_eq!(code(&out), *exit, "{flags:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(words.as_str()),
                "{flags:?}: {}",
                stderr(&out)
            );
            nothing_left(&format!("{flags:?} rm={rm}"));
            let names = instance.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
            if rm {
                assert_eq!(names, "", "{flags:?}: run --rm kept its record");
            } else {
                assert_eq!(names, format!("{name} Created\n"), "{flags:?}");
                let error = field(&instance, &["inspect"], "{{.State.Error}}", &name);
                assert!(error.contains(words.as_str()), "{error}");
                instance.ok(&["rm", &name]);
            }
        }
    }
    // The network is whole: the first address is free.
    let id = instance.ok(&["run", "-d", "--network", "failing", IMAGE, "sleep", "60"]);
    assert_eq!(
        field(
            &instance,
            &["inspect"],
            "{{.NetworkSettings.Networks.failing.IPAddress}}",
            id.trim()
        ),
        "10.127.10.2"
    );
    drop(held);
    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "failing"]);
}

#[test]
fn a_container_reaches_its_own_published_port_through_the_hosts_address() {
    let Some(instance) = instance() else { return };
    let added = instance
        .host_command("ip")
        .args(["addr", "add", "192.0.2.77/32", "dev", "lo"])
        .status()
        .expect("ip addr add");
    assert!(added.success());
    let port = free_port(&instance);
    let publish = format!("{port}:80");
    let id = httpd(&instance, &["-p", &publish], "hairpin");
    wait_for_http(&instance, Ipv4Addr::new(192, 0, 2, 77), port);
    // Out through its veth, DNAT back in through the same bridge port.
    let fetch = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 192.0.2.77 {port}");
    let out = instance.muelle(&["exec", &id, "sh", "-c", &fetch]);
    assert!(
        stdout(&out).contains("hairpin"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    instance.remove_all_and_check();
    no_veths_left(&instance);
}

#[test]
fn a_network_that_does_not_exist_is_refused_before_a_container_is_made() {
    let Some(instance) = instance() else { return };
    let out = instance.muelle(&["run", "--network", "nowhere", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("network nowhere not found"),
        "{}",
        stderr(&out)
    );
    assert_eq!(instance.ok(&["ps", "-aq"]), "", "no container was made");
}

#[test]
fn connecting_a_container_that_started_on_no_network_says_what_to_do() {
    let Some(instance) = instance() else { return };
    instance.ok(&["network", "create", "later"]);
    instance.ok(&[
        "create",
        "--name",
        "bare",
        "--network",
        "later",
        IMAGE,
        "sleep",
        "60",
    ]);
    instance.ok(&["network", "disconnect", "later", "bare"]);
    instance.ok(&["start", "bare"]);
    let out = instance.muelle(&["network", "connect", "later", "bare"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("stop it, connect it to later, and start it again"),
        "{}",
        stderr(&out)
    );
    let nets = instance.ok(&[
        "inspect",
        "--format",
        "{{len .NetworkSettings.Networks}}",
        "bare",
    ]);
    assert_eq!(nets.trim(), "0", "the failed connect changed the record");
    instance.ok(&["stop", "-t", "0", "bare"]);
    instance.ok(&["network", "connect", "later", "bare"]);
    instance.ok(&["start", "bare"]);
    let out = instance.ok(&["exec", "bare", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(out.contains("10."), "{out}");
    instance.remove_all_and_check();
    instance.ok(&["network", "rm", "later"]);
}
