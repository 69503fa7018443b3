//! The thread that calls one plugin instance. Every call (init included)
//! runs there, one at a time, so calls to an instance never overlap, as
//! the SDK promises plugin authors; the caller waits for the reply at most
//! the call timeout.
//!
//! A call that times out cannot be cancelled (it is foreign code): it is
//! abandoned, and until it returns every later call fails at once with
//! [`PluginError::Busy`] rather than queueing behind it. Each job owns all
//! the data the plugin sees, since an abandoned call outlives its caller.
//! Buffers the plugin returns are copied and given back to its `free_buf`
//! on this thread, right after the call, whether the caller still waits
//! or not.

use std::ffi::c_void;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use muelle_plugin_sdk::abi::{self, Buf, KeyValue, Str};

use super::PluginError;
use super::library::Table;
use super::log::{self, LogTarget};

/// One call, with everything it passes to the plugin owned.
pub(crate) enum Call {
    Init {
        state_dir: String,
        log: &'static LogTarget,
    },
    Create {
        name: String,
        options: Vec<(String, String)>,
    },
    Remove {
        name: String,
    },
    Mount {
        name: String,
        caller: String,
    },
    Unmount {
        name: String,
        caller: String,
    },
    Path {
        name: String,
    },
    Get {
        name: String,
    },
    List,
}

impl Call {
    /// The call's name, as errors show it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Call::Init { .. } => "init",
            Call::Create { .. } => "create",
            Call::Remove { .. } => "remove",
            Call::Mount { .. } => "mount",
            Call::Unmount { .. } => "unmount",
            Call::Path { .. } => "path",
            Call::Get { .. } => "get",
            Call::List => "list",
        }
    }
}

/// What a call returned: its status code and its buffer, copied.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: i32,
    pub output: Output,
}

#[derive(Debug)]
pub(crate) enum Output {
    Bytes(Vec<u8>),
    /// Longer than [`MAX_OUTPUT`]: freed without being copied.
    TooLarge(usize),
}

/// The most muelle copies out of one reply (a volume list of ~100k names
/// fits many times over); a larger length is a broken plugin.
pub(crate) const MAX_OUTPUT: usize = 64 << 20;

/// What the thread answers: the plugin's reply, or, when its instance
/// never came to be, why not.
type Answer = Result<Reply, NoInstance>;

#[derive(Debug, Clone)]
pub(crate) enum NoInstance {
    /// init returned this status and message.
    InitFailed { status: i32, message: Vec<u8> },
    /// A call came before init (a bug in the host).
    NotInitialized,
}

struct Job {
    call: Call,
    answer: SyncSender<Answer>,
}

/// A call the caller gave up waiting for, still running.
#[derive(Clone, Copy)]
struct Abandoned {
    call: &'static str,
    after: Duration,
}

pub(crate) struct Worker {
    plugin: String,
    jobs: Sender<Job>,
    /// Held by a caller for its whole call, so at most one job is ever in
    /// flight: nothing queues behind an abandoned call.
    turn: Mutex<()>,
    /// Set by a caller that timed out, cleared by the thread when that call
    /// returns.
    abandoned: Arc<Mutex<Option<Abandoned>>>,
}

/// Locks `mutex` even if a panic poisoned it: the guarded values are
/// plain flags that stay consistent whatever panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Worker {
    /// Starts the thread for one instance of the plugin `plugin`.
    pub(crate) fn spawn(plugin: &str, table: Table) -> Result<Worker, PluginError> {
        let (jobs, inbox) = mpsc::channel();
        let abandoned = Arc::new(Mutex::new(None));
        let flags = Arc::clone(&abandoned);
        std::thread::Builder::new()
            .name(format!("plugin {plugin}"))
            .spawn(move || serve(table, inbox, flags))
            .map_err(|source| PluginError::Spawn {
                plugin: plugin.to_owned(),
                source,
            })?;
        Ok(Worker {
            plugin: plugin.to_owned(),
            jobs,
            turn: Mutex::new(()),
            abandoned,
        })
    }

    /// Fails when an abandoned call is still running.
    pub(crate) fn ensure_idle(&self) -> Result<(), PluginError> {
        match *lock(&self.abandoned) {
            Some(Abandoned { call, after }) => Err(PluginError::Busy {
                plugin: self.plugin.clone(),
                call,
                after,
            }),
            None => Ok(()),
        }
    }

    /// Runs `call` on the plugin's thread and waits at most `timeout` for
    /// its reply.
    pub(crate) fn call(&self, call: Call, timeout: Duration) -> Result<Answer, PluginError> {
        let name = call.name();
        let _turn = lock(&self.turn);
        self.ensure_idle()?;
        let stopped = || PluginError::Stopped {
            plugin: self.plugin.clone(),
        };
        let (answer, reply) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { call, answer })
            .map_err(|_| stopped())?;
        match reply.recv_timeout(timeout) {
            Ok(answer) => Ok(answer),
            Err(RecvTimeoutError::Disconnected) => Err(stopped()),
            Err(RecvTimeoutError::Timeout) => {
                // The thread clears the flag and answers under this lock, so
                // either its answer is already here or it will see the flag.
                let mut abandoned = lock(&self.abandoned);
                match reply.try_recv() {
                    Ok(answer) => Ok(answer),
                    Err(TryRecvError::Disconnected) => Err(stopped()),
                    Err(TryRecvError::Empty) => {
                        *abandoned = Some(Abandoned {
                            call: name,
                            after: timeout,
                        });
                        Err(PluginError::TimedOut {
                            plugin: self.plugin.clone(),
                            call: name,
                            after: timeout,
                        })
                    }
                }
            }
        }
    }
}

