//! Seccomp: the OCI spec's `linux.seccomp` turned into the classic-BPF
//! program the kernel runs on every syscall of the container.
//!
//! The work is split so that the container's init does almost nothing:
//! [`compile`] runs in the runtime before fork and does everything that can
//! fail on bad input (syscall names, libseccomp, BPF generation); the init
//! then calls [`Filter::load`], one `seccomp(2)` call that neither allocates
//! nor takes a lock, so it is safe after fork. Loading needs either
//! `no_new_privs` or `CAP_SYS_ADMIN`; choosing when is the caller's job.
//!
//! The meaning of a profile follows runc, so that profiles written for
//! docker behave the same here:
//! - a syscall name this libseccomp does not know is skipped (debug log);
//! - a rule whose action is the default action is skipped (libseccomp
//!   refuses such rules);
//! - the conditions of a rule are ANDed, except when two name the same
//!   argument: then each condition is its own rule (ORed);
//! - `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` without `errnoRet` use EPERM.
//!
//! `SCMP_ACT_NOTIFY` is not supported yet and fails [`compile`].
//!
//! Speed: libseccomp takes ~17 ms for docker's profile over x86_64's three
//! architectures but ~1.2 ms for one, so [`compile`] builds one program per
//! architecture and chains them (~5.5 ms); [`compile_cached`] keeps
//! compiled programs on disk, so a profile is compiled once per boot, not
//! once per container.

mod cache;
mod docker;

use std::fmt;
use std::io::{Read, Seek};
use std::path::PathBuf;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

pub use cache::compile_cached;
pub use docker::docker_default_profile;

type LibError = libseccomp::error::SeccompError;

/// What went wrong turning a profile into a filter, or loading it.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unsupported: seccomp SCMP_ACT_NOTIFY (listenerPath {0}) is not implemented yet")]
    NotifyUnsupported(PathBuf),
    #[error("seccomp: SCMP_ACT_NOTIFY for {0} needs linux.seccomp.listenerPath")]
    NotifyWithoutListener(String),
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyAsDefault,
    #[error("seccomp: errnoRet {value} of {what} does not fit in 16 bits")]
    ErrnoRange { what: String, value: u32 },
    #[error("seccomp: argument index {index} of syscall {syscall} is past the last one (5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: creating the filter: {0}")]
    Context(#[source] LibError),
    #[error("seccomp: adding architecture {arch}: {source}")]
    Arch {
        arch: String,
        #[source]
        source: LibError,
    },
    #[error("seccomp: adding the rule for syscall {syscall}: {source}")]
    Rule {
        syscall: String,
        #[source]
        source: LibError,
    },
    #[error("seccomp: exporting the BPF program: {0}")]
    Export(String),
    #[error("seccomp: the program has {0} instructions, the kernel loads at most 4096")]
    TooLong(usize),
    #[error("seccomp: loading the filter (seccomp(2)): {0}")]
    Load(Errno),
    #[error(
        "seccomp: thread {0} could not be synchronized to the filter (SECCOMP_FILTER_FLAG_TSYNC)"
    )]
    Tsync(i64),
}

/// One classic-BPF instruction, laid out as the kernel's `struct
/// sock_filter` so a slice of them is the program the kernel reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A compiled filter, ready for [`Filter::load`].
pub struct Filter {
    program: Vec<Instruction>,
    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    flags: u32,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .finish()
    }
}

impl Filter {
    /// Installs the filter on the calling thread (on every thread with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Needs `no_new_privs` set or
    /// `CAP_SYS_ADMIN` in the effective set, else fails with EACCES.
    pub fn load(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            // compile() checked the length fits (at most 4096).
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `prog` points to a live program of `len` instructions with
        // the kernel's layout; the kernel copies it and keeps no pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            0 => Ok(()),
            tid if tid > 0 => Err(SeccompError::Tsync(tid)),
            _ => Err(SeccompError::Load(Errno::last())),
        }
    }

    /// The BPF program, as the kernel will run it.
    pub fn instructions(&self) -> &[Instruction] {
        &self.program
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`Filter::load`] passes.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// Builds the filter a profile describes, without loading it.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyAsDefault);
    }
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        || "defaultAction".to_owned(),
    )?;
    let rules = rules(seccomp, default)?;
    let arches = arches(seccomp, default)?;
    let program = match arches.as_slice() {
        [_] => libseccomp_program(default, &arches, &rules, None)?,
        _ => chained_program(default, &arches, &rules)?,
    };
    Ok(Filter {
        program,
        flags: flags(seccomp.flags().as_deref().unwrap_or_default()),
    })
}

/// One rule for libseccomp: a syscall name resolved, its action and
/// conditions checked.
struct Rule<'a> {
    name: &'a str,
    syscall: ScmpSyscall,
    action: ScmpAction,
    conditions: Vec<ScmpArgCompare>,
    /// Two conditions on the same argument: each is its own rule (runc's
    /// reading, "either"), since libseccomp would AND them.
    either: bool,
}

