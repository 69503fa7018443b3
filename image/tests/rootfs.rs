//! Container root filesystems from layers: the overlay view (whiteouts,
//! opaque folders, writes in the upper folder), the copy fallback giving
//! the same view, teardown leaving nothing mounted, and the setup time of
//! a 5-layer rootfs (printed). Root only: each test says why it skips.
//!
//! Every mount a test makes is torn down by a guard, even when the test
//! fails midway.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::rootfs::{self, Driver, Rootfs};
use image::{BlobStore, Digest, ImageError, LayerForm, LayerStore};
use tar::{Builder, EntryType, Header};

fn skip(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("{test} skipped: mounting overlays and making whiteouts needs root");
        return true;
    }
    false
}

/// A layer tar: `(name, data)` files, `name/` folders, whiteout names as
/// they are.
fn layer_tar(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = Header::new_gnu();
        let dir = name.ends_with('/');
        h.set_entry_type(if dir {
            EntryType::Directory
        } else {
            EntryType::Regular
        });
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

struct World {
    tmp: tempfile::TempDir,
    blobs: BlobStore,
    layers: LayerStore,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::Builder::new()
            .prefix("muelle-rootfs")
            .tempdir()
            .expect("tempdir");
        World::at(tmp)
    }

    fn at(tmp: tempfile::TempDir) -> World {
        let data = tmp.path().join("data");
        World {
            blobs: BlobStore::open(&data).expect("blobs"),
            layers: LayerStore::open(&data).expect("layers"),
            tmp,
        }
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn layer(&self, entries: &[(&str, &str)]) -> PathBuf {
        let tar = layer_tar(entries);
        let digest: Digest = self.blobs.put_bytes(&tar).expect("put");
        let got = self
            .layers
            .unpack(
                &self.blobs,
                &digest,
                "application/vnd.oci.image.layer.v1.tar",
                None,
            )
            .expect("unpack");
        self.layers.path(&got.diff_id)
    }

    /// The two layers of the view tests: the upper one deletes a file and
    /// makes a folder opaque.
    fn two_layers(&self) -> Vec<PathBuf> {
        vec![
            self.layer(&[
                ("etc/", ""),
                ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
                ("etc/shadow", "secret"),
                ("var/cache/old", "old"),
                ("var/cache/sub/deep", "deep"),
                ("bin/sh", "sh"),
                ("keep", "keep"),
            ]),
            self.layer(&[
                ("etc/.wh.shadow", ""),
                ("var/cache/.wh..wh..opq", ""),
                ("var/cache/new", "new"),
                ("bin/added", "added"),
            ]),
        ]
    }

    fn container(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.tmp.path().join("containers").join(name);
        let target = dir.join("rootfs");
        (dir, target)
    }
}

/// Tears the rootfs down when the test ends, however it ends.
struct Teardown(PathBuf, PathBuf);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Err(e) = Rootfs::unmount(&self.0, &self.1) {
            eprintln!("teardown of {}: {e}", self.1.display());
            let _ = nix::mount::umount2(&self.1, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mounted_at(path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&path)))
        .map(str::to_owned)
        .collect()
}

/// Kind, mode and content of everything under `root`.
fn view(root: &Path) -> BTreeMap<String, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let (kind, data) = if ft.is_dir() {
            for e in std::fs::read_dir(&path).expect("list") {
                todo.push(e.expect("entry").path());
            }
            ("dir", Vec::new())
        } else if ft.is_file() {
            ("file", std::fs::read(&path).expect("read"))
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&path).expect("readlink");
            ("symlink", t.into_os_string().into_encoded_bytes())
        } else if ft.is_char_device() {
            ("char", Vec::new())
        } else {
            ("other", Vec::new())
        };
        let rel = path
            .strip_prefix(root)
            .expect("under")
            .display()
            .to_string();
        out.insert(rel, (kind.to_owned(), meta.mode() & 0o7777, data));
    }
    out
}

