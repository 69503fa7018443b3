//! `inspect` / `container inspect`: docker's JSON for a container (State,
//! Config, HostConfig, Mounts, NetworkSettings), or one `--format`
//! template line per container.

use std::io::Write;

use anyhow::Context as _;
use engine::config::{MemorySwap, RestartPolicy};
use engine::container::Status;
use engine::{Container, Engine, EngineError};
use serde_json::{Value, json};
use storage::mounts::MountSpec;

use super::args::InspectArgs;
use super::engine;
use crate::args::Global;
use crate::exit::Reported;
use crate::template::Template;
use crate::text::go_json_pretty;

pub fn inspect(global: &Global, args: InspectArgs) -> anyhow::Result<()> {
    if let Some(kind) = args.kind.as_deref()
        && kind != "container"
    {
        anyhow::bail!("unsupported --type {kind:?}: use container (or `muelle image inspect`)");
    }
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(text) => Some(Template::parse(text)?),
    };
    let engine = engine(global)?;
    let (found, failed) = {
        let store = engine.open_store()?;
        let context = Context::new(&engine, &store);
        let mut found = Vec::new();
        let mut failed = false;
        for target in &args.targets {
            match engine.find(&store, target) {
                Ok(c) => found.push(inspect_json(&context, &c)),
                Err(EngineError::NoSuchContainer(_)) => {
                    eprintln!("Error: No such object: {target}");
                    failed = true;
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                }
            }
        }
        (found, failed)
    };
    let mut out = std::io::stdout().lock();
    match template {
        None => writeln!(out, "{}", go_json_pretty(&found).context("encoding JSON")?)?,
        Some(template) => {
            for value in &found {
                writeln!(out, "{}", template.render(value)?)?;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

/// What `inspect` finds among containers for each target: docker's
/// object, `None` where no container has that name or id (so that
/// `inspect` can look at images and volumes next), or the error.
pub fn find_all(
    engine: &Engine,
    store: &storage::store::Store,
    targets: &[String],
) -> Vec<Result<Option<Value>, EngineError>> {
    let context = Context::new(engine, store);
    targets
        .iter()
        .map(|target| match engine.find(store, target) {
            Ok(c) => Ok(Some(inspect_json(&context, &c))),
            Err(EngineError::NoSuchContainer(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .collect()
}

/// What every container's object reads, opened once per command.
struct Context<'s> {
    engine: &'s Engine,
    store: &'s storage::store::Store,
    images: Option<image::Images>,
    volumes: storage::volume::Volumes<'s>,
    driver: &'static str,
}

impl<'s> Context<'s> {
    fn new(engine: &'s Engine, store: &'s storage::store::Store) -> Context<'s> {
        Context {
            engine,
            store,
            images: image::Images::open(engine.data_root()).ok(),
            volumes: storage::volume::Volumes::new(store, engine.data_root()),
            driver: image::Rootfs::open(engine.data_root())
                .map_or("overlay", |r| r.driver().name()),
        }
    }
}

/// docker's object for one container.
fn inspect_json(cx: &Context<'_>, c: &Container) -> Value {
    let paths = cx.engine.paths(&c.id);
    let image_config = cx
        .images
        .as_ref()
        .and_then(|images| {
            let record = images
                .resolve(cx.store, &c.config.image.id.to_string())
                .ok()?;
            images.config(&record).ok()
        })
        .and_then(|i| i.config().clone());
    let config = &c.config;
    let state = &c.state;
    let env: Vec<String> = image_config
        .as_ref()
        .and_then(|i| i.env().clone())
        .unwrap_or_default()
        .into_iter()
        .chain(config.env.iter().cloned())
        .collect();
    let cmd = config.cmd.clone().or_else(|| {
        if config.entrypoint.is_some() {
            None
        } else {
            image_config.as_ref().and_then(|i| i.cmd().clone())
        }
    });
    let entrypoint = config
        .entrypoint
        .clone()
        .or_else(|| image_config.as_ref().and_then(|i| i.entrypoint().clone()));
    let volumes: serde_json::Map<String, Value> = c
        .mounts
        .iter()
        .filter(|m| matches!(m, MountSpec::Volume(_)))
        .map(|m| (m.target().display().to_string(), json!({})))
        .collect();
    let binds: Vec<String> = c
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Bind(b) => Some(format!(
                "{}:{}{}",
                b.source.display(),
                b.target.display(),
                if b.read_only { ":ro" } else { "" }
            )),
            _ => None,
        })
        .collect();
    let (restart_name, retries) = match config.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries),
    };
    let network = config.network.to_string();
    let memory_swap = match config.resources.memory_swap {
        Some(MemorySwap::Unlimited) => -1,
        Some(MemorySwap::Limit(n)) => i64::try_from(n).unwrap_or(i64::MAX),
        None => 0,
    };
    let zero_time = "0001-01-01T00:00:00Z";
    let state_json = json!({
        "Status": state.status.as_str(),
        "Running": matches!(state.status, Status::Running | Status::Paused),
        "Paused": state.status == Status::Paused,
        "Restarting": state.status == Status::Restarting,
        "OOMKilled": state.oom_killed,
        "Dead": state.status == Status::Dead,
        "Pid": state.pid,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": state.started_at.as_deref().unwrap_or(zero_time),
        "FinishedAt": state.finished_at.as_deref().unwrap_or(zero_time),
    });
    let host_config = json!({
        "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": network,
        "PortBindings": {},
        "VolumesFrom": if config.volumes_from.is_empty() { Value::Null } else { json!(config.volumes_from) },
        "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": retries},
        "AutoRemove": config.auto_remove,
        "CapAdd": config.cap_add.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "CapDrop": config.cap_drop.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "Dns": config.dns,
        "ExtraHosts": config.extra_hosts.iter().map(|(h, a)| format!("{h}:{a}")).collect::<Vec<_>>(),
        "GroupAdd": config.group_add,
        "Privileged": config.privileged,
        "PublishAllPorts": config.publish_all,
        "ReadonlyRootfs": config.read_only,
        "ShmSize": config.resources.shm_size,
        "Sysctls": config.sysctls,
        "Memory": config.resources.memory.unwrap_or(0),
        "MemorySwap": memory_swap,
        "NanoCpus": config.resources.cpus.map_or(0, |c| c.0),
        "CpuShares": config.resources.cpu_shares.unwrap_or(0),
        "PidsLimit": config.resources.pids_limit,
        "Ulimits": config.resources.ulimits.iter().map(|u| json!({
            "Name": u.name.to_string(), "Soft": u.soft, "Hard": u.hard,
        })).collect::<Vec<_>>(),
        "Init": config.init,
    });
    let config_json = json!({
        "Hostname": config.hostname.clone().unwrap_or_else(|| c.short_id().to_owned()),
        "Domainname": "",
        "User": config.user.clone().or_else(|| image_config.as_ref().and_then(|i| i.user().clone())).unwrap_or_default(),
        "AttachStdin": config.open_stdin,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": config.tty,
        "OpenStdin": config.open_stdin,
        "StdinOnce": config.open_stdin,
        "Env": env,
        "Cmd": cmd,
        "Image": config.image.reference,
        "Volumes": if volumes.is_empty() { Value::Null } else { Value::Object(volumes) },
        "WorkingDir": config.workdir.clone().or_else(|| image_config.as_ref().and_then(|i| i.working_dir().clone())).unwrap_or_default(),
        "Entrypoint": entrypoint,
        "Labels": config.labels,
        "StopSignal": c.stop_signal,
        "StopTimeout": config.stop_timeout,
    });
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": state_json,
        "Image": config.image.id.to_string(),
        "ResolvConfPath": paths.resolv_conf(),
        "HostnamePath": paths.hostname(),
        "HostsPath": paths.hosts(),
        "LogPath": paths.log(),
        "Name": format!("/{}", c.name),
        "RestartCount": state.restart_count,
        "Driver": cx.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": host_config,
        "Mounts": c.mounts.iter().map(|m| mount_json(cx, m)).collect::<Vec<_>>(),
        "Config": config_json,
        "NetworkSettings": network_settings(cx, c, &network),
    })
}

