//! Docker's default seccomp profile (moby's `profiles/seccomp`), rebuilt
//! from tables: the same syscalls, capability gates and argument rules, so a
//! container sees what it would see under docker with the same capabilities.
//!
//! Syscalls newer than the installed libseccomp are in the tables all the
//! same; [`super::compile`] skips the names it cannot resolve.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::capabilities;

/// Syscalls every container may make, whatever its capabilities. Moby
/// gates the last line on kernel 4.8, where seccomp stopped being
/// bypassable through ptrace; muelle needs a newer kernel anyway.
const ALLOWED: &str = "
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
    fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
    flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
    ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
    getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
    getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
    getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
    getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
    getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
    io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup
    io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
    lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek
    lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create
    memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
    mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
    mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
    munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
    ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
    pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
    recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename
    renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending
    rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
    rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
    sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
    sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
    sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
    setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
    setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
    sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount
    statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
    process_vm_readv process_vm_writev ptrace
";

/// Syscalls a capability unlocks.
const BY_CAPABILITY: &[(&str, &str)] = &[
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
         lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
         open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
         umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    (
        "CAP_SYS_NICE",
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// Syscalls of some architectures only, keyed by `std::env::consts::ARCH`
/// of the runtime (moby keys them on the daemon's architecture too).
const BY_ARCH: &[(&[&str], &str)] = &[
    (&["powerpc64"], "sync_file_range2 swapcontext"),
    (
        &["arm", "aarch64"],
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    ),
    (&["x86_64"], "arch_prctl"),
    (&["x86_64", "x86"], "modify_ldt"),
    (
        &["s390x"],
        "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ),
    (&["riscv64"], "riscv_flush_icache"),
];

/// Socket families (socket(2) argument 0) a container may create. Left
/// out: families the kernel has dropped (DECnet 12, Econet 19, ATMSVC 20,
/// IrDA 23, WANPIPE 25, ISDN 34, CAIF 37), AF_ALG 38 (the kernel crypto API:
/// attack surface no container needs) and AF_VSOCK 40 (host/guest channel,
/// not isolated by network namespaces on most kernels). As under docker,
/// 32-bit x86 programs can still reach any family through socketcall(2),
/// whose arguments sit behind a pointer seccomp cannot follow.
const SOCKET_FAMILIES: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, // AF_UNIX .. AF_ROSE
    13, 14, 15, 16, 17, 18, // AF_NETBEUI .. AF_ASH (NETLINK is 16)
    21, 22, 24, // AF_RDS, AF_SNA, AF_PPPOX
    26, 27, 28, 29, 30, 31, 32, 33, // AF_LLC .. AF_RXRPC
    35, 36, 39, // AF_PHONET, AF_IEEE802154, AF_NFC
    41, 42, 43, 44, 45, // AF_KCM .. AF_MCTP
];

/// personality(2) personas allowed: PER_LINUX, UNAME26, PER_LINUX32,
/// PER_LINUX32|UNAME26, and 0xffffffff which only queries.
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The clone flags that create namespaces: without CAP_SYS_ADMIN, clone
/// must have none of them.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// s390 passes clone's flags second.
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// Docker's default profile for a container holding `caps` (names such as
/// `CAP_SYS_ADMIN`; the `CAP_` prefix and case do not matter). Denied
/// syscalls fail with EPERM; clone3 fails with ENOSYS without
/// CAP_SYS_ADMIN so that libc falls back to clone, whose flags can be
/// checked.
pub fn docker_default_profile(caps: &[String]) -> LinuxSeccomp {
    let held: Vec<Capability> = caps
        .iter()
        .filter_map(|c| capabilities::from_name(c))
        .collect();
    let has = |wanted: &str| capabilities::from_name(wanted).is_some_and(|w| held.contains(&w));

    let mut allowed: Vec<&str> = ALLOWED.split_whitespace().collect();
    for (arches, names) in BY_ARCH {
        if arches.contains(&std::env::consts::ARCH) {
            allowed.extend(names.split_whitespace());
        }
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend(names.split_whitespace());
        }
    }
    // One rule per syscall: the same name twice (syslog under two
    // capabilities, say) would only make libseccomp work twice.
    allowed.sort_unstable();
    allowed.dedup();

    let mut rules = vec![rule(
        &allowed,
        LinuxSeccompAction::ScmpActAllow,
        None,
        Vec::new(),
    )];
    rules.extend(socket_rules());
    for persona in PERSONALITIES {
        rules.push(allow_if(
            "personality",
            arg(0, *persona, LinuxSeccompOperator::ScmpCmpEq),
        ));
    }
    if !has("CAP_SYS_ADMIN") {
        let flags = masked_arg(CLONE_FLAGS_ARG, NAMESPACE_FLAGS, 0);
        rules.push(allow_if("clone", flags));
        rules.push(rule(
            &["clone3"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::ENOSYS as u32),
            Vec::new(),
        ));
    }

    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(libc::EPERM as u32))
        .set_architectures(native_arches())
        .set_syscalls(Some(rules));
    profile
}

/// socket(2) rules for [`SOCKET_FAMILIES`]: conditions on one argument
/// are ORed only as separate rules, so the leading run of families is one
/// "less than" rule and every other family is an "equal" rule.
fn socket_rules() -> Vec<LinuxSyscall> {
    let mut run_end = 0;
    while run_end + 1 < SOCKET_FAMILIES.len()
        && SOCKET_FAMILIES[run_end + 1] == SOCKET_FAMILIES[run_end] + 1
    {
        run_end += 1;
    }
    // AF_UNSPEC (0) creates nothing, so "< end of run" admits nothing more.
    let below = SOCKET_FAMILIES[run_end] + 1;
    std::iter::once(arg(0, below, LinuxSeccompOperator::ScmpCmpLt))
        .chain(
            SOCKET_FAMILIES[run_end + 1..]
                .iter()
                .map(|family| arg(0, *family, LinuxSeccompOperator::ScmpCmpEq)),
        )
        .map(|condition| allow_if("socket", condition))
        .collect()
}

/// The architectures docker puts in the filter for this runtime's own
/// architecture: the native one and those whose binaries it also runs.
fn native_arches() -> Option<Vec<Arch>> {
    let arches = match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        "loongarch64" => vec![Arch::ScmpArchLoongarch64],
        _ => return None,
    };
    Some(arches)
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    build_arg(
        LinuxSeccompArgBuilder::default()
            .index(index)
            .value(value)
            .op(op),
    )
}

/// `(argument & mask) == value`.
fn masked_arg(index: usize, mask: u64, value: u64) -> LinuxSeccompArg {
    build_arg(
        LinuxSeccompArgBuilder::default()
            .index(index)
            .value(mask)
            .value_two(value)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq),
    )
}

/// oci-spec has no setters for LinuxSeccompArg, only a builder.
pub(super) fn build_arg(builder: LinuxSeccompArgBuilder) -> LinuxSeccompArg {
    builder
        .build()
        .expect("every field of LinuxSeccompArgBuilder has a default, so build cannot fail")
}

fn allow_if(name: &str, condition: LinuxSeccompArg) -> LinuxSyscall {
    rule(
        &[name],
        LinuxSeccompAction::ScmpActAllow,
        None,
        vec![condition],
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
