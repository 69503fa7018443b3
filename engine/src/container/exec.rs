//! `exec`: a new process in a running container, set up as docker sets it
//! up: the container's environment (docker's PATH and HOSTNAME, the
//! image's Env, the container's `-e`) with the exec's `-e` over it, TERM
//! with `-t`; the container's user unless `-u`, resolved in the
//! container's own /etc/passwd and /etc/group (with its `--group-add`);
//! its working directory unless `-w`; its capabilities (all the engine
//! holds with `--privileged`), seccomp filter, rlimits and cgroup.
//!
//! runtime-core starts the process from the calling process and needs it
//! single-threaded (it forks without exec): the metadata store starts no
//! thread, and [`Engine::exec`] checks that none runs before it execs.
//!
//! The process gets the caller's standard streams (stdin only with `-i`,
//! none with `-d`): its output reaches the caller without a copy. With
//! `-t` it gets a pty in the container, which runtime-core copies to and
//! from the caller's streams (the caller's terminal raw meanwhile).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Process, ProcessBuilder, UserBuilder};

use super::error::io;
use super::record::{Container, Status};
use super::{Engine, EngineError, Result};
use crate::config::{ContainerConfig, NetworkMode};
use crate::spec::{self, Host, SpecError};

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `-e`/`--env-file` entries: `KEY=VALUE`, or a bare `KEY` to unset.
    pub env: Vec<String>,
    /// `-w`; the container's working directory when `None` or empty.
    pub workdir: Option<String>,
    /// `-u`; the container's user when `None` or empty.
    pub user: Option<String>,
    pub privileged: bool,
    pub tty: bool,
    /// `-i`: the process reads the caller's stdin.
    pub interactive: bool,
    /// `-d`: start it and return; its streams are /dev/null.
    pub detach: bool,
}

impl Engine {
    /// Runs `request` in the container `text` names and returns its exit
    /// status (128+N when signal N ended it; 0 when detached).
    ///
    /// For a command-line process that ends soon after: this process must
    /// be single-threaded (an error says so otherwise), and the signals
    /// runtime-core forwards to the process stay blocked. When the container may ptrace (`--privileged`,
    /// `--cap-add SYS_PTRACE`, or `request.privileged`), this process is
    /// re-executed from a sealed copy of its binary first (CVE-2019-5736)
    /// and does the whole exec again from there; this returns only if
    /// that fails.
    pub fn exec(&self, text: &str, request: &ExecRequest) -> Result<i32> {
        if request.cmd.is_empty() {
            return Err(EngineError::NoExecCommand);
        }
        let container = self.find_closed(text)?;
        require_single_thread()?;
        match container.state.status {
            Status::Running => {}
            Status::Paused => return Err(EngineError::ExecPaused(text.to_owned())),
            Status::Restarting => return Err(EngineError::Restarting(container.id)),
            _ => return Err(EngineError::NotRunning(container.id)),
        }
        // docker resolves these before the runtime runs, and an exec that
        // cannot start exits 126 with the reason as it is.
        let process = self
            .exec_process(&container, request)
            .map_err(|e| match e {
                EngineError::Spec(e) => EngineError::ExecFailed {
                    message: e.to_string(),
                    code: 126,
                },
                other => other,
            })?;
        let id: runtime_core::state::ContainerId = container.id.parse()?;
        let streams = Streams::for_request(request)?;
        let result = runtime_core::container::exec(
            &self.runtime_root(),
            &id,
            runtime_core::container::ExecOptions {
                process,
                console_socket: None,
                pid_file: None,
                detach: request.detach,
                preserve_fds: 0,
            },
        );
        drop(streams);
        match result {
            Ok(code) => Ok(code),
            Err(runtime_core::Error::SealedExeRequired) => {
                let Err(e) = runtime_core::process::sealed_exe::reexec();
                Err(e.into())
            }
            Err(runtime_core::Error::NotFound(_) | runtime_core::Error::BadState { .. }) => {
                Err(EngineError::NotRunning(container.id))
            }
            Err(runtime_core::Error::Init(reason)) => Err(EngineError::ExecFailed {
                code: failure_code(&request.cmd[0], &reason),
                message: runtime_failure(&reason),
            }),
            Err(other) => Err(EngineError::ExecFailed {
                code: 126,
                message: runtime_failure(&other.to_string()),
            }),
        }
    }

    /// The container, refreshed; the store is closed again before the
    /// exec (it starts no thread, which [`require_single_thread`] checks
    /// after).
    fn find_closed(&self, text: &str) -> Result<Container> {
        let store = self.open_store()?;
        self.find(&store, text)
    }

