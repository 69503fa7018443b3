//! Real kernel tests of the netlink client and the namespace files. Each
//! test runs on a thread of its own in fresh network and mount namespaces
//! (`isolated`): links die with the network namespace, mounts with the
//! mount namespace, and files live in a temporary folder removed after the
//! thread is gone, so a failing test leaves nothing on the host. Needs root.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use network::netlink::{Error, LOOPBACK_INDEX, Netlink, Route, Veth};
use network::{netns, sysctl};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

/// Runs `test` on a new thread in fresh network and mount namespaces, with
/// a temporary folder that is removed once the thread has ended.
fn isolated<R: Send>(test: impl FnOnce(&Path) -> R + Send) -> R {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                    .expect("fresh network and mount namespaces (run the tests as root)");
                // Nothing mounted here reaches the host's mount namespace.
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .expect("private mounts");
                test(dir.path())
            })
            .join()
    });
    drop(dir);
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A namespace file removed on drop.
struct NetnsFile {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

impl NetnsFile {
    fn create(path: PathBuf) -> NetnsFile {
        let fd = netns::create(&path).expect("a network namespace");
        NetnsFile { path, fd: Some(fd) }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("the namespace is open").as_fd()
    }
}

impl Drop for NetnsFile {
    fn drop(&mut self) {
        let _ = netns::remove(&self.path);
    }
}

/// Polls `done` every 10 ms for at most `limit`.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The mount points of the calling thread's mount namespace.
fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/thread-self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .collect()
}

/// The identity of the calling thread's network namespace.
fn current_netns() -> (u64, u64) {
    let m = std::fs::metadata("/proc/thread-self/ns/net").expect("ns/net");
    (m.dev(), m.ino())
}

const PEER_MAC: [u8; 6] = [0x02, 0x42, 0x0a, 0x59, 0x00, 0x02];

#[test]
fn a_bridge_is_created_up_and_only_once() {
    isolated(|_| {
        let mut nl = Netlink::open().unwrap();
        let index = nl.create_bridge("mubr0").unwrap();
        let link = nl.link("mubr0").unwrap().expect("the bridge");
        assert_eq!(link.index, index);
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert!(link.up);
        assert!(link.mac.is_some());

        let again = nl.create_bridge("mubr0").unwrap_err();
        assert_eq!(again.errno(), Some(Errno::EEXIST));
        assert_eq!(again.to_string(), "creating bridge mubr0: File exists");
        assert!(nl.links().unwrap().iter().any(|l| l.name == "mubr0"));
    });
}

#[test]
fn a_veth_peer_is_made_inside_another_namespace_and_configured_there() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let mut nl = Netlink::open().unwrap();
        let bridge = nl.create_bridge("mubr0").unwrap();
        let pair = nl
            .create_veth(&Veth {
                host_name: "mu1a2b3c4d5e6f",
                master: Some(bridge),
                peer_name: "eth0",
                peer_netns: container.fd(),
                peer_mac: Some(PEER_MAC),
                mtu: Some(1400),
            })
            .unwrap();

        let host = nl.link("mu1a2b3c4d5e6f").unwrap().expect("the host end");
        assert_eq!(host.index, pair.host);
        assert_eq!(host.kind.as_deref(), Some("veth"));
        assert_eq!(host.master, Some(bridge));
        assert!(host.up);
        assert_eq!(host.mtu, Some(1400));
        assert_eq!(
            nl.link("eth0").unwrap(),
            None,
            "the peer is not on the host"
        );

        let mut inside = Netlink::open_in(container.fd()).unwrap();
        let eth0 = inside.link("eth0").unwrap().expect("the peer");
        assert_eq!(eth0.index, pair.peer);
        assert_eq!(eth0.mac, Some(PEER_MAC));
        assert_eq!(eth0.mtu, Some(1400));
        assert!(!eth0.up, "the peer is left down");

        let mut batch = inside.batch();
        batch
            .set_up(LOOPBACK_INDEX)
            .set_up(eth0.index)
            .add_address(eth0.index, Ipv4Addr::new(10, 89, 0, 2), 24)
            .add_default_route(Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(batch.len(), 4);
        batch.run().unwrap();

        assert!(inside.link("lo").unwrap().expect("lo").up);
        assert!(inside.link("eth0").unwrap().expect("eth0").up);
        assert_eq!(
            inside.addresses(eth0.index).unwrap(),
            vec![(Ipv4Addr::new(10, 89, 0, 2), 24)]
        );
        let routes = inside.routes().unwrap();
        assert!(
            routes.contains(&Route {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(Ipv4Addr::new(10, 89, 0, 1)),
                oif: Some(eth0.index),
            }),
            "{routes:?}"
        );
        // The host has none of it.
        assert!(nl.routes().unwrap().is_empty());
    });
}

