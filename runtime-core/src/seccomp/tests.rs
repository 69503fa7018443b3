use super::*;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSyscall};

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn is_kill(ret: u32) -> bool {
    ret & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_KILL_THREAD
        || ret & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_KILL_PROCESS
}

/// AUDIT_ARCH_* of the test's own architecture, as seccomp_data.arch.
#[cfg(target_arch = "x86_64")]
const NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE: u32 = 0xC000_00B7;

/// A classic-BPF interpreter for the instructions libseccomp emits, so a
/// test can ask "what does this program answer for that syscall" without
/// loading it.
fn run(program: &[Instruction], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    // struct seccomp_data: nr, arch, instruction_pointer, args[6].
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as i32).to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    let word = |k: u32| {
        let k = k as usize;
        u32::from_ne_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]])
    };
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let ins = program[pc];
        pc += 1;
        let (code, k) = (ins.code, ins.k);
        let operand = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            0x00 | 0x01 => {
                let value = match code & 0xe0 {
                    0x00 => k,
                    0x20 => word(k),
                    0x60 => mem[k as usize],
                    0x80 => 64,
                    mode => panic!("load mode {mode:#x}"),
                };
                if code & 0x07 == 0 {
                    a = value;
                } else {
                    x = value;
                }
            }
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a << operand,
                    0x70 => a >> operand,
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ operand,
                    op => panic!("alu op {op:#x}"),
                }
            }
            0x05 => {
                if code & 0xf0 == 0x00 {
                    pc += k as usize;
                    continue;
                }
                let taken = match code & 0xf0 {
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    op => panic!("jump op {op:#x}"),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            0x06 => {
                return match code & 0x18 {
                    0x00 => k,
                    0x10 => a,
                    _ => x,
                };
            }
            _ => {
                if code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
}

fn answer(filter: &Filter, nr: i64, args: &[u64]) -> u32 {
    let mut all = [0u64; 6];
    all[..args.len()].copy_from_slice(args);
    run(filter.instructions(), NATIVE, nr, all)
}

fn names(caps: &[&str]) -> Vec<String> {
    caps.iter().map(|c| (*c).to_owned()).collect()
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    docker::build_arg(
        LinuxSeccompArgBuilder::default()
            .index(index)
            .value(value)
            .op(op),
    )
}

fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| (*n).to_owned()).collect())
        .set_action(action)
        .set_errno_ret(errno_ret)
        .set_args((!args.is_empty()).then_some(args));
    rule
}

fn profile(default: LinuxSeccompAction, rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(default)
        .set_syscalls(Some(rules));
    profile
}

#[test]
fn docker_default_compiles_for_docker_caps() {
    let caps = crate::capabilities::docker_default();
    let started = std::time::Instant::now();
    let filter = compile(&docker_default_profile(&caps)).expect("compile");
    eprintln!(
        "docker default profile: {} instructions in {:?}",
        filter.instructions().len(),
        started.elapsed()
    );
    assert_eq!(filter.flags(), 0);
    assert!(filter.instructions().len() > 100);
}

