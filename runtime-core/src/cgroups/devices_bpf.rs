//! Device rules on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program built
//! from the rules, loaded and attached with `bpf(2)`.
//!
//! `program` is a pure function from rules to instructions, so its meaning is
//! tested without a kernel. `install` replaces the filters already on the
//! cgroup: it attaches the new program before detaching the old ones, so at
//! no moment is the cgroup without a filter (while both are attached, both
//! must allow an access).
//!
//! The program decides each access bit (read, write, mknod) by the last rule
//! that matches the device and names that bit; a bit no rule decides is
//! denied.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::CgroupError;
use super::devices::{DeviceRule, Kind};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble and src_reg in the high one (little-endian bitfields).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:#04x} dst=r{} src=r{} off={} imm={}",
            self.code,
            self.dst(),
            self.src(),
            self.off,
            self.imm
        )
    }
}

// Instruction classes, operations and sources of the eBPF ISA.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
// access_type being `access << 16 | type`.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: r1 is the context (then scratch), r2 type, r3 the access bits
// not decided yet, r4 major, r5 minor, r0 the verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            dst | (src << 4)
        } else {
            (dst << 4) | src
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    pub(super) fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }
    pub(super) fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }
    fn load_u32(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }
    fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
}

/// The filter's instructions for `rules` (in spec order).
///
/// Rules are emitted last to first. A matching allow rule clears its bits
/// from r3 and allows once r3 is empty; a matching deny rule denies if one of
/// its bits is still in r3. Every jump is conditional, so no instruction is
/// unreachable for the verifier's control-flow check.
pub(super) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns = vec![
        Insn::load_u32(R2, R1, CTX_ACCESS_TYPE),
        Insn::alu32_imm(BPF_AND, R2, 0xffff),
        Insn::load_u32(R3, R1, CTX_ACCESS_TYPE),
        Insn::alu32_imm(BPF_RSH, R3, 16),
        Insn::load_u32(R4, R1, CTX_MAJOR),
        Insn::load_u32(R5, R1, CTX_MINOR),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::with_capacity(8);
        // Jumps to the end of the block carry a placeholder offset, fixed below.
        if let Some(kind) = rule.kind {
            let kind = match kind {
                Kind::Block => DEV_BLOCK,
                Kind::Char => DEV_CHAR,
            };
            block.push(Insn::jump_imm(BPF_JNE, R2, kind, i16::MIN));
        }
        // Device numbers are u32; the verifier compares the 64-bit register
        // (zero-extended by the 32-bit load) with the sign-extended immediate,
        // so numbers above i32::MAX would never match: none exist in practice,
        // and such a rule then matches nothing rather than too much.
        if let Some(major) = rule.major {
            block.push(Insn::jump_imm(BPF_JNE, R4, major as i32, i16::MIN));
        }
        if let Some(minor) = rule.minor {
            block.push(Insn::jump_imm(BPF_JNE, R5, minor as i32, i16::MIN));
        }
        let bits = i32::from(rule.access);
        if rule.allow {
            block.push(Insn::alu32_imm(BPF_AND, R3, !bits));
            block.push(Insn::jump_imm(BPF_JNE, R3, 0, i16::MIN));
            block.push(Insn::mov64_imm(R0, 1));
        } else {
            block.push(Insn::mov32_reg(R1, R3));
            block.push(Insn::alu32_imm(BPF_AND, R1, bits));
            block.push(Insn::jump_imm(BPF_JEQ, R1, 0, i16::MIN));
            block.push(Insn::mov64_imm(R0, 0));
        }
        block.push(Insn::exit());
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.off == i16::MIN {
                // Blocks are at most 8 instructions long.
                insn.off = (len - i - 1) as i16;
            }
        }
        insns.extend(block);
    }
    insns.push(Insn::mov64_imm(R0, 0));
    insns.push(Insn::exit());
    insns
}

// bpf(2) commands, program and attach types, and flags from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`; the kernel zero-fills
/// what follows up to its own size.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` member.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The `BPF_PROG_QUERY` member.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, properly laid out member of union bpf_attr and
    // its size is passed along; pointers inside it point to live buffers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// Loads the filter for `rules` and makes it the only device filter of the