#[test]
fn the_container_side_configured_request_by_request() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let mut nl = Netlink::open().unwrap();
        let pair = nl
            .create_veth(&Veth {
                host_name: "mu0",
                master: None,
                peer_name: "eth0",
                peer_netns: container.fd(),
                peer_mac: None,
                mtu: None,
            })
            .unwrap();
        let mut inside = Netlink::open_in(container.fd()).unwrap();
        inside.set_up(LOOPBACK_INDEX).unwrap();
        inside.set_up(pair.peer).unwrap();
        inside.set_up(pair.peer).unwrap(); // again: no error
        let addr = Ipv4Addr::new(10, 89, 0, 2);
        inside.add_address(pair.peer, addr, 16).unwrap();
        let again = inside.add_address(pair.peer, addr, 16).unwrap_err();
        assert_eq!(again.errno(), Some(Errno::EEXIST));
        let expected = format!(
            "adding address 10.89.0.2/16 to link {}: File exists",
            pair.peer
        );
        assert!(again.to_string().starts_with(&expected), "{again}");
        inside
            .add_default_route(Ipv4Addr::new(10, 89, 0, 1))
            .unwrap();
        let again = inside
            .add_default_route(Ipv4Addr::new(10, 89, 0, 1))
            .unwrap_err();
        assert_eq!(again.errno(), Some(Errno::EEXIST));
        assert_eq!(inside.addresses(pair.peer).unwrap(), vec![(addr, 16)]);
        assert_eq!(
            inside.addresses(LOOPBACK_INDEX).unwrap(),
            vec![(Ipv4Addr::LOCALHOST, 8)]
        );
    });
}

#[test]
fn deleting_a_link_says_whether_it_was_there() {
    isolated(|_| {
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link("mubr0").unwrap(), None);
        nl.create_bridge("mubr0").unwrap();
        assert!(nl.delete_link("mubr0").unwrap());
        assert!(!nl.delete_link("mubr0").unwrap());
        assert_eq!(nl.link("mubr0").unwrap(), None);
    });
}

#[test]
fn deleting_the_host_end_takes_the_peer_along() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let mut nl = Netlink::open().unwrap();
        nl.create_veth(&Veth {
            host_name: "mu0",
            master: None,
            peer_name: "eth0",
            peer_netns: container.fd(),
            peer_mac: None,
            mtu: None,
        })
        .unwrap();
        assert!(nl.delete_link("mu0").unwrap());
        let mut inside = Netlink::open_in(container.fd()).unwrap();
        assert_eq!(inside.link("eth0").unwrap(), None);
    });
}

#[test]
fn names_the_kernel_would_refuse_are_refused_before_sending() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let mut nl = Netlink::open().unwrap();
        let e = nl.create_bridge("muelle-bridge-01").unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "invalid interface name \"muelle-bridge-01\": longer than 15 bytes"
        );
        let veth = |host_name, peer_name| Veth {
            host_name,
            master: None,
            peer_name,
            peer_netns: container.fd(),
            peer_mac: None,
            mtu: None,
        };
        let e = nl
            .create_veth(&veth("mu1a2b3c4d5e6f70", "eth0"))
            .unwrap_err();
        assert!(e.to_string().contains("longer than 15 bytes"), "{e}");
        let e = nl.create_veth(&veth("mu0", "eth/0")).unwrap_err();
        assert!(e.to_string().contains("\"eth/0\""), "{e}");
        assert!(nl.link("a-sixteen-bytes!").is_err());
        assert!(nl.delete_link("").is_err());
        assert_eq!(nl.link("mu0").unwrap(), None, "nothing was created");
    });
}

