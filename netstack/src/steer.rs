//! Flow steering: which worker a TCP connection's frames should reach,
//! computed from the 4-tuple alone, cheaply enough for a dozen eBPF
//! instructions in the kernel's TUN queue selection.
//!
//! A passive connection is homed on the worker that received its
//! handshake's final ACK, so when the driver steers every frame with
//! [`FlowSteering::queue_of_frame`] (the daemon loads the same function as
//! a TUN steering program), every segment of a connection reaches its home
//! worker and SYNs spread evenly over all of them.
//!
//! The function is a multiply-xor mix of the address and port words under
//! a 32-bit key, not the tables' SipHash: the kernel side runs it for every
//! frame in a program of a few dozen instructions. That is a deliberate
//! trade-off. Steering only chooses a worker (a handful of queues), not a
//! hash bucket: an attacker who learns or guesses the key can at worst aim
//! a flood at one worker — which a flood from few sources does anyway —
//! while the connection table's buckets stay under the keyed SipHash, so
//! hash flooding of the table's chains is no easier than before. The key
//! only keeps the mapping from being a fixed public function.
//!
//! Invariant: `queue_of_frame(frame) == queue_of(tuple of frame)` for every
//! TCP frame without IPv6 extension headers, and the result is always below
//! the number of queues.

use core::net::IpAddr;

/// The multiplier of each mixing step (an odd constant from the golden
/// ratio, as in Fibonacci hashing).
pub const STEER_MULTIPLIER: u32 = 0x9e37_79b1;

/// The steering function under one key, for `queues` queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSteering {
    /// The 32-bit key the mix starts from.
    pub key: u32,
    /// Queues (workers) to choose from; at least 1.
    pub queues: u16,
}

/// One mixing step.
pub const fn steer_mix(h: u32, word: u32) -> u32 {
    (h ^ word).wrapping_mul(STEER_MULTIPLIER)
}

/// The last step: fold the high half into the low, multiply once more and
/// keep the product's high 16 bits (the kernel keeps 16 bits of a steering
/// program's result and takes them modulo the number of queues).
///
/// The mixing steps only carry low bits upwards, so the port word's high
/// half (the peer's port) reaches the low bits only through the fold; a
/// fold alone made the queue's low bit the port's parity, and Linux's
/// `connect()` gives a client's connections ports of one parity while it
/// can: every `wrk` connection of one client landed on one worker. After
/// the last multiply each kept bit depends on every bit of the fold.
pub const fn steer_finish(h: u32) -> u16 {
    (((h >> 16) ^ h).wrapping_mul(STEER_MULTIPLIER) >> 16) as u16
}

