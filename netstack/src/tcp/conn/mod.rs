//! The per-connection state machine of RFC 9293, sans-IO.
//!
//! A [`Tcb`] is fed segments ([`Tcb::on_segment`]), the passage of time
//! ([`Tcb::on_timeout`] when [`Tcb::poll_at`] is due) and application calls
//! (`send`, `recv`, `close`, `abort`); it never sends anything itself. Whatever
//! it wants on the wire waits until the caller drains [`Tcb::poll_transmit`],
//! and what the application should hear about accumulates in [`Tcb::take_events`].
//!
//! Sequence space as the sender sees it (RFC 9293 §3.3.1):
//!
//! ```text
//!        snd_una          snd_nxt           snd_max      snd_una + snd_wnd
//!   ------|================|=================|-----------------|---------
//!   acked  sent, unacked    sent again after   sent once, the    beyond the
//!                           a timeout rewinds  highest so far    peer's window
//! ```
//!
//! The send buffer holds the octets from SND.UNA on; the FIN, once queued,
//! sits just past the last of them. Invariant: SND.UNA <= SND.NXT <= SND.MAX,
//! and the buffer never holds more than the configured send buffer.

mod buffers;
mod input;
mod output;
mod rst;
mod scoreboard;
mod time_wait;
mod timers;
mod timestamps;
mod types;

#[cfg(test)]
mod drop_tests;
#[cfg(test)]
mod reliability_tests;
#[cfg(test)]
mod script;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;

use core::net::SocketAddr;
use core::time::Duration;

use crate::tcp::config::TcpConfig;
use crate::tcp::handshake::Handshake;
use crate::tcp::mib::TcpMib;
use crate::tcp::options::MAX_WINDOW_SCALE;
use crate::tcp::rtt::RttEstimator;
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::TcpSegment;

use self::buffers::{RecvBuffer, SendBuffer};
use self::scoreboard::Scoreboard;
use self::timestamps::ts_offset_for;

pub use self::rst::rst_for;
pub use self::time_wait::{TimeWait, TimeWaitDisposition};
pub use self::types::{ConnError, Events, SegmentDisposition, SegmentDrop, State, Transmit};

/// The MSS RFC 9293 §3.7.1 assumes when the peer announces none.
const DEFAULT_PEER_MSS: u16 = 536;

/// The settings a connection keeps from [`TcpConfig`], in compact form.
#[derive(Clone, Copy, Debug)]
struct Limits {
    recv_buffer: u32,
    send_buffer: u32,
    delayed_ack_ms: u32,
    msl_ms: u32,
    fin_wait2_ms: u32,
    keepalive_idle_ms: u32,
    keepalive_interval_ms: u32,
    keepalive_probes: u32,
    challenge_acks_per_sec: u32,
    syn_retries: u16,
    data_retries: u16,
    max_ofo: u16,
    our_mss: u16,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn dur(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

impl Limits {
    fn from_config(cfg: &TcpConfig) -> Limits {
        Limits {
            recv_buffer: u32::try_from(cfg.recv_buffer)
                .unwrap_or(u32::MAX)
                .min(1 << 30),
            send_buffer: u32::try_from(cfg.send_buffer)
                .unwrap_or(u32::MAX)
                .min(1 << 30),
            delayed_ack_ms: ms(cfg.delayed_ack),
            msl_ms: ms(cfg.msl),
            fin_wait2_ms: ms(cfg.fin_wait2_timeout),
            keepalive_idle_ms: ms(cfg.keepalive.idle),
            keepalive_interval_ms: ms(cfg.keepalive.interval),
            keepalive_probes: cfg.keepalive.probes,
            challenge_acks_per_sec: cfg.challenge_acks_per_sec,
            syn_retries: u16::try_from(cfg.syn_retries).unwrap_or(u16::MAX),
            data_retries: u16::try_from(cfg.data_retries).unwrap_or(u16::MAX),
            max_ofo: u16::try_from(cfg.max_ofo_segments).unwrap_or(u16::MAX),
            our_mss: cfg.mss.max(64),
        }
    }
}

/// When the ACK for received data is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckDue {
    /// Nothing received that is not acknowledged.
    No,
    /// Delayed ACK (RFC 9293 §3.8.6.3): at the latest at this instant.
    By(Instant),
    /// Send one with the next `poll_transmit`.
    Now,
}

/// The connection's timers; each is an absolute deadline or unarmed.
#[derive(Clone, Copy, Debug, Default)]
struct Timers {
    /// Retransmission (RFC 6298), also for the SYN and FIN.
    rto: Option<Instant>,
    /// Zero-window probing (persist).
    persist: Option<Instant>,
    /// Keepalive: the next probe, or the first after idling.
    keepalive: Option<Instant>,
    /// TIME-WAIT's 2·MSL, or FIN-WAIT-2's limit.
    close: Option<Instant>,
}

/// A TCP connection: RFC 9293's transmission control block.
///
/// The call contract, for the Stack that owns it:
///
/// - feed it every segment of its 4-tuple with [`on_segment`](Self::on_segment),
///   and call [`on_timeout`](Self::on_timeout) once [`poll_at`](Self::poll_at)
///   is reached (late is fine: every due timer runs);
/// - after any of those calls and after any application call, drain
///   [`poll_transmit`](Self::poll_transmit) until it returns `None` (`poll_at`
///   covers only deadlines, not segments that are ready now);
/// - hand [`take_events`](Self::take_events) to the application;
/// - once [`time_wait`](Self::time_wait) returns `Some`, keep that instead of
///   the TCB; once [`is_closed`](Self::is_closed), drop it.
///
/// No input makes it panic or allocate beyond its configured buffers.
#[derive(Debug)]
pub struct Tcb {
    state: State,
    local: SocketAddr,
    remote: SocketAddr,
    limits: Limits,

