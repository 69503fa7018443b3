//! The log callback muelle gives every plugin: a plugin has its own copy
//! of `tracing` (and of std), so it cannot reach muelle's subscriber; its
//! lines come through this C function and are logged with the plugin's
//! name as a field.

use std::ffi::c_void;

use muelle_plugin_sdk::abi;

/// What a plugin's `log_ctx` points at. One is leaked per loaded plugin:
/// the ABI lets the plugin call `log` for the life of its instance, which
/// is the life of the process (plugins are never unloaded).
pub(crate) struct LogTarget {
    plugin: String,
}

impl LogTarget {
    pub(crate) fn leak(plugin: &str) -> &'static LogTarget {
        Box::leak(Box::new(LogTarget {
            plugin: plugin.to_owned(),
        }))
    }

    pub(crate) fn as_ctx(&'static self) -> *mut c_void {
        std::ptr::from_ref(self).cast_mut().cast()
    }
}

/// Longest line kept from a plugin; the rest is cut, so a runaway plugin
/// cannot flood the log with one message.
const MAX_LINE: usize = 4096;

/// The `log` function of `abi::Host`. Callable from any thread.
///
/// # Safety
/// `ctx` is null or what [`LogTarget::as_ctx`] returned; `message`
/// describes bytes readable for the call (the ABI's promise).
pub(crate) unsafe extern "C" fn log(ctx: *mut c_void, level: u32, message: abi::Str) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: a non-null ctx is the leaked, immutable LogTarget handed to
    // this plugin's init; it lives as long as the process.
    let target = unsafe { &*ctx.cast_const().cast::<LogTarget>() };
    // SAFETY: the plugin lends `message` for the duration of this call.
    let bytes = unsafe { message.as_bytes() };
    let bytes = &bytes[..bytes.len().min(MAX_LINE)];
    let text = super::driver::printable(&String::from_utf8_lossy(bytes));
    // Unwinding out of an extern "C" function aborts the process; a
    // subscriber that panics must not take muelle down with it.
    let _ = std::panic::catch_unwind(|| {
        let plugin = target.plugin.as_str();
        match level {
            abi::LOG_ERROR => tracing::error!(plugin, "{text}"),
            abi::LOG_WARN => tracing::warn!(plugin, "{text}"),
            abi::LOG_INFO => tracing::info!(plugin, "{text}"),
            _ => tracing::debug!(plugin, "{text}"),
        }
    });
}