fn names(root: &Path) -> Vec<String> {
    view(root).into_keys().collect()
}

const WANT: &[&str] = &[
    "",
    "bin",
    "bin/added",
    "bin/sh",
    "etc",
    "etc/passwd",
    "keep",
    "var",
    "var/cache",
    "var/cache/new",
];

fn overlay_works(w: &World) -> bool {
    match rootfs::driver(&w.data()).expect("driver") {
        Driver::Overlay => true,
        Driver::Copy => {
            eprintln!(
                "overlay unavailable here (see ROOT/image/rootfs-driver): overlay test skipped"
            );
            false
        }
    }
}

#[test]
fn an_overlay_rootfs_shows_the_layers_and_keeps_writes_in_upper() {
    if skip("an_overlay_rootfs_shows_the_layers_and_keeps_writes_in_upper") {
        return;
    }
    let w = World::new();
    if !overlay_works(&w) {
        return;
    }
    let layers = w.two_layers();
    let (dir, target) = w.container("c1");
    let _guard = Teardown(dir.clone(), target.clone());
    let mounted = Rootfs::new(Driver::Overlay)
        .mount(&layers, &dir, &target)
        .expect("mount");
    assert_eq!(mounted.driver(), Driver::Overlay);
    assert_eq!(names(&target), WANT);
    let line = mounted_at(&target).join("\n");
    assert!(line.contains(" - overlay muelle "), "{line}");

    // The container's writes and deletions land in its upper folder only.
    std::fs::write(target.join("etc/hostname"), "c1").expect("write");
    std::fs::remove_file(target.join("keep")).expect("delete");
    std::fs::write(target.join("bin/sh"), "changed").expect("copy up");
    assert_eq!(
        std::fs::read(dir.join("upper/etc/hostname")).expect("upper"),
        b"c1"
    );
    let whiteout = std::fs::symlink_metadata(dir.join("upper/keep")).expect("whiteout");
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert_eq!(
        std::fs::read(layers[0].join("bin/sh")).expect("lower"),
        b"sh"
    );
    assert!(layers[0].join("keep").is_file(), "the layer is untouched");

    mounted.unmount().expect("unmount");
    assert!(
        mounted_at(&w.tmp.path().join("containers")).is_empty(),
        "nothing mounted"
    );
    for gone in [target.clone(), dir.join("upper"), dir.join("work")] {
        assert!(!gone.exists(), "{} removed", gone.display());
    }
    Rootfs::unmount(&dir, &target).expect("a second teardown is fine");
}

#[test]
fn the_copy_fallback_gives_the_same_view() {
    if skip("the_copy_fallback_gives_the_same_view") {
        return;
    }
    let w = World::new();
    let layers = w.two_layers();
    let (dir, target) = w.container("copy");
    let _guard = Teardown(dir.clone(), target.clone());
    let copied = Rootfs::new(Driver::Copy)
        .mount(&layers, &dir, &target)
        .expect("copy");
    assert_eq!(copied.driver(), Driver::Copy);
    assert_eq!(names(&target), WANT);
    assert!(mounted_at(&target).is_empty(), "a copy mounts nothing");

    if overlay_works(&w) {
        let (odir, otarget) = w.container("overlay");
        let _oguard = Teardown(odir.clone(), otarget.clone());
        let mounted = Rootfs::new(Driver::Overlay)
            .mount(&layers, &odir, &otarget)
            .expect("mount");
        assert_eq!(view(&target), view(&otarget), "copy and overlay agree");
        mounted.unmount().expect("unmount");
    }
    // Layers in OCI form (a data root where overlay whiteouts cannot be
    // made) copy to the same view; overlay refuses them.
    let oci = World::new();
    let oci = World {
        layers: oci.layers.clone().with_form(LayerForm::Oci),
        ..oci
    };
    let oci_layers = oci.two_layers();
    let (odir, otarget) = oci.container("oci");
    let _oguard = Teardown(odir.clone(), otarget.clone());
    let from_oci = Rootfs::new(Driver::Copy)
        .mount(&oci_layers, &odir, &otarget)
        .expect("copy of OCI-form layers");
    assert_eq!(view(&otarget), view(&target), "both forms give one view");
    from_oci.unmount().expect("unmount");
    let err = Rootfs::new(Driver::Overlay)
        .mount(&oci_layers, &odir, &otarget)
        .expect_err("overlay of OCI-form layers");
    assert!(matches!(err, ImageError::OciFormLayer(_)), "{err}");
    assert!(!otarget.exists());

    // A restart finds its copy.
    std::fs::write(target.join("mine"), "kept").expect("write");
    let again = Rootfs::new(Driver::Copy)
        .mount(&layers, &dir, &target)
        .expect("again");
    assert!(target.join("mine").is_file());
    again.unmount().expect("remove the copy");
    assert!(!target.exists());
}

