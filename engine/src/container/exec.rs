//! `exec`: a new process in a running container, set up as docker sets it
//! up: the container's environment (docker's PATH and HOSTNAME, the
//! image's Env, the container's `-e`) with the exec's `-e` over it, TERM
//! with `-t`; the container's user unless `-u`, resolved in the
//! container's own /etc/passwd and /etc/group (with its `--group-add`);
//! its working directory unless `-w`; its capabilities (all the engine
//! holds with `--privileged`), seccomp filter, rlimits and cgroup.
//!
//! runtime-core starts the process from the calling process and needs it
//! single-threaded (it forks without exec). The metadata store's threads
//! would break that, so [`Engine::exec`] looks the container up in a
//! short-lived child process and never opens the store itself.
//!
//! The process gets the caller's standard streams (stdin only with `-i`,
//! none with `-d`): its output reaches the caller without a copy. With
//! `-t` it gets a pty in the container, which runtime-core copies to and
//! from the caller's streams (the caller's terminal raw meanwhile).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::ForkResult;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Process, ProcessBuilder, UserBuilder};
use serde::{Deserialize, Serialize};

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
        require_single_thread()?;
        let container = self.find_in_child(text)?;
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

    /// The container, refreshed, read by a child process that opens the
    /// store, so that this one never starts the store's threads.
    fn find_in_child(&self, text: &str) -> Result<Container> {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| io("making a pipe")(e.into()))?;
        // SAFETY: this process is single-threaded (checked by the caller),
        // so the child may allocate and run anything; it leaves with _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                drop(read_end);
                let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.open_store()
                        .and_then(|store| self.find(&store, text))
                        .map_err(Lookup::from)
                }))
                .unwrap_or_else(|_| Err(Lookup::Other("the lookup panicked".into())));
                let bytes = serde_json::to_vec(&found).unwrap_or_default();
                let _ = std::fs::File::from(write_end).write_all(&bytes);
                // SAFETY: leaves the forked child without running the
                // parent's destructors or atexit handlers.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => {
                drop(write_end);
                let mut bytes = Vec::new();
                let read = std::fs::File::from(read_end).read_to_end(&mut bytes);
                while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
                read.map_err(io("reading what the lookup process found"))?;
                let found: std::result::Result<Container, Lookup> = serde_json::from_slice(&bytes)
                    .map_err(|_| {
                        EngineError::Reported(format!(
                            "looking up container {text}: the lookup process ended without an answer"
                        ))
                    })?;
                found.map_err(EngineError::from)
            }
            Err(e) => Err(io("forking the lookup process")(e.into())),
        }
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
    match (&config.hostname, config.network) {
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

/// Why the lookup process found nothing, carried across the pipe.
#[derive(Debug, Serialize, Deserialize)]
enum Lookup {
    NoSuchContainer(String),
    AmbiguousId(String),
    Other(String),
}

impl From<EngineError> for Lookup {
    fn from(e: EngineError) -> Lookup {
        match e {
            EngineError::NoSuchContainer(text) => Lookup::NoSuchContainer(text),
            EngineError::AmbiguousId(text) => Lookup::AmbiguousId(text),
            other => Lookup::Other(other.to_string()),
        }
    }
}

impl From<Lookup> for EngineError {
    fn from(l: Lookup) -> EngineError {
        match l {
            Lookup::NoSuchContainer(text) => EngineError::NoSuchContainer(text),
            Lookup::AmbiguousId(text) => EngineError::AmbiguousId(text),
            Lookup::Other(message) => EngineError::Reported(message),
        }
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

    #[test]
    fn lookups_keep_dockers_not_found_error() {
        let back: EngineError = Lookup::from(EngineError::NoSuchContainer("x".into())).into();
        assert_eq!(back.to_string(), "No such container: x");
        let json = serde_json::to_vec(&Err::<Container, _>(Lookup::AmbiguousId("ab".into())))
            .expect("json");
        let read: std::result::Result<Container, Lookup> =
            serde_json::from_slice(&json).expect("read back");
        assert!(matches!(read, Err(Lookup::AmbiguousId(t)) if t == "ab"));
    }
}