/// cgroup directory `dir` (a cgroup2 directory).
pub(super) fn install(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let fail = |op: &'static str, source: io::Error, verifier: String| CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        source,
        verifier,
    };
    let insns = program(rules);
    let prog = load(&insns).map_err(|(e, log)| fail("loading the device filter", e, log))?;
    let cgroup =
        std::fs::File::open(dir).map_err(|e| fail("opening the cgroup", e, String::new()))?;
    let old = query(cgroup.as_raw_fd())
        .map_err(|e| fail("listing attached device filters", e, String::new()))?;
    let mut attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach)
        .map_err(|e| fail("attaching the device filter", e, String::new()))?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..GetFdAttr::default()
        };
        let old_prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => owned_fd(fd),
            // Detached and freed meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(fail("opening an old device filter", e, String::new())),
        };
        let mut detach = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: old_prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(fail("detaching an old device filter", e, String::new())),
        }
    }
    Ok(())
}

/// Loads the program; on failure, loads it again with the verifier's log on
/// and returns the log's last line, which says what was wrong.
fn load(insns: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let license = CString::new("Apache-2.0").map_err(|e| (io::Error::other(e), String::new()))?;
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                return Ok(owned_fd(fd));
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err((first, last.trim().to_owned()))
        }
    }
}