    // Send sequence space.
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    snd_max: SeqNum,
    /// The peer's window, scaled, as of the segment (SND.WL1, SND.WL2).
    snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// The largest window the peer ever offered (RFC 5961's MAX.SND.WND).
    max_snd_wnd: u32,
    /// Payload octets per segment: min(peer MSS, ours), less option space.
    snd_mss: u16,
    snd_wscale: u8,
    rcv_wscale: u8,
    /// Both sides offered window scaling.
    wscale_on: bool,

    // Receive sequence space.
    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// The right edge of the window we last advertised; never moved left.
    rcv_adv: SeqNum,

    // Timestamps (RFC 7323): our clock's offset, TS.Recent, and whether on.
    ts_on: bool,
    ts_offset: u32,
    ts_recent: u32,
    /// RCV.NXT when we last sent an ACK (Last.ACK.sent of RFC 7323 §4.3).
    last_ack_sent: SeqNum,
    sack_on: bool,

    send_buf: SendBuffer,
    recv_buf: RecvBuffer,
    /// The application closed: a FIN follows the queued data.
    fin_queued: bool,
    /// The peer's FIN was received (RCV.NXT covers it).
    peer_fin: bool,

    // Reliability.
    rtt: RttEstimator,
    /// The segment being timed without timestamps: (its seq, when sent).
    rtt_probe: Option<(SeqNum, Instant)>,
    /// Consecutive retransmissions of the same data (reset by progress).
    retries: u16,
    /// Congestion control (RFC 5681, RFC 6582).
    cwnd: u32,
    ssthresh: u32,
    dup_acks: u8,
    /// NewReno: SND.MAX when fast recovery began; in recovery while set.
    recover: Option<SeqNum>,
    /// RFC 6582 §3.2 step 1 / §4: duplicate ACKs at or below this (SND.MAX
    /// at the last recovery or timeout) cannot start a new recovery.
    recover_floor: SeqNum,
    /// Send one segment from SND.UNA now (fast retransmit or partial ACK).
    retransmit_now: bool,
    /// What the peer SACKed, and (in recovery) where the next hole search
    /// starts and whether a duplicate ACK has released one more retransmission.
    scoreboard: Scoreboard,
    rexmit_next: SeqNum,
    sack_rexmit: bool,

    // What to send.
    ack_due: AckDue,
    /// Full-sized segments received since our last ACK.
    unacked_segs: u8,
    /// One ACK is owed per out-of-order arrival, even if several arrive
    /// between two `poll_transmit` calls: the sender counts duplicates.
    dup_acks_owed: u8,
    /// An RST to send: (its seq, and the ack it carries if any).
    rst_pending: Option<(SeqNum, Option<SeqNum>)>,
    /// The sequence number our FIN occupies, once sent.
    fin_seq: Option<SeqNum>,
    probe_pending: bool,
    keepalive_pending: bool,
    /// Keepalive probes sent without an answer.
    keepalive_out: u16,
    /// Zero-window probes sent since the window was last open (persist backoff).
    persist_out: u16,
    nagle: bool,
    keepalive: bool,
    timers: Timers,
    /// RFC 5961 §7: challenge ACKs sent in the current one-second slot.
    challenge_slot: (u64, u32),
    /// When anything last arrived (for keepalive idling).
    last_heard: Instant,