impl FlowSteering {
    /// The 16-bit steering hash of a TCP flow as its frames arrive:
    /// `src` is the peer, `dst` is ours.
    pub fn hash(&self, src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> u16 {
        let h = self.addresses(src, dst);
        let ports = (u32::from(src_port) << 16) | u32::from(dst_port);
        steer_finish(steer_mix(h, ports))
    }

    fn addresses(&self, src: IpAddr, dst: IpAddr) -> u32 {
        let mut h = self.key;
        for a in [src, dst] {
            match a {
                IpAddr::V4(v4) => h = steer_mix(h, u32::from(v4)),
                IpAddr::V6(v6) => {
                    for w in v6.octets().chunks_exact(4) {
                        h = steer_mix(h, u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
                    }
                }
            }
        }
        h
    }

    /// The queue (worker) for a connection from `src`:`src_port` (the
    /// peer) to `dst`:`dst_port` (ours).
    pub fn queue_of(&self, src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> usize {
        usize::from(self.hash(src, dst, src_port, dst_port) % self.queues.max(1))
    }

    /// The steering hash of a raw IP frame, exactly as the kernel program
    /// computes it: TCP over IPv4 (any header length) or IPv6 (no extension
    /// headers) by its 4-tuple; any other IP frame by its addresses alone;
    /// anything else, or a frame too short for what is read, 0.
    pub fn hash_frame(&self, frame: &[u8]) -> u16 {
        let word = |at: usize| -> Option<u32> {
            let b = frame.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let byte = |at: usize| frame.get(at).copied();
        let hashed = (|| -> Option<u32> {
            let version = byte(0)? >> 4;
            let mut h = self.key;
            match version {
                4 => {
                    h = steer_mix(h, word(12)?);
                    h = steer_mix(h, word(16)?);
                    if byte(9)? == 6 {
                        let ihl = usize::from(byte(0)? & 0xf) * 4;
                        h = steer_mix(h, word(ihl)?);
                    }
                }
                6 => {
                    for at in (8..40).step_by(4) {
                        h = steer_mix(h, word(at)?);
                    }
                    if byte(6)? == 6 {
                        h = steer_mix(h, word(40)?);
                    }
                }
                _ => return Some(0),
            }
            Some(u32::from(steer_finish(h)))
        })();
        hashed.map_or(0, |h| h as u16)
    }

    /// The queue the kernel program sends `frame` to.
    pub fn queue_of_frame(&self, frame: &[u8]) -> usize {
        usize::from(self.hash_frame(frame) % self.queues.max(1))
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::tcp::seq::SeqNum;
    use crate::wire::{TcpFlags, TcpHeader, emit_tcp};

    fn frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
        let h = TcpHeader {
            src_port: sport,
            dst_port: dport,
            seq: SeqNum(1),
            flags: TcpFlags::SYN,
            window: 1000,
            ..TcpHeader::default()
        };
        let mut buf = vec![0; 200];
        let n = emit_tcp(src, dst, 64, &h, b"x", &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_tcp_frame_steers_like_its_tuple() {
        let s = FlowSteering {
            key: 0x1234_5678,
            queues: 3,
        };
        let mut seen = [0usize; 3];
        for i in 0..3000u32 {
            let (src, dst) = if i % 2 == 0 {
                (
                    IpAddr::V4(Ipv4Addr::from(0xc612_8000 | i)),
                    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                )
            } else {
                (
                    IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i))),
                    IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | 2)),
                )
            };
            let sport = (i.wrapping_mul(7919) % 65536) as u16;
            let f = frame(src, dst, sport, 80);
            let q = s.queue_of(src, dst, sport, 80);
            assert_eq!(s.queue_of_frame(&f), q);
            assert_eq!(s.hash_frame(&f), s.hash(src, dst, sport, 80));
            seen[q] += 1;
        }
        // Spread: every queue gets a fair share (expected 1000 each).
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    /// One client, one server port, source ports of one parity (as Linux's
    /// `connect()` hands them out while half its range is free): the
    /// connections still spread over 2 and over 4 queues, under any key.
    #[test]
    fn one_client_s_even_ports_spread_over_every_queue() {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        for key in [0, 1, 0x1234_5678, 0xdead_beef] {
            for queues in [2u16, 4] {
                let s = FlowSteering { key, queues };
                let mut seen = [0usize; 4];
                for port in (40_000..40_000 + 2 * 512).step_by(2) {
                    seen[s.queue_of(src, dst, port, 80)] += 1;
                }
                let fair = 512 / usize::from(queues);
                assert!(
                    seen[..usize::from(queues)]
                        .iter()
                        .all(|&n| n > fair * 3 / 4),
                    "key {key:#x}, {queues} queues: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn the_key_changes_the_mapping_and_short_frames_go_to_queue_zero() {
        let a = FlowSteering { key: 1, queues: 8 };
        let b = FlowSteering { key: 2, queues: 8 };
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let differ = (0..256u16)
            .filter(|&p| a.queue_of(src, dst, p, 80) != b.queue_of(src, dst, p, 80))
            .count();
        assert!(differ > 128, "{differ}");
        let f = frame(src, dst, 1, 80);
        for cut in 0..22 {
            assert_eq!(a.hash_frame(&f[..cut]), 0, "cut at {cut}");
        }
        assert_eq!(a.hash_frame(&[0x50; 60]), 0, "not IP");
    }
}
