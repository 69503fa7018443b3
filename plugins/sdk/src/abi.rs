//! The C ABI, version 1, field for field as `include/muelle_volume_plugin.h`
//! declares it. Both the host (muelle) and Rust plugins use these types, so
//! a plugin built with another rustc, or written in C, reads the same
//! layout. Only `#[repr(C)]` values, pointers with lengths and integer codes
//! cross the boundary.
//!
//! Version rules: fields are only ever appended; the host reads a field
//! only when `struct_size` says the plugin has it. Anything else (a changed
//! field, a removed one) is a new `ABI_VERSION` and a new entry symbol.

use std::ffi::c_void;

pub const ABI_VERSION: u32 = 1;
/// The one symbol a plugin exports: `extern "C" fn() -> *const Plugin`.
pub const ENTRY_SYMBOL: &str = "muelle_volume_plugin_v1";

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
pub const NOT_FOUND: i32 = 2;
pub const INVALID: i32 = 3;
pub const BUSY: i32 = 4;
pub const PANIC: i32 = 5;

pub const SCOPE_LOCAL: u32 = 0;
pub const SCOPE_GLOBAL: u32 = 1;

pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;

/// Borrowed UTF-8 bytes, valid only during the call that receives them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str {
    pub ptr: *const u8,
    pub len: usize,
}

impl Str {
    pub const fn new(s: &str) -> Str {
        Str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// `ptr` must point at `len` readable bytes for `'a` (or be null with
    /// `len` 0).
    pub unsafe fn as_bytes<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promises ptr/len describe live bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KeyValue {
    pub key: Str,
    pub value: Str,
}

/// Bytes a plugin allocated; the host gives them back to the plugin's
/// `free_buf` exactly once. Null with length 0 is empty.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
}

impl Buf {
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

pub type LogFn = unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: Str);

/// What the host passes to `init`.
#[repr(C)]
pub struct Host {
    pub abi_version: u32,
    pub struct_size: u32,
    pub state_dir: Str,
    pub log: LogFn,
    pub log_ctx: *mut c_void,
}

pub type InitFn =
    unsafe extern "C" fn(host: *const Host, instance: *mut *mut c_void, out: *mut Buf) -> i32;
pub type FreeBufFn = unsafe extern "C" fn(buf: Buf);
pub type CreateFn = unsafe extern "C" fn(
    instance: *mut c_void,
    name: Str,
    options: *const KeyValue,
    options_len: usize,
    out: *mut Buf,
) -> i32;
pub type NameFn = unsafe extern "C" fn(instance: *mut c_void, name: Str, out: *mut Buf) -> i32;
pub type CallerFn =
    unsafe extern "C" fn(instance: *mut c_void, name: Str, caller: Str, out: *mut Buf) -> i32;
pub type ListFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut Buf) -> i32;

/// The table a plugin's entry symbol returns: static, never freed.
#[repr(C)]
pub struct Plugin {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: Str,
    pub version: Str,
    pub scope: u32,
    pub init: InitFn,
    pub free_buf: FreeBufFn,
    pub create: CreateFn,
    pub remove: NameFn,
    pub mount: CallerFn,
    pub unmount: CallerFn,
    pub path: NameFn,
    pub get: NameFn,
    pub list: ListFn,
}

// SAFETY: a plugin table is immutable static data: its pointers lead to
// static strings and functions.
unsafe impl Sync for Plugin {}
// SAFETY: as above; the host moves `&'static Plugin` to its call threads.
unsafe impl Send for Plugin {}

pub type EntryFn = unsafe extern "C" fn() -> *const Plugin;