#[test]
fn a_failed_setup_leaves_nothing() {
    if skip("a_failed_setup_leaves_nothing") {
        return;
    }
    let w = World::new();
    let mut layers = w.two_layers();
    layers.push(w.tmp.path().join("no-such-layer"));
    for driver in [Driver::Overlay, Driver::Copy] {
        let (dir, target) = w.container(driver.name());
        let _guard = Teardown(dir.clone(), target.clone());
        let err = Rootfs::new(driver)
            .mount(&layers, &dir, &target)
            .expect_err("a missing layer");
        assert!(err.to_string().contains("no-such-layer"), "{err}");
        assert!(mounted_at(w.tmp.path()).is_empty());
        assert!(!dir.exists(), "{driver}: {} removed", dir.display());
    }
    // A target with content is not mounted over.
    let (dir, target) = w.container("full");
    std::fs::create_dir_all(&target).expect("target");
    std::fs::write(target.join("x"), "x").expect("x");
    let err = Rootfs::new(Driver::Copy)
        .mount(&layers[..2], &dir, &target)
        .expect_err("not empty");
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    assert!(target.join("x").is_file());
}

#[test]
fn more_layers_than_one_page_of_options_mount() {
    if skip("more_layers_than_one_page_of_options_mount") {
        return;
    }
    let w = World::new();
    if !overlay_works(&w) {
        return;
    }
    // 60 layer folders of ~110-byte paths: ~6.6 KB of lowerdir, beyond
    // the 4 KB mount(2) takes.
    let layers: Vec<PathBuf> = (0..60)
        .map(|i| {
            let name = format!("f{i:02}");
            w.layer(&[(name.as_str(), name.as_str())])
        })
        .collect();
    // And one whose path is longer than the 255 bytes fsconfig takes as
    // a string: passed by descriptor.
    let long = w
        .tmp
        .path()
        .join("a".repeat(120))
        .join("b".repeat(120))
        .join("long-layer");
    std::fs::create_dir_all(long.join("from-the-long-path")).expect("long layer");
    assert!(long.as_os_str().len() > 255);
    let mut layers = layers;
    layers.insert(0, long);
    let total: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096, "{total} bytes of lowerdir");
    let (dir, target) = w.container("tall");
    let _guard = Teardown(dir.clone(), target.clone());
    let mounted = Rootfs::new(Driver::Overlay)
        .mount(&layers, &dir, &target)
        .expect("mount");
    assert_eq!(names(&target).len(), 62);
    assert!(target.join("from-the-long-path").is_dir());
    mounted.unmount().expect("unmount");
}

