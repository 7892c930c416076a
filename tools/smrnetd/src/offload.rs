//! TUN offload with the virtio-net header: what the kernel and the daemon
//! tell each other in front of every frame once the device has
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` (`TUN_F_CSUM | TUN_F_TSO4 |
//! TUN_F_TSO6`).
//!
//! Read: the kernel hands over TCP super-segments of up to 64 KiB (its own
//! TSO sends, never cut) with `gso_type`/`gso_size`, and checksums either
//! already verified (`DATA_VALID`) or left partial because the segment comes
//! from this host (`NEEDS_CSUM`); either way the stack is told to trust the
//! TCP checksum ([`netstack::Worker::handle_with`]). Write: a frame from
//! [`netstack::Worker::poll_transmit_with`] gets `NEEDS_CSUM` with the
//! partial checksum's start and offset, and a super-segment gets
//! `GSO_TCPV4`/`GSO_TCPV6` with the MSS as `gso_size`; the kernel cuts and
//! sums (or hands the super-segment whole to its own TCP, which takes it as
//! GRO would have built it).
//!
//! The header is the 10-octet `struct virtio_net_hdr` (a TUN device's
//! default `TUNSETVNETHDRSZ`; the 12-octet form adds `num_buffers`, which
//! only mergeable receive buffers use), in the host's byte order (little
//! endian on every target Linux runs TUN offload on, and the legacy virtio
//! rule the TUN driver follows). Invariant: [`parse`] returns for every
//! input, and a header the daemon cannot honour is dropped with one named
//! counter ([`Reject`]), never trusted.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use netstack::{Segmentation, TxFrame};

/// Octets of `struct virtio_net_hdr` in front of every frame.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` is partial (the pseudo-header's sum) and must be finished.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag on the type (the segments carry CWR).
pub const GSO_ECN: u8 = 0x80;

/// The largest frame a queue hands over with offload on: the header and a
/// 64 KiB IP datagram (an IPv6 one: its header and 65535 octets of
/// payload). A worker's two buffers are this size.
pub const MAX_FRAME: usize = VNET_HDR_LEN + 40 + 65535;

/// A parsed header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// Why a frame's header was refused; each has its counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Shorter than the header.
    Truncated,
    /// A GSO type other than none, TCPv4 or TCPv6 (UDP, unknown).
    BadGsoType,
    /// `NEEDS_CSUM` with the checksum field outside the frame.
    BadCsumOffset,
}

impl Reject {
    pub const ALL: [Reject; 3] = [Reject::Truncated, Reject::BadGsoType, Reject::BadCsumOffset];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Reject::Truncated => "truncated",
            Reject::BadGsoType => "bad_gso_type",
            Reject::BadCsumOffset => "bad_csum_offset",
        }
    }
}

/// What one received frame is, once its header is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// The IP datagram.
    pub datagram: &'a [u8],
    /// The kernel vouches for its TCP checksum.
    pub checksum_trusted: bool,
    /// A super-segment (the kernel's TSO, left uncut).
    pub super_segment: bool,
}

/// Reads the header in front of `frame` and checks it.
pub fn parse(frame: &[u8]) -> Result<Received<'_>, Reject> {
    let (hdr, datagram) = match (frame.get(..VNET_HDR_LEN), frame.get(VNET_HDR_LEN..)) {
        (Some(h), Some(d)) => (h, d),
        _ => return Err(Reject::Truncated),
    };
    let u16_at = |i: usize| u16::from_le_bytes([hdr[i], hdr[i + 1]]);
    let h = VnetHdr {
        flags: hdr[0],
        gso_type: hdr[1],
        hdr_len: u16_at(2),
        gso_size: u16_at(4),
        csum_start: u16_at(6),
        csum_offset: u16_at(8),
    };
    let super_segment = match h.gso_type & !GSO_ECN {
        GSO_NONE => false,
        GSO_TCPV4 | GSO_TCPV6 => true,
        _ => return Err(Reject::BadGsoType),
    };
    if h.flags & F_NEEDS_CSUM != 0 {
        let field_end = usize::from(h.csum_start) + usize::from(h.csum_offset) + 2;
        if field_end > datagram.len() {
            return Err(Reject::BadCsumOffset);
        }
    }
    Ok(Received {
        datagram,
        checksum_trusted: h.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0,
        super_segment,
    })
}

