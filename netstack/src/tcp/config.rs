//! Per-stack TCP settings, with defaults that interoperate with common peers.
//!
//! Every bound the engine enforces is here, so an operator can see (and the
//! daemon can expose) each limit in one place.

use core::time::Duration;

use crate::tcp::rtt::RtoConfig;

/// Keepalive probing for connections that enable it (RFC 9293 §3.8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes after which the connection is aborted.
    pub probes: u32,
}

impl Default for KeepaliveConfig {
    /// Linux's defaults: 2 h idle, 75 s apart, 9 probes.
    fn default() -> KeepaliveConfig {
        KeepaliveConfig {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            probes: 9,
        }
    }
}

/// TCP settings shared by every connection of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// The MSS we announce: the largest segment we accept (MTU 1500 - 40).
    pub mss: u16,
    /// Receive buffer per connection, in octets (the largest window we offer).
    pub recv_buffer: usize,
    /// Send buffer per connection, in octets.
    pub send_buffer: usize,
    /// Our window scale shift, offered on SYN and SYN-ACK (RFC 7323 §2).
    pub window_scale: u8,
    /// Offer and accept RFC 7323 timestamps (and with them PAWS).
    pub timestamps: bool,
    /// Offer and accept SACK-permitted (RFC 2018); we then send SACK blocks.
    pub sack: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4) for new connections.
    pub nagle: bool,
    /// How long an ACK may be delayed (RFC 9293 §3.8.6.3: under 0.5 s).
    pub delayed_ack: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts two of these.
    pub msl: Duration,
    /// RFC 6298 bounds.
    pub rto: RtoConfig,
    /// Retransmissions of a SYN (active open) before the attempt fails.
    pub syn_retries: u32,
    /// Retransmissions of data or FIN before the connection is aborted.
    pub data_retries: u32,
    /// How long FIN-WAIT-2 may last after the application closed (Linux's
    /// `tcp_fin_timeout`); bounds connections whose peer never sends FIN.
    pub fin_wait2_timeout: Duration,
    /// Keepalive settings for connections that enable it.
    pub keepalive: KeepaliveConfig,
    /// RFC 5961 §7: at most this many challenge ACKs per second per connection.
    pub challenge_acks_per_sec: u32,
    /// Out-of-order segments held per connection before further ones are dropped.
    pub max_ofo_segments: usize,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            mss: 1460,
            recv_buffer: 64 * 1024,
            send_buffer: 64 * 1024,
            window_scale: 7,
            timestamps: true,
            sack: true,
            nagle: true,
            delayed_ack: Duration::from_millis(40),
            msl: Duration::from_secs(30),
            rto: RtoConfig::default(),
            syn_retries: 6,
            data_retries: 15,
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: KeepaliveConfig::default(),
            challenge_acks_per_sec: 100,
            max_ofo_segments: 64,
        }
    }
}