#[test]
fn refusals_name_their_object_and_keep_the_kernels_reason() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let mut nl = Netlink::open().unwrap();
        let e = nl.set_up(4242).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENODEV));
        assert!(
            e.to_string()
                .starts_with("setting link 4242 up: No such device"),
            "{e}"
        );

        // No route to the gateway.
        let e = nl
            .add_default_route(Ipv4Addr::new(10, 1, 2, 3))
            .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENETUNREACH));
        assert!(
            e.to_string()
                .starts_with("adding the default route via 10.1.2.3: "),
            "{e}"
        );

        // An MTU the kernel refuses: nothing is left of the pair.
        let e = nl
            .create_veth(&Veth {
                host_name: "mu0",
                master: None,
                peer_name: "eth0",
                peer_netns: container.fd(),
                peer_mac: None,
                mtu: Some(70_000),
            })
            .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        assert!(
            e.to_string()
                .starts_with("creating veth mu0 (peer eth0): Invalid argument"),
            "{e}"
        );
        assert_eq!(nl.link("mu0").unwrap(), None);
        assert_eq!(
            Netlink::open_in(container.fd())
                .unwrap()
                .link("eth0")
                .unwrap(),
            None
        );

        // A master that is not there.
        let e = nl
            .create_veth(&Veth {
                host_name: "mu0",
                master: Some(4242),
                peer_name: "eth0",
                peer_netns: container.fd(),
                peer_mac: None,
                mtu: None,
            })
            .unwrap_err();
        assert!(e.errno().is_some(), "{e}");
        assert_eq!(nl.link("mu0").unwrap(), None);

        let e = nl
            .add_address(1, Ipv4Addr::new(10, 0, 0, 1), 33)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    });
}

#[test]
fn a_batch_reports_its_first_refusal_and_reads_every_answer() {
    isolated(|_| {
        let mut nl = Netlink::open().unwrap();
        let mut batch = nl.batch();
        batch
            .set_up(LOOPBACK_INDEX)
            .add_address(4242, Ipv4Addr::new(10, 0, 0, 2), 24)
            .add_default_route(Ipv4Addr::new(10, 0, 0, 1));
        let e = batch.run().unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENODEV));
        assert!(
            e.to_string()
                .starts_with("adding address 10.0.0.2/24 to link 4242: "),
            "{e}"
        );
        // The request before it was made, and the socket is in step.
        assert!(nl.link("lo").unwrap().expect("lo").up);
        assert!(nl.batch().run().is_ok(), "an empty batch");

        let mut batch = nl.batch();
        batch
            .set_up(LOOPBACK_INDEX)
            .add_address(1, Ipv4Addr::new(10, 0, 0, 2), 40);
        let e = batch.run().unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert_eq!(
            nl.addresses(LOOPBACK_INDEX).unwrap().len(),
            1,
            "nothing was sent"
        );
    });
}

#[test]
fn open_in_leaves_the_calling_thread_where_it_was() {
    isolated(|dir| {
        let container = NetnsFile::create(dir.join("c1"));
        let before = current_netns();
        let mut inside = Netlink::open_in(container.fd()).unwrap();
        assert_eq!(current_netns(), before);
        // The socket acts in the container: a bridge made there is not here.
        inside.create_bridge("mubr0").unwrap();
        assert_eq!(Netlink::open().unwrap().link("mubr0").unwrap(), None);
        assert!(inside.link("mubr0").unwrap().is_some());
        let e = Netlink::open_in(std::fs::File::open("/dev/null").unwrap().as_fd()).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL), "{e}");
        assert_eq!(current_netns(), before);
    });
}

#[test]
fn a_namespace_file_is_created_and_removed_without_leftovers() {
    isolated(|dir| {
        let before = current_netns();
        let mounts = mount_points();
        let path = dir.join("c1");
        let fd = netns::create(&path).unwrap();
        assert_eq!(current_netns(), before);
        let path_text = path.to_str().unwrap().to_owned();
        assert!(mount_points().contains(&path_text));
        let opened = netns::open(&path).unwrap();
        let a = nix::sys::stat::fstat(fd.as_fd()).unwrap();
        let b = nix::sys::stat::fstat(opened.as_fd()).unwrap();
        assert_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
        assert_ne!((a.st_dev, a.st_ino), before);

        assert!(netns::remove(&path).unwrap());
        assert!(!path.exists());
        assert_eq!(mount_points(), mounts);
        assert!(!netns::remove(&path).unwrap());
    });
}