/// Writes the header for `frame` into `out` (at least [`VNET_HDR_LEN`]).
pub fn write(frame: &TxFrame, out: &mut [u8]) {
    let mut h = VnetHdr::default();
    if let Some(c) = frame.checksum {
        h.flags = F_NEEDS_CSUM;
        h.csum_start = c.start;
        h.csum_offset = c.offset;
    }
    if let Some(Segmentation {
        segment_size,
        header_len,
        ipv6,
    }) = frame.segmentation
    {
        h.gso_type = if ipv6 { GSO_TCPV6 } else { GSO_TCPV4 };
        h.gso_size = segment_size;
        h.hdr_len = header_len;
    }
    let bytes = [
        h.flags,
        h.gso_type,
        h.hdr_len.to_le_bytes()[0],
        h.hdr_len.to_le_bytes()[1],
        h.gso_size.to_le_bytes()[0],
        h.gso_size.to_le_bytes()[1],
        h.csum_start.to_le_bytes()[0],
        h.csum_start.to_le_bytes()[1],
        h.csum_offset.to_le_bytes()[0],
        h.csum_offset.to_le_bytes()[1],
    ];
    if let Some(dst) = out.get_mut(..VNET_HDR_LEN) {
        dst.copy_from_slice(&bytes);
    }
}

/// Whether the device runs with offload, and why not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `--offload on` (the default) asked for it.
    pub requested: bool,
    /// Every queue has the header and the offloads.
    pub enabled: bool,
}

/// Upper bounds of the super-segment size buckets, in octets (the last,
/// 65535, takes everything).
pub const SIZE_BUCKETS: [u64; 6] = [4096, 8192, 16384, 32768, 49152, 65535];

/// A histogram of super-segment sizes (one writer, Relaxed).
#[derive(Debug, Default)]
pub struct SizeHistogram {
    buckets: [AtomicU64; 6],
    sum: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    // Relaxed: statistics only, single writer (the worker).
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

fn read(c: &AtomicU64) -> u64 {
    // Relaxed: statistics only.
    c.load(Ordering::Relaxed)
}

impl SizeHistogram {
    pub fn record(&self, len: usize) {
        let len = len as u64;
        let i = SIZE_BUCKETS
            .iter()
            .position(|&b| len <= b)
            .unwrap_or(SIZE_BUCKETS.len() - 1);
        add(&self.buckets[i], 1);
        add(&self.sum, len);
    }
}

/// One worker's offload counters (one writer: the worker).
#[derive(Debug, Default)]
pub struct OffloadStats {
    /// Super-segments read / written, and their octets.
    pub rx_super_frames: AtomicU64,
    pub rx_super_bytes: AtomicU64,
    pub tx_super_frames: AtomicU64,
    pub tx_super_bytes: AtomicU64,
    pub rx_sizes: SizeHistogram,
    pub tx_sizes: SizeHistogram,
    /// Frames dropped for their header, by [`Reject`].
    pub rejected: [AtomicU64; 3],
}

impl OffloadStats {
    pub fn received(&self, r: &Received<'_>) {
        if r.super_segment {
            add(&self.rx_super_frames, 1);
            add(&self.rx_super_bytes, r.datagram.len() as u64);
            self.rx_sizes.record(r.datagram.len());
        }
    }

    pub fn sent(&self, frame: &TxFrame) {
        if frame.segmentation.is_some() {
            add(&self.tx_super_frames, 1);
            add(&self.tx_super_bytes, frame.len as u64);
            self.tx_sizes.record(frame.len);
        }
    }

    pub fn reject(&self, why: Reject) {
        add(&self.rejected[why as usize], 1);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        read(&self.rejected[why as usize])
    }
}

/// Per-worker frames and octets in and out (totals, from the worker's own
/// counters) and what of them offload carried.
pub struct WorkerTotals<'a> {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub offload: &'a OffloadStats,
}

/// The names of the offload families (rendered by hand).
pub mod names {
    /// `smrnet_offload_enabled`.
    pub const OFFLOAD_ENABLED: &str = "smrnet_offload_enabled";
    /// `smrnet_offload_refused`.
    pub const OFFLOAD_REFUSED: &str = "smrnet_offload_refused";
    /// `smrnet_worker_offload_frames_total`.
    pub const WORKER_OFFLOAD_FRAMES: &str = "smrnet_worker_offload_frames_total";
    /// `smrnet_worker_offload_bytes_total`.
    pub const WORKER_OFFLOAD_BYTES: &str = "smrnet_worker_offload_bytes_total";
    /// `smrnet_offload_rejected_total`.
    pub const OFFLOAD_REJECTED: &str = "smrnet_offload_rejected_total";
    /// `smrnet_offload_super_segment_bytes`.
    pub const OFFLOAD_SUPER_SEGMENT_BYTES: &str = "smrnet_offload_super_segment_bytes";
}

