use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netstack::{SeqNum, TcpFlags, TcpHeader, emit_tcp};
use smr::rng::SplitMix64;

use super::*;

/// Runs `prog` on `packet` as the kernel would for the opcodes the
/// steering program uses: 32-bit ALU results zero-extended, big-endian
/// packet loads into r0, and a load past the end ends the program with 0.
fn run(prog: &[Insn], packet: &[u8]) -> u64 {
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog[pc];
        let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
        let imm = i.imm as u32;
        pc += 1;
        let load = |at: u64, len: usize| -> Option<u64> {
            let at = usize::try_from(at).ok()?;
            let b = packet.get(at..at.checked_add(len)?)?;
            Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
        };
        match i.code {
            MOV64_X => r[dst] = r[src],
            MOV32_K => r[dst] = u64::from(imm),
            MOV32_X => r[dst] = u64::from(r[src] as u32),
            XOR32_X => r[dst] = u64::from(r[dst] as u32 ^ r[src] as u32),
            MUL32_K => r[dst] = u64::from((r[dst] as u32).wrapping_mul(imm)),
            AND32_K => r[dst] = u64::from(r[dst] as u32 & imm),
            LSH32_K => r[dst] = u64::from((r[dst] as u32) << (imm & 31)),
            RSH32_K => r[dst] = u64::from((r[dst] as u32) >> (imm & 31)),
            JEQ_K | JNE_K | JA => {
                let k = i64::from(i.imm) as u64;
                let taken = match i.code {
                    JEQ_K => r[dst] == k,
                    JNE_K => r[dst] != k,
                    _ => true,
                };
                assert!(i.off >= 0, "the verifier refuses back edges");
                if taken {
                    pc += i.off as usize;
                }
            }
            LDABS_W | LDABS_B | LDIND_W => {
                let base = if i.code == LDIND_W {
                    u64::from(r[src] as u32)
                } else {
                    0
                };
                let len = if i.code == LDABS_B { 1 } else { 4 };
                match load(base + u64::from(imm), len) {
                    Some(v) => r[0] = v,
                    None => return 0,
                }
                // Packet loads clobber the argument registers.
                r[1..6].fill(0xdead);
            }
            EXIT => return r[0],
            other => panic!("opcode {other:#x} not in the interpreter"),
        }
    }
    panic!("program did not exit");
}

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    insn(code, dst, src, off, imm)
}