#[test]
fn create_refuses_an_existing_file_and_leaves_it_alone() {
    isolated(|dir| {
        let mounts = mount_points();
        let path = dir.join("c1");
        std::fs::write(&path, "mine").unwrap();
        let e = netns::create(&path).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EEXIST));
        assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        assert_eq!(mount_points(), mounts);

        let e = netns::create(&dir.join("missing/c1")).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert!(!dir.join("missing").exists());
        assert_eq!(mount_points(), mounts);
    });
}

#[test]
fn open_refuses_what_is_not_a_network_namespace() {
    isolated(|dir| {
        let plain = dir.join("plain");
        std::fs::write(&plain, "").unwrap();
        let e = netns::open(&plain).unwrap_err();
        assert!(matches!(e, netns::Error::NotNetns { .. }), "{e:?}");
        let e = netns::open(Path::new("/proc/thread-self/ns/uts")).unwrap_err();
        assert!(matches!(e, netns::Error::NotNetns { .. }), "{e:?}");
        netns::open(Path::new("/proc/thread-self/ns/net")).unwrap();
        let e = netns::open(&dir.join("none")).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
    });
}

/// Makes a veth pair with its peer in `container`, and returns the host
/// end's name.
fn veth_into(nl: &mut Netlink, container: BorrowedFd<'_>) -> &'static str {
    nl.create_veth(&Veth {
        host_name: "mu0",
        master: None,
        peer_name: "eth0",
        peer_netns: container,
        peer_mac: None,
        mtu: None,
    })
    .unwrap();
    "mu0"
}

/// How long the kernel may take to free a namespace (it does so on a work
/// queue, after RCU grace periods).
const NAMESPACE_TEARDOWN: Duration = Duration::from_secs(10);

#[test]
fn a_removed_namespace_goes_away_with_its_links() {
    isolated(|dir| {
        let path = dir.join("c1");
        let mut container = NetnsFile::create(path.clone());
        let mut nl = Netlink::open().unwrap();
        let host = veth_into(&mut nl, container.fd());
        {
            // A socket inside holds the namespace until it is closed.
            let _inside = Netlink::open_in(container.fd()).unwrap();
        }
        container.fd = None;
        assert!(netns::remove(&path).unwrap());
        let start = Instant::now();
        assert!(
            within(NAMESPACE_TEARDOWN, || nl.link(host).unwrap().is_none()),
            "the peer's namespace was not freed"
        );
        eprintln!("namespace gone {:?} after remove", start.elapsed());
    });
}

/// Starts a thread that copies the calling thread's mount namespace (as a
/// helper or a service with private mounts would) and holds it until the
/// returned sender is dropped.
fn hold_a_mount_namespace_copy<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> mpsc::Sender<()> {
    let (ready_tx, ready) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel::<()>();
    scope.spawn(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).expect("a mount namespace");
        ready_tx.send(()).expect("the test waits");
        let _ = stop_rx.recv();
    });
    ready.recv().expect("the copy is made");
    stop
}

#[test]
fn a_copy_in_another_mount_namespace_does_not_outlive_remove() {
    isolated(|dir| {
        let path = dir.join("c1");
        let mut container = NetnsFile::create(path.clone());
        let mut nl = Netlink::open().unwrap();
        let host = veth_into(&mut nl, container.fd());
        container.fd = None;
        std::thread::scope(|scope| {
            let _copy = hold_a_mount_namespace_copy(scope);
            assert!(netns::remove(&path).unwrap());
            assert!(
                within(NAMESPACE_TEARDOWN, || nl.link(host).unwrap().is_none()),
                "the copy in the other mount namespace kept the namespace"
            );
        });
    });
}

