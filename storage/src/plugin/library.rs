//! Opening a plugin file: dlopen, the entry symbol, and the checks of its
//! table, in the order the ABI promises they are safe. A library is never
//! unloaded: its code and static strings may still be referenced (by a
//! call that timed out, by the log callback's users, by the table we
//! copied), and unloading Rust libraries is unsound in general.

use std::ffi::c_void;
use std::fmt;
use std::path::Path;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use muelle_plugin_sdk::abi;

use super::PluginError;
use crate::volume::Scope;

/// What a loaded file declares about itself, and its functions.
pub(crate) struct Opened {
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    pub scope: Scope,
    pub table: Table,
}

/// The function pointers of a plugin's table, each checked non-null.
#[derive(Clone, Copy)]
pub(crate) struct Table {
    pub init: abi::InitFn,
    pub free_buf: abi::FreeBufFn,
    pub create: abi::CreateFn,
    pub remove: abi::NameFn,
    pub mount: abi::CallerFn,
    pub unmount: abi::CallerFn,
    pub path: abi::NameFn,
    pub get: abi::NameFn,
    pub list: abi::ListFn,
}

/// How a library that loaded fails to be a usable plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    NoEntrySymbol,
    NullTable,
    Misaligned,
    AbiVersion(u32),
    TooSmall(u32),
    NullFunction(&'static str),
    NotUtf8(&'static str),
    UnknownScope(u32),
    NameMismatch { declared: String, file: String },
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::NoEntrySymbol => write!(
                f,
                "not a muelle volume plugin (no symbol {})",
                abi::ENTRY_SYMBOL
            ),
            Defect::NullTable => write!(f, "{} returned no table (NULL)", abi::ENTRY_SYMBOL),
            Defect::Misaligned => write!(f, "{} returned a misaligned table", abi::ENTRY_SYMBOL),
            Defect::AbiVersion(v) => write!(
                f,
                "it speaks plugin ABI version {v}, this muelle speaks {}",
                abi::ABI_VERSION
            ),
            Defect::TooSmall(size) => write!(
                f,
                "its table is {size} bytes, ABI version {} needs at least {}",
                abi::ABI_VERSION,
                size_of::<abi::Plugin>()
            ),
            Defect::NullFunction(field) => write!(f, "its table has no {field} function (NULL)"),
            Defect::NotUtf8(field) => write!(f, "its {field} is not UTF-8"),
            Defect::UnknownScope(scope) => write!(f, "unknown scope {scope}"),
            Defect::NameMismatch { declared, file } => write!(
                f,
                "it calls itself {declared:?}, but the file is named {file}.so"
            ),
        }
    }
}

