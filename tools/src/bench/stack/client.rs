//! A scripted TCP client that speaks raw frames: the load for `bench stack`.
//!
//! It is deliberately not a TCP implementation. Each connection follows one
//! script, and the network between client and server is lossless and in
//! order (both live in memory), so a script is enough and it costs the same
//! for every server under test:
//!
//! ```text
//!  client                          server
//!  SYN                ─────────►
//!                     ◄─────────   SYN-ACK
//!  ACK                ─────────►                 (idle connections stop here)
//!  ACK+PSH+FIN+data   ─────────►
//!                     ◄─────────   data (echo) … FIN
//!  ACK                ─────────►                 (the connection is complete)
//! ```
//!
//! The client closes first, so the server passes through CLOSE-WAIT and
//! LAST-ACK and keeps no TIME-WAIT state; tuples are never reused within a
//! run. Every address is inside 198.18.0.0/15 (RFC 2544's benchmarking
//! range) and no frame leaves the process.

use netstack::{SeqNum, TcpFlags, TcpHeader, TcpOptions, Transport, emit_tcp, parse_frame};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The server's address in every `bench stack` run.
pub(crate) const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 7);

/// Octets each churned connection sends (and gets echoed back).
pub(crate) const REQUEST_LEN: usize = 64;

const FIRST_PORT: u16 = 1024;
const PORTS: u32 = 65536 - FIRST_PORT as u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    SynSent {
        idle: bool,
    },
    /// Established; stays open and silent.
    Idle,
    /// Request and FIN sent; waiting for the echo and the server's FIN.
    Requested {
        echoed: usize,
    },
}

#[derive(Debug)]
struct Conn {
    phase: Phase,
    /// Our next sequence number.
    snd_nxt: SeqNum,
    /// The next sequence number we expect from the server.
    rcv_nxt: SeqNum,
}

/// The client side of one benchmark run, with the counts it checks.
#[derive(Debug)]
pub(crate) struct Client {
    /// Which source this client allocates next; clients on different
    /// threads get disjoint ranges.
    next: u32,
    end: u32,
    conns: HashMap<SocketAddr, Conn>,
    request: [u8; REQUEST_LEN],
    /// Connections that completed the whole script.
    pub(crate) completed: u64,
    /// Connections established and left idle.
    pub(crate) idle: u64,
    /// Connections the server reset.
    pub(crate) resets: u64,
    /// Frames that fit no script step (counted, ignored).
    pub(crate) unexpected: u64,
}

impl Client {
    /// A client that uses sources `first..first + count` of the range.
    pub(crate) fn new(first: u32, count: u32) -> Client {
        Client {
            next: first,
            end: first.saturating_add(count),
            conns: HashMap::new(),
            request: [b'x'; REQUEST_LEN],
            completed: 0,
            idle: 0,
            resets: 0,
            unexpected: 0,
        }
    }

    /// Connections started and not yet complete (idle ones included).
    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }

    fn next_source(&mut self) -> Option<SocketAddr> {
        if self.next >= self.end {
            return None;
        }
        let n = self.next;
        self.next += 1;
        let host = n / PORTS + 2; // 198.18.0.2 upwards
        let port = FIRST_PORT + (n % PORTS) as u16;
        let [_, b, c, d] = host.to_be_bytes();
        let ip = Ipv4Addr::new(198, 18 + (b & 1), c, d);
        Some(SocketAddr::new(IpAddr::V4(ip), port))
    }

    /// Start one connection: its SYN is appended to `out`. Returns false when
    /// this client has used up its sources.
    pub(crate) fn connect(&mut self, idle: bool, out: &mut Vec<Vec<u8>>) -> bool {
        let Some(src) = self.next_source() else {
            return false;
        };
        let iss = SeqNum(self.next.wrapping_mul(0x9e37_79b9));
        let syn = TcpHeader {
            src_port: src.port(),
            dst_port: SERVER.port(),
            seq: iss,
            flags: TcpFlags::SYN,
            window: 65535,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
            ..TcpHeader::default()
        };
        send(src, &syn, &[], out);
        self.conns.insert(
            src,
            Conn {
                phase: Phase::SynSent { idle },
                snd_nxt: iss + 1usize,
                rcv_nxt: SeqNum(0),
            },
        );
        true
    }

    /// One frame from the server; replies are appended to `out`.
    pub(crate) fn on_frame(&mut self, frame: &[u8], out: &mut Vec<Vec<u8>>) {
        let Ok(d) = parse_frame(frame) else {
            self.unexpected += 1;
            return;
        };
        let Transport::Tcp(seg) = d.transport else {
            self.unexpected += 1;
            return;
        };
        let h = seg.header;
        let peer = SocketAddr::new(d.dst, h.dst_port);
        let Some(c) = self.conns.get_mut(&peer) else {
            self.unexpected += 1;
            return;
        };
        if h.flags.contains(TcpFlags::RST) {
            self.conns.remove(&peer);
            self.resets += 1;
            return;
        }
        let ack = |c: &Conn, flags: TcpFlags| TcpHeader {
            src_port: peer.port(),
            dst_port: SERVER.port(),
            seq: c.snd_nxt,
            ack: c.rcv_nxt,
            flags: TcpFlags::ACK | flags,
            window: 65535,
            ..TcpHeader::default()
        };
        match c.phase {
            Phase::SynSent { idle } => {
                if !h.flags.contains(TcpFlags::SYN | TcpFlags::ACK) || h.ack != c.snd_nxt {
                    self.unexpected += 1;
                    return;
                }
                c.rcv_nxt = h.seq + 1usize;
                send(peer, &ack(c, TcpFlags::default()), &[], out);
                if idle {
                    c.phase = Phase::Idle;
                    self.idle += 1;
                } else {
                    let req = ack(c, TcpFlags::PSH | TcpFlags::FIN);
                    send(peer, &req, &self.request, out);
                    c.snd_nxt += REQUEST_LEN + 1;
                    c.phase = Phase::Requested { echoed: 0 };
                }
            }
            Phase::Idle => self.unexpected += 1,
            Phase::Requested { echoed } => {
                if h.seq != c.rcv_nxt {
                    // Only in-order data is expected on a lossless path;
                    // a pure ACK of our FIN carries no sequence space.
                    if !seg.payload.is_empty() || h.flags.contains(TcpFlags::FIN) {
                        self.unexpected += 1;
                    }
                    return;
                }
                let echoed = echoed + seg.payload.len();
                c.rcv_nxt += seg.payload.len();
                if h.flags.contains(TcpFlags::FIN) {
                    c.rcv_nxt += 1usize;
                    send(peer, &ack(c, TcpFlags::default()), &[], out);
                    self.conns.remove(&peer);
                    if echoed == REQUEST_LEN {
                        self.completed += 1;
                    } else {
                        self.unexpected += 1;
                    }
                } else {
                    c.phase = Phase::Requested { echoed };
                }
            }
        }
    }
}

fn send(src: SocketAddr, h: &TcpHeader, payload: &[u8], out: &mut Vec<Vec<u8>>) {
    let mut buf = vec![0; 60 + 20 + payload.len()];
    let n = emit_tcp(src.ip(), SERVER.ip(), 64, h, payload, &mut buf)
        .expect("a 60-octet header allowance fits any client segment");
    buf.truncate(n);
    out.push(buf);
}