#[test]
fn docker_default_compiles_for_every_cap() {
    let all: Vec<String> = (0..=40u8)
        .map(|i| crate::capabilities::CapMask(1 << i).to_string())
        .collect();
    compile(&docker_default_profile(&all)).expect("compile");
    compile(&docker_default_profile(&[])).expect("compile");
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn docker_default_answers_like_docker() {
    let filter = compile(&docker_default_profile(
        &crate::capabilities::docker_default(),
    ))
    .expect("compile");
    let eperm = errno(libc::EPERM);
    let ns = |flags: i32| (flags | libc::SIGCHLD) as u64;

    assert_eq!(answer(&filter, libc::SYS_getpid, &[]), ALLOW);
    assert_eq!(answer(&filter, libc::SYS_getcwd, &[]), ALLOW);
    assert_eq!(answer(&filter, 4000, &[]), eperm, "not a syscall");
    assert_eq!(answer(&filter, libc::SYS_clone, &[ns(0)]), ALLOW);
    assert_eq!(
        answer(&filter, libc::SYS_clone, &[ns(libc::CLONE_THREAD)]),
        ALLOW
    );
    assert_eq!(
        answer(&filter, libc::SYS_clone, &[ns(libc::CLONE_NEWNS)]),
        eperm
    );
    assert_eq!(
        answer(&filter, libc::SYS_clone, &[ns(libc::CLONE_NEWUSER)]),
        eperm
    );
    assert_eq!(answer(&filter, libc::SYS_clone3, &[]), errno(libc::ENOSYS));
    assert_eq!(answer(&filter, libc::SYS_unshare, &[0]), eperm);
    assert_eq!(answer(&filter, libc::SYS_mount, &[]), eperm);
    assert_eq!(answer(&filter, libc::SYS_reboot, &[]), eperm);
    assert_eq!(
        answer(&filter, libc::SYS_chroot, &[]),
        ALLOW,
        "CAP_SYS_CHROOT"
    );
    assert_eq!(answer(&filter, libc::SYS_ptrace, &[]), ALLOW);
    for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(answer(&filter, libc::SYS_personality, &[persona]), ALLOW);
    }
    assert_eq!(answer(&filter, libc::SYS_personality, &[1]), eperm);
    assert_eq!(answer(&filter, libc::SYS_personality, &[1 << 32]), eperm);
    for family in [1, 2, 10, 11, 16, 17, 29, 45] {
        assert_eq!(
            answer(&filter, libc::SYS_socket, &[family]),
            ALLOW,
            "family {family}"
        );
    }
    for family in [12, 38, 40, 46, 1 << 32 | 2] {
        assert_eq!(
            answer(&filter, libc::SYS_socket, &[family]),
            eperm,
            "family {family}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docker_default_covers_32_bit_x86_and_kills_foreign_arches() {
    let filter = compile(&docker_default_profile(&[])).expect("compile");
    const I386: u32 = 0x4000_0003;
    const AARCH64: u32 = 0xC000_00B7;
    assert_eq!(
        run(filter.instructions(), I386, 20, [0; 6]),
        ALLOW,
        "getpid on i386"
    );
    assert_eq!(
        run(filter.instructions(), I386, 21, [0; 6]),
        errno(libc::EPERM),
        "mount on i386"
    );
    assert!(is_kill(run(filter.instructions(), AARCH64, 172, [0; 6])));
}

/// compile() chains one libseccomp program per architecture; libseccomp's
/// own multi-architecture program must answer the same for every syscall.
#[cfg(target_arch = "x86_64")]
#[test]
fn chained_program_answers_like_libseccomps_own() {
    use LinuxSeccompOperator::*;
    const I386: u32 = 0x4000_0003;
    const AARCH64: u32 = 0xC000_00B7;
    let mut custom = profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![
            rule(
                &["getpid", "read", "chown32", "socketcall"],
                LinuxSeccompAction::ScmpActAllow,
                None,
                Vec::new(),
            ),
            rule(
                &["dup"],
                LinuxSeccompAction::ScmpActAllow,
                None,
                vec![arg(0, 7, ScmpCmpEq), arg(0, 9, ScmpCmpEq)],
            ),
            rule(
                &["dup3"],
                LinuxSeccompAction::ScmpActTrace,
                Some(3),
                vec![arg(0, 3, ScmpCmpEq), arg(1, 4, ScmpCmpGt)],
            ),
            rule(
                &["getcwd"],
                LinuxSeccompAction::ScmpActKillProcess,
                None,
                Vec::new(),
            ),
        ],
    );
    custom.set_architectures(Some(vec![
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
        Arch::ScmpArchX86_64,
    ]));
    let profiles = [
        docker_default_profile(&crate::capabilities::docker_default()),
        docker_default_profile(&[]),
        docker_default_profile(&names(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"])),
        custom,
    ];
    let args: [[u64; 6]; 8] = [
        [0; 6],
        [7, 0, 0, 0, 0, 0],
        [9, 5, 0, 0, 0, 0],
        [3, 5, 0, 0, 0, 0],
        [(libc::CLONE_NEWNS | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0],
        [40, 1, 0, 0, 0, 0],
        [1 << 32 | 2, 0, 0, 0, 0, 0],
        [0xffff_ffff, 0xffff_ffff, 0, 0, 0, 0],
    ];
    for spec in &profiles {
        let default = action(spec.default_action(), spec.default_errno_ret(), String::new)
            .expect("default action");
        let rules = rules(spec, default).expect("rules");
        let arches = arches(spec, default).expect("arches");
        assert_eq!(arches.len(), 3);
        let whole = libseccomp_program(default, &arches, &rules, None).expect("libseccomp");
        let chained = compile(spec).expect("compile");
        let numbers = (0..600)
            .chain(0x4000_0000..0x4000_0000 + 600)
            .chain([-1, 0x7fff_ffff]);
        for nr in numbers {
            for arch in [NATIVE, I386, AARCH64] {
                for a in &args {
                    assert_eq!(
                        run(chained.instructions(), arch, nr, *a),
                        run(&whole, arch, nr, *a),
                        "arch {arch:#x} nr {nr} args {a:?}"
                    );
                }
            }
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn docker_default_with_sys_admin_unlocks_namespaces() {
    let filter = compile(&docker_default_profile(&names(&[
        "CAP_SYS_ADMIN",
        "sys_boot",
    ])))
    .expect("compile");
    let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
    assert_eq!(answer(&filter, libc::SYS_clone, &[newns]), ALLOW);
    assert_eq!(answer(&filter, libc::SYS_clone3, &[]), ALLOW);
    assert_eq!(answer(&filter, libc::SYS_mount, &[]), ALLOW);
    assert_eq!(answer(&filter, libc::SYS_unshare, &[]), ALLOW);
    assert_eq!(
        answer(&filter, libc::SYS_reboot, &[]),
        ALLOW,
        "lower-case, no CAP_ prefix"
    );
    assert_eq!(answer(&filter, libc::SYS_chroot, &[]), errno(libc::EPERM));
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn arg_conditions() {
    use LinuxSeccompOperator::*;
    let errno_rule = |name: &str, e: i32, args: Vec<LinuxSeccompArg>| {
        rule(
            &[name],
            LinuxSeccompAction::ScmpActErrno,
            Some(e as u32),
            args,
        )
    };
    let masked = docker::build_arg(
        LinuxSeccompArgBuilder::default()
            .index(2usize)
            .value(libc::O_CREAT as u64)
            .value_two(libc::O_CREAT as u64)
            .op(ScmpCmpMaskedEq),
    );
    let spec = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![
            // Different arguments: both must hold.
            errno_rule(
                "dup3",
                libc::EDOM,
                vec![arg(0, 3, ScmpCmpEq), arg(1, 4, ScmpCmpEq)],
            ),
            // The same argument twice: either may hold (runc's reading).
            errno_rule(
                "dup",
                libc::EXDEV,
                vec![arg(0, 7, ScmpCmpEq), arg(0, 9, ScmpCmpEq)],
            ),
            errno_rule("openat", libc::EACCES, vec![masked]),
            // 64-bit comparisons look at both halves.
            errno_rule("lseek", libc::ESPIPE, vec![arg(1, 1 << 32, ScmpCmpGt)]),
            errno_rule("fchdir", libc::EBADF, vec![arg(0, 100, ScmpCmpGe)]),
            errno_rule("close", libc::EIO, vec![arg(0, 3, ScmpCmpLe)]),
            errno_rule("fsync", libc::EROFS, vec![arg(0, 5, ScmpCmpNe)]),
            errno_rule("fdatasync", libc::EROFS, vec![arg(0, 5, ScmpCmpLt)]),
        ],
    );
    let filter = compile(&spec).expect("compile");
    let a = |nr, args: &[u64]| answer(&filter, nr, args);

    assert_eq!(a(libc::SYS_dup3, &[3, 4]), errno(libc::EDOM));
    assert_eq!(a(libc::SYS_dup3, &[3, 5]), ALLOW);
    assert_eq!(a(libc::SYS_dup3, &[2, 4]), ALLOW);

    assert_eq!(a(libc::SYS_dup, &[7]), errno(libc::EXDEV));
    assert_eq!(a(libc::SYS_dup, &[9]), errno(libc::EXDEV));
    assert_eq!(a(libc::SYS_dup, &[8]), ALLOW);

    let rdwr_creat = (libc::O_RDWR | libc::O_CREAT) as u64;
    assert_eq!(
        a(libc::SYS_openat, &[0, 0, rdwr_creat]),
        errno(libc::EACCES)
    );
    assert_eq!(a(libc::SYS_openat, &[0, 0, libc::O_RDWR as u64]), ALLOW);

    assert_eq!(a(libc::SYS_lseek, &[0, (1 << 32) + 1]), errno(libc::ESPIPE));
    assert_eq!(a(libc::SYS_lseek, &[0, 0xffff_ffff]), ALLOW);
    assert_eq!(a(libc::SYS_lseek, &[0, 1 << 32]), ALLOW);

    assert_eq!(a(libc::SYS_fchdir, &[100]), errno(libc::EBADF));
    assert_eq!(a(libc::SYS_fchdir, &[99]), ALLOW);
    assert_eq!(a(libc::SYS_close, &[3]), errno(libc::EIO));
    assert_eq!(a(libc::SYS_close, &[4]), ALLOW);
    assert_eq!(a(libc::SYS_fsync, &[4]), errno(libc::EROFS));
    assert_eq!(a(libc::SYS_fsync, &[5]), ALLOW);
    assert_eq!(a(libc::SYS_fdatasync, &[4]), errno(libc::EROFS));
    assert_eq!(a(libc::SYS_fdatasync, &[5]), ALLOW);
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn unknown_syscall_is_skipped() {
    let spec = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(
            &["no_such_syscall", "getcwd"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::EDOM as u32),
            Vec::new(),
        )],
    );
    let filter = compile(&spec).expect("unknown names are skipped, not errors");
    assert_eq!(answer(&filter, libc::SYS_getcwd, &[]), errno(libc::EDOM));
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn rule_with_the_default_action_is_skipped() {
    let mut spec = profile(
        LinuxSeccompAction::ScmpActErrno,
        vec![
            rule(
                &["getpid"],
                LinuxSeccompAction::ScmpActAllow,
                None,
                Vec::new(),
            ),
            // Same as the default (ERRNO, EPERM when unset): libseccomp
            // would refuse it.
            rule(
                &["getcwd"],
                LinuxSeccompAction::ScmpActErrno,
                None,
                Vec::new(),
            ),
            // Same action, other errno: kept.
            rule(
                &["mkdirat"],
                LinuxSeccompAction::ScmpActErrno,
                Some(libc::EDOM as u32),
                Vec::new(),
            ),
        ],
    );
    spec.set_default_errno_ret(Some(libc::EPERM as u32));
    let filter = compile(&spec).expect("compile");
    assert_eq!(answer(&filter, libc::SYS_getpid, &[]), ALLOW);
    assert_eq!(answer(&filter, libc::SYS_getcwd, &[]), errno(libc::EPERM));
    assert_eq!(answer(&filter, libc::SYS_mkdirat, &[]), errno(libc::EDOM));
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn actions_map_to_kernel_return_values() {
    let spec = profile(
        LinuxSeccompAction::ScmpActKillProcess,
        vec![
            rule(
                &["getpid"],
                LinuxSeccompAction::ScmpActAllow,
                None,
                Vec::new(),
            ),
            rule(
                &["getppid"],
                LinuxSeccompAction::ScmpActLog,
                None,
                Vec::new(),
            ),
            rule(
                &["gettid"],
                LinuxSeccompAction::ScmpActTrap,
                None,
                Vec::new(),
            ),
            rule(
                &["getuid"],
                LinuxSeccompAction::ScmpActTrace,
                Some(7),
                Vec::new(),
            ),
            rule(
                &["getgid"],
                LinuxSeccompAction::ScmpActKill,
                None,
                Vec::new(),
            ),
            rule(
                &["geteuid"],
                LinuxSeccompAction::ScmpActKillThread,
                None,
                Vec::new(),
            ),
            rule(
                &["getegid"],
                LinuxSeccompAction::ScmpActErrno,
                None,
                Vec::new(),
            ),
        ],
    );
    let filter = compile(&spec).expect("compile");
    let a = |nr| answer(&filter, nr, &[]);
    assert_eq!(a(libc::SYS_getpid), ALLOW);
    assert_eq!(a(libc::SYS_getppid), libc::SECCOMP_RET_LOG);
    assert_eq!(a(libc::SYS_gettid), libc::SECCOMP_RET_TRAP);
    assert_eq!(a(libc::SYS_getuid), libc::SECCOMP_RET_TRACE | 7);
    assert_eq!(a(libc::SYS_getgid), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(a(libc::SYS_geteuid), libc::SECCOMP_RET_KILL_THREAD);
    assert_eq!(a(libc::SYS_getegid), errno(libc::EPERM));
    assert_eq!(a(libc::SYS_getcwd), libc::SECCOMP_RET_KILL_PROCESS);
}

#[test]
fn invalid_profiles_are_errors() {
    // An unknown action never reaches compile(): the spec does not parse.
    let parsed = serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#);
    assert!(parsed.is_err());

    let too_big = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(
            &["getcwd"],
            LinuxSeccompAction::ScmpActErrno,
            Some(70_000),
            Vec::new(),
        )],
    );
    let err = compile(&too_big).expect_err("errno past 16 bits");
    assert!(
        matches!(err, SeccompError::ErrnoRange { value: 70_000, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "seccomp: errnoRet 70000 of syscall getcwd does not fit in 16 bits"
    );

    let mut default_too_big = profile(LinuxSeccompAction::ScmpActErrno, Vec::new());
    default_too_big.set_default_errno_ret(Some(1 << 16));
    assert!(matches!(
        compile(&default_too_big),
        Err(SeccompError::ErrnoRange { .. })
    ));

    let bad_index = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(
            &["getcwd"],
            LinuxSeccompAction::ScmpActErrno,
            None,
            vec![arg(6, 0, LinuxSeccompOperator::ScmpCmpEq)],
        )],
    );
    let err = compile(&bad_index).expect_err("argument 6");
    assert!(
        matches!(err, SeccompError::ArgIndex { index: 6, .. }),
        "{err}"
    );

    let notify = || {
        profile(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(
                &["mount"],
                LinuxSeccompAction::ScmpActNotify,
                None,
                Vec::new(),
            )],
        )
    };
    let err = compile(&notify()).expect_err("notify without listener");
    assert!(
        matches!(err, SeccompError::NotifyWithoutListener(_)),
        "{err}"
    );
    let mut with_listener = notify();
    with_listener.set_listener_path(Some("/run/agent.sock".into()));
    let err = compile(&with_listener).expect_err("notify");
    assert!(matches!(err, SeccompError::NotifyUnsupported(_)), "{err}");
    assert!(err.to_string().starts_with("unsupported:"), "{err}");

    let notify_default = profile(LinuxSeccompAction::ScmpActNotify, Vec::new());
    assert!(matches!(
        compile(&notify_default),
        Err(SeccompError::NotifyAsDefault)
    ));
}

#[test]
fn flags_become_seccomp_flag_bits() {
    let mut spec = profile(LinuxSeccompAction::ScmpActAllow, Vec::new());
    spec.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    let filter = compile(&spec).expect("compile");
    let want = libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    assert_eq!(libc::c_ulong::from(filter.flags()), want);
}

#[test]
fn spec_json_compiles() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }"#;
    let spec: LinuxSeccomp = serde_json::from_str(json).expect("parse");
    let filter = compile(&spec).expect("compile");
    assert_eq!(
        libc::c_ulong::from(filter.flags()),
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
}

/// Forks; the child sets no_new_privs, loads `filter`, runs `probe` and
/// exits with its answer. The child only makes syscalls: the test harness
/// is multi-threaded, so it must not allocate or lock.
fn in_child_with(filter: &Filter, probe: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child makes syscalls only, then _exit()s.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: plain prctl; then the filter, then the probe.
            let code = unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    100
                } else if filter.load().is_err() {
                    101
                } else {
                    probe()
                }
            };
            // SAFETY: leaves the child without unwinding into the harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child ended with {other:?}"),
        },
    }
}

fn last_errno() -> i32 {
    Errno::last_raw()
}

#[test]
fn fork_load_denies_getcwd() {
    let spec = profile(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(
            &["getcwd"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::EDOM as u32),
            Vec::new(),
        )],
    );
    let filter = compile(&spec).expect("compile");
    let code = in_child_with(&filter, || {
        let mut buf = [0u8; 256];
        // SAFETY: getcwd into a stack buffer of the given size.
        let rc = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if rc != -1 {
            return 1;
        }
        if last_errno() != libc::EDOM {
            return 2;
        }
        // Everything else is still allowed.
        // SAFETY: plain syscall.
        if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
            return 3;
        }
        0
    });
    assert_eq!(
        code, 0,
        "1: getcwd succeeded, 2: wrong errno, 3: getpid denied, 10x: load"
    );
}

