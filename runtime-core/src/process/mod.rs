//! The fork path: from the runtime process to the container's init, and the
//! messages they exchange on the way.

pub mod channel;
pub mod clone;
pub mod init;
pub mod sealed_exe;
pub mod setup;
pub mod tenant;

use channel::{Channel, Message};

/// Ends a forked child that failed before exec: the error goes to the
/// runtime over the channel (or to stderr once the runtime is gone), and
/// the exit status says what a shell would (127: not found, 126: could not
/// run).
pub(crate) fn fail_child(channel: &Channel, err: crate::Error) -> ! {
    let message = match &err {
        crate::Error::Init(text) => text.clone(),
        other => other.to_string(),
    };
    if channel.send(&Message::Failed(message.clone())).is_err() {
        eprintln!("muelle-runtime: {message}");
    }
    let not_found =
        message.contains("executable file not found") || message.contains("no such file");
    // SAFETY: leaving the forked child without running the parent's
    // destructors or atexit handlers.
    unsafe { libc::_exit(if not_found { 127 } else { 126 }) }
}
