//! The quota driver against the real kernel: loop devices, ext4, mounts.
//! The driver is started through its C entry point (as muelle loads it)
//! and then called through the `VolumeDriver` trait. These tests need root
//! and /dev/loop-control and are skipped, with a printed reason, without.
//!
//! Every test works in a folder of its own under /var/tmp, and its `Env`
//! unmounts whatever is left there when the test ends, passing or not.

use std::ffi::c_void;
use std::fs::File;
use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use muelle_plugin_sdk::{ErrorKind, VolumeDriver, abi};
use muelle_quota::Quota;

/// Whether this machine can run the tests; prints why not.
fn runnable() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the quota driver needs root (loop devices and mount)");
        return false;
    }
    if !Path::new("/dev/loop-control").exists() {
        eprintln!("skipped: /dev/loop-control is absent (no loop devices here)");
        return false;
    }
    true
}

type Logs = Mutex<Vec<String>>;

/// The host's log callback: keeps each line in the test's `Logs`.
unsafe extern "C" fn record(ctx: *mut c_void, _level: u32, message: abi::Str) {
    // SAFETY: `ctx` is the leaked, never freed `Logs` of the Env that made
    // this driver; `message` is borrowed for the call, as the ABI says.
    let (logs, bytes) = unsafe { (&*ctx.cast::<Logs>(), message.as_bytes()) };
    let line = String::from_utf8_lossy(bytes).into_owned();
    if let Ok(mut logs) = logs.lock() {
        logs.push(line);
    }
}

/// One test's state folder and driver.
struct Env {
    dir: Option<tempfile::TempDir>,
    /// The canonical state folder.
    state: PathBuf,
    driver: &'static Quota,
    logs: &'static Logs,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("muelle-quota-test-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        let state = dir.path().canonicalize().expect("canonical state folder");
        let logs: &'static Logs = Box::leak(Box::new(Mutex::new(Vec::new())));
        let state_text = state.to_str().expect("UTF-8 state folder");
        let host = abi::Host {
            abi_version: abi::ABI_VERSION,
            struct_size: u32::try_from(size_of::<abi::Host>()).expect("small"),
            state_dir: abi::Str::new(state_text),
            log: record,
            log_ctx: std::ptr::from_ref(logs).cast_mut().cast(),
        };
        let table = muelle_quota::muelle_volume_plugin_v1();
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut out = abi::Buf::EMPTY;
        // SAFETY: `table` is the plugin's static table; `host` and its
        // strings live through the call, `instance` and `out` are valid
        // out pointers, and `out` goes back to the plugin's free_buf.
        let (status, message) = unsafe {
            let table = &*table;
            let status = (table.init)(&host, &mut instance, &mut out);
            let message = if out.ptr.is_null() {
                String::new()
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(out.ptr, out.len)).into_owned()
            };
            (table.free_buf)(out);
            (status, message)
        };
        assert_eq!(status, abi::OK, "init: {message}");
        assert!(!instance.is_null());
        // SAFETY: the SDK's init made `instance` from a Box<Quota> that is
        // never freed (muelle never unloads a plugin), so it lives for good.
        let driver: &'static Quota = unsafe { &*instance.cast::<Quota>() };
        Env {
            dir: Some(dir),
            state,
            driver,
            logs,
        }
    }

    fn create(&self, name: &str, size: &str) {
        self.driver
            .create(name, &[("size", size)])
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }

    fn image(&self, name: &str) -> PathBuf {
        self.state.join(name).join("disk.img")
    }

    fn mnt(&self, name: &str) -> PathBuf {
        self.state.join(name).join("mnt")
    }

    fn users(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.join(name).join("users")).unwrap_or_default()
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Env {
    /// Unmounts what a failed test left (lazily as a last resort), then
    /// deletes the folder, unless something is still mounted in it: never
    /// delete through a mount.
    fn drop(&mut self) {
        for mnt in mount_points_under(&self.state).into_iter().rev() {
            if nix::mount::umount2(&mnt, nix::mount::MntFlags::empty()).is_err() {
                let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let left = mount_points_under(&self.state);
        if let Some(dir) = self.dir.take()
            && !left.is_empty()
        {
            eprintln!(
                "leaving {} behind: {left:?} still mounted",
                dir.keep().display()
            );
        }
    }
}

/// Mountinfo lines: (mount point, per-mount options, fs type, source).
fn mountinfo() -> Vec<(PathBuf, String, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((
                PathBuf::from(fields.get(4)?),
                (*fields.get(5)?).to_owned(),
                (*fields.get(dash + 1)?).to_owned(),
                (*fields.get(dash + 2)?).to_owned(),
            ))
        })
        .collect()
}

fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(p, ..)| p)
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn mounted_at(path: &Path) -> bool {
    mountinfo().iter().any(|(p, ..)| p == path)
}

