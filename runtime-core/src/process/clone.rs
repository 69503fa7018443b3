//! A fork into new namespaces: clone(2) without a new stack, so the child
//! continues from the call like fork(2) does (crun does the same). The
//! runtime is single-threaded here, so the child may use the allocator and
//! std as the parent would.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// Which side of the fork the caller is on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Forks the caller into the namespaces `flags` asks for (CLONE_NEW* bits
/// only). The child gets SIGCHLD as its exit signal, as with fork(2).
pub fn clone_into(flags: CloneFlags) -> Result<Forked> {
    // SAFETY: with a null stack clone(2) behaves like fork(2): the child
    // returns here on a copy of the parent's memory. The caller is single
    // threaded, so no lock can be held by a thread that does not exist in
    // the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(nix::Error::last()).context(|| format!("clone({flags:?})")),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}
