//! The small flag syntaxes of `run`/`create`: `--ulimit`, `--restart`,
//! `--network`, `--stop-signal`.

use std::fmt;

use oci_spec::runtime::PosixRlimitType;
use serde::{Deserialize, Serialize};

use super::FlagError;

/// A resource docker's `--ulimit` knows (go-units' list; `as` is left out
/// there too, as it breaks container init).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UlimitName {
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl UlimitName {
    pub const ALL: [UlimitName; 15] = [
        UlimitName::Core,
        UlimitName::Cpu,
        UlimitName::Data,
        UlimitName::Fsize,
        UlimitName::Locks,
        UlimitName::Memlock,
        UlimitName::Msgqueue,
        UlimitName::Nice,
        UlimitName::Nofile,
        UlimitName::Nproc,
        UlimitName::Rss,
        UlimitName::Rtprio,
        UlimitName::Rttime,
        UlimitName::Sigpending,
        UlimitName::Stack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UlimitName::Core => "core",
            UlimitName::Cpu => "cpu",
            UlimitName::Data => "data",
            UlimitName::Fsize => "fsize",
            UlimitName::Locks => "locks",
            UlimitName::Memlock => "memlock",
            UlimitName::Msgqueue => "msgqueue",
            UlimitName::Nice => "nice",
            UlimitName::Nofile => "nofile",
            UlimitName::Nproc => "nproc",
            UlimitName::Rss => "rss",
            UlimitName::Rtprio => "rtprio",
            UlimitName::Rttime => "rttime",
            UlimitName::Sigpending => "sigpending",
            UlimitName::Stack => "stack",
        }
    }

    pub fn from_name(name: &str) -> Option<UlimitName> {
        UlimitName::ALL.into_iter().find(|u| u.as_str() == name)
    }

    /// The OCI spec's name for it (`RLIMIT_NOFILE`).
    pub fn rlimit_type(self) -> PosixRlimitType {
        match self {
            UlimitName::Core => PosixRlimitType::RlimitCore,
            UlimitName::Cpu => PosixRlimitType::RlimitCpu,
            UlimitName::Data => PosixRlimitType::RlimitData,
            UlimitName::Fsize => PosixRlimitType::RlimitFsize,
            UlimitName::Locks => PosixRlimitType::RlimitLocks,
            UlimitName::Memlock => PosixRlimitType::RlimitMemlock,
            UlimitName::Msgqueue => PosixRlimitType::RlimitMsgqueue,
            UlimitName::Nice => PosixRlimitType::RlimitNice,
            UlimitName::Nofile => PosixRlimitType::RlimitNofile,
            UlimitName::Nproc => PosixRlimitType::RlimitNproc,
            UlimitName::Rss => PosixRlimitType::RlimitRss,
            UlimitName::Rtprio => PosixRlimitType::RlimitRtprio,
            UlimitName::Rttime => PosixRlimitType::RlimitRttime,
            UlimitName::Sigpending => PosixRlimitType::RlimitSigpending,
            UlimitName::Stack => PosixRlimitType::RlimitStack,
        }
    }

    /// The resource number for getrlimit(2).
    pub fn resource(self) -> libc::__rlimit_resource_t {
        match self {
            UlimitName::Core => libc::RLIMIT_CORE,
            UlimitName::Cpu => libc::RLIMIT_CPU,
            UlimitName::Data => libc::RLIMIT_DATA,
            UlimitName::Fsize => libc::RLIMIT_FSIZE,
            UlimitName::Locks => libc::RLIMIT_LOCKS,
            UlimitName::Memlock => libc::RLIMIT_MEMLOCK,
            UlimitName::Msgqueue => libc::RLIMIT_MSGQUEUE,
            UlimitName::Nice => libc::RLIMIT_NICE,
            UlimitName::Nofile => libc::RLIMIT_NOFILE,
            UlimitName::Nproc => libc::RLIMIT_NPROC,
            UlimitName::Rss => libc::RLIMIT_RSS,
            UlimitName::Rtprio => libc::RLIMIT_RTPRIO,
            UlimitName::Rttime => libc::RLIMIT_RTTIME,
            UlimitName::Sigpending => libc::RLIMIT_SIGPENDING,
            UlimitName::Stack => libc::RLIMIT_STACK,
        }
    }
}