/// docker's `NetworkSettings`: one entry per network the container is on
/// (address, gateway, MAC while it runs), and its published ports.
fn network_settings(cx: &Context<'_>, c: &Container, mode: &str) -> Value {
    let endpoints = cx
        .engine
        .container_endpoints(cx.store, c)
        .unwrap_or_default();
    let mut networks = serde_json::Map::new();
    let mut first = None;
    for config in &c.config.networks {
        let network = cx.engine.network_find(cx.store, &config.network).ok();
        let endpoint = endpoints.iter().find(|e| e.network == config.network);
        let (gateway, prefix) = match (&network, endpoint) {
            (Some(n), Some(_)) => (n.gateway.to_string(), n.subnet.prefix_len()),
            _ => (String::new(), 0),
        };
        let entry = json!({
            "IPAMConfig": config.ip.map(|ip| json!({"IPv4Address": ip.to_string()})),
            "Links": null,
            "Aliases": if config.aliases.is_empty() { Value::Null } else { json!(config.aliases) },
            "MacAddress": endpoint.map(|e| e.mac.clone()).unwrap_or_default(),
            "NetworkID": network.as_ref().map(|n| n.id.clone()).unwrap_or_default(),
            "EndpointID": endpoint.map(|e| e.host_veth.clone()).unwrap_or_default(),
            "Gateway": gateway,
            "IPAddress": endpoint.map(|e| e.address.to_string()).unwrap_or_default(),
            "IPPrefixLen": prefix,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": endpoint.map(|e| e.names.clone()),
        });
        if first.is_none() {
            first = Some(entry.clone());
        }
        networks.insert(config.network.clone(), entry);
    }
    if networks.is_empty() && !c.config.network.is_bridge() {
        networks.insert(
            mode.to_owned(),
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "",
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "MacAddress": "",
            }),
        );
    }
    let mut ports = serde_json::Map::new();
    for p in cx.engine.published(cx.store, c).unwrap_or_default() {
        let key = format!("{}/{}", p.private_port, p.protocol);
        let binding = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
        match ports.get_mut(&key).and_then(Value::as_array_mut) {
            Some(list) => list.push(binding),
            None => {
                ports.insert(key, json!([binding]));
            }
        }
    }
    let pick = |field: &str| {
        first
            .as_ref()
            .and_then(|f| f.get(field).cloned())
            .unwrap_or_else(|| json!(""))
    };
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if endpoints.is_empty() { String::new() } else { cx.engine.run_root().join("netns").join(&c.id).display().to_string() },
        "Ports": ports,
        "IPAddress": pick("IPAddress"),
        "IPPrefixLen": first.as_ref().map_or(json!(0), |f| f["IPPrefixLen"].clone()),
        "Gateway": pick("Gateway"),
        "MacAddress": pick("MacAddress"),
        "Networks": networks,
    })
}

/// docker's `Mounts` entry.
fn mount_json(cx: &Context<'_>, m: &MountSpec) -> Value {
    match m {
        MountSpec::Bind(b) => json!({
            "Type": "bind",
            "Source": b.source,
            "Destination": b.target,
            "Mode": if b.read_only { "ro" } else { "" },
            "RW": !b.read_only,
            "Propagation": b.propagation.as_str(),
        }),
        MountSpec::Volume(v) => {
            let name = v.name.clone().unwrap_or_default();
            let volume = cx.volumes.get(&name).ok();
            json!({
                "Type": "volume",
                "Name": name,
                "Source": volume.as_ref().map(|v| v.mountpoint.clone()).unwrap_or_default(),
                "Destination": v.target,
                "Driver": volume.as_ref().map_or("local", |v| v.driver.as_str()),
                "Mode": if v.read_only { "ro" } else { "z" },
                "RW": !v.read_only,
                "Propagation": "",
            })
        }
        MountSpec::Tmpfs(t) => json!({
            "Type": "tmpfs",
            "Source": "",
            "Destination": t.target,
            "Mode": "",
            "RW": !t.read_only,
            "Propagation": "",
        }),
    }
}