    /// The OCI process of the exec, from the container's configuration
    /// and its image's.
    fn exec_process(&self, container: &Container, request: &ExecRequest) -> Result<Process> {
        let image = self.image_configuration(container)?;
        let image_config = image.config().as_ref();
        let mut config = container.config.clone();
        if let Some(user) = request.user.as_ref().filter(|u| !u.is_empty()) {
            config.user = Some(user.clone());
        }
        if let Some(dir) = request.workdir.as_ref().filter(|w| !w.is_empty()) {
            config.workdir = Some(dir.clone());
        }
        config.tty = request.tty;
        config.env.extend(request.env.iter().cloned());

        let user_text = config
            .user
            .clone()
            .or_else(|| image_config.and_then(|c| c.user().clone()))
            .unwrap_or_default();
        let rootfs = self.paths(&container.id).rootfs();
        let user = spec::resolve_user(&rootfs, &user_text, &config.group_add)?;
        let hostname = hostname(&config, &container.id);
        let env = spec::process::env(&config, image_config, &hostname, &user.home);
        let cwd = spec::process::cwd(&config, image_config)?;

        let mut oci_user = UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .build()
            .map_err(SpecError::from)?;
        if !user.additional_gids.is_empty() {
            oci_user.set_additional_gids(Some(user.additional_gids));
        }
        let mut process = ProcessBuilder::default()
            .terminal(request.tty && !request.detach)
            .user(oci_user)
            .args(request.cmd.clone())
            .env(env)
            .cwd(cwd)
            .no_new_privileges(config.security.no_new_privileges)
            .build()
            .map_err(SpecError::from)?;
        // None: runtime-core gives the process the container's.
        process.set_capabilities(None);
        process.set_rlimits(None);
        process.set_oom_score_adj(None);
        process.set_console_size(if request.tty {
            caller_window_size()
        } else {
            None
        });
        if request.privileged {
            let mut all = ContainerConfig::new(config.image.clone());
            all.privileged = true;
            let caps = spec::security::capabilities(&all, &Host::detect())?;
            process.set_capabilities(Some(spec::security::linux_capabilities(&caps)));
        }
        Ok(process)
    }

    /// The image's configuration, read from its blob (the image id is the
    /// config's digest): no store needed.
    fn image_configuration(&self, container: &Container) -> Result<ImageConfiguration> {
        let id = &container.config.image.id;
        let bytes = image::BlobStore::open(self.data_root())?.read(id)?;
        Ok(image::manifest::parse_config(
            &bytes,
            &format!("config {id}"),
        )?)
    }
}

/// The container's host name as its spec got it, without reading the
/// host's other facts (an exec must be quick).
fn hostname(config: &ContainerConfig, id: &str) -> String {
    match (&config.hostname, &config.network) {
        (Some(name), _) => name.clone(),
        (None, NetworkMode::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, _) => id.chars().take(12).collect(),
    }
}

/// The caller's terminal size, so the process sees it from its first
/// look (runtime-core copies it again once the process runs).
fn caller_window_size() -> Option<oci_spec::runtime::Box> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills one winsize.
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut size) } == 0;
    if !ok || size.ws_row == 0 {
        return None;
    }
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(size.ws_row))
        .width(u64::from(size.ws_col))
        .build()
        .ok()
}

/// docker's words (runc's, through containerd) for a process the runtime
/// could not start.
fn runtime_failure(reason: &str) -> String {
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
    )
}

/// docker's exit code for an exec that could not start (moby's
/// translateContainerdStartErr): 127 when the command is not found, or a
/// path is not a directory; otherwise 126.
fn failure_code(command: &str, message: &str) -> u8 {
    let message = message.to_lowercase();
    let not_found = message.contains("executable file not found")
        || message.contains("no such file or directory");
    if (message.contains(&command.to_lowercase()) && not_found)
        || message.contains("not a directory")
    {
        127
    } else {
        126
    }
}

/// runtime-core forks without exec: another thread could hold a lock the
/// child then waits for forever.
fn require_single_thread() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(io("reading /proc/self/status"))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok());
    match threads {
        Some(1) => Ok(()),
        _ => Err(EngineError::Reported(
            "exec must be called before this process starts any thread".into(),
        )),
    }
}

/// This process's standard streams as the exec'd process inherits them:
/// /dev/null in place of stdin without `-i`, and of all three with `-d`
/// (a detached process must not hold the caller's pipes open). Put back
/// on drop.
struct Streams {
    saved: Vec<(RawFd, Option<OwnedFd>)>,
}

impl Streams {
    fn for_request(request: &ExecRequest) -> Result<Streams> {
        let replaced: &[RawFd] = if request.detach {
            &[0, 1, 2]
        } else if !request.interactive {
            &[0]
        } else {
            &[]
        };
        let mut streams = Streams { saved: Vec::new() };
        if replaced.is_empty() {
            return Ok(streams);
        }
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(io("opening /dev/null"))?;
        for &fd in replaced {
            // SAFETY: fcntl on a descriptor number; a closed one gives
            // EBADF (-1) and is closed again on restore.
            let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            // SAFETY: a new descriptor that nobody else owns.
            let copy = (copy >= 0).then(|| unsafe { OwnedFd::from_raw_fd(copy) });
            streams.saved.push((fd, copy));
            // SAFETY: dup2 between descriptors of this process.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(io("putting /dev/null in place of a standard stream")(
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(streams)
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        for (fd, copy) in self.saved.drain(..) {
            // SAFETY: dup2/close of this process's own descriptors.
            unsafe {
                match copy {
                    Some(copy) => libc::dup2(copy.as_raw_fd(), fd),
                    None => libc::close(fd),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_of_failed_starts_are_dockers() {
        let not_found = "exec: \"nope\": executable file not found in $PATH";
        assert_eq!(failure_code("nope", not_found), 127);
        let missing_path = "exec: \"/x/y\": stat /x/y: no such file or directory";
        assert_eq!(failure_code("/x/y", missing_path), 127);
        assert_eq!(
            failure_code("/etc/passwd", "exec: \"/etc/passwd\": permission denied"),
            126
        );
        // A missing working directory is not a missing command.
        assert_eq!(
            failure_code(
                "true",
                "entering process.cwd /nope: ENOENT: No such file or directory"
            ),
            126
        );
    }
}
