//! The process: arguments (docker's entrypoint/cmd rules), environment and
//! working directory, each from the container's config over the image's.

use std::path::PathBuf;

use oci_spec::image::Config as ImageConfig;

use super::{Result, SpecError};
use crate::config::ContainerConfig;

/// Where `--init` binds muelle's init in the container.
pub const INIT_PATH: &str = "/sbin/muelle-init";

/// The PATH docker gives a container whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Entrypoint + cmd as docker merges them:
///
/// | `--entrypoint` | args | result |
/// |---|---|---|
/// | not given | none | image Entrypoint + image Cmd |
/// | not given | given | image Entrypoint + args |
/// | given | none | `--entrypoint` alone (the image's Cmd is dropped) |
/// | given | given | `--entrypoint` + args |
/// | `""` | none | nothing: "No command specified" |
/// | `""` | given | args alone |
pub fn args(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<Vec<String>> {
    let image_cmd = || image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let user_cmd = config.cmd.clone().filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match &config.entrypoint {
        Some(entrypoint) => (entrypoint.clone(), user_cmd.unwrap_or_default()),
        None => (
            image
                .and_then(|c| c.entrypoint().clone())
                .unwrap_or_default(),
            user_cmd.unwrap_or_else(image_cmd),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The command behind muelle's init, which forwards signals and reaps.
pub fn behind_init(args: Vec<String>) -> Vec<String> {
    [INIT_PATH.to_owned(), "--".to_owned()]
        .into_iter()
        .chain(args)
        .collect()
}

/// Docker's environment: PATH (a default), HOSTNAME and, with a terminal,
/// TERM=xterm; then the image's Env; then the container's `-e` entries,
/// a later value replacing an earlier one of the same key in place, and
/// a bare `KEY` removing it. HOME comes last from the user's passwd
/// entry when nothing set it (runc does this for docker).
pub fn env(
    config: &ContainerConfig,
    image: Option<&ImageConfig>,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<String> = vec![DEFAULT_PATH.to_owned(), format!("HOSTNAME={hostname}")];
    if config.tty {
        env.push("TERM=xterm".to_owned());
    }
    let image_env = image.and_then(|c| c.env().as_deref()).unwrap_or_default();
    for entry in image_env.iter().chain(&config.env) {
        match entry.split_once('=') {
            Some((key, _)) => match env.iter().position(|e| key_of(e) == key) {
                Some(i) => env[i] = entry.clone(),
                None => env.push(entry.clone()),
            },
            None => env.retain(|e| key_of(e) != entry),
        }
    }
    if !env.iter().any(|e| key_of(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

/// `-w`, else the image's WorkingDir, else `/`.
pub fn cwd(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<PathBuf> {
    if let Some(workdir) = config.workdir.as_deref().filter(|w| !w.is_empty()) {
        if !workdir.starts_with('/') {
            return Err(SpecError::RelativeWorkdir(workdir.to_owned()));
        }
        return Ok(PathBuf::from(workdir));
    }
    match image.and_then(|c| c.working_dir().as_deref()) {
        // An image's relative WorkingDir is relative to /, as docker
        // cleans it.
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from("/").join(dir)),
        _ => Ok(PathBuf::from("/")),
    }
}
