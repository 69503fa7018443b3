//! The `extern "C"` functions the export macro puts in a plugin's table.
//! Each one turns C values into Rust ones, calls the driver inside
//! `catch_unwind`, and turns the outcome back into a status code and a
//! plugin-allocated buffer. Nothing here may unwind into the host.

use std::any::Any;
use std::ffi::c_void;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::abi::{self, Buf, KeyValue, Str};
use crate::{DriverError, ErrorKind, HostContext, Logger, Scope, VolumeDriver};

pub const fn table<D: VolumeDriver>() -> abi::Plugin {
    abi::Plugin {
        abi_version: abi::ABI_VERSION,
        struct_size: size_of::<abi::Plugin>() as u32,
        name: Str::new(D::NAME),
        version: Str::new(D::VERSION),
        scope: match D::SCOPE {
            Scope::Local => abi::SCOPE_LOCAL,
            Scope::Global => abi::SCOPE_GLOBAL,
        },
        init: init::<D>,
        free_buf,
        create: create::<D>,
        remove: remove::<D>,
        mount: mount::<D>,
        unmount: unmount::<D>,
        path: path::<D>,
        get: get::<D>,
        list: list::<D>,
    }
}

fn into_buf(bytes: Vec<u8>) -> Buf {
    if bytes.is_empty() {
        return Buf::EMPTY;
    }
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    Buf {
        ptr: Box::into_raw(boxed).cast::<u8>(),
        len,
    }
}

unsafe extern "C" fn free_buf(buf: Buf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: every non-empty Buf this plugin hands out comes from
    // `into_buf`, a boxed slice of exactly `len` bytes.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf.ptr, buf.len)) });
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown payload".to_owned());
    format!("panicked: {what}")
}

fn code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Other => abi::ERROR,
        ErrorKind::NotFound => abi::NOT_FOUND,
        ErrorKind::Invalid => abi::INVALID,
        ErrorKind::Busy => abi::BUSY,
    }
}

/// Runs `call`, writes its bytes or its error message to `out`, and
/// returns the status code.
fn guarded(out: *mut Buf, call: impl FnOnce() -> Result<Vec<u8>, DriverError>) -> i32 {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(bytes)) => (abi::OK, bytes),
        Ok(Err(e)) => (code(e.kind), e.message.into_bytes()),
        Err(payload) => (abi::PANIC, panic_message(payload.as_ref()).into_bytes()),
    };
    if !out.is_null() {
        // SAFETY: the host passes a valid, writable Buf for the result.
        unsafe { out.write(into_buf(bytes)) };
    }
    status
}

/// # Safety
/// `s` must be valid for the call (the ABI's promise for borrowed strings).
unsafe fn text<'a>(s: Str, what: &str) -> Result<&'a str, DriverError> {
    // SAFETY: forwarded from the caller.
    std::str::from_utf8(unsafe { s.as_bytes() })
        .map_err(|_| DriverError::invalid(format!("{what} is not UTF-8")))
}

/// # Safety
/// `instance` must come from this plugin's `init::<D>`.
unsafe fn driver<'a, D: VolumeDriver>(instance: *mut c_void) -> Result<&'a D, DriverError> {
    if instance.is_null() {
        return Err(DriverError::other("called without an instance"));
    }
    // SAFETY: `init::<D>` made it from a Box<D> that is never freed.
    Ok(unsafe { &*instance.cast::<D>() })
}

fn path_bytes(path: Option<PathBuf>) -> Vec<u8> {
    path.map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default()
}

unsafe extern "C" fn init<D: VolumeDriver>(
    host: *const abi::Host,
    instance: *mut *mut c_void,
    out: *mut Buf,
) -> i32 {
    guarded(out, || {
        if host.is_null() || instance.is_null() {
            return Err(DriverError::other("init called without host or instance"));
        }
        // SAFETY: the host passes a valid Host for the duration of init.
        let host = unsafe { &*host };
        if host.abi_version != abi::ABI_VERSION {
            return Err(DriverError::invalid(format!(
                "host speaks ABI {}, plugin speaks {}",
                host.abi_version,
                abi::ABI_VERSION
            )));
        }
        // SAFETY: state_dir is borrowed for this call.
        let state_dir = PathBuf::from(unsafe { text(host.state_dir, "state_dir")? });
        let logger = Logger {
            log: host.log,
            ctx: host.log_ctx,
        };
        let made = D::init(HostContext { state_dir, logger })?;
        // SAFETY: `instance` is a valid out pointer (checked non-null).
        unsafe { instance.write(Box::into_raw(Box::new(made)).cast()) };
        Ok(Vec::new())
    })
}

unsafe extern "C" fn create<D: VolumeDriver>(
    instance: *mut c_void,
    name: Str,
    options: *const KeyValue,
    options_len: usize,
    out: *mut Buf,
) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract for instance, name and the options array.
        let (d, name) = unsafe { (driver::<D>(instance)?, text(name, "name")?) };
        let raw: &[KeyValue] = if options.is_null() || options_len == 0 {
            &[]
        } else {
            // SAFETY: the host passes options_len valid entries.
            unsafe { std::slice::from_raw_parts(options, options_len) }
        };
        let mut pairs = Vec::with_capacity(raw.len());
        for kv in raw {
            // SAFETY: borrowed for this call.
            pairs.push(unsafe { (text(kv.key, "option key")?, text(kv.value, "option value")?) });
        }
        d.create(name, &pairs).map(|()| Vec::new())
    })
}

unsafe extern "C" fn remove<D: VolumeDriver>(
    instance: *mut c_void,
    name: Str,
    out: *mut Buf,
) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let (d, name) = unsafe { (driver::<D>(instance)?, text(name, "name")?) };
        d.remove(name).map(|()| Vec::new())
    })
}

unsafe extern "C" fn mount<D: VolumeDriver>(
    instance: *mut c_void,
    name: Str,
    caller: Str,
    out: *mut Buf,
) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let (d, name, caller) = unsafe {
            (
                driver::<D>(instance)?,
                text(name, "name")?,
                text(caller, "caller")?,
            )
        };
        d.mount(name, caller).map(|p| path_bytes(Some(p)))
    })
}

unsafe extern "C" fn unmount<D: VolumeDriver>(
    instance: *mut c_void,
    name: Str,
    caller: Str,
    out: *mut Buf,
) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let (d, name, caller) = unsafe {
            (
                driver::<D>(instance)?,
                text(name, "name")?,
                text(caller, "caller")?,
            )
        };
        d.unmount(name, caller).map(|()| Vec::new())
    })
}

unsafe extern "C" fn path<D: VolumeDriver>(instance: *mut c_void, name: Str, out: *mut Buf) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let (d, name) = unsafe { (driver::<D>(instance)?, text(name, "name")?) };
        d.path(name).map(path_bytes)
    })
}

unsafe extern "C" fn get<D: VolumeDriver>(instance: *mut c_void, name: Str, out: *mut Buf) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let (d, name) = unsafe { (driver::<D>(instance)?, text(name, "name")?) };
        d.get(name).map(path_bytes)
    })
}

unsafe extern "C" fn list<D: VolumeDriver>(instance: *mut c_void, out: *mut Buf) -> i32 {
    guarded(out, || {
        // SAFETY: ABI contract.
        let d = unsafe { driver::<D>(instance)? };
        let names = d.list()?;
        if let Some(bad) = names.iter().find(|n| n.contains('\n')) {
            return Err(DriverError::other(format!(
                "volume name {bad:?} holds a newline"
            )));
        }
        Ok(names.join("\n").into_bytes())
    })
}
