//! The plugin host: finds volume driver plugins, loads them with
//! libloading through the versioned C ABI of `muelle-plugin-sdk`, and
//! calls them with a timeout. (Being written.)

/// Why a plugin could not be loaded or called. Every message names the
/// plugin (and the call, for call failures).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("volume plugin {plugin}: {message}")]
    Other { plugin: String, message: String },
}