#[test]
fn fork_load_docker_default() {
    let filter = compile(&docker_default_profile(
        &crate::capabilities::docker_default(),
    ))
    .expect("compile");
    let code = in_child_with(&filter, || {
        // SAFETY: syscalls with harmless arguments; clone3 and unshare are
        // refused by the filter before the kernel looks at them.
        unsafe {
            if libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) != -1
                || last_errno() != libc::ENOSYS
            {
                return 1;
            }
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) != -1
                || last_errno() != libc::EPERM
            {
                return 2;
            }
            if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) != -1
                || last_errno() != libc::EPERM
            {
                return 3;
            }
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            if fd < 0 && last_errno() == libc::EPERM {
                return 4;
            }
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 5;
            }
        }
        0
    });
    assert_eq!(
        code, 0,
        "1: clone3, 2: unshare, 3: vsock, 4: inet, 5: getpid, 10x: load"
    );
}

/// Compile time, for `cargo test --release -- --ignored compile_time
/// --nocapture`.
#[test]
#[ignore]
fn compile_time() {
    let caps = crate::capabilities::docker_default();
    let spec = docker_default_profile(&caps);
    let mut native = spec.clone();
    native.set_architectures(None);
    for (label, s) in [("3 arches", &spec), ("native", &native)] {
        let started = std::time::Instant::now();
        let n = 20;
        let mut len = 0;
        for _ in 0..n {
            len = compile(s).expect("compile").instructions().len();
        }
        eprintln!(
            "{label}: {len} insns, {:?} per compile",
            started.elapsed() / n
        );
    }
}
