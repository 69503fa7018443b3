//! `muelle network ...`: output as docker prints it.

use std::io::Write;

use engine::Engine;
use network::networks::CreateOptions;
use network::{Endpoint, EndpointConfig, Network};
use serde_json::{Value, json};
use storage::store::Store;

use crate::args::{Global, NetworkCommand};
use crate::container::engine;

pub fn run(global: &Global, cmd: NetworkCommand) -> anyhow::Result<()> {
    let engine = engine(global)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            internal,
            label,
            name,
        } => {
            let options = CreateOptions {
                name,
                driver: Some(driver),
                subnet,
                gateway,
                internal,
                labels: crate::volume::key_values(&label, "--label")?,
            };
            let store = engine.open_store()?;
            let network = engine.network_create(&store, &options)?;
            writeln!(out, "{}", network.id)?;
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            format,
        } => {
            let list = engine.network_list(&engine.open_store()?)?;
            let id = |n: &Network| {
                if no_trunc {
                    n.id.clone()
                } else {
                    n.short_id().to_owned()
                }
            };
            if quiet {
                for n in &list {
                    writeln!(out, "{}", id(n))?;
                }
            } else if format.as_deref() == Some("json") {
                for n in &list {
                    writeln!(out, "{}", ls_json(n, &id(n)))?;
                }
            } else {
                let text = format.as_deref().unwrap_or("table");
                let text = if text == "table" {
                    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
                } else {
                    text
                };
                let template = crate::template::Template::parse(text)?;
                let mut rendered = String::new();
                if template.is_table() {
                    rendered.push_str(&template.header(&|field| {
                        Some(match field {
                            "ID" => "NETWORK ID",
                            "Name" => "NAME",
                            "Driver" => "DRIVER",
                            "Scope" => "SCOPE",
                            "IPv6" => "IPV6",
                            "Internal" => "INTERNAL",
                            "Labels" => "LABELS",
                            "CreatedAt" => "CREATED AT",
                            _ => return None,
                        })
                    }));
                    rendered.push('\n');
                }
                for n in &list {
                    rendered.push_str(&template.render(&ls_json(n, &id(n)))?);
                    rendered.push('\n');
                }
                if template.is_table() {
                    rendered = crate::template::align_tabs(&rendered);
                }
                out.write_all(rendered.as_bytes())?;
            }
        }
        NetworkCommand::Inspect { format, networks } => {
            let store = engine.open_store()?;
            let mut found = Vec::new();
            let mut missing = None;
            for text in &networks {
                match engine.network_find(&store, text) {
                    Ok(n) => found.push(inspect_json(&engine, &store, &n)?),
                    Err(e) => missing = Some(e),
                }
            }
            drop(store);
            match format.as_deref() {
                None | Some("json") => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
                }
                Some(text) => {
                    let template = crate::template::Template::parse(text)?;
                    for n in &found {
                        writeln!(out, "{}", template.render(n)?)?;
                    }
                }
            }
            if let Some(e) = missing {
                return Err(e.into());
            }
        }
        NetworkCommand::Rm { networks } => {
            let store = engine.open_store()?;
            let mut failed = false;
            for text in &networks {
                match engine.network_remove(&store, text) {
                    Ok(_) => writeln!(out, "{text}")?,
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                // Each failure was printed; docker exits 1 after the rest.
                std::process::exit(1);
            }
        }
        NetworkCommand::Prune { force } => {
            if !force
                && !crate::exit::confirm("all custom networks not used by at least one container")?
            {
                return Ok(());
            }
            let removed = engine.network_prune(&engine.open_store()?)?;
            if !removed.is_empty() {
                writeln!(out, "Deleted Networks:")?;
                for name in removed {
                    writeln!(out, "{name}")?;
                }
            }
        }
        NetworkCommand::Connect {
            ip,
            alias,
            network,
            container,
        } => {
            let ip = ip
                .map(|ip| ip.parse())
                .transpose()
                .map_err(|_| anyhow::anyhow!("invalid IPv4 address in --ip"))?;
            let endpoint = EndpointConfig {
                network: network.clone(),
                ip,
                aliases: alias,
                mac: None,
            };
            engine.network_connect(&engine.open_store()?, &network, &container, endpoint)?;
        }
        NetworkCommand::Disconnect {
            force: _,
            network,
            container,
        } => {
            engine.network_disconnect(&engine.open_store()?, &network, &container)?;
        }
    }
    Ok(())
}

/// docker's `network ls --format json` object.
fn ls_json(n: &Network, id: &str) -> Value {
    json!({
        "CreatedAt": n.created,
        "Driver": n.driver,
        "ID": id,
        "IPv6": "false",
        "Internal": n.internal.to_string(),
        "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Name": n.name,
        "Scope": "local",
    })
}

/// docker's `network inspect` shape.
fn inspect_json(engine: &Engine, store: &Store, n: &Network) -> anyhow::Result<Value> {
    let mut containers = serde_json::Map::new();
    for (container, endpoint) in engine.network_containers(store, n)? {
        containers.insert(
            container.id.clone(),
            endpoint_json(&container.name, n, &endpoint),
        );
    }
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}],
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Labels": n.labels,
    }))
}

fn endpoint_json(name: &str, n: &Network, e: &Endpoint) -> Value {
    json!({
        "Name": name,
        "EndpointID": e.host_veth,
        "MacAddress": e.mac,
        "IPv4Address": format!("{}/{}", e.address, n.subnet.prefix_len()),
        "IPv6Address": "",
    })
}
