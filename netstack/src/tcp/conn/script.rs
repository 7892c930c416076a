//! The segment-script harness, in the spirit of packetdrill: at a time, inject
//! a segment, expect what the TCB sends (or that it sends nothing) and its
//! state. Used by the script, reliability and whole-connection tests.

use core::net::SocketAddr;
use core::time::Duration;

use super::*;
use crate::tcp::options::{TcpOptions, Timestamps};
use crate::wire::{TcpFlags, TcpHeader};

pub(super) const ISS: u32 = 1000;
pub(super) const IRS: u32 = 5000;
pub(super) const ACK: TcpFlags = TcpFlags::ACK;
pub(super) const SYN: TcpFlags = TcpFlags::SYN;
pub(super) const FIN: TcpFlags = TcpFlags::FIN;
pub(super) const RST: TcpFlags = TcpFlags::RST;

pub(super) fn local() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}

pub(super) fn remote() -> SocketAddr {
    "10.0.0.2:80".parse().unwrap()
}

/// A plain configuration: no timestamps, SACK or scaling unless a test turns
/// them on, short delayed ACK, 1 s minimum RTO.
pub(super) fn plain() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        window_scale: 0,
        ..TcpConfig::default()
    }
}

/// A segment the peer sends.
#[derive(Clone, Debug)]
pub(super) struct Seg {
    pub(super) header: TcpHeader,
    pub(super) payload: Vec<u8>,
}

impl Seg {
    pub(super) fn new(flags: TcpFlags, seq: u32, ack: u32) -> Seg {
        Seg {
            header: TcpHeader {
                src_port: remote().port(),
                dst_port: local().port(),
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags,
                window: 65535,
                urgent: 0,
                options: TcpOptions::default(),
            },
            payload: Vec::new(),
        }
    }

    pub(super) fn win(mut self, window: u16) -> Seg {
        self.header.window = window;
        self
    }

    pub(super) fn data(mut self, bytes: &[u8]) -> Seg {
        self.payload = bytes.to_vec();
        self
    }

    pub(super) fn ts(mut self, value: u32, echo_reply: u32) -> Seg {
        self.header.options.timestamps = Some(Timestamps { value, echo_reply });
        self
    }

    pub(super) fn mss(mut self, mss: u16) -> Seg {
        self.header.options.mss = Some(mss);
        self
    }

    pub(super) fn wscale(mut self, shift: u8) -> Seg {
        self.header.options.window_scale = Some(shift);
        self
    }

    /// SACK blocks, as offsets from ISS.
    pub(super) fn sack(mut self, blocks: &[(u32, u32)]) -> Seg {
        for &(l, r) in blocks {
            self.header
                .options
                .sack_blocks
                .push(crate::tcp::options::SackBlock {
                    left: SeqNum(ISS + l),
                    right: SeqNum(ISS + r),
                });
        }
        self
    }

    pub(super) fn sack_permitted(mut self) -> Seg {
        self.header.options.sack_permitted = true;
        self
    }

    pub(super) fn segment(&self) -> TcpSegment<'_> {
        TcpSegment {
            header: self.header,
            payload: &self.payload,
        }
    }
}

/// One TCB, its counters and a fake clock.
pub(super) struct Script {
    pub(super) tcb: Tcb,
    pub(super) mib: TcpMib,
    pub(super) now: Instant,
}

/// What the TCB sent, owned.
#[derive(Clone, Debug)]
pub(super) struct Sent {
    pub(super) header: TcpHeader,
    pub(super) payload: Vec<u8>,
}

impl Script {
    /// An active open that has sent its SYN.
    pub(super) fn syn_sent(cfg: &TcpConfig) -> Script {
        let mib = TcpMib::default();
        let tcb = Tcb::connect(cfg, local(), remote(), SeqNum(ISS), Instant::ZERO, &mib);
        let mut s = Script {
            tcb,
            mib,
            now: Instant::ZERO,
        };
        let syn = s.expect(SYN, ISS, 0);
        assert_eq!(syn.header.options.mss, Some(cfg.mss));
        s.expect_nothing();
        s
    }

