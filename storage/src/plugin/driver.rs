//! [`PluginDriver`]: a loaded plugin seen as a `volume::Driver`. It turns
//! each operation into a job for the plugin's thread and the reply (status
//! code and bytes) back into muelle's errors and values, checking what the
//! plugin returned: text that is not UTF-8, relative paths and invalid
//! volume names are errors, not values.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use muelle_plugin_sdk::abi;

use super::PluginError;
use super::host::PluginInfo;
use super::worker::{Call, NoInstance, Output, Reply, Worker};
use crate::volume::{Driver, Result, Scope, VolumeError, VolumeName};

/// One loaded plugin instance, shared by every driver handle of it.
pub(crate) struct Loaded {
    pub info: PluginInfo,
    pub worker: Worker,
    /// init's status and message when it failed: the instance is unusable.
    pub init_failure: Option<(i32, Vec<u8>)>,
}

impl Loaded {
    /// Fails when the instance cannot take calls: init failed, or a call
    /// that timed out is still running.
    pub fn ready(&self) -> Result<(), PluginError> {
        if let Some((status, message)) = &self.init_failure {
            return Err(init_error(&self.info.name, *status, message));
        }
        self.worker.ensure_idle()
    }
}

/// A volume driver provided by a plugin. Every call runs on the plugin's
/// own thread and fails after the configured call timeout.
pub struct PluginDriver {
    loaded: Arc<Loaded>,
    timeout: Duration,
}

impl PluginDriver {
    pub(crate) fn new(loaded: Arc<Loaded>, timeout: Duration) -> PluginDriver {
        PluginDriver { loaded, timeout }
    }

    /// What the plugin declared and where it was loaded from.
    pub fn info(&self) -> &PluginInfo {
        &self.loaded.info
    }

    fn plugin(&self) -> &str {
        &self.loaded.info.name
    }

    /// Runs `call` and returns its output; `volume` is the volume it is
    /// about, for NOT_FOUND.
    fn call(&self, call: Call, volume: Option<&VolumeName>) -> Result<Vec<u8>> {
        let name = call.name();
        let reply =
            self.loaded
                .worker
                .call(call, self.timeout)?
                .map_err(|missing| match missing {
                    NoInstance::InitFailed { status, message } => {
                        init_error(self.plugin(), status, &message)
                    }
                    NoInstance::NotInitialized => PluginError::Init {
                        plugin: self.plugin().to_owned(),
                        message: "called before init".to_owned(),
                    },
                })?;
        self.outcome(name, volume, reply)
    }

    fn outcome(
        &self,
        call: &'static str,
        volume: Option<&VolumeName>,
        reply: Reply,
    ) -> Result<Vec<u8>> {
        match reply.status {
            abi::OK => match reply.output {
                Output::Bytes(bytes) => Ok(bytes),
                Output::TooLarge(len) => Err(self
                    .bad_output(
                        call,
                        format!(
                            "{len} bytes, more than the {} MiB muelle accepts",
                            super::worker::MAX_OUTPUT >> 20
                        ),
                    )
                    .into()),
            },
            abi::NOT_FOUND if volume.is_some() => Err(VolumeError::NotFound(
                volume.map(ToString::to_string).unwrap_or_default(),
            )),
            // INVALID carries the plugin's own words about which option or
            // name is wrong; it has no key for InvalidOption to name.
            abi::NOT_FOUND | abi::INVALID | abi::BUSY | abi::ERROR => Err(VolumeError::Driver {
                driver: self.plugin().to_owned(),
                message: message(call, &reply.output),
            }),
            abi::PANIC => Err(PluginError::Panicked {
                plugin: self.plugin().to_owned(),
                call,
                message: panic_message(call, &reply.output),
            }
            .into()),
            status => Err(PluginError::UnknownStatus {
                plugin: self.plugin().to_owned(),
                call,
                status,
            }
            .into()),
        }
    }

    fn bad_output(&self, call: &'static str, problem: String) -> PluginError {
        PluginError::BadOutput {
            plugin: self.plugin().to_owned(),
            call,
            problem,
        }
    }

    /// A host path the plugin returned: empty means none.
    fn host_path(&self, call: &'static str, bytes: Vec<u8>) -> Result<Option<PathBuf>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| self.bad_output(call, "a path that is not UTF-8".to_owned()))?;
        // Relative paths would be resolved against muelle's cwd, and a NUL
        // would cut the path short at the next syscall.
        if !text.starts_with('/') || text.contains('\0') {
            return Err(self
                .bad_output(
                    call,
                    format!("the path {text:?}, which is not an absolute path"),
                )
                .into());
        }
        Ok(Some(PathBuf::from(text)))
    }
}

