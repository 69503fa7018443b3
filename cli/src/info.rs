//! `muelle info`: what this muelle sees, in docker's layout (there is no
//! server: each command does the work itself, so "Server" describes the
//! data root this command uses). `--format json` prints docker's field
//! names; any other format is a Go template over the same object
//! (`{{.ContainersRunning}}`).

use std::io::Write;

use engine::container::Status;
use serde_json::{Value, json};
use storage::plugin::{PluginConfig, PluginHost, PluginStatus};
use storage::volume::Volume;

use crate::args::Global;
use crate::human;
use crate::template::Template;

pub fn run(global: &Global, format: Option<&str>) -> anyhow::Result<()> {
    let template = match format {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text)?),
    };
    let info = gather(global)?;
    let mut out = std::io::stdout().lock();
    match (format, template) {
        (Some("json"), _) => writeln!(out, "{}", crate::text::go_json(&info)?)?,
        (_, Some(template)) => writeln!(out, "{}", template.render(&info)?)?,
        _ => write_text(&mut out, &info)?,
    }
    Ok(())
}

/// docker's info object, with muelle's facts (no swarm, no networks yet).
fn gather(global: &Global) -> anyhow::Result<Value> {
    let driver = image::rootfs::driver(&global.root)?;
    let engine = crate::container::engine(global)?;
    let (containers, images, volumes) = {
        let store = engine.open_store()?;
        let containers = engine.list(&store)?;
        let images = store.table::<image::ImageRecord>()?.len();
        let volumes = store.table::<Volume>()?.len();
        (containers, images, volumes)
    };
    // docker counts by state: paused, running, and everything else stopped.
    let count = |status: Status| {
        containers
            .iter()
            .filter(|c| c.state.status == status)
            .count()
    };
    let running = count(Status::Running);
    let paused = count(Status::Paused);
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
    Ok(json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "Volumes": volumes,
        "Driver": driver.to_string(),
        "LoggingDriver": "json-file",
        // runtime-core writes the cgroup files itself (no systemd).
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "Plugins": { "Volume": volume_drivers },
        "DefaultRuntime": "runtime-core",
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": operating_system(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "Name": uname.nodename().to_string_lossy(),
        "DockerRootDir": global.root,
        "RunRoot": global.runroot,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    }))
}

fn write_text(out: &mut impl Write, info: &Value) -> std::io::Result<()> {
    let text = |key: &str| match &info[key] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    writeln!(out, "Client:")?;
    writeln!(out, " Version:    {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        " Daemon:     none (each muelle command does its own work)"
    )?;
    writeln!(out)?;
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", text("Containers"))?;
    writeln!(out, "  Running: {}", text("ContainersRunning"))?;
    writeln!(out, "  Paused: {}", text("ContainersPaused"))?;
    writeln!(out, "  Stopped: {}", text("ContainersStopped"))?;
    writeln!(out, " Images: {}", text("Images"))?;
    writeln!(out, " Volumes: {}", text("Volumes"))?;
    writeln!(out, " Server Version: {}", text("ServerVersion"))?;
    writeln!(out, " Storage Driver: {}", text("Driver"))?;
    writeln!(out, " Logging Driver: {}", text("LoggingDriver"))?;
    writeln!(out, " Cgroup Driver: {}", text("CgroupDriver"))?;
    writeln!(out, " Cgroup Version: {}", text("CgroupVersion"))?;
    writeln!(out, " Plugins:")?;
    let drivers: Vec<&str> = info["Plugins"]["Volume"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    writeln!(out, "  Volume: {}", drivers.join(" "))?;
    writeln!(out, " Default Runtime: {}", text("DefaultRuntime"))?;
    writeln!(out, " Kernel Version: {}", text("KernelVersion"))?;
    writeln!(out, " Operating System: {}", text("OperatingSystem"))?;
    writeln!(out, " OSType: {}", text("OSType"))?;
    writeln!(out, " Architecture: {}", text("Architecture"))?;
    writeln!(out, " CPUs: {}", text("NCPU"))?;
    let memory = info["MemTotal"].as_u64().unwrap_or(0);
    writeln!(out, " Total Memory: {}", human::binary_size(memory))?;
    writeln!(out, " Name: {}", text("Name"))?;
    writeln!(out, " Docker Root Dir: {}", text("DockerRootDir"))?;
    writeln!(out, " Run Root: {}", text("RunRoot"))?;
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

/// os-release's PRETTY_NAME, as docker shows it.
fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "<unknown>".to_owned())
}

/// Bytes of memory the kernel manages (docker's MemTotal).
fn mem_total() -> u64 {
    // SAFETY: sysinfo only fills the struct it is given.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return 0;
    }
    info.totalram.saturating_mul(u64::from(info.mem_unit))
}
