//! Why a `run`/`create` flag was refused, in docker's words (so scripts
//! and people that know docker's messages recognize them). The CLI adds
//! the flag's name where docker's CLI does (`invalid argument "x" for
//! "--ulimit" flag: ...`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    // --ulimit (go-units' ParseUlimit).
    #[error("invalid ulimit argument: {0}")]
    UlimitFormat(String),
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    /// Go's strconv.ParseInt error text, which docker shows as is.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    UlimitNumber(String),
    #[error("too many limit value arguments - {0}, can only have up to two, `soft[:hard]`")]
    UlimitTooManyValues(String),
    #[error(
        "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {0}"
    )]
    UlimitSoftUnlimited(i64),
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitSoftAboveHard { soft: i64, hard: i64 },

    // Sizes (--memory, --memory-swap, --shm-size) and --cpus.
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
    #[error("failed to parse {0} as a rational number")]
    NotRational(String),
    #[error("value is too precise")]
    TooPrecise,
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error("Range of CPUs is from 0.01 to {0}.00, as there are only {0} CPUs available")]
    CpusRange(usize),

    // --restart (docker's CLI, then its daemon's check).
    #[error("invalid restart policy format: no policy provided before colon")]
    RestartNoPolicy,
    #[error("invalid restart policy format: maximum retry count must be an integer")]
    RestartCountNotInteger,
    #[error("invalid restart policy: maximum retry count can only be used with 'on-failure'")]
    RestartCountNotOnFailure,
    #[error("invalid restart policy: maximum retry count cannot be negative")]
    RestartCountNegative,
    #[error(
        "invalid restart policy: unknown policy '{0}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
    )]
    RestartUnknown(String),

    // --cap-add / --cap-drop.
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),

    // --security-opt.
    /// Neither `key=value` nor a known bare word.
    #[error("invalid --security-opt 1: {0:?}")]
    SecurityOptFormat(String),
    /// An unknown key, or a value the key does not take.
    #[error("invalid --security-opt 2: {0:?}")]
    SecurityOptValue(String),
    #[error(
        "{0:?}: muelle applies no AppArmor or SELinux profile, so only \"apparmor=unconfined\" and \"label=disable\" are accepted"
    )]
    NoMacSupport(String),
    #[error("opening seccomp profile ({}) failed: {source}", .path.display())]
    SeccompOpen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("compacting json for seccomp profile ({}) failed: {source}", .path.display())]
    SeccompJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Decoding seccomp profile failed: {0}")]
    SeccompDecode(String),

    // --network.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("invalid --network {0:?}: container: needs a container name or id")]
    NetworkContainerMode(String),
    #[error("invalid IPv4 address: {0}")]
    InvalidIp(String),
    #[error("{0} is not a valid mac address")]
    InvalidMac(String),
    #[error(
        "invalid network alias {0:?}: use letters, digits, '-' and '_', in labels split by dots"
    )]
    InvalidAlias(String),
    #[error("user specified IP address is supported on user defined networks only")]
    IpOnDefaultNetwork,
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    AliasOnDefaultNetwork,
    #[error("conflicting options: {flag} and the network mode {mode}: it needs a bridge network")]
    NeedsBridgeNetwork { flag: &'static str, mode: String },
    #[error("conflicting options: port publishing and the container type network mode")]
    PublishWithoutNetwork,
    #[error(transparent)]
    Port(#[from] network::ports::PortError),

    // --stop-signal.
    #[error("Invalid signal: {0}")]
    InvalidSignal(String),
}