#[test]
fn the_driver_probe_is_cached() {
    if skip("the_driver_probe_is_cached") {
        return;
    }
    let w = World::new();
    let first = rootfs::driver(&w.data()).expect("probe");
    let cache = std::fs::read_to_string(w.data().join("image/rootfs-driver")).expect("cache");
    assert!(cache.starts_with(first.name()), "{cache}");
    let started = Instant::now();
    assert_eq!(rootfs::driver(&w.data()).expect("cached"), first);
    assert!(started.elapsed() < Duration::from_millis(50));
    let left: Vec<_> = std::fs::read_dir(w.data().join("image"))
        .expect("image")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().starts_with(".probe"))
        .collect();
    assert!(left.is_empty(), "probe folder removed: {left:?}");
    assert!(mounted_at(w.tmp.path()).is_empty());
    eprintln!("rootfs driver here: {first}");
}

#[test]
fn a_data_root_on_overlay_probes_as_it_is() {
    if skip("a_data_root_on_overlay_probes_as_it_is") {
        return;
    }
    let w = World::new();
    if !overlay_works(&w) {
        return;
    }
    // A data root inside an overlay mount (as in a container without a
    // volume for it): whatever the kernel allows there, the probe's answer
    // must match what a mount then does.
    let layers = w.two_layers();
    let (dir, target) = w.container("host");
    let _guard = Teardown(dir.clone(), target.clone());
    let outer = Rootfs::new(Driver::Overlay)
        .mount(&layers, &dir, &target)
        .expect("outer");
    let inner_root = target.join("var/lib/muelle");
    std::fs::create_dir_all(&inner_root).expect("inner root");
    let driver = rootfs::driver(&inner_root).expect("probe");
    let why = std::fs::read_to_string(inner_root.join("image/rootfs-driver")).expect("cache");
    eprintln!(
        "a data root on overlay gets the {driver} driver: {}",
        why.trim()
    );
    // The layer store there takes the form that driver reads, whiteouts
    // included, and the root filesystem shows the right view.
    let inner = World {
        blobs: BlobStore::open(&inner_root).expect("blobs"),
        layers: LayerStore::open(&inner_root).expect("layers"),
        tmp: tempfile::tempdir_in(&inner_root).expect("tmp"),
    };
    let inner_layers = inner.two_layers();
    let (idir, itarget) = (inner_root.join("c"), inner_root.join("c/rootfs"));
    let mounted = Rootfs::new(driver)
        .mount(&inner_layers, &idir, &itarget)
        .expect("the probed driver works");
    assert_eq!(names(&itarget), WANT);
    mounted.unmount().expect("inner unmount");
    drop(inner);
    outer.unmount().expect("outer unmount");
}

#[test]
fn five_layer_setup_and_teardown_time() {
    if skip("five_layer_setup_and_teardown_time") {
        return;
    }
    let w = World::new();
    let layers: Vec<PathBuf> = (0..5)
        .map(|i| {
            let files: Vec<(String, String)> = (0..50)
                .map(|f| (format!("l{i}/d{}/f{f}", f % 5), "x".repeat(100)))
                .collect();
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            w.layer(&refs)
        })
        .collect();
    let mut drivers = vec![Driver::Copy];
    if rootfs::driver(&w.data()).expect("driver") == Driver::Overlay {
        drivers.insert(0, Driver::Overlay);
    }
    for driver in drivers {
        let mut setup = Vec::new();
        let mut teardown = Vec::new();
        for i in 0..20 {
            let (dir, target) = w.container(&format!("{driver}-{i}"));
            let _guard = Teardown(dir.clone(), target.clone());
            let started = Instant::now();
            let mounted = Rootfs::new(driver)
                .mount(&layers, &dir, &target)
                .expect("mount");
            setup.push(started.elapsed());
            let started = Instant::now();
            mounted.unmount().expect("unmount");
            teardown.push(started.elapsed());
        }
        setup.sort();
        teardown.sort();
        eprintln!(
            "5-layer rootfs, {driver}: setup median {:?} (min {:?}), teardown median {:?}",
            setup[setup.len() / 2],
            setup[0],
            teardown[teardown.len() / 2]
        );
    }
}
