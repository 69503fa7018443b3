//! The container verbs' flags, as docker spells them.

use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand};

pub use super::cp::CpArgs;
pub use super::diff::DiffArgs;
pub use super::export::ExportArgs;
pub use super::port::PortArgs;

// `run` and `create`: everything about the new container. docker's `-h`
// is the host name, so help is `--help` only.
#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container (and its anonymous volumes) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables.
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long, value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add additional groups to join.
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Bind mount a volume.
    #[arg(short, long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long, value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short, long, value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Connect a container to a network (bridge, none, host, container:NAME or a network's name).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long, alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long, value_name = "list")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short, long)]
    pub cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security Options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Ulimit options.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Set meta data on a container.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<i32>,
    /// Size of /dev/shm.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options.
    #[arg(long)]
    pub sysctl: Vec<String>,
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (everything after the image).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
}

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
}

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug, Clone)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long, allow_hyphen_values = true)]
    pub time: Option<i32>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs (or "all").
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes).
    #[arg(long)]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of the given type: container, image or volume.
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub targets: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Args, Debug, Clone)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=<timestamp>').
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long, value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments.
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default: -ef).
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    Run(RunArgs),
    /// Create a new container.
    Create(CreateArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(AttachArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Kill one or more running containers.
    Kill(KillArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// List containers.
    #[command(name = "ls", aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Display detailed information on one or more containers.
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(WaitArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Remove all stopped containers.
    Prune(PruneArgs),
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Display the running processes of a container.
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(StatsArgs),
    /// Pause all processes within one or more containers.
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(PauseArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(DiffArgs),
    /// List port mappings or a specific mapping for the container.
    Port(PortArgs),
    /// Folds a container's exit into the store: what a monitor runs once
    /// its container exited.
    #[command(hide = true)]
    Cleanup {
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
}