/// The loop devices backing `image`; with `want_gone`, after waiting up to
/// 2 s for them to go (the detach follows the unmount's last close).
fn loops_for(image: &Path, want_gone: bool) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let found = muelle_quota::devices_backed_by(image);
        if !want_gone || found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn create_mount_write_and_read_back() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("data", "16m");
    let image = env.image("data");
    let meta = std::fs::metadata(&image).expect("image");
    assert_eq!(meta.len(), 16 << 20, "the image has the size asked for");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(
        meta.blocks() * 512 < 16 << 20,
        "the image is sparse ({} bytes allocated)",
        meta.blocks() * 512
    );
    assert_eq!(d.list().expect("list"), vec!["data".to_owned()]);
    assert_eq!(d.get("data").expect("get"), None, "not mounted yet");
    assert_eq!(d.path("data").expect("path"), None);

    let path = d.mount("data", "c1").expect("mount");
    assert_eq!(path, env.mnt("data").join("_data"));
    let mnt = env.mnt("data");
    let (_, options, fstype, source) = mountinfo()
        .into_iter()
        .find(|(p, ..)| *p == mnt)
        .expect("mounted");
    assert_eq!(fstype, "ext4");
    assert!(
        options.contains("nodev") && options.contains("nosuid"),
        "{options}"
    );
    assert_eq!(loops_for(&image, false), vec![PathBuf::from(&source)]);
    assert!(
        env.logs().iter().any(|l| l.contains(&source)),
        "the loop device is logged: {:?}",
        env.logs()
    );
    let data_meta = std::fs::symlink_metadata(&path).expect("_data");
    assert!(data_meta.is_dir());
    assert_eq!(data_meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!((data_meta.uid(), data_meta.gid()), (0, 0));
    assert!(
        !path.join("lost+found").exists(),
        "lost+found stays out of view"
    );

    std::fs::write(path.join("hello"), "world").expect("write into the volume");
    assert_eq!(
        std::fs::read_to_string(path.join("hello")).expect("read"),
        "world"
    );
    assert_eq!(d.path("data").expect("path"), Some(path.clone()));
    assert_eq!(d.get("data").expect("get"), Some(path.clone()));

    d.unmount("data", "c1").expect("unmount");
    assert!(!mounted_at(&mnt));
    assert!(
        loops_for(&image, true).is_empty(),
        "the loop detached itself"
    );
    assert_eq!(d.path("data").expect("path"), None);

    let again = d.mount("data", "c2").expect("mount again");
    assert_eq!(
        std::fs::read_to_string(again.join("hello")).expect("data outlives the mount"),
        "world"
    );
    d.unmount("data", "c2").expect("unmount");
    d.remove("data").expect("remove");
    assert!(!env.state.join("data").exists());
    assert_eq!(d.get("data").expect_err("gone").kind, ErrorKind::NotFound);
    assert!(d.list().expect("list").is_empty());
    assert!(loops_for(&image, true).is_empty());
}

#[test]
fn writing_past_the_size_fails_with_enospc() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("small", "16m");
    let path = d.mount("small", "c1").expect("mount");
    let chunk = vec![0x5au8; 1 << 20];
    let mut file = File::create(path.join("big")).expect("create a file");
    let mut written = 0u64;
    let failure = loop {
        if let Err(e) = file.write_all(&chunk) {
            break e;
        }
        written += chunk.len() as u64;
        if written >= 32 << 20 {
            // Delayed allocation may report it only when the data goes out.
            match file.sync_all() {
                Err(e) => break e,
                Ok(()) => panic!("wrote {written} bytes into a 16m volume"),
            }
        }
    };
    assert_eq!(failure.raw_os_error(), Some(libc::ENOSPC), "{failure}");
    assert_eq!(failure.kind(), IoKind::StorageFull);
    assert!(written < 16 << 20, "wrote {written} bytes");
    drop(file);
    let image = std::fs::metadata(env.image("small")).expect("image");
    assert_eq!(image.len(), 16 << 20, "the image did not grow");
    assert!(
        image.blocks() * 512 <= 16 << 20,
        "the host holds at most the volume's size ({} bytes)",
        image.blocks() * 512
    );
    d.unmount("small", "c1").expect("unmount");
    d.remove("small").expect("remove");
}