/// Opens the (already trusted) library at `resolved`, found as `path` for
/// the driver `name`, and checks its table.
pub(crate) fn open(path: &Path, resolved: &Path, name: &str) -> Result<Opened, PluginError> {
    let invalid = |defect| PluginError::Invalid {
        path: path.to_path_buf(),
        defect,
    };
    // RTLD_NOW: an unresolved symbol fails here, not in the middle of a
    // call. RTLD_LOCAL: the plugin's symbols do not leak into later ones.
    // SAFETY: loading runs the library's constructors, which is why the
    // file passed the trust checks first; it is never unloaded (below), so
    // its destructors never run while its code may still be referenced.
    let library = unsafe { Library::open(Some(resolved), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
        PluginError::Open {
            path: path.to_path_buf(),
            message: dl_message(&e, resolved),
        }
    })?;
    // SAFETY: the ABI types the entry symbol as `EntryFn`; reading it as
    // an Option maps a symbol whose address is NULL to None instead of a
    // null function pointer.
    let entry = match unsafe { library.get::<Option<abi::EntryFn>>(abi::ENTRY_SYMBOL) } {
        Ok(symbol) => *symbol,
        Err(libloading::Error::DlSym { .. }) => None,
        Err(e) => {
            return Err(PluginError::Open {
                path: path.to_path_buf(),
                message: dl_message(&e, resolved),
            });
        }
    };
    // Never unload: see the module comment. into_raw drops the handle
    // without dlclose.
    let _handle: *mut c_void = library.into_raw();
    let entry = entry.ok_or_else(|| invalid(Defect::NoEntrySymbol))?;
    // SAFETY: the library exports the ABI's entry symbol, which takes no
    // arguments and returns a pointer to its static table.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(invalid(Defect::NullTable));
    }
    if !table.is_aligned() {
        return Err(invalid(Defect::Misaligned));
    }
    // SAFETY: every ABI version starts with these two u32 fields; nothing
    // beyond them is read until struct_size says the table has it.
    let (abi_version, struct_size) = unsafe {
        (
            std::ptr::addr_of!((*table).abi_version).read(),
            std::ptr::addr_of!((*table).struct_size).read(),
        )
    };
    if abi_version != abi::ABI_VERSION {
        return Err(invalid(Defect::AbiVersion(abi_version)));
    }
    if (struct_size as usize) < size_of::<abi::Plugin>() {
        return Err(invalid(Defect::TooSmall(struct_size)));
    }
    // SAFETY: the table is version 1 and at least as large as abi::Plugin,
    // so every field below is there; it is static data of a library that
    // is never unloaded.
    let declared = unsafe { static_text(std::ptr::addr_of!((*table).name).read()) }
        .ok_or_else(|| invalid(Defect::NotUtf8("name")))?;
    if declared != name {
        return Err(invalid(Defect::NameMismatch {
            declared,
            file: name.to_owned(),
        }));
    }
    // SAFETY: as above.
    let version = unsafe { static_text(std::ptr::addr_of!((*table).version).read()) }
        .ok_or_else(|| invalid(Defect::NotUtf8("version")))?;
    // SAFETY: as above.
    let scope = match unsafe { std::ptr::addr_of!((*table).scope).read() } {
        abi::SCOPE_LOCAL => Scope::Local,
        abi::SCOPE_GLOBAL => Scope::Global,
        other => return Err(invalid(Defect::UnknownScope(other))),
    };
    // SAFETY: as above; each field is read as Option<fn>, which has the
    // layout of a function pointer with NULL as None, so a C table with a
    // NULL entry is caught here rather than being called.
    let table =
        unsafe { functions(table) }.map_err(|field| invalid(Defect::NullFunction(field)))?;
    Ok(Opened {
        name: declared,
        version,
        abi_version,
        scope,
        table,
    })
}

/// Reads the function pointers of a version-1 table.
///
/// # Safety
/// `table` must point at a live table of ABI version 1 whose struct_size
/// covers `abi::Plugin`.
unsafe fn functions(table: *const abi::Plugin) -> Result<Table, &'static str> {
    macro_rules! field {
        ($field:ident, $ty:ty) => {{
            // SAFETY: the caller's promise; Option<fn> has the layout of
            // the field's function pointer type.
            let read = unsafe {
                std::ptr::addr_of!((*table).$field)
                    .cast::<Option<$ty>>()
                    .read()
            };
            read.ok_or(stringify!($field))?
        }};
    }
    Ok(Table {
        init: field!(init, abi::InitFn),
        free_buf: field!(free_buf, abi::FreeBufFn),
        create: field!(create, abi::CreateFn),
        remove: field!(remove, abi::NameFn),
        mount: field!(mount, abi::CallerFn),
        unmount: field!(unmount, abi::CallerFn),
        path: field!(path, abi::NameFn),
        get: field!(get, abi::NameFn),
        list: field!(list, abi::ListFn),
    })
}

/// Longest name or version string accepted from a table: anything longer
/// is a broken table, not a name.
const MAX_STATIC_TEXT: usize = 4096;

/// A static string of the table, copied; None when it is not UTF-8 (or
/// absurdly long).
///
/// # Safety
/// `text` must describe bytes that stay readable for the call.
unsafe fn static_text(text: abi::Str) -> Option<String> {
    if text.len > MAX_STATIC_TEXT {
        return None;
    }
    // SAFETY: the caller's promise.
    let bytes = unsafe { text.as_bytes() };
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// dlerror's text without the path it starts with (the error names the
/// plugin already). libloading's own Display says only "dlopen failed":
/// the detail is in its source.
fn dl_message(e: &libloading::Error, resolved: &Path) -> String {
    let detail = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_else(|| e.to_string());
    let prefix = format!("{}: ", resolved.display());
    detail
        .strip_prefix(&prefix)
        .map(str::to_owned)
        .unwrap_or(detail)
}