/// Renders the offload metrics (Prometheus text) for `workers`.
pub fn render(text: &mut String, status: Status, workers: &[WorkerTotals<'_>]) {
    use names::{OFFLOAD_ENABLED, OFFLOAD_REFUSED, OFFLOAD_REJECTED};
    let _ = writeln!(
        text,
        "# HELP {OFFLOAD_ENABLED} 1 if the TUN queues run with the virtio-net header and TSO/checksum offload.\n# TYPE {OFFLOAD_ENABLED} gauge\n{OFFLOAD_ENABLED} {}",
        u8::from(status.enabled)
    );
    let _ = writeln!(
        text,
        "# HELP {OFFLOAD_REFUSED} 1 if --offload on was asked for and the kernel refused it (the log says why).\n# TYPE {OFFLOAD_REFUSED} gauge\n{OFFLOAD_REFUSED} {}",
        u8::from(status.requested && !status.enabled)
    );
    for (metric, help, pick) in [
        (
            names::WORKER_OFFLOAD_FRAMES,
            "Frames through the worker's TUN queue, by direction and whether they were super-segments (offload=\"gso\") or single segments (offload=\"none\").",
            0,
        ),
        (
            names::WORKER_OFFLOAD_BYTES,
            "Octets through the worker's TUN queue, split as smrnet_worker_offload_frames_total.",
            1,
        ),
    ] {
        let _ = writeln!(text, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (i, w) in workers.iter().enumerate() {
            let o = w.offload;
            let rows = [
                (
                    "rx",
                    w.frames_in,
                    w.bytes_in,
                    read(&o.rx_super_frames),
                    read(&o.rx_super_bytes),
                ),
                (
                    "tx",
                    w.frames_out,
                    w.bytes_out,
                    read(&o.tx_super_frames),
                    read(&o.tx_super_bytes),
                ),
            ];
            for (dir, frames, bytes, sf, sb) in rows {
                let (all, sup) = if pick == 0 { (frames, sf) } else { (bytes, sb) };
                let _ = writeln!(
                    text,
                    "{metric}{{worker=\"{i}\",direction=\"{dir}\",offload=\"gso\"}} {sup}\n{metric}{{worker=\"{i}\",direction=\"{dir}\",offload=\"none\"}} {}",
                    all.saturating_sub(sup)
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "# HELP {OFFLOAD_REJECTED} Frames dropped for a virtio-net header the daemon cannot honour, by reason.\n# TYPE {OFFLOAD_REJECTED} counter"
    );
    for why in Reject::ALL {
        let n: u64 = workers.iter().map(|w| w.offload.rejected(why)).sum();
        let _ = writeln!(text, "{OFFLOAD_REJECTED}{{reason=\"{}\"}} {n}", why.name());
    }
    const SIZES: &str = names::OFFLOAD_SUPER_SEGMENT_BYTES;
    let _ = writeln!(
        text,
        "# HELP {SIZES} Sizes of super-segments (IP datagram octets) read from (rx) and written to (tx) the TUN queues.\n# TYPE {SIZES} histogram"
    );
    for dir in ["rx", "tx"] {
        let mut cumulative = 0u64;
        let mut sum = 0u64;
        for (b, le) in SIZE_BUCKETS.iter().enumerate() {
            for w in workers {
                let h = if dir == "rx" {
                    &w.offload.rx_sizes
                } else {
                    &w.offload.tx_sizes
                };
                cumulative += read(&h.buckets[b]);
                if b == 0 {
                    sum += read(&h.sum);
                }
            }
            let _ = writeln!(
                text,
                "{SIZES}_bucket{{direction=\"{dir}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            text,
            "{SIZES}_bucket{{direction=\"{dir}\",le=\"+Inf\"}} {cumulative}\n{SIZES}_sum{{direction=\"{dir}\"}} {sum}\n{SIZES}_count{{direction=\"{dir}\"}} {cumulative}"
        );
    }
}

#[cfg(test)]
mod tests;