    events: Events,
    error: Option<ConnError>,
    unsettled: Unsettled,
    /// Out-of-order segments (queued, dropped) not yet counted in the MIB.
    ofo_note: (u16, u16),
}

/// Counter changes made where no MIB is at hand; see `Tcb::settle`.
#[derive(Clone, Copy, Debug, Default)]
struct Unsettled {
    estab_left: u8,
    estab_resets: u8,
    time_waits: u8,
    estab_entered: u8,
}

impl Tcb {
    fn new(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
        state: State,
    ) -> Tcb {
        let limits = Limits::from_config(cfg);
        Tcb {
            state,
            local,
            remote,
            limits,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_mss: DEFAULT_PEER_MSS,
            snd_wscale: 0,
            rcv_wscale: cfg.window_scale.min(MAX_WINDOW_SCALE),
            wscale_on: false,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            ts_on: cfg.timestamps,
            ts_offset: 0,
            ts_recent: 0,
            last_ack_sent: SeqNum(0),
            sack_on: cfg.sack,
            send_buf: SendBuffer::default(),
            recv_buf: RecvBuffer::default(),
            fin_queued: false,
            peer_fin: false,
            rtt: RttEstimator::new(cfg.rto),
            rtt_probe: None,
            retries: 0,
            cwnd: 0,
            ssthresh: u32::MAX,
            dup_acks: 0,
            recover: None,
            recover_floor: iss,
            retransmit_now: false,
            scoreboard: Scoreboard::default(),
            rexmit_next: iss,
            sack_rexmit: false,
            ack_due: AckDue::No,
            unacked_segs: 0,
            dup_acks_owed: 0,
            rst_pending: None,
            fin_seq: None,
            probe_pending: false,
            keepalive_pending: false,
            keepalive_out: 0,
            persist_out: 0,
            nagle: cfg.nagle,
            keepalive: false,
            timers: Timers::default(),
            challenge_slot: (0, 0),
            last_heard: now,
            events: Events::NONE,
            error: None,
            unsettled: Unsettled::default(),
            ofo_note: (0, 0),
        }
    }

    /// Active open (RFC 9293 §3.10.1): a TCB in SYN-SENT whose SYN, carrying
    /// our MSS, window scale, SACK-permitted and timestamps as `cfg` says, is
    /// queued for [`poll_transmit`](Self::poll_transmit).
    pub fn connect(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
        mib: &TcpMib,
    ) -> Tcb {
        mib.active_opens.bump();
        let mut tcb = Tcb::new(cfg, local, remote, iss, now, State::SynSent);
        // Our TSval clock starts from the ISN's low bits rather than from the
        // shared clock, so it does not reveal uptime.
        tcb.ts_offset = ts_offset_for(now, iss.0);
        tcb
    }

    /// Passive open completed by the listener: a TCB in ESTABLISHED, built from
    /// the handshake and the final ACK, whose data or FIN is processed here.
    pub fn accept(
        cfg: &TcpConfig,
        hs: &Handshake,
        ack: &TcpSegment<'_>,
        now: Instant,
        mib: &TcpMib,
    ) -> Tcb {
        mib.passive_opens.bump();
        let mut tcb = Tcb::new(cfg, hs.local, hs.remote, hs.iss, now, State::SynReceived);
        // SND.UNA stays at the ISS: the final ACK is what acknowledges the SYN.
        tcb.snd_nxt = hs.iss + 1;
        tcb.snd_max = hs.iss + 1;
        tcb.irs = hs.irs;
        tcb.rcv_nxt = hs.irs + 1;
        tcb.last_ack_sent = tcb.rcv_nxt;
        match hs.window_scale {
            Some((peer, ours)) => {
                tcb.snd_wscale = peer.min(MAX_WINDOW_SCALE);
                tcb.rcv_wscale = ours.min(MAX_WINDOW_SCALE);
                tcb.wscale_on = true;
            }
            None => {
                tcb.snd_wscale = 0;
                tcb.rcv_wscale = 0;
            }
        }
        // The SYN-ACK offered a window of at most 65535 octets unscaled
        // (RFC 7323 §2.2: a SYN's window is never scaled).
        tcb.rcv_adv = tcb.rcv_nxt + tcb.limits.recv_buffer.min(u32::from(u16::MAX)) as usize;
        tcb.ts_on = hs.ts_recent.is_some();
        tcb.ts_recent = hs.ts_recent.unwrap_or(0);
        tcb.set_peer_mss(hs.peer_mss);
        if let Some(ts) = ack.header.options.timestamps {
            tcb.ts_offset = ts_offset_for(now, ts.echo_reply);
        }
        tcb.sack_on = hs.sack_permitted;
        tcb.snd_wl1 = hs.irs;
        tcb.snd_wl2 = hs.iss;
        tcb.init_cwnd();
        // The final ACK is processed as SYN-RECEIVED would: it moves the
        // connection to ESTABLISHED and delivers whatever it carries.
        let _ = tcb.on_segment(now, ack, mib);
        if tcb.state == State::SynReceived {
            // The listener validated this ACK; take its word even if the
            // segment itself was, say, trimmed away.
            tcb.snd_una = tcb.snd_nxt;
            tcb.rst_pending = None;
            tcb.enter_established();
        }
        tcb.settle(mib);
        tcb
    }