/// Ids of the device programs attached to the cgroup itself.
fn query(cgroup: RawFd) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..QueryAttr::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // prog_cnt now holds how many there are.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs `insns` the way the kernel would for one access: a tiny interpreter
/// of the instructions `program` emits, so tests check what the filter means.
#[cfg(test)]
pub(super) fn run(insns: &[Insn], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
    let kind = match kind {
        Kind::Block => DEV_BLOCK as u32,
        Kind::Char => DEV_CHAR as u32,
    };
    let ctx = [(u32::from(access) << 16) | kind, major, minor];
    let mut regs = [0u64; 11];
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10_000, "program loops");
        let insn = insns.get(pc).copied().expect("pc ran off the program");
        let (dst, src) = (usize::from(insn.dst()), usize::from(insn.src()));
        pc += 1;
        match insn.code {
            c if c == BPF_LDX | BPF_MEM | BPF_W => {
                assert_eq!(src, 1, "loads only from the context");
                regs[dst] = u64::from(ctx[(insn.off / 4) as usize]);
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => {
                regs[dst] = u64::from(regs[dst] as u32 & insn.imm as u32)
            }
            c if c == BPF_ALU | BPF_RSH | BPF_K => {
                regs[dst] = u64::from((regs[dst] as u32) >> insn.imm)
            }
            c if c == BPF_ALU | BPF_MOV | BPF_X => regs[dst] = u64::from(regs[src] as u32),
            c if c == BPF_ALU64 | BPF_MOV | BPF_K => regs[dst] = insn.imm as i64 as u64,
            c if c == BPF_JMP | BPF_JNE | BPF_K || c == BPF_JMP | BPF_JEQ | BPF_K => {
                let equal = regs[dst] == insn.imm as i64 as u64;
                let jump = if c & 0xf0 == BPF_JEQ { equal } else { !equal };
                if jump {
                    pc += insn.off as usize;
                }
            }
            c if c == BPF_JMP | BPF_EXIT => return regs[0] == 1,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::devices::{
        ACCESS_ALL, ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE, parse_rules, rules_from_json,
    };
    use super::*;

    const RW: u8 = ACCESS_READ | ACCESS_WRITE;

    fn build(json: &str) -> Vec<Insn> {
        program(&parse_rules(&rules_from_json(json)).expect("rules"))
    }

    #[test]
    fn insn_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let insn = Insn::load_u32(R4, R1, CTX_MAJOR);
        assert_eq!(
            (insn.code, insn.dst(), insn.src(), insn.off),
            (0x61, 4, 1, 4)
        );
        assert_eq!(Insn::exit().code, 0x95);
        assert_eq!(Insn::mov64_imm(R0, 1).code, 0xb7);
        assert_eq!(Insn::jump_imm(BPF_JNE, R2, 2, 3).code, 0x55);
        assert_eq!(Insn::jump_imm(BPF_JEQ, R1, 0, 3).code, 0x15);
        assert_eq!(Insn::mov32_reg(R1, R3).code, 0xbc);
        assert_eq!(Insn::alu32_imm(BPF_AND, R3, 1).code, 0x54);
        assert_eq!(Insn::alu32_imm(BPF_RSH, R3, 16).code, 0x74);
    }

    #[test]
    fn no_rules_deny_everything() {
        let insns = build("[]");
        assert_eq!(insns.len(), 8);
        assert_eq!(insns[6], Insn::mov64_imm(R0, 0));
        assert!(!run(&insns, Kind::Char, 1, 3, ACCESS_READ));
    }

    #[test]
    fn exact_instructions_of_one_rule() {
        let insns =
            build(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#);
        let expected_rule = [
            // Every jump goes to the instruction after the block's exit.
            Insn::jump_imm(BPF_JNE, R2, DEV_CHAR, 6),
            Insn::jump_imm(BPF_JNE, R4, 1, 5),
            Insn::jump_imm(BPF_JNE, R5, 3, 4),
            Insn::alu32_imm(BPF_AND, R3, !i32::from(RW)),
            Insn::jump_imm(BPF_JNE, R3, 0, 2),
            Insn::mov64_imm(R0, 1),
            Insn::exit(),
        ];
        assert_eq!(&insns[6..13], &expected_rule);
        assert_eq!(&insns[13..], &[Insn::mov64_imm(R0, 0), Insn::exit()]);
    }

    #[test]
    fn typical_container_rules() {
        let insns = build(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rw"},
                {"allow": true, "type": "c", "access": "m"},
                {"allow": true, "type": "b", "access": "m"}]"#,
        );
        assert!(run(&insns, Kind::Char, 1, 3, RW));
        assert!(run(&insns, Kind::Char, 1, 3, ACCESS_MKNOD));
        assert!(run(&insns, Kind::Char, 136, 5, ACCESS_WRITE));
        // Write from the pty rule, mknod from the catch-all mknod rule.
        assert!(run(&insns, Kind::Char, 136, 5, ACCESS_WRITE | ACCESS_MKNOD));
        assert!(run(&insns, Kind::Block, 8, 0, ACCESS_MKNOD));
        assert!(!run(&insns, Kind::Block, 8, 0, ACCESS_READ));
        assert!(!run(&insns, Kind::Char, 1, 5, ACCESS_READ));
        assert!(!run(&insns, Kind::Char, 137, 0, ACCESS_WRITE));
    }

    #[test]
    fn later_rules_win_bit_by_bit() {
        let insns = build(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        );
        assert!(run(&insns, Kind::Char, 1, 3, ACCESS_READ));
        assert!(!run(&insns, Kind::Char, 1, 3, ACCESS_WRITE));
        assert!(!run(&insns, Kind::Char, 1, 3, RW));

        // Two allow rules together grant what neither grants alone.
        let split = build(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        );
        assert!(run(&split, Kind::Char, 1, 3, RW));
        assert!(!run(&split, Kind::Char, 1, 3, ACCESS_MKNOD));

        // A later deny-all overrides earlier allows; a later allow-all overrides denies.
        let deny_last = build(r#"[{"allow": true, "type": "c"}, {"allow": false}]"#);
        assert!(!run(&deny_last, Kind::Char, 1, 3, ACCESS_READ));
        let allow_last = build(r#"[{"allow": false, "type": "b"}, {"allow": true}]"#);
        for kind in [Kind::Block, Kind::Char] {
            assert!(run(&allow_last, kind, 8, 0, ACCESS_ALL));
        }
    }

    #[test]
    fn type_a_rules_match_both_kinds() {
        let insns = build(r#"[{"allow": true, "major": 10, "minor": 200, "access": "r"}]"#);
        assert!(run(&insns, Kind::Block, 10, 200, ACCESS_READ));
        assert!(run(&insns, Kind::Char, 10, 200, ACCESS_READ));
        assert!(!run(&insns, Kind::Char, 10, 200, ACCESS_WRITE));
        assert!(!run(&insns, Kind::Char, 10, 201, ACCESS_READ));
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let insns = build(
            r#"[{"allow": false}, {"allow": true, "type": "c", "major": 5, "minor": 1},
                {"allow": false, "type": "b", "major": 8, "access": "w"}, {"allow": true}]"#,
        );
        for (pc, insn) in insns.iter().enumerate() {
            if insn.code & 0x07 == BPF_JMP && insn.code != BPF_JMP | BPF_EXIT {
                let target = pc + 1 + insn.off as usize;
                assert!(
                    insn.off >= 0 && target < insns.len(),
                    "jump at {pc} to {target}"
                );
            }
        }
        assert_eq!(insns.last(), Some(&Insn::exit()));
    }
}
