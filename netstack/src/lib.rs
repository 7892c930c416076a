//! The sans-IO TCP/IP engine.
//!
//! This crate turns TUN frames into validated views and named drop reasons, and
//! builds outbound segments into caller buffers; the TCP building blocks (sequence
//! numbers, options, ISNs, SYN cookies, RTO) sit beside it, ready for the state
//! machine. Nothing here reads a clock or does I/O: time is an argument
//! ([`Instant`]). Invariant: no input a peer can send makes any function here panic;
//! bad input becomes a [`Drop`] reason and a counter.

mod counters;
mod stack;
mod steer;
mod tcp;
mod time;
mod wire;

pub use crate::counters::{
    CounterSnapshot, WireCounters, WireCountersSnapshot, WorkerCounters, sum as sum_counters,
};
pub use crate::stack::{
    AppError, ConnHandle, ConnTurn, ConnectError, HANDSHAKE_BUCKETS, HandshakeHistogram,
    ListenError, ListenerHandle, MAX_OFFLOAD_PAYLOAD, Segmentation, Stack, StackConfig,
    StackCounters, StackCountersSnapshot, TxFrame, TxOffload, Worker, WorkerWaker,
};
pub use crate::steer::{FlowSteering, STEER_MULTIPLIER, steer_finish, steer_mix};
pub use crate::tcp::config::{KeepaliveConfig, TcpConfig};
pub use crate::tcp::conn::{
    ConnError, Events, SegmentDisposition, SegmentDrop, State, Tcb, TimeWait, TimeWaitDisposition,
    Transmit, rst_for,
};
pub use crate::tcp::cookie::{
    CookieOptions, DEFAULT_PERIOD as COOKIE_PERIOD, MSS_TABLE, SynCookies,
};
pub use crate::tcp::handshake::Handshake;
pub use crate::tcp::isn::IsnGenerator;
pub use crate::tcp::mib::{MibCounter, TcpMib, TcpMibSnapshot, sum_mibs};
pub use crate::tcp::options::{
    MAX_OPTIONS_LEN, MAX_SACK_BLOCKS, MAX_WINDOW_SCALE, MalformedOption, SackBlock, SackBlocks,
    TcpOptions, Timestamps,
};
pub use crate::tcp::rtt::{RtoConfig, RttEstimator, karn_sample};
pub use crate::tcp::seq::SeqNum;
pub use crate::tcp::siphash::SecretKey;
pub use crate::tcp::syncache::{
    CookiePolicy, DEFAULT_PEER_MSS, HandshakeDisposition, HandshakeDrop, MIN_PEER_MSS, SynCache,
    SynCacheConfig, SynDisposition, SynDrop, TIMER_TICK as SYNCACHE_TIMER_TICK, timestamp_clock,
};
pub use crate::time::Instant;
pub use crate::wire::{
    DEFAULT_HOP_LIMIT, Datagram, Drop, ECHO_HEADER_LEN, Echo, EchoKind, EmitError,
    MAX_IPV6_EXT_HEADERS, PartialChecksum, TCP_CHECKSUM_OFFSET, TCP_HEADER_LEN, TcpFlags,
    TcpHeader, TcpSegment, Transport, emit_echo, emit_tcp, emit_tcp_partial, parse as parse_frame,
    parse_with as parse_frame_with,
};
/// The connection-table backends `StackConfig::pcb_backend` chooses from.
pub use pcb::Backend as PcbBackend;

/// The Prometheus name of every metric the stack's counter blocks export,
/// one constant each, generated with the blocks (`smr::counter_block!`):
/// what the daemon exports them under and what a scrape reader looks for,
/// so a renamed counter does not build until its readers follow.
pub mod names {
    pub use crate::counters::drop_names::*;
    pub use crate::counters::wire_names::*;
    pub use crate::stack::stack_names::*;
    pub use crate::tcp::mib::tcp_names::*;
}
