//! The one error type of the netlink module.

use std::io;

use nix::errno::Errno;

/// What went wrong in a netlink call. Every message names the object the
/// call was about ("creating bridge muelle0: File exists").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused the request. `detail` is the kernel's extended
    /// ack message, when it sent one ("Invalid MTU 70000 requested").
    #[error("{what}: {}", refusal(.errno, .detail))]
    Kernel {
        what: String,
        errno: Errno,
        detail: Option<String>,
    },
    /// An interface name the kernel would refuse; nothing was sent.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// An argument out of range (a prefix length over 32); nothing was sent.
    #[error("{what}: {reason}")]
    InvalidArgument { what: String, reason: &'static str },
    /// The socket itself failed (open, send, receive, entering a namespace).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be read.
    #[error("{what}: malformed reply from the kernel: {reason}")]
    Decode { what: String, reason: String },
}

/// Result of the netlink module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The errno behind this error: the kernel's refusal, or the failed
    /// system call. `None` for invalid arguments and malformed replies.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::InvalidName { .. } | Error::InvalidArgument { .. } | Error::Decode { .. } => {
                None
            }
        }
    }
}

fn refusal(errno: &Errno, detail: &Option<String>) -> String {
    match detail {
        Some(detail) => format!("{} ({detail})", errno.desc()),
        None => errno.desc().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_refusal_names_the_object_and_keeps_the_errno() {
        let e = Error::Kernel {
            what: "creating bridge muelle0".into(),
            errno: Errno::EEXIST,
            detail: None,
        };
        assert_eq!(e.to_string(), "creating bridge muelle0: File exists");
        assert_eq!(e.errno(), Some(Errno::EEXIST));

        let e = Error::Kernel {
            what: "creating veth mu1".into(),
            errno: Errno::EINVAL,
            detail: Some("Invalid MTU 70000 requested".into()),
        };
        assert_eq!(
            e.to_string(),
            "creating veth mu1: Invalid argument (Invalid MTU 70000 requested)"
        );
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let e = Error::Io {
            what: "entering network namespace".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(e.errno(), Some(Errno::EINVAL));
    }
}
