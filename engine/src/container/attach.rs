//! `attach`: a caller joins a running container's monitor, which writes
//! the container's output to the caller's own streams from then on and
//! feeds the caller's stdin to it (when the container keeps stdin open).

use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;

use storage::store::Store;

use super::record::{Container, Status};
use super::{Engine, EngineError, Result};

/// The caller's streams.
pub struct CallerStreams<'a> {
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

impl Engine {
    /// Attaches `streams` to the container: its monitor's control
    /// connection comes back (see `monitor::attach`). stdin is passed on
    /// only to a container that keeps it open (`-i`).
    pub fn attach(
        &self,
        store: &Store,
        text: &str,
        streams: CallerStreams<'_>,
    ) -> Result<(Container, UnixStream)> {
        let container = self.find(store, text)?;
        match container.state.status {
            Status::Running => {}
            Status::Paused => return Err(EngineError::AttachPaused),
            _ => return Err(EngineError::AttachStopped),
        }
        let stdin = streams.stdin.filter(|_| container.config.open_stdin);
        let path = self.paths(&container.id).attach_socket();
        let control = crate::monitor::connect(&path, stdin, streams.stdout, streams.stderr)
            .map_err(|e| EngineError::Io {
                context: format!("attaching to container {}", container.name),
                source: e,
            })?;
        Ok((container, control))
    }
}
