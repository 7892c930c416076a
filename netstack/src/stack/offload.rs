//! Offload: what the link does for the stack, as the driver tells it.
//!
//! A link with segmentation and checksum offload (a TUN device with the
//! virtio-net header, a NIC) takes TCP segments longer than the MSS and
//! cuts them itself, sums checksums itself, and hands the stack segments
//! the peer's side already merged, with their checksum already verified.
//! The engine knows nothing of how: the driver says, per call,
//!
//! - on receive ([`Worker::handle_with`]): whether this frame's TCP checksum
//!   is vouched for (verified by the link, or a segment from this host whose
//!   sum was left to offload), so it is not summed again. A segment longer
//!   than the MSS needs nothing else: the input path has no length-vs-MSS
//!   check, the receive window still trims it, and it counts toward the
//!   ACK-every-second-segment rule as the full segments it holds;
//! - on transmit ([`Worker::poll_transmit_with`] with a [`TxOffload`]): the
//!   largest payload the link segments, and whether it finishes checksums.
//!   The answer, a [`TxFrame`], says what is left for the link: the
//!   segment size to cut at, and where the partial checksum is finished.
//!
//! Invariant: with [`TxOffload::NONE`] and an untrusted checksum, every
//! frame in and out is exactly what the plain entry points see and make.

use core::net::IpAddr;

use super::Worker;
use super::worker::Reply;
use crate::tcp::conn::Transmit;
use crate::time::Instant;
use crate::wire::{DEFAULT_HOP_LIMIT, PartialChecksum, emit_tcp, emit_tcp_partial};

/// The most payload one offloaded segment carries: an IPv4 datagram (or an
/// IPv6 payload) is at most 65535 octets, less the largest IP and TCP
/// headers we emit (40 and 60).
pub const MAX_OFFLOAD_PAYLOAD: usize = 65535 - 40 - 60;

/// Headers' room kept in the caller's buffer: IPv6 (40) and TCP with the
/// longest options (60).
const HEADERS_ROOM: usize = 100;

/// What the link does with transmitted TCP segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// The most TCP payload one segment may carry for the link to cut into
    /// MSS-sized segments (segmentation offload, TSO/GSO); at most
    /// [`MAX_OFFLOAD_PAYLOAD`] is used. Zero (or anything up to the MSS):
    /// no segmentation offload.
    pub max_payload: usize,
    /// The link finishes TCP checksums: segments leave with the
    /// pseudo-header's sum only ([`TxFrame::checksum`] says where).
    pub checksum: bool,
}

impl TxOffload {
    /// No offload: every segment is complete as it leaves.
    pub const NONE: TxOffload = TxOffload {
        max_payload: 0,
        checksum: false,
    };

    /// The payload limit for one segment into a buffer of `buf_len` octets.
    pub(crate) fn payload_limit(self, buf_len: usize) -> usize {
        self.max_payload
            .min(MAX_OFFLOAD_PAYLOAD)
            .min(buf_len.saturating_sub(HEADERS_ROOM))
    }
}

/// Segmentation left for the link to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segmentation {
    /// Payload octets per segment (the last may be shorter): virtio's
    /// `gso_size`.
    pub segment_size: u16,
    /// IP and TCP header octets, copied onto every segment: virtio's
    /// `hdr_len`.
    pub header_len: u16,
    /// The datagram is IPv6 (virtio's `GSO_TCPV6`), else IPv4.
    pub ipv6: bool,
}

/// One frame from [`Worker::poll_transmit_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxFrame {
    /// Octets of the frame in the caller's buffer.
    pub len: usize,
    /// `Some`: the TCP checksum is partial, to be finished here.
    pub checksum: Option<PartialChecksum>,
    /// `Some`: the frame is one segment longer than the MSS, to be cut.
    pub segmentation: Option<Segmentation>,
}

impl TxFrame {
    /// A complete frame: nothing left for the link.
    pub fn plain(len: usize) -> TxFrame {
        TxFrame {
            len,
            checksum: None,
            segmentation: None,
        }
    }
}

/// Emits `t` between `local` and `foreign` into `buf` as `tx` allows.
pub(crate) fn emit(
    local: IpAddr,
    foreign: IpAddr,
    t: &Transmit<'_>,
    tx: TxOffload,
    buf: &mut [u8],
) -> Result<TxFrame, ()> {
    // A segment to be cut needs its checksum finished per piece: the link
    // does that from the partial sum, so segmentation implies it.
    if !tx.checksum && t.segment_size.is_none() {
        return emit_tcp(local, foreign, DEFAULT_HOP_LIMIT, &t.header, t.payload, buf)
            .map(TxFrame::plain)
            .map_err(|_| ());
    }
    let (len, checksum) =
        emit_tcp_partial(local, foreign, DEFAULT_HOP_LIMIT, &t.header, t.payload, buf)
            .map_err(|_| ())?;
    let segmentation = t.segment_size.map(|segment_size| Segmentation {
        segment_size,
        // Everything before the payload; at most 100 octets.
        header_len: (len - t.payload.len()) as u16,
        ipv6: foreign.is_ipv6(),
    });
    Ok(TxFrame {
        len,
        checksum: Some(checksum),
        segmentation,
    })
}

impl Worker<'_> {
    /// As [`handle`](Self::handle); with `tcp_checksum_trusted` the frame's
    /// TCP checksum is not summed (the driver vouches for it; see the
    /// module docs). A TCP segment longer than the MSS (a receive offload's
    /// super-segment) is taken as one segment either way.
    pub fn handle_with(
        &self,
        now: Instant,
        frame: &[u8],
        tcp_checksum_trusted: bool,
        reply: &mut [u8],
    ) -> Option<usize> {
        let mut out = Reply::Buffer {
            buf: reply,
            len: None,
        };
        self.input(now, frame, tcp_checksum_trusted, &mut out);
        match out {
            Reply::Buffer { len, .. } => len,
            Reply::Queue => None,
        }
    }
}

#[cfg(test)]
#[path = "offload_tests.rs"]
mod tests;
