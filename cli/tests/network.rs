//! Networks end to end: bridge networks, published ports, names, and
//! what clean-up leaves. Each instance runs in a network namespace of its
//! own (see `support`), which plays the host.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
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
    let veths = || {
        links(instance, "mu")
            .into_iter()
            .filter(|l| !l.starts_with("muelle"))
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !veths().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(veths().is_empty(), "veths left: {:?}", veths());
}

/// The published ports in muelle's nftables table (the instance's own).
fn nft_ports(instance: &support::Instance) -> String {
    let out = instance
        .host_command("nft")
        .args(["list", "table", "ip", "muelle"])
        .output()
        .expect("nft");
    stdout(&out)
}

/// An HTTP GET of `/` at `address:port` from the instance's "host".
fn http_get(instance: &support::Instance, address: Ipv4Addr, port: u16) -> std::io::Result<String> {
    instance.in_netns(|| {
        let mut stream =
            TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    })
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
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut all = vec!["run", "-d"];
    all.extend(args);
    all.extend([IMAGE, "sh", "-c", &script]);
    instance.ok(&all).trim().to_owned()
}

fn wait_for_http(instance: &support::Instance, address: Ipv4Addr, port: u16) -> String {
    let mut last = None;
    for _ in 0..50 {
        match http_get(instance, address, port) {
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
        nft_ports(&instance).contains(&rule),
        "{}",
        nft_ports(&instance)
    );
    instance.ok(&["rm", "-f", &id]);
    assert!(
        http_get(&instance, Ipv4Addr::LOCALHOST, port).is_err(),
        "still answering after rm"
    );
    assert!(
        !nft_ports(&instance).contains(&rule),
        "rule left: {}",
        nft_ports(&instance)
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