/// The spec's rules checked and resolved once, however many architectures
/// the program covers.
fn rules(seccomp: &LinuxSeccomp, default: ScmpAction) -> Result<Vec<Rule<'_>>, SeccompError> {
    let mut rules = Vec::new();
    for rule in seccomp.syscalls().iter().flatten() {
        let names = rule.names();
        let what = || format!("syscall {}", names.join(","));
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            return Err(match seccomp.listener_path() {
                Some(path) => SeccompError::NotifyUnsupported(path.clone()),
                None => SeccompError::NotifyWithoutListener(what()),
            });
        }
        let action = action(rule.action(), rule.errno_ret(), what)?;
        if action == default {
            tracing::debug!("seccomp: rule for {names:?} has the default action: skipped");
            continue;
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let conditions = conditions(args, || names.join(","))?;
        let either = args
            .iter()
            .enumerate()
            .any(|(i, a)| args[..i].iter().any(|b| b.index() == a.index()));
        for name in names {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                tracing::debug!("seccomp: syscall {name} unknown to libseccomp: skipped");
                continue;
            };
            rules.push(Rule {
                name,
                syscall,
                action,
                conditions: conditions.clone(),
                either,
            });
        }
    }
    Ok(rules)
}

/// The architectures to filter: the native one first (its syscalls then
/// take the shortest path), then the spec's others, each once.
fn arches(seccomp: &LinuxSeccomp, default: ScmpAction) -> Result<Vec<ScmpArch>, SeccompError> {
    // A new context holds the native architecture only: asking it tells
    // whether a spec architecture is the native one.
    let fresh = ScmpFilterContext::new(default).map_err(SeccompError::Context)?;
    let mut arches = vec![ScmpArch::Native];
    for arch in seccomp.architectures().iter().flatten() {
        let scmp = scmp_arch(*arch);
        let native = scmp == ScmpArch::Native
            || fresh
                .is_arch_present(scmp)
                .map_err(|source| SeccompError::Arch {
                    arch: arch.to_string(),
                    source,
                })?;
        if !native && !arches.contains(&scmp) {
            arches.push(scmp);
        }
    }
    Ok(arches)
}

/// libseccomp's time grows much faster than the number of architectures
/// (docker's three take 15 times one), so each architecture gets a program
/// of its own and the programs are chained: where one would answer "bad
/// architecture", it jumps to the next one instead, and only the last
/// answers it. The sentinel standing for "bad architecture" is a TRACE
/// value no rule uses, so no rule's answer can be mistaken for it.
fn chained_program(
    default: ScmpAction,
    arches: &[ScmpArch],
    rules: &[Rule<'_>],
) -> Result<Vec<Instruction>, SeccompError> {
    let used = |n: u16| {
        std::iter::once(default)
            .chain(rules.iter().map(|r| r.action))
            .any(|a| a == ScmpAction::Trace(n))
    };
    let sentinel = (0..=u16::MAX)
        .rev()
        .find(|n| !used(*n))
        .ok_or_else(|| SeccompError::Export("every TRACE value is in use".into()))?;
    let bad_arch = Instruction {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_TRACE | u32::from(sentinel),
    };
    let mut program = Vec::new();
    for (i, arch) in arches.iter().enumerate() {
        if i + 1 == arches.len() {
            program.extend(libseccomp_program(default, &arches[i..], rules, None)?);
            break;
        }
        let mut part = libseccomp_program(
            default,
            std::slice::from_ref(arch),
            rules,
            Some(ScmpAction::Trace(sentinel)),
        )?;
        let len = part.len();
        let mut chained = false;
        for (pc, ins) in part.iter_mut().enumerate() {
            if *ins == bad_arch {
                // Jumps are relative to the next instruction; the next
                // program starts right after this one.
                *ins = Instruction {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(len - pc - 1).map_err(|_| SeccompError::TooLong(len))?,
                };
                chained = true;
            }
        }
        // Without an architecture check, other architectures' syscalls
        // would be judged by this one's numbers.
        if !chained {
            return Err(SeccompError::Export(format!(
                "the program for {arch:?} has no architecture check"
            )));
        }
        program.extend(part);
    }
    if program.len() > libc::BPF_MAXINSNS as usize {
        return Err(SeccompError::TooLong(program.len()));
    }
    Ok(program)
}

const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// libseccomp's program for `arches` (the native one is dropped unless
/// listed); `bad_arch` replaces libseccomp's answer for other
/// architectures.
fn libseccomp_program(
    default: ScmpAction,
    arches: &[ScmpArch],
    rules: &[Rule<'_>],
    bad_arch: Option<ScmpAction>,
) -> Result<Vec<Instruction>, SeccompError> {
    let mut ctx = ScmpFilterContext::new(default).map_err(SeccompError::Context)?;
    // A binary tree of syscall numbers instead of a linear list: every
    // syscall of the container runs this program, so it is worth it.
    if let Err(e) = ctx.set_ctl_optimize(2) {
        tracing::debug!("seccomp: libseccomp has no binary-tree optimization: {e}");
    }
    if let Some(action) = bad_arch {
        ctx.set_act_badarch(action).map_err(SeccompError::Context)?;
    }
    let arch_err = |arch: ScmpArch| {
        move |source| SeccompError::Arch {
            arch: format!("{arch:?}"),
            source,
        }
    };
    for arch in arches.iter().filter(|a| **a != ScmpArch::Native) {
        ctx.add_arch(*arch).map_err(arch_err(*arch))?;
    }
    if !arches.contains(&ScmpArch::Native) {
        ctx.remove_arch(ScmpArch::Native)
            .map_err(arch_err(ScmpArch::Native))?;
    }
    for rule in rules {
        let err = |source| SeccompError::Rule {
            syscall: rule.name.to_owned(),
            source,
        };
        if rule.conditions.is_empty() {
            ctx.add_rule(rule.action, rule.syscall).map_err(err)?;
        } else if rule.either {
            for condition in &rule.conditions {
                ctx.add_rule_conditional(
                    rule.action,
                    rule.syscall,
                    std::slice::from_ref(condition),
                )
                .map_err(err)?;
            }
        } else {
            ctx.add_rule_conditional(rule.action, rule.syscall, &rule.conditions)
                .map_err(err)?;
        }
    }
    export(&ctx)
}

/// The spec's flags as seccomp(2) flag bits. The kernel, not libseccomp,
/// receives them, since [`Filter::load`] calls seccomp(2) itself.
fn flags(spec: &[LinuxSeccompFilterFlag]) -> u32 {
    let mut bits = 0;
    for flag in spec {
        let bit = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a notify listener, which the kernel
            // insists on (EINVAL otherwise); NOTIFY is refused earlier.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                tracing::debug!(
                    "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored without a listener"
                );
                0
            }
        };
        // The flags are the low bits of an unsigned long.
        bits |= bit as u32;
    }
    bits
}