    /// An active open completed by a plain SYN-ACK (no options but MSS 1000).
    pub(super) fn established(cfg: &TcpConfig) -> Script {
        let mut s = Script::syn_sent(cfg);
        let d = s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000));
        assert_eq!(d, SegmentDisposition::Established);
        s.expect(ACK, ISS + 1, IRS + 1);
        s.expect_nothing();
        assert_eq!(s.tcb.state(), State::Established);
        s
    }

    pub(super) fn at_ms(&mut self, ms: u64) {
        self.now = Instant::from_millis(ms);
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    pub(super) fn inject(&mut self, seg: Seg) -> SegmentDisposition {
        self.tcb.on_segment(self.now, &seg.segment(), &self.mib)
    }

    /// Runs the timers due now.
    pub(super) fn fire(&mut self) {
        self.tcb.on_timeout(self.now, &self.mib);
    }

    /// Moves the clock to the next deadline and runs it.
    pub(super) fn fire_next(&mut self) -> Instant {
        let at = self.tcb.poll_at().expect("a timer is armed");
        self.now = self.now.max(at);
        self.fire();
        at
    }

    pub(super) fn poll(&mut self) -> Option<Sent> {
        self.tcb.poll_transmit(self.now, &self.mib).map(|t| Sent {
            header: t.header,
            payload: t.payload.to_vec(),
        })
    }

    /// Expects the next segment to have exactly these flags (PSH aside), this
    /// sequence number and, if it has ACK, this acknowledgment.
    #[track_caller]
    pub(super) fn expect(&mut self, flags: TcpFlags, seq: u32, ack: u32) -> Sent {
        let sent = self.poll().expect("expected a segment, got nothing");
        let got = TcpFlags(sent.header.flags.0 & !TcpFlags::PSH.0);
        assert_eq!(got, flags, "flags of {sent:?}");
        assert_eq!(sent.header.seq, SeqNum(seq), "seq of {sent:?}");
        if flags.contains(ACK) {
            assert_eq!(sent.header.ack, SeqNum(ack), "ack of {sent:?}");
        }
        sent
    }

    #[track_caller]
    pub(super) fn expect_nothing(&mut self) {
        if let Some(sent) = self.poll() {
            panic!("expected nothing, got {sent:?}");
        }
    }

    pub(super) fn drain(&mut self) -> Vec<Sent> {
        core::iter::from_fn(|| self.poll()).collect()
    }
}

/// One line of a table-driven script.
pub(super) enum Step {
    /// Move the clock to this many milliseconds and run due timers.
    At(u64),
    /// The peer sends this segment.
    In(Seg),
    /// The TCB sends a segment with these flags (PSH aside), seq and ack.
    Out(TcpFlags, u32, u32),
    /// The TCB sends nothing more.
    Quiet,
    /// The TCB is in this state.
    Is(State),
    /// The application does something.
    App(fn(&mut Tcb)),
}

impl Script {
    /// Runs a table of steps; a failing assertion names the step.
    #[track_caller]
    pub(super) fn run(&mut self, steps: Vec<Step>) {
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::At(ms) => {
                    self.at_ms(ms);
                    self.fire();
                }
                Step::In(seg) => {
                    self.inject(seg);
                }
                Step::Out(flags, seq, ack) => {
                    let sent = self
                        .poll()
                        .unwrap_or_else(|| panic!("step {i}: nothing sent"));
                    let got = TcpFlags(sent.header.flags.0 & !TcpFlags::PSH.0);
                    assert_eq!(got, flags, "step {i}: flags of {sent:?}");
                    assert_eq!(sent.header.seq, SeqNum(seq), "step {i}: seq of {sent:?}");
                    if flags.contains(ACK) {
                        assert_eq!(sent.header.ack, SeqNum(ack), "step {i}: ack of {sent:?}");
                    }
                }
                Step::Quiet => {
                    if let Some(sent) = self.poll() {
                        panic!("step {i}: expected nothing, got {sent:?}");
                    }
                }
                Step::Is(state) => assert_eq!(self.tcb.state(), state, "step {i}"),
                Step::App(f) => f(&mut self.tcb),
            }
        }
    }
}