#[test]
fn two_callers_share_one_mount() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("shared", "16m");
    let mnt = env.mnt("shared");
    let image = env.image("shared");
    let first = d.mount("shared", "c1").expect("mount c1");
    std::fs::write(first.join("note"), "kept").expect("write");
    let second = d.mount("shared", "c2").expect("mount c2");
    assert_eq!(first, second, "one path for every caller");
    assert_eq!(d.mount("shared", "c2").expect("c2 again"), first);
    assert_eq!(env.users("shared"), "c1\nc2\n", "c2 counts once");
    assert_eq!(
        mountinfo().iter().filter(|(p, ..)| *p == mnt).count(),
        1,
        "mounted once"
    );
    assert_eq!(loops_for(&image, false).len(), 1, "one loop device");

    d.unmount("shared", "c1").expect("unmount c1");
    assert!(mounted_at(&mnt), "c2 still has it");
    assert_eq!(
        std::fs::read_to_string(second.join("note")).expect("c2 reads"),
        "kept"
    );
    d.unmount("shared", "c1")
        .expect("unmounting c1 again changes nothing");
    d.unmount("shared", "stranger")
        .expect("an unknown caller is not an error");
    assert!(mounted_at(&mnt), "and does not unmount c2's volume");

    d.unmount("shared", "c2").expect("unmount c2");
    assert!(!mounted_at(&mnt), "the last caller unmounts");
    assert!(
        loops_for(&image, true).is_empty(),
        "the loop device is gone"
    );
    assert_eq!(env.users("shared"), "");
    d.unmount("shared", "c2")
        .expect("unmounting an unmounted volume is idempotent");
    d.remove("shared").expect("remove");
}

#[test]
fn a_mounted_volume_is_not_removed() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("held", "16m");
    let path = d.mount("held", "c1").expect("mount");
    std::fs::write(path.join("precious"), "data").expect("write");
    let err = d.remove("held").expect_err("busy");
    assert_eq!(err.kind, ErrorKind::Busy, "{err}");
    assert!(
        err.message.contains("held") && err.message.contains("c1"),
        "{err}"
    );
    assert_eq!(d.list().expect("list"), vec!["held".to_owned()]);
    assert_eq!(
        std::fs::read_to_string(path.join("precious")).expect("intact"),
        "data"
    );
    d.unmount("held", "c1").expect("unmount");
    d.remove("held").expect("remove once unmounted");
    assert_eq!(
        d.remove("held").expect_err("twice").kind,
        ErrorKind::NotFound
    );
}

#[test]
fn an_unmount_with_open_files_is_busy_and_can_be_retried() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("open", "16m");
    let path = d.mount("open", "c1").expect("mount");
    let held = File::create(path.join("held")).expect("open a file");
    let err = d.unmount("open", "c1").expect_err("busy");
    assert_eq!(err.kind, ErrorKind::Busy, "{err}");
    assert!(err.message.contains("open"), "{err}");
    assert!(mounted_at(&env.mnt("open")), "still mounted");
    assert_eq!(d.path("open").expect("path"), Some(path));
    drop(held);
    d.unmount("open", "c1").expect("the retry unmounts");
    assert!(!mounted_at(&env.mnt("open")));
    assert!(loops_for(&env.image("open"), true).is_empty());
    d.remove("open").expect("remove");
}

#[test]
fn a_reboot_leaves_a_stale_users_file_that_mount_resets() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("boot", "16m");
    d.mount("boot", "c1").expect("mount");
    d.mount("boot", "c2").expect("mount");
    // A reboot: the mount and the loop device vanish, the files stay.
    nix::mount::umount2(&env.mnt("boot"), nix::mount::MntFlags::empty()).expect("umount");
    assert!(loops_for(&env.image("boot"), true).is_empty());
    assert_eq!(env.users("boot"), "c1\nc2\n");
    assert_eq!(d.path("boot").expect("path"), None, "path asks the kernel");

    let path = d.mount("boot", "c3").expect("mount after the reboot");
    assert!(mounted_at(&env.mnt("boot")));
    assert!(path.is_dir());
    assert_eq!(env.users("boot"), "c3\n", "stale callers dropped");
    assert!(
        env.logs().iter().any(|l| l.contains("nothing is mounted")),
        "{:?}",
        env.logs()
    );
    d.unmount("boot", "c3").expect("one unmount is enough now");
    assert!(!mounted_at(&env.mnt("boot")));
    d.remove("boot").expect("remove");
}

#[test]
fn a_failed_mount_leaves_nothing_attached() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    env.create("broken", "16m");
    // Wipe the superblock (at 1 KiB): ext4 will refuse the image.
    let image = env.image("broken");
    let file = File::options().write(true).open(&image).expect("open");
    nix::sys::uio::pwrite(&file, &[0u8; 64 << 10], 0).expect("wipe");
    drop(file);
    let err = d.mount("broken", "c1").expect_err("mount fails");
    assert!(err.message.contains("mounting"), "{err}");
    assert!(!mounted_at(&env.mnt("broken")));
    assert!(
        loops_for(&image, true).is_empty(),
        "the loop device was detached"
    );
    assert_eq!(env.users("broken"), "", "no caller recorded");
    assert_eq!(d.path("broken").expect("path"), None);
    d.remove("broken").expect("remove");
}