    /// RFC 5681 §3.1 initial window: 4·MSS up to 1095, 3·MSS up to 2190, else 2.
    fn init_cwnd(&mut self) {
        let mss = u32::from(self.snd_mss);
        self.cwnd = match mss {
            0..=1095 => 4 * mss,
            1096..=2190 => 3 * mss,
            _ => 2 * mss,
        };
    }

    fn set_peer_mss(&mut self, peer_mss: u16) {
        let mut mss = peer_mss.min(self.limits.our_mss).max(64);
        // Timestamps take 12 octets of every segment's option space.
        if self.ts_on {
            mss = mss.saturating_sub(12).max(52);
        }
        self.snd_mss = mss;
    }

    fn enter_established(&mut self) {
        self.state = State::Established;
        self.unsettled.estab_entered = self.unsettled.estab_entered.saturating_add(1);
        self.events |= Events::CONNECTED | Events::WRITABLE;
        self.arm_keepalive(self.last_heard);
        if self.fin_queued {
            // The application closed during the handshake.
            self.set_state(State::FinWait1);
        }
    }

    /// Moves to `next`, keeping the CurrEstab gauge: leaving ESTABLISHED or
    /// CLOSE-WAIT for anything but each other counts as leaving.
    fn set_state(&mut self, next: State) {
        let counted = |s| matches!(s, State::Established | State::CloseWait);
        if counted(self.state) && !counted(next) {
            self.unsettled.estab_left = self.unsettled.estab_left.saturating_add(1);
        }
        self.state = next;
    }

    /// Adds to the MIB what application calls (which get no MIB) counted.
    fn settle(&mut self, mib: &TcpMib) {
        let u = core::mem::take(&mut self.unsettled);
        if u.estab_left > 0 {
            mib.estab_left.add(u64::from(u.estab_left));
        }
        if u.estab_resets > 0 {
            mib.estab_resets.add(u64::from(u.estab_resets));
        }
        if u.estab_entered > 0 {
            mib.estab_entered.add(u64::from(u.estab_entered));
        }
        if u.time_waits > 0 {
            mib.time_waits.add(u64::from(u.time_waits));
        }
        let (queued, dropped) = core::mem::take(&mut self.ofo_note);
        if queued > 0 {
            mib.ofo_queued.add(u64::from(queued));
        }
        if dropped > 0 {
            mib.ofo_drops.add(u64::from(dropped));
        }
    }

    /// Ends the connection with `error` (none for an orderly end).
    fn terminate(&mut self, error: Option<ConnError>) {
        if self.state == State::Closed {
            return;
        }
        self.set_state(State::Closed);
        self.timers = Timers::default();
        self.ack_due = AckDue::No;
        self.retransmit_now = false;
        self.probe_pending = false;
        self.keepalive_pending = false;
        self.send_buf = SendBuffer::default();
        if error.is_some() {
            self.error = error;
            self.recv_buf = RecvBuffer::default();
            self.events |= Events::RESET;
            match error {
                Some(ConnError::Refused) => self.events |= Events::REFUSED,
                Some(ConnError::TimedOut) => self.events |= Events::TIMED_OUT,
                _ => {}
            }
        }
        self.events |= Events::CLOSED | Events::READABLE | Events::WRITABLE;
    }