/// The libseccomp action for a spec action. `what` names the rule in
/// errors and is only built on failure.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: impl FnOnce() -> String,
) -> Result<ScmpAction, SeccompError> {
    // libseccomp truncates the value to 16 bits without a word: check here.
    let data = |value: Option<u32>| {
        let value = value.unwrap_or(libc::EPERM as u32);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoRange {
            what: what(),
            value,
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data(errno_ret)?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data(errno_ret)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn conditions(
    args: &[LinuxSeccompArg],
    syscall: impl Fn() -> String,
) -> Result<Vec<ScmpArgCompare>, SeccompError> {
    args.iter()
        .map(|arg| {
            let index = u32::try_from(arg.index())
                .ok()
                .filter(|i| *i <= 5)
                .ok_or_else(|| SeccompError::ArgIndex {
                    syscall: syscall(),
                    index: arg.index(),
                })?;
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                // (arg & value) == valueTwo
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    return Ok(ScmpArgCompare::new(
                        index,
                        ScmpCompareOp::MaskedEqual(arg.value()),
                        arg.value_two().unwrap_or(0),
                    ));
                }
            };
            Ok(ScmpArgCompare::new(index, op, arg.value()))
        })
        .collect()
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// libseccomp 2.5 can only write the program to a file descriptor: an
/// anonymous memory file holds it, whatever its size.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<Instruction>, SeccompError> {
    let fail = |e: &dyn fmt::Display| SeccompError::Export(e.to_string());
    let fd =
        nix::sys::memfd::memfd_create(c"muelle-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| fail(&e))?;
    ctx.export_bpf(&fd).map_err(|e| fail(&e))?;
    let mut file = std::fs::File::from(fd);
    file.rewind().map_err(|e| fail(&e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| fail(&e))?;
    parse_program(&bytes)
}

/// Instructions from the kernel's byte layout (native endianness), checked
/// to be a program the kernel would take.
fn parse_program(bytes: &[u8]) -> Result<Vec<Instruction>, SeccompError> {
    const SIZE: usize = std::mem::size_of::<Instruction>();
    if bytes.is_empty() || !bytes.len().is_multiple_of(SIZE) {
        return Err(SeccompError::Export(format!(
            "{} bytes is not a whole number of instructions",
            bytes.len()
        )));
    }
    if bytes.len() / SIZE > libc::BPF_MAXINSNS as usize {
        return Err(SeccompError::TooLong(bytes.len() / SIZE));
    }
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|b| Instruction {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

fn program_bytes(program: &[Instruction]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(std::mem::size_of_val(program));
    for ins in program {
        bytes.extend_from_slice(&ins.code.to_ne_bytes());
        bytes.extend_from_slice(&[ins.jt, ins.jf]);
        bytes.extend_from_slice(&ins.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests;
