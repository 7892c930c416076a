//! eBPF queue steering for the TUN device: a socket-filter program, set
//! with `TUNSETSTEERINGEBPF`, that picks each frame's queue with
//! `netstack::FlowSteering` (the same function the stack's tests check
//! against the 4-tuple), so every segment of a connection reaches its home
//! worker and the kernel no longer updates its flow table on every write.
//!
//! The program is assembled here from a short table of instructions (the
//! opcodes are the kernel's `include/uapi/linux/bpf.h` values, checked by
//! the interpreter in the tests). It reads the frame with the legacy
//! packet loads (`LD_ABS`/`LD_IND`, big-endian, and an out-of-bounds load
//! ends the program with 0), so it needs no helper and no map.
//!
//! Invariant: where loading or attaching is refused (no `bpf(2)`, a locked
//! down kernel, `--steering off`; `--steering force-fallback` forces the
//! refusal, for the tests), the daemon runs on the kernel's default
//! steering, logs why once and reports `loaded = false`; it never fails to
//! start over steering.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use netstack::{FlowSteering, STEER_MULTIPLIER};

/// One eBPF instruction, as the kernel lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// Destination register in the low nibble, source in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | operation | source), from linux/bpf.h and bpf_common.h.
pub const MOV64_X: u8 = 0x07 | 0xb0 | 0x08;
pub const MOV32_K: u8 = 0x04 | 0xb0;
pub const MOV32_X: u8 = 0x04 | 0xb0 | 0x08;
pub const XOR32_X: u8 = 0x04 | 0xa0 | 0x08;
pub const MUL32_K: u8 = 0x04 | 0x20;
pub const AND32_K: u8 = 0x04 | 0x50;
pub const LSH32_K: u8 = 0x04 | 0x60;
pub const RSH32_K: u8 = 0x04 | 0x70;
pub const JEQ_K: u8 = 0x05 | 0x10;
pub const JNE_K: u8 = 0x05 | 0x50;
pub const JA: u8 = 0x05;
pub const EXIT: u8 = 0x05 | 0x90;
/// Packet loads into r0 (network byte order), from r6's skb.
pub const LDABS_W: u8 = 0x20;
pub const LDABS_B: u8 = 0x30;
pub const LDIND_W: u8 = 0x40;

const R0: u8 = 0;
const R1: u8 = 1;
/// The skb, as `LD_ABS` requires.
const R6: u8 = 6;
/// The hash being mixed.
const R7: u8 = 7;
/// Scratch: the IP version, then the TCP header's offset.
const R8: u8 = 8;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// An assembler with forward jumps to named places.
struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, label) of jumps to patch.
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, imm: i32) {
        self.insns.push(insn(code, dst, src, 0, imm));
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: &'static str) {
        self.fixups.push((self.insns.len(), to));
        self.insns.push(insn(code, dst, 0, 0, imm));
    }
    fn label(&mut self, name: &'static str) {
        self.labels.push((name, self.insns.len()));
    }
    /// h = (h ^ r0) * M
    fn mix_r0(&mut self) {
        self.op(XOR32_X, R7, R0, 0);
        self.op(MUL32_K, R7, 0, STEER_MULTIPLIER as i32);
    }
    fn load_word_and_mix(&mut self, at: i32) {
        self.op(LDABS_W, 0, 0, at);
        self.mix_r0();
    }
    fn finish(mut self) -> Vec<Insn> {
        for (at, to) in self.fixups {
            let target = self
                .labels
                .iter()
                .find(|(n, _)| *n == to)
                .map(|(_, i)| *i)
                .expect("every jump names a label");
            self.insns[at].off = (target as isize - at as isize - 1) as i16;
        }
        self.insns
    }
}