/// The thread: the instance pointer lives here and nowhere else.
fn serve(table: Table, inbox: Receiver<Job>, abandoned: Arc<Mutex<Option<Abandoned>>>) {
    let mut instance: Result<*mut c_void, NoInstance> = Err(NoInstance::NotInitialized);
    while let Ok(job) = inbox.recv() {
        let answer = run(&table, &mut instance, job.call);
        let mut flag = lock(&abandoned);
        *flag = None;
        // The caller may be gone (it timed out): the answer is dropped.
        let _ = job.answer.send(answer);
    }
}

fn run(table: &Table, instance: &mut Result<*mut c_void, NoInstance>, call: Call) -> Answer {
    let mut out = Buf::EMPTY;
    if let Call::Init { state_dir, log } = &call {
        let host = abi::Host {
            abi_version: abi::ABI_VERSION,
            struct_size: size_of::<abi::Host>() as u32,
            state_dir: Str::new(state_dir),
            log: log::log,
            log_ctx: log.as_ctx(),
        };
        let mut made: *mut c_void = std::ptr::null_mut();
        // SAFETY: host, made and out are valid for the call; host's
        // strings are owned by this job and outlive it; log and log_ctx
        // live as long as the process, as the ABI asks.
        let status = unsafe { (table.init)(&host, &mut made, &mut out) };
        // SAFETY: out is what init wrote (or EMPTY), given back once.
        let output = unsafe { take(table.free_buf, out) };
        *instance = if status == abi::OK {
            // A null instance is allowed: a C plugin may need no state.
            Ok(made)
        } else {
            Err(NoInstance::InitFailed {
                status,
                message: match &output {
                    Output::Bytes(bytes) => bytes.clone(),
                    Output::TooLarge(_) => Vec::new(),
                },
            })
        };
        return Ok(Reply { status, output });
    }
    let this = instance.clone()?;
    // SAFETY (for every call below): `this` is what this plugin's init
    // returned and is only ever used on this thread, one call at a time;
    // every Str points into strings this job owns, alive until the call
    // returns; `out` is a valid Buf for the plugin to fill.
    let status = unsafe {
        match &call {
            // Answered above, before the instance was needed.
            Call::Init { .. } => abi::OK,
            Call::Create { name, options } => {
                let pairs: Vec<KeyValue> = options
                    .iter()
                    .map(|(key, value)| KeyValue {
                        key: Str::new(key),
                        value: Str::new(value),
                    })
                    .collect();
                (table.create)(this, Str::new(name), pairs.as_ptr(), pairs.len(), &mut out)
            }
            Call::Remove { name } => (table.remove)(this, Str::new(name), &mut out),
            Call::Mount { name, caller } => {
                (table.mount)(this, Str::new(name), Str::new(caller), &mut out)
            }
            Call::Unmount { name, caller } => {
                (table.unmount)(this, Str::new(name), Str::new(caller), &mut out)
            }
            Call::Path { name } => (table.path)(this, Str::new(name), &mut out),
            Call::Get { name } => (table.get)(this, Str::new(name), &mut out),
            Call::List => (table.list)(this, &mut out),
        }
    };
    // SAFETY: out is what the call wrote (or EMPTY), given back once.
    let output = unsafe { take(table.free_buf, out) };
    Ok(Reply { status, output })
}

/// Copies a plugin's buffer and gives it back to the plugin.
///
/// # Safety
/// `buf` is EMPTY or a buffer the plugin just returned and nobody freed;
/// `free_buf` is that plugin's.
unsafe fn take(free_buf: abi::FreeBufFn, buf: Buf) -> Output {
    if buf.ptr.is_null() {
        // {NULL, n} is empty whatever n says: there is nothing to free.
        return Output::Bytes(Vec::new());
    }
    let output = if buf.len > MAX_OUTPUT {
        Output::TooLarge(buf.len)
    } else {
        // SAFETY: the plugin hands over `len` readable bytes at `ptr`
        // (len <= MAX_OUTPUT, far below isize::MAX).
        Output::Bytes(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec())
    };
    // SAFETY: the buffer came from this plugin and is returned exactly
    // once, here, after the copy.
    unsafe { free_buf(buf) };
    output
}