impl fmt::Display for UlimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `--ulimit NAME=SOFT[:HARD]`. Values are docker's: -1 is unlimited
/// (kept as -1 so `inspect` shows what docker shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: UlimitName,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// The value for setrlimit(2): -1 (or any negative) is RLIM_INFINITY.
    pub fn to_rlim(value: i64) -> u64 {
        u64::try_from(value).unwrap_or(libc::RLIM_INFINITY)
    }
}

/// `--ulimit`, as go-units' `ParseUlimit`: `nofile=1024` (hard = soft) or
/// `nofile=1024:2048`; -1 means unlimited.
pub fn parse_ulimit(text: &str) -> Result<Ulimit, FlagError> {
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| FlagError::UlimitFormat(text.to_owned()))?;
    let name = UlimitName::from_name(name).ok_or_else(|| FlagError::UlimitType(name.to_owned()))?;
    let number = |s: &str| {
        // Go's ParseInt takes an optional sign and nothing else around.
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FlagError::UlimitNumber(s.to_owned()));
        }
        s.parse::<i64>()
            .map_err(|_| FlagError::UlimitNumber(s.to_owned()))
    };
    let parts: Vec<&str> = values.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = number(soft)?;
            (soft, soft)
        }
        [soft, hard] => {
            // Go parses the hard limit first.
            let hard = number(hard)?;
            (number(soft)?, hard)
        }
        _ => return Err(FlagError::UlimitTooManyValues(values.to_owned())),
    };
    if hard != -1 {
        if soft == -1 {
            return Err(FlagError::UlimitSoftUnlimited(hard));
        }
        if soft > hard {
            return Err(FlagError::UlimitSoftAboveHard { soft, hard });
        }
    }
    Ok(Ulimit { name, soft, hard })
}

/// `--restart`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// `max_retries` 0: no limit, as docker's `MaximumRetryCount`.
    OnFailure {
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Docker's name for it (`on-failure`), as `inspect` shows.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }
}

/// `--restart no|always|unless-stopped|on-failure[:N]`: docker's CLI parse,
/// then its daemon's checks, in one step.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, FlagError> {
    let (name, count) = match text.split_once(':') {
        Some(("", _)) => return Err(FlagError::RestartNoPolicy),
        Some((name, count)) => (name, count),
        None => (text, ""),
    };
    let count = if count.is_empty() {
        0
    } else {
        count
            .parse::<i64>()
            .map_err(|_| FlagError::RestartCountNotInteger)?
    };
    match name {
        "no" | "always" | "unless-stopped" | "" if count != 0 => {
            Err(FlagError::RestartCountNotOnFailure)
        }
        // Docker takes "" as "no" (an empty --restart).
        "no" | "" => Ok(RestartPolicy::No),
        "always" => Ok(RestartPolicy::Always),
        "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
        "on-failure" if count < 0 => Err(FlagError::RestartCountNegative),
        "on-failure" => Ok(RestartPolicy::OnFailure {
            max_retries: u32::try_from(count).map_err(|_| FlagError::RestartCountNotInteger)?,
        }),
        other => Err(FlagError::RestartUnknown(other.to_owned())),
    }
}

/// `--network`, as docker's HostConfig.NetworkMode keeps it: `bridge`
/// (the default network, docker's default), `none`, `host`,
/// `container:NAME`, or a user-defined network's name. Stored as that
/// string, so records read as docker's do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum NetworkMode {
    /// A network namespace of its own with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// The default network (`muelle`, on the bridge `muelle0`).
    #[default]
    Bridge,
    /// Another container's network namespace (and its hosts, resolv.conf
    /// and host name), by the name or id given.
    Container(String),
    /// A user-defined network, by name.
    Named(String),
}

impl NetworkMode {
    pub fn as_str(&self) -> &str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge => "bridge",
            NetworkMode::Container(_) => "container",
            NetworkMode::Named(name) => name,
        }
    }

    /// The container joins networks of muelle's (default or named).
    pub fn is_bridge(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Named(_))
    }
}

impl From<NetworkMode> for String {
    fn from(mode: NetworkMode) -> String {
        match mode {
            NetworkMode::Container(name) => format!("container:{name}"),
            other => other.as_str().to_owned(),
        }
    }
}

impl From<String> for NetworkMode {
    fn from(text: String) -> NetworkMode {
        match text.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" => NetworkMode::Bridge,
            _ => match text.strip_prefix("container:") {
                Some(name) => NetworkMode::Container(name.to_owned()),
                None => NetworkMode::Named(text),
            },
        }
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(self.clone()))
    }
}