/// The error for a failed init.
pub(crate) fn init_error(plugin: &str, status: i32, message_bytes: &[u8]) -> PluginError {
    let output = Output::Bytes(message_bytes.to_vec());
    match status {
        abi::PANIC => PluginError::Panicked {
            plugin: plugin.to_owned(),
            call: "init",
            message: panic_message("init", &output),
        },
        abi::ERROR | abi::NOT_FOUND | abi::INVALID | abi::BUSY => PluginError::Init {
            plugin: plugin.to_owned(),
            message: message("init", &output),
        },
        status => PluginError::UnknownStatus {
            plugin: plugin.to_owned(),
            call: "init",
            status,
        },
    }
}

fn message(call: &str, output: &Output) -> String {
    match output {
        Output::Bytes(bytes) => {
            let text = printable(&String::from_utf8_lossy(bytes));
            if text.is_empty() {
                format!("{call} failed without a message")
            } else {
                text
            }
        }
        Output::TooLarge(len) => format!("{call} failed with a message of {len} bytes"),
    }
}

/// The SDK words a caught panic as `panicked: WHAT`; the error already
/// says it panicked.
fn panic_message(call: &str, output: &Output) -> String {
    let text = message(call, output);
    match text.strip_prefix("panicked: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Longest message kept from a plugin.
const MAX_MESSAGE: usize = 1024;

/// A plugin's message made safe for a terminal: one line, no control
/// characters (an escape sequence could rewrite what the user sees), cut
/// at [`MAX_MESSAGE`] characters.
pub(crate) fn printable(text: &str) -> String {
    let line: String = text
        .chars()
        .take(MAX_MESSAGE)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.trim().to_owned()
}

impl Driver for PluginDriver {
    fn name(&self) -> &str {
        self.plugin()
    }

    fn scope(&self) -> Scope {
        self.loaded.info.scope
    }

    fn create(&self, name: &VolumeName, options: &BTreeMap<String, String>) -> Result<()> {
        let call = Call::Create {
            name: name.as_str().to_owned(),
            options: options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        self.call(call, Some(name)).map(drop)
    }

    fn remove(&self, name: &VolumeName) -> Result<()> {
        let call = Call::Remove {
            name: name.as_str().to_owned(),
        };
        self.call(call, Some(name)).map(drop)
    }

    fn mount(&self, name: &VolumeName, caller: &str) -> Result<PathBuf> {
        let call = Call::Mount {
            name: name.as_str().to_owned(),
            caller: caller.to_owned(),
        };
        let bytes = self.call(call, Some(name))?;
        self.host_path("mount", bytes)?
            .ok_or_else(|| self.bad_output("mount", "no path".to_owned()).into())
    }

    fn unmount(&self, name: &VolumeName, caller: &str) -> Result<()> {
        let call = Call::Unmount {
            name: name.as_str().to_owned(),
            caller: caller.to_owned(),
        };
        self.call(call, Some(name)).map(drop)
    }

    fn path(&self, name: &VolumeName) -> Result<Option<PathBuf>> {
        let call = Call::Path {
            name: name.as_str().to_owned(),
        };
        let bytes = self.call(call, Some(name))?;
        self.host_path("path", bytes)
    }

    fn get(&self, name: &VolumeName) -> Result<Option<PathBuf>> {
        let call = Call::Get {
            name: name.as_str().to_owned(),
        };
        let bytes = self.call(call, Some(name))?;
        self.host_path("get", bytes)
    }

    fn list(&self) -> Result<Vec<VolumeName>> {
        let bytes = self.call(Call::List, None)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| self.bad_output("list", "names that are not UTF-8".to_owned()))?;
        text.split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.parse::<VolumeName>().map_err(|_| {
                    self.bad_output(
                        "list",
                        format!("the invalid volume name {:?}", printable(line)),
                    )
                    .into()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_printable_line() {
        assert_eq!(
            printable("bad\x1b[2Jthing\n\tagain \n"),
            "bad [2Jthing  again"
        );
        assert_eq!(printable(&"x".repeat(5000)).len(), MAX_MESSAGE);
        assert_eq!(
            message("create", &Output::Bytes(Vec::new())),
            "create failed without a message"
        );
        assert_eq!(
            message("create", &Output::Bytes(b"no \xffgood".to_vec())),
            "no \u{fffd}good"
        );
    }

    #[test]
    fn init_statuses_map_to_errors() {
        assert_eq!(
            init_error("p", abi::PANIC, b"panicked: boom").to_string(),
            "volume plugin p panicked in init: boom"
        );
        assert_eq!(
            init_error("p", abi::ERROR, b"no disk").to_string(),
            "volume plugin p: init failed: no disk"
        );
        assert_eq!(
            init_error("p", 77, b"").to_string(),
            "volume plugin p: init returned unknown status 77"
        );
    }
}
