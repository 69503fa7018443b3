//! The command line, as clap types: docker's verbs and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::container::args::{
    AttachArgs, ContainerCommand, CreateArgs, ExecArgs, InspectArgs, KillArgs, LogsArgs, PauseArgs,
    PsArgs, RenameArgs, RmArgs, RunArgs, StartArgs, StatsArgs, StopArgs, TopArgs, WaitArgs,
};

#[derive(Parser, Debug)]
#[command(
    name = "muelle",
    version,
    about = "Build, ship and run containers, without a daemon"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Where an instance keeps its data; separate roots make separate
/// instances, side by side.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Persistent data: metadata, images, volumes.
    #[arg(
        long,
        global = true,
        env = "MUELLE_ROOT",
        default_value = "/var/lib/muelle"
    )]
    pub root: PathBuf,
    /// Runtime state that does not survive a reboot.
    #[arg(
        long,
        global = true,
        env = "MUELLE_RUNROOT",
        default_value = "/run/muelle"
    )]
    pub runroot: PathBuf,
    /// The operator's configuration.
    #[arg(
        long,
        global = true,
        env = "MUELLE_CONFIG",
        default_value = "/etc/muelle/muelle.toml"
    )]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
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
    Ps(PsArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Return low-level information on containers.
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(WaitArgs),
    /// Rename a container.
    Rename(RenameArgs),
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
    Cp(crate::container::args::CpArgs),
    /// Export a container's filesystem as a tar archive.
    Export(crate::container::args::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(crate::container::args::DiffArgs),
    /// List port mappings or a specific mapping for the container.
    Port(crate::container::args::PortArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage muelle itself.
    #[command(subcommand)]
    System(SystemCommand),
    /// Display system-wide information.
    Info {
        /// `json`, or a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Manage volume driver plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// List images.
    Images(ImagesArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Save one or more images to a tar archive (streamed to stdout by default).
    Save(SaveArgs),
    /// Load an image from a tar archive or stdin.
    Load(LoadArgs),
    /// Show the muelle version information.
    Version {
        /// `json`, or a Go template (`{{.Server.Version}}`).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Generate the autocompletion script for the specified shell.
    Completion {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Writes one man page per command into DIR (`cargo xtask man` runs it).
    #[command(name = "__man", hide = true)]
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        /// Driver to manage the network (bridge).
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format (e.g. 10.1.0.0/24).
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 gateway for the subnet.
        #[arg(long)]
        gateway: Option<String>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Set metadata on a network (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long)]
        no_trunc: bool,
        /// `json`, `table`, or a Go template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// `json`, or a Go template.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect {
        /// IPv4 address (e.g., 172.30.100.104).
        #[arg(long)]
        ip: Option<String>,
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Find where the metadata store and the disk disagree (after a crash).
    Check {
        /// Mend what was found, without deleting data.
        #[arg(long)]
        repair: bool,
    },
    /// Show muelle disk usage.
    Df(crate::system::DfArgs),
    /// Remove unused data.
    Prune(crate::system::PruneArgs),
    /// Display system-wide information.
    Info {
        /// `json`, or a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Volume driver.
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Driver options (KEY=VALUE).
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Labels (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
        /// Owner of the data folder.
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
        /// name=, driver=, label=KEY[=VALUE], dangling=true|false
        #[arg(short, long)]
        filter: Vec<String>,
        /// `json`, or `table`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(short, long)]
        format: Option<String>,
        /// Add UsageData (Size in bytes, -1 when the data is not mounted;
        /// RefCount: containers using it), which docker shows only in
        /// `system df -v`.
        #[arg(short, long)]
        size: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm {
        /// Accepted as docker's; an in-use volume is still refused.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Rename an unused volume (docker lacks this).
    Rename { old: String, new: String },
    /// Write a volume's content to a tar archive (stdout unless -o).
    ///
    /// Owners, modes (setuid included), mtimes, symlinks, hard links,
    /// fifos, device nodes and xattrs are kept; the archive reads with GNU
    /// tar (`tar -xpf`). A volume that containers use is refused unless
    /// --force.
    Export {
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Export even while containers use the volume.
        #[arg(short, long)]
        force: bool,
        /// The volume.
        name: String,
    },
    /// Restore a tar archive into a volume, creating it if needed.
    ///
    /// A missing volume is created with the local driver, so a backup
    /// restores on a fresh machine in one command (podman requires it to
    /// exist). The archive merges into existing content, replacing files of
    /// the same name; into an empty volume it lands whole or not at all.
    /// Entries that would write outside the volume (`..`, paths through
    /// symlinks, hard links out) refuse the whole import. A volume that
    /// containers use is refused unless --force.
    Import {
        /// Import even while containers use the volume.
        #[arg(short, long)]
        force: bool,
        /// The volume (created if missing).
        name: String,
        /// The archive: a file, or `-` for stdin.
        #[arg(value_name = "FILE|-")]
        source: String,
    },
    /// Remove unused anonymous volumes (with -a, every unused volume).
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum PluginCommand {
    /// List the plugin files of every plugin folder, broken ones with
    /// their error.
    #[command(alias = "list")]
    Ls {
        /// Only the driver names.
        #[arg(short, long)]
        quiet: bool,
        /// `json`, or `table`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show plugins as JSON.
    Inspect {
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `muelle image ...`; each verb also exists at the top level, as in
/// docker (`image ls` is `images`, `image rm` is `rmi`).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON.
    Inspect(ImageInspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images.
    #[command(alias = "remove", alias = "rmi")]
    Rm(RmiArgs),
    /// Remove unused images: untagged ones, or with -a every image no
    /// container uses.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Save one or more images to a tar archive (streamed to stdout by default).
    Save(SaveArgs),
    /// Load an image from a tar archive or stdin.
    Load(LoadArgs),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Accepted as docker's: muelle keeps no intermediate images, so every
    /// image is already shown.
    #[arg(short, long)]
    pub all: bool,
    /// Only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the manifest digests.
    #[arg(long)]
    pub digests: bool,
    /// Full image ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// dangling=true|false, reference=PATTERN (a glob on REPOSITORY[:TAG]).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// `json` (one object per line), or `table`.
    #[arg(long)]
    pub format: Option<String>,
    /// Only images named like this (a glob, as `--filter reference=`).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    /// `json` (the default), or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Sizes and dates in human-readable form (`--human=false`: bytes and
    /// RFC 3339).
    #[arg(
        short = 'H',
        long,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub human: bool,
    /// Only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and CREATED BY.
    #[arg(long)]
    pub no_trunc: bool,
    /// `json` (one object per line), or `table`.
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove an image with several tags by id, or one containers use
    /// (then only untagged; see the image crate's remove.rs).
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Dockerfile instruction for the config (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL); repeatable.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// The history comment (default `Imported from -`).
    #[arg(short, long)]
    pub message: Option<String>,
    /// A root filesystem tarball (plain, gzip or zstd), or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// docker-archive (`docker save`'s, the default) or oci-archive.
    #[arg(long, default_value = "docker-archive")]
    pub format: ::image::formats::Format,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from FILE instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load progress bar (shown only on a terminal).
    #[arg(short, long)]
    pub quiet: bool,
}
