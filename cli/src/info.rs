//! `muelle info`: what this muelle sees, in docker's layout (there is no
//! server: each command does the work itself, so "Server" describes the
//! data root this command uses).

use std::io::Write;

use serde_json::json;
use storage::plugin::{PluginConfig, PluginHost, PluginStatus};
use storage::store::Store;
use storage::volume::Volume;

use crate::args::Global;

pub fn run(global: &Global, format: Option<&str>) -> anyhow::Result<()> {
    let driver = image::rootfs::driver(&global.root)?;
    let (images, volumes) = {
        let store = Store::open(&global.root)?;
        let images = store.table::<image::ImageRecord>()?.len();
        let volumes = store.table::<Volume>()?.len();
        (images, volumes)
    };
    let plugins = PluginHost::new(PluginConfig::load(&global.config, &global.root)?);
    let mut volume_drivers = vec!["local".to_owned()];
    volume_drivers.extend(
        plugins
            .list()
            .into_iter()
            .filter(|p| matches!(p.status, PluginStatus::Ready(_)))
            .map(|p| p.name),
    );
    let uname = nix::sys::utsname::uname()?;
    let kernel = uname.release().to_string_lossy().into_owned();
    let cgroup = cgroup_version();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = std::io::stdout();
    let mut out = out.lock();
    if format == Some("json") {
        let info = json!({
            "Images": images,
            "Volumes": volumes,
            "Driver": driver.to_string(),
            "DockerRootDir": global.root,
            "RunRoot": global.runroot,
            "Plugins": { "Volume": volume_drivers },
            "CgroupVersion": cgroup,
            "KernelVersion": kernel,
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": cpus,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
        });
        writeln!(out, "{info}")?;
        return Ok(());
    }
    if let Some(other) = format {
        anyhow::bail!("unsupported --format {other:?}: use json");
    }
    writeln!(out, "Client:")?;
    writeln!(out, " Version:    {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        " Daemon:     none (each muelle command does its own work)"
    )?;
    writeln!(out)?;
    writeln!(out, "Server:")?;
    writeln!(out, " Images: {images}")?;
    writeln!(out, " Volumes: {volumes}")?;
    writeln!(out, " Storage Driver: {driver}")?;
    writeln!(out, " Plugins:")?;
    writeln!(out, "  Volume: {}", volume_drivers.join(" "))?;
    writeln!(out, " Cgroup Version: {cgroup}")?;
    writeln!(out, " Kernel Version: {kernel}")?;
    writeln!(out, " OSType: linux")?;
    writeln!(out, " Architecture: {}", std::env::consts::ARCH)?;
    writeln!(out, " CPUs: {cpus}")?;
    writeln!(out, " Root Dir: {}", global.root.display())?;
    writeln!(out, " Run Root: {}", global.runroot.display())?;
    Ok(())
}

/// docker's "Cgroup Version": 2 on a unified host, 1 otherwise (a hybrid
/// host, as this project's machines, counts as 1: its controllers are v1).
fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}