/// `--network none|host|bridge|default|container:NAME|NETWORK`. Whether a
/// named network exists is `create`'s to check, against the store.
pub fn parse_network(text: &str) -> Result<NetworkMode, FlagError> {
    match NetworkMode::from(text.to_owned()) {
        NetworkMode::Container(name) if name.is_empty() => {
            Err(FlagError::NetworkContainerMode(text.to_owned()))
        }
        NetworkMode::Named(name) if name.is_empty() => Err(FlagError::NetworkNotFound(name)),
        mode => Ok(mode),
    }
}

/// `--stop-signal`: a name (`SIGTERM`, `term`) or number, kept as the
/// signal's name.
pub fn parse_stop_signal(text: &str) -> Result<String, FlagError> {
    runtime_core::container::parse_signal(text)
        .map(|signal| signal.as_str().to_owned())
        .map_err(|_| FlagError::InvalidSignal(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulimit_err(text: &str) -> String {
        parse_ulimit(text).unwrap_err().to_string()
    }

    #[test]
    fn ulimits_as_docker_reads_them() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: UlimitName::Nofile,
                soft: 1024,
                hard: 2048
            }
        );
        let one = parse_ulimit("nproc=50").unwrap();
        assert_eq!((one.name, one.soft, one.hard), (UlimitName::Nproc, 50, 50));
        let unlimited = parse_ulimit("core=-1").unwrap();
        assert_eq!((unlimited.soft, unlimited.hard), (-1, -1));
        assert_eq!(Ulimit::to_rlim(-1), libc::RLIM_INFINITY);
        assert_eq!(parse_ulimit("memlock=1:-1").unwrap().hard, -1);
    }

    #[test]
    fn bad_ulimits_read_like_docker() {
        assert_eq!(ulimit_err("nofile"), "invalid ulimit argument: nofile");
        assert_eq!(ulimit_err("as=1"), "invalid ulimit type: as");
        assert_eq!(ulimit_err("NOFILE=1"), "invalid ulimit type: NOFILE");
        assert_eq!(
            ulimit_err("nofile=abc"),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            ulimit_err("nofile=1:2:3"),
            "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"
        );
        assert_eq!(
            ulimit_err("nofile=2048:1024"),
            "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"
        );
        assert_eq!(
            ulimit_err("nofile=-1:1024"),
            "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 1024"
        );
        assert!(parse_ulimit("nofile= 1").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(parse_restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(
            parse_restart("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert_eq!(
            parse_restart("on-failure").unwrap(),
            RestartPolicy::OnFailure { max_retries: 0 }
        );
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
    }

    #[test]
    fn bad_restart_policies_read_like_docker() {
        let err = |text: &str| parse_restart(text).unwrap_err().to_string();
        assert_eq!(
            err(":3"),
            "invalid restart policy format: no policy provided before colon"
        );
        assert_eq!(
            err("on-failure:x"),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            err("always:3"),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            err("on-failure:-1"),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert_eq!(
            err("sometimes"),
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
    }

    #[test]
    fn network_modes() {
        assert_eq!(parse_network("none").unwrap(), NetworkMode::None);
        assert_eq!(parse_network("host").unwrap(), NetworkMode::Host);
        assert_eq!(parse_network("default").unwrap(), NetworkMode::Bridge);
        assert_eq!(
            parse_network("backend").unwrap(),
            NetworkMode::Named("backend".into())
        );
        assert_eq!(
            parse_network("container:web").unwrap(),
            NetworkMode::Container("web".into())
        );
        assert!(parse_network("container:").is_err());
        assert_eq!(NetworkMode::default(), NetworkMode::Bridge);
        let json = serde_json::to_string(&NetworkMode::Container("web".into())).unwrap();
        assert_eq!(json, "\"container:web\"");
        let back: NetworkMode = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(back, NetworkMode::None);
    }

    #[test]
    fn stop_signals() {
        assert_eq!(parse_stop_signal("SIGINT").unwrap(), "SIGINT");
        assert_eq!(parse_stop_signal("quit").unwrap(), "SIGQUIT");
        assert_eq!(parse_stop_signal("9").unwrap(), "SIGKILL");
        assert_eq!(
            parse_stop_signal("SIGFOO").unwrap_err().to_string(),
            "Invalid signal: SIGFOO"
        );
    }
}