/// The steering program for `key` (see `FlowSteering::hash_frame`, which it
/// mirrors step by step). It returns the 16-bit hash; the kernel takes it
/// modulo the number of queues.
pub fn program(key: u32) -> Vec<Insn> {
    let mut a = Asm {
        insns: Vec::new(),
        fixups: Vec::new(),
        labels: Vec::new(),
    };
    a.op(MOV64_X, R6, R1, 0);
    a.op(MOV32_K, R7, 0, key as i32);
    a.op(LDABS_B, 0, 0, 0);
    a.op(MOV32_X, R8, R0, 0);
    a.op(RSH32_K, R8, 0, 4);
    a.jump(JEQ_K, R8, 4, "v4");
    a.jump(JEQ_K, R8, 6, "v6");
    a.op(MOV32_K, R0, 0, 0);
    a.op(EXIT, 0, 0, 0);

    a.label("v4");
    a.load_word_and_mix(12);
    a.load_word_and_mix(16);
    a.op(LDABS_B, 0, 0, 9);
    a.jump(JNE_K, R0, 6, "finish");
    a.op(LDABS_B, 0, 0, 0);
    a.op(AND32_K, R0, 0, 0xf);
    a.op(LSH32_K, R0, 0, 2);
    a.op(MOV32_X, R8, R0, 0);
    a.op(LDIND_W, 0, R8, 0);
    a.mix_r0();
    a.jump(JA, 0, 0, "finish");

    a.label("v6");
    for at in (8..40).step_by(4) {
        a.load_word_and_mix(at);
    }
    a.op(LDABS_B, 0, 0, 6);
    a.jump(JNE_K, R0, 6, "finish");
    a.load_word_and_mix(40);

    a.label("finish");
    a.op(MOV32_X, R0, R7, 0);
    a.op(RSH32_K, R0, 0, 16);
    a.op(XOR32_X, R0, R7, 0);
    a.op(MUL32_K, R0, 0, STEER_MULTIPLIER as i32);
    a.op(RSH32_K, R0, 0, 16);
    a.op(EXIT, 0, 0, 0);
    a.finish()
}

/// `TUNSETSTEERINGEBPF`: `_IOR('T', 224, int)`.
const TUNSETSTEERINGEBPF: libc::c_ulong = 0x8004_54e0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// The leading fields of `union bpf_attr` for `BPF_PROG_LOAD` (the kernel
/// treats the missing trailing ones as zero).
#[repr(C)]
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

/// Loads `insns` as a socket filter; the verifier's log is in the error.
fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"Dual MIT/Apache-2.0";
    let mut log = vec![0u8; 4096];
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; the
    // instruction array, the license string and the log buffer it points
    // to outlive the call, and the kernel writes only within `log_size`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let verifier = String::from_utf8_lossy(&log[..end]);
        return Err(io::Error::new(
            err.kind(),
            format!("bpf(BPF_PROG_LOAD): {err}; verifier: {}", verifier.trim()),
        ));
    }
    // SAFETY: the kernel returned a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads the program for `steering` and sets it on the device of `queue`
/// (one queue's fd sets it for the whole device).
pub fn attach(queue: &impl AsRawFd, steering: &FlowSteering) -> io::Result<()> {
    let prog = load(&program(steering.key))?;
    let fd: libc::c_int = prog.as_raw_fd();
    // SAFETY: TUNSETSTEERINGEBPF reads one int (the program's fd) from the
    // pointer, which is valid for the call; `queue` is an open TUN fd.
    let r = unsafe {
        libc::ioctl(
            queue.as_raw_fd(),
            TUNSETSTEERINGEBPF as _,
            &fd as *const libc::c_int,
        )
    };
    if r < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("ioctl(TUNSETSTEERINGEBPF): {err}"),
        ));
    }
    // The device holds its own reference: our fd may close.
    Ok(())
}

/// What steering the daemon runs with, for the log and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `--steering ebpf` asked for the program.
    pub requested: bool,
    /// The program is set on the device.
    pub loaded: bool,
}

/// The steering key: from the insecure seed when one is set (so a test run
/// repeats), else random.
pub fn key(seed: Option<u64>) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    match seed {
        Some(s) => (s.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32,
        None => {
            // A randomly keyed SipHash of nothing: std's per-process
            // random keys, without a new dependency.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0x15);
            h.finish() as u32
        }
    }
}

/// Sets the steering program on the device of `queue` if `requested`;
/// where that is refused (or `force_refusal` says to act as if it were),
/// logs why and runs on the kernel's default.
pub fn set_up(
    queue: &impl AsRawFd,
    requested: bool,
    force_refusal: bool,
    steering: &FlowSteering,
) -> Status {
    if !requested {
        tracing::info!("steering: the kernel's default (--steering off)");
        return Status::default();
    }
    let attached = if force_refusal {
        Err(io::Error::other(
            "refusal forced by --steering force-fallback",
        ))
    } else {
        attach(queue, steering)
    };
    match attached {
        Ok(()) => {
            tracing::info!(
                queues = steering.queues,
                "steering: eBPF program on the TUN device"
            );
            Status {
                requested,
                loaded: true,
            }
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "steering: the eBPF program was refused; using the kernel's default \
                 flow steering (segments may reach a worker other than their connection's)"
            );
            Status {
                requested,
                loaded: false,
            }
        }
    }
}

#[cfg(test)]
mod tests;