/// Why `remove` deletes the file: unmounting alone leaves the copies that
/// other mount namespaces made (here with private propagation), and they
/// hold the namespace; deleting the file detaches the mounts on it in every
/// mount namespace (Linux 3.18 on).
#[test]
fn unmounting_alone_leaves_copies_that_pin_the_namespace() {
    isolated(|dir| {
        let path = dir.join("c1");
        let mut container = NetnsFile::create(path.clone());
        let mut nl = Netlink::open().unwrap();
        let host = veth_into(&mut nl, container.fd());
        container.fd = None;
        std::thread::scope(|scope| {
            let _copy = hold_a_mount_namespace_copy(scope);
            nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(nl.link(host).unwrap().is_some(), "pinned by the copy");
            // The file is no mount point here any more: remove deletes it.
            assert!(netns::remove(&path).unwrap());
            assert!(
                within(NAMESPACE_TEARDOWN, || nl.link(host).unwrap().is_none()),
                "the copy outlived the file"
            );
        });
    });
}

#[test]
fn sysctl_writes_the_calling_threads_namespace() {
    isolated(|_| {
        sysctl::set("net.ipv4.ip_forward", "1").unwrap();
        sysctl::set("net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            "1\n"
        );
        sysctl::set("net.ipv4.ip_local_port_range", "32768 60999").unwrap();
        sysctl::set_interface("lo", "route_localnet", "1").unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/lo/route_localnet").unwrap(),
            "1\n"
        );
        let e = sysctl::set_interface("mu-absent", "forwarding", "1").unwrap_err();
        assert!(e.to_string().contains("mu-absent"), "{e}");
    });
}

/// The hot path, timed: in a fresh namespace, a veth pair with its peer
/// inside, then the peer configured from inside (lo and eth0 up, address,
/// default route), batched or request by request. The namespaces are all
/// made first and removed at the end: the kernel frees a namespace on a
/// work queue, and that work slows down the creation of the next ones.
/// Run by hand:
/// `cargo test -p network --release --test netlink -- --ignored --nocapture timing`.
#[test]
#[ignore]
fn timing() {
    const ROUNDS: usize = 200;
    isolated(|dir| {
        let mut nl = Netlink::open().unwrap();
        let bridge = nl.create_bridge("mubr0").unwrap();
        let mut phases: [Vec<Duration>; 7] = Default::default();
        let containers: Vec<NetnsFile> = (0..ROUNDS)
            .map(|round| {
                let start = Instant::now();
                let container = NetnsFile::create(dir.join(format!("c{round}")));
                phases[0].push(start.elapsed());
                container
            })
            .collect();
        for (round, container) in containers.iter().enumerate() {
            let host_name = format!("mu{round:012x}");
            let start = Instant::now();
            nl.create_veth(&Veth {
                host_name: &host_name,
                master: Some(bridge),
                peer_name: "eth0",
                peer_netns: container.fd(),
                peer_mac: Some(PEER_MAC),
                mtu: None,
            })
            .unwrap();
            let paired = Instant::now();
            let mut inside = Netlink::open_in(container.fd()).unwrap();
            let opened = Instant::now();
            let eth0 = inside.link("eth0").unwrap().expect("eth0").index;
            let looked_up = Instant::now();
            let addr = Ipv4Addr::new(10, 89, (round / 250) as u8, (round % 250) as u8 + 2);
            let gateway = Ipv4Addr::new(10, 89, 0, 1);
            let batched = round % 2 == 0;
            if batched {
                let mut batch = inside.batch();
                batch
                    .set_up(LOOPBACK_INDEX)
                    .set_up(eth0)
                    .add_address(eth0, addr, 16)
                    .add_default_route(gateway);
                batch.run().unwrap();
            } else {
                inside.set_up(LOOPBACK_INDEX).unwrap();
                inside.set_up(eth0).unwrap();
                inside.add_address(eth0, addr, 16).unwrap();
                inside.add_default_route(gateway).unwrap();
            }
            let configured = Instant::now();
            phases[1].push(paired - start);
            phases[2].push(opened - paired);
            phases[3].push(looked_up - opened);
            phases[if batched { 4 } else { 5 }].push(configured - looked_up);
            phases[6].push(configured - start);
        }
        let names = [
            "netns::create",
            "create_veth (bridge, peer inside)",
            "Netlink::open_in",
            "link(eth0) inside",
            "configure, one batch",
            "configure, 4 requests",
            "attach: create_veth..configured",
        ];
        for (name, times) in names.iter().zip(phases.iter_mut()) {
            times.sort();
            let median = times[times.len() / 2];
            let p90 = times[times.len() * 9 / 10];
            eprintln!("{name:36} median {median:>10.1?}  p90 {p90:>10.1?}");
        }
    });
}