    /// Queues data for sending; returns how many octets fit in the send buffer.
    /// Data queued in SYN-SENT or SYN-RECEIVED goes out once established.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, ConnError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.fin_queued || !self.can_send_data() {
            return Err(ConnError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.send_buf.push(data, self.limits.send_buffer as usize);
        if n == 0 {
            return Err(ConnError::WouldBlock);
        }
        Ok(n)
    }

    fn can_send_data(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }

    /// Reads received data; `Ok(0)` is end of stream (the peer sent FIN and
    /// everything before it was read). A window update is queued when reading
    /// opens the window enough to matter (RFC 9293 §3.8.6.2.2).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ConnError> {
        if self.recv_buf.len() > 0 {
            let n = self.recv_buf.read(buf);
            self.maybe_window_update();
            return Ok(n);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.peer_fin || self.state == State::Closed {
            return Ok(0);
        }
        Err(ConnError::WouldBlock)
    }

    /// Octets readable now.
    pub fn recv_available(&self) -> usize {
        self.recv_buf.len()
    }

    /// Free send-buffer space.
    pub fn send_capacity(&self) -> usize {
        (self.limits.send_buffer as usize).saturating_sub(self.send_buf.len())
    }

    /// Closes our sending side: a FIN follows the queued data (RFC 9293 §3.10.4).
    /// In SYN-SENT there is nobody to tell, so the connection simply ends.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent | State::Listen => self.terminate(None),
            // > SYN-RECEIVED: [...] if there is pending data to send, queue
            // the FIN for processing after entering ESTABLISHED state.
            // (`enter_established` moves on to FIN-WAIT-1.)
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// Aborts: an RST goes out (in synchronized states) and the connection ends
    /// with [`ConnError::Aborted`] (RFC 9293 §3.10.5).
    pub fn abort(&mut self) {
        let tell_peer = matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        );
        if self.state == State::Established || self.state == State::CloseWait {
            self.unsettled.estab_resets = self.unsettled.estab_resets.saturating_add(1);
        }
        let seq = self.snd_nxt;
        self.terminate(Some(ConnError::Aborted));
        if tell_peer {
            self.rst_pending = Some((seq, None));
        }
    }

    /// Nagle's algorithm on (the default from the config) or off.
    pub fn set_nagle(&mut self, on: bool) {
        self.nagle = on;
    }

    /// Keepalive probing (RFC 9293 §3.8.4) on or off for this connection.
    pub fn set_keepalive(&mut self, on: bool) {
        self.keepalive = on;
        if on {
            self.arm_keepalive(self.last_heard);
        } else {
            self.timers.keepalive = None;
            self.keepalive_pending = false;
        }
    }

    fn arm_keepalive(&mut self, from: Instant) {
        if self.keepalive && self.state.is_synchronized() {
            self.timers.keepalive = Some(from + dur(self.limits.keepalive_idle_ms));
        }
    }

    /// The RFC 9293 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Why the connection failed, once it has.
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Events {
        core::mem::take(&mut self.events)
    }

    /// The connection is over and has nothing left to send: the Stack may drop it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.rst_pending.is_none()
    }

    /// In TIME-WAIT, the buffer-free form the Stack should keep instead of this
    /// TCB (after draining [`poll_transmit`](Self::poll_transmit)).
    /// `None` while received data is unread, so the application can still read it.
    pub fn time_wait(&self) -> Option<TimeWait> {
        if self.state != State::TimeWait || self.recv_buf.len() > 0 {
            return None;
        }
        Some(TimeWait::new(
            self.local.port(),
            self.remote.port(),
            self.snd_nxt,
            self.rcv_nxt,
            self.ts_on.then_some((self.ts_offset, self.ts_recent)),
            self.advertised_window_field(),
            self.ack_due != AckDue::No,
            dur(self.limits.msl_ms).saturating_mul(2),
            self.timers.close.unwrap_or(Instant::ZERO),
        ))
    }

    /// SND.UNA, SND.NXT and SND.MAX, for tests and diagnostics.
    pub fn send_sequence(&self) -> (SeqNum, SeqNum, SeqNum) {
        (self.snd_una, self.snd_nxt, self.snd_max)
    }

    /// RCV.NXT.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// Heap octets the buffers hold right now.
    pub fn buffer_bytes(&self) -> usize {
        self.send_buf.capacity() + self.recv_buf.capacity()
    }
}