#[test]
fn the_interpreter_runs_alu_jumps_and_loads_as_the_kernel_does() {
    // r0 = 7 * 3 ^ 1, then exit.
    let p = [
        ins(MOV32_K, 0, 0, 0, 7),
        ins(MUL32_K, 0, 0, 0, 3),
        ins(MOV32_K, 2, 0, 0, 1),
        ins(XOR32_X, 0, 2, 0, 0),
        ins(EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(run(&p, &[]), 20);
    // A taken jump skips; a 32-bit multiply wraps.
    let p = [
        ins(MOV32_K, 0, 0, 0, -1),
        ins(JEQ_K, 0, 0, 1, 5),
        ins(MUL32_K, 0, 0, 0, 2),
        ins(JNE_K, 0, 0, 1, 0),
        ins(MOV32_K, 0, 0, 0, 9),
        ins(EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(run(&p, &[]), 0xffff_fffe);
    // Loads are big-endian; LD_IND adds the register; past the end is 0.
    let p = [
        ins(LDABS_B, 0, 0, 0, 1),
        ins(MOV32_X, 8, 0, 0, 0),
        ins(LDIND_W, 0, 8, 0, 1),
        ins(EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(run(&p, &[9, 2, 9, 0x12, 0x34, 0x56, 0x78]), 0x1234_5678);
    assert_eq!(run(&p, &[9, 2, 9, 0x12, 0x34, 0x56]), 0);
    // The shifts and the mask.
    let p = [
        ins(MOV32_K, 0, 0, 0, 0x0f0),
        ins(LSH32_K, 0, 0, 0, 4),
        ins(RSH32_K, 0, 0, 0, 8),
        ins(AND32_K, 0, 0, 0, 0x3),
        ins(EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(run(&p, &[]), 0xf & 0x3);
}

fn tcp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    let h = TcpHeader {
        src_port: sport,
        dst_port: dport,
        seq: SeqNum(1),
        flags: TcpFlags::SYN,
        window: 1000,
        ..TcpHeader::default()
    };
    let mut buf = vec![0; 200];
    let n = emit_tcp(src, dst, 64, &h, &[], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The same IPv4 frame with `words` words of (no-op) IP options, so the
/// TCP header moves.
fn with_ip_options(frame: &[u8], words: usize) -> Vec<u8> {
    let mut f = frame[..20].to_vec();
    f[0] = 0x40 | (5 + words as u8);
    f.extend(std::iter::repeat_n(1u8, words * 4));
    f.extend_from_slice(&frame[20..]);
    f
}

#[test]
fn the_program_steers_every_frame_as_the_stack_function_does() {
    let mut rng = SplitMix64::new(15);
    for round in 0..4000 {
        let key = rng.next_u64() as u32;
        let queues = 1 + (rng.next_u64() % 8) as u16;
        let s = FlowSteering { key, queues };
        let prog = program(key);
        let (sport, dport) = (rng.next_u64() as u16, rng.next_u64() as u16);
        let (src, dst) = if round % 2 == 0 {
            (
                IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)),
                IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::from(
                    u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
                )),
                IpAddr::V6(Ipv6Addr::from(
                    u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
                )),
            )
        };
        let mut f = tcp_frame(src, dst, sport, dport);
        if src.is_ipv4() && round % 4 == 0 {
            f = with_ip_options(&f, 1 + (rng.next_u64() % 10) as usize);
        }
        // Against the tuple: what the stack homes the connection with.
        let ret = run(&prog, &f);
        assert!(ret <= 0xffff);
        assert_eq!(ret as u16, s.hash(src, dst, sport, dport), "round {round}");
        assert_eq!(
            usize::from(ret as u16 % queues),
            s.queue_of(src, dst, sport, dport)
        );
        // Against the frame function on truncated, non-TCP and garbage
        // frames too.
        let cut = (rng.next_u64() as usize) % (f.len() + 1);
        assert_eq!(run(&prog, &f[..cut]) as u16, s.hash_frame(&f[..cut]));
        let mut other = f.clone();
        other[if src.is_ipv4() { 9 } else { 6 }] = 17;
        assert_eq!(run(&prog, &other) as u16, s.hash_frame(&other));
        let junk: Vec<u8> = (0..(rng.next_u64() % 80))
            .map(|_| rng.next_u64() as u8)
            .collect();
        assert_eq!(run(&prog, &junk) as u16, s.hash_frame(&junk));
    }
}

#[test]
fn the_program_has_no_back_edges_and_stays_small() {
    let p = program(0xdead_beef);
    assert!(p.len() < 64, "{} instructions", p.len());
    for (i, insn) in p.iter().enumerate() {
        if matches!(insn.code, JEQ_K | JNE_K | JA) {
            assert!(insn.off >= 0);
            assert!(i + 1 + (insn.off as usize) < p.len());
        }
    }
    assert_eq!(p.last().unwrap().code, EXIT);
}

/// `BPF_PROG_TEST_RUN` on a loaded program: the kernel itself runs it on
/// `frame` behind an Ethernet header (a socket filter's test run pulls the
/// header, so the program sees the IP frame as on a TUN queue).
fn kernel_run(prog: &OwnedFd, frame: &[u8]) -> io::Result<u32> {
    #[repr(C)]
    #[derive(Default)]
    struct TestRunAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
    }
    let mut data = vec![0u8; 14];
    data[12..14].copy_from_slice(&if frame.first().is_some_and(|b| b >> 4 == 6) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    });
    data.extend_from_slice(frame);
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_in: data.as_ptr() as u64,
        repeat: 1,
        ..TestRunAttr::default()
    };
    // SAFETY: a valid `bpf_attr` prefix for BPF_PROG_TEST_RUN; `data`
    // outlives the call and no output buffer is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            10 as libc::c_long,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr.retval)
}

#[test]
fn the_kernel_verifier_accepts_the_program_and_runs_it_like_the_stack_function() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: loading a BPF program needs root");
        return;
    }
    let key = 0x5eed_0015;
    let s = FlowSteering { key, queues: 4 };
    let prog = load(&program(key)).expect("the verifier accepts the program");
    let mut rng = SplitMix64::new(7);
    for round in 0..200 {
        let (src, dst) = if round % 2 == 0 {
            (
                IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)),
                IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::from(u128::from(rng.next_u64()) << 64 | 1)),
                IpAddr::V6(Ipv6Addr::from(u128::from(rng.next_u64()) << 64 | 2)),
            )
        };
        let mut f = tcp_frame(src, dst, rng.next_u64() as u16, 80);
        if src.is_ipv4() && round % 4 == 0 {
            f = with_ip_options(&f, 3);
        }
        let got = kernel_run(&prog, &f).expect("BPF_PROG_TEST_RUN");
        assert_eq!(got, u32::from(s.hash_frame(&f)), "round {round}");
        assert_eq!(got, run(&program(key), &f) as u32);
    }
}

#[test]
fn a_refused_program_falls_back_to_the_kernels_steering() {
    // Not a TUN queue: the ioctl (or, unprivileged, the load) is refused,
    // and the daemon carries on with `loaded = false`.
    let not_tun = std::fs::File::open("/dev/null").unwrap();
    let s = FlowSteering { key: 1, queues: 2 };
    assert_eq!(
        set_up(&not_tun, true, false, &s),
        Status {
            requested: true,
            loaded: false
        }
    );
    assert_eq!(set_up(&not_tun, false, false, &s), Status::default());
    let e = attach(&not_tun, &s).unwrap_err().to_string();
    assert!(
        e.contains("TUNSETSTEERINGEBPF") || e.contains("BPF_PROG_LOAD"),
        "{e}"
    );
}