#[test]
fn bad_names_options_and_callers_are_refused() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    let long = "v".repeat(256);
    for name in [
        "", "a", ".", "..", "../x", "a/b", "/abs", ".hidden", "-x", "a b", "a\nb", &long,
    ] {
        let err = d
            .create(name, &[("size", "16m")])
            .expect_err("bad name refused");
        assert_eq!(err.kind, ErrorKind::Invalid, "{name:?}: {err}");
        for result in [
            d.mount(name, "c1").map(|_| ()),
            d.unmount(name, "c1"),
            d.remove(name),
            d.get(name).map(|_| ()),
            d.path(name).map(|_| ()),
        ] {
            assert_eq!(
                result.expect_err("bad name").kind,
                ErrorKind::Invalid,
                "{name:?}"
            );
        }
    }

    let err = d.create("vol", &[]).expect_err("no size");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        err.message,
        "the quota driver needs -o size=SIZE (for example size=1g)"
    );
    let err = d
        .create("vol", &[("size", "16m"), ("colour", "blue")])
        .expect_err("unknown option");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("\"colour\"") && err.message.contains("size"),
        "{err}"
    );
    for size in ["1m", "7340032", "17t", "big", "1.5g", "-16m", ""] {
        let err = d
            .create("vol", &[("size", size)])
            .expect_err("bad size refused");
        assert_eq!(err.kind, ErrorKind::Invalid, "{size:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(&env.state).expect("state").count(),
        0,
        "nothing was made"
    );

    for missing in [
        d.mount("ghost", "c1").map(|_| ()),
        d.unmount("ghost", "c1"),
        d.remove("ghost"),
        d.get("ghost").map(|_| ()),
        d.path("ghost").map(|_| ()),
    ] {
        assert_eq!(missing.expect_err("missing").kind, ErrorKind::NotFound);
    }

    env.create("vol", "16m");
    let err = d.create("vol", &[("size", "32m")]).expect_err("exists");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.message, "volume vol already exists");
    assert_eq!(
        std::fs::metadata(env.image("vol")).expect("image").len(),
        16 << 20,
        "the existing volume is untouched"
    );
    for caller in ["", "a\nb", "a\0b"] {
        assert_eq!(
            d.mount("vol", caller).expect_err("bad caller").kind,
            ErrorKind::Invalid,
            "{caller:?}"
        );
    }
    assert!(!mounted_at(&env.mnt("vol")));

    // A symlink posing as a volume is not one.
    std::fs::create_dir(env.state.join("fake")).expect("mkdir");
    std::os::unix::fs::symlink(env.image("vol"), env.image("fake")).expect("symlink");
    assert_eq!(d.list().expect("list"), vec!["vol".to_owned()]);
    assert_eq!(
        d.mount("fake", "c1").expect_err("not a volume").kind,
        ErrorKind::NotFound
    );
    d.remove("vol").expect("remove");
}

#[test]
fn concurrent_mounts_take_turns() {
    if !runnable() {
        return;
    }
    let env = Env::new();
    let d = env.driver;
    let names = ["par-a", "par-b", "par-c", "par-d"];
    for name in names {
        env.create(name, "16m");
    }
    // Four volumes at once: each needs its own free loop device.
    std::thread::scope(|s| {
        for name in names {
            s.spawn(move || d.mount(name, "c1").expect("mount"));
        }
    });
    let mut devices: Vec<PathBuf> = names
        .iter()
        .flat_map(|n| loops_for(&env.image(n), false))
        .collect();
    devices.sort();
    devices.dedup();
    assert_eq!(devices.len(), 4, "one loop device each: {devices:?}");
    // One volume, four callers at once: one mount, four users.
    std::thread::scope(|s| {
        for caller in ["x1", "x2", "x3", "x4"] {
            s.spawn(move || d.mount("par-a", caller).expect("mount"));
        }
    });
    let mnt = env.mnt("par-a");
    assert_eq!(mountinfo().iter().filter(|(p, ..)| *p == mnt).count(), 1);
    let mut users: Vec<String> = env.users("par-a").lines().map(str::to_owned).collect();
    users.sort();
    assert_eq!(users, ["c1", "x1", "x2", "x3", "x4"]);
    std::thread::scope(|s| {
        for caller in ["c1", "x1", "x2", "x3", "x4"] {
            s.spawn(move || d.unmount("par-a", caller).expect("unmount"));
        }
        for name in &names[1..] {
            s.spawn(move || d.unmount(name, "c1").expect("unmount"));
        }
    });
    for name in names {
        assert!(!mounted_at(&env.mnt(name)), "{name}");
        assert!(loops_for(&env.image(name), true).is_empty(), "{name}");
        d.remove(name).expect("remove");
    }
}
