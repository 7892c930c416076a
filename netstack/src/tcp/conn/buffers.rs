//! Send and receive buffers, allocated only while they hold data.
//!
//! An idle connection should cost its TCB and nothing else, so both buffers
//! start without capacity, grow as data is queued, and give their memory back
//! once they drain. The receive side also keeps the out-of-order queue: at most
//! `max_ofo` segments and never more octets than the window it was offered, so
//! a peer cannot make us hold more than we advertised.

use std::collections::VecDeque;

use crate::tcp::options::{MAX_SACK_BLOCKS, SackBlock};
use crate::tcp::seq::SeqNum;

/// Octets the application queued: unacknowledged first, then unsent. The first
/// octet is always at SND.UNA (after the SYN).
#[derive(Debug, Default)]
pub(super) struct SendBuffer {
    data: VecDeque<u8>,
}

impl SendBuffer {
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// Queues as much of `bytes` as fits under `cap`; returns how much.
    pub(super) fn push(&mut self, bytes: &[u8], cap: usize) -> usize {
        let n = bytes.len().min(cap.saturating_sub(self.data.len()));
        self.data.extend(bytes.iter().take(n));
        n
    }

    /// Drops `n` acknowledged octets from the front, releasing memory when empty.
    pub(super) fn ack(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
        if self.data.is_empty() {
            self.data = VecDeque::new();
        }
    }

    /// Up to `len` octets starting `offset` octets after SND.UNA.
    pub(super) fn slice(&mut self, offset: usize, len: usize) -> &[u8] {
        let all = self.data.make_contiguous();
        let start = offset.min(all.len());
        let end = start.saturating_add(len).min(all.len());
        all.get(start..end).unwrap_or(&[])
    }

    pub(super) fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

#[derive(Debug)]
struct OutOfOrder {
    seq: SeqNum,
    data: Vec<u8>,
    fin: bool,
}

impl OutOfOrder {
    fn end(&self) -> SeqNum {
        self.seq + self.data.len()
    }
}

/// What placing a segment's data did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Placed {
    /// RCV.NXT moved forward by this many octets (data only, not the FIN).
    pub(super) advanced: usize,
    /// The peer's FIN is now in sequence: RCV.NXT should also cover it.
    pub(super) fin: bool,
    /// The segment was held out of order.
    pub(super) queued: bool,
    /// The segment was beyond RCV.NXT but the out-of-order queue was full.
    pub(super) dropped: bool,
}

/// Received octets the application has not read, plus the out-of-order queue.
#[derive(Debug, Default)]
pub(super) struct RecvBuffer {
    data: VecDeque<u8>,
    ofo: Vec<OutOfOrder>,
    /// Octets held in `ofo`.
    ofo_bytes: usize,
    /// Start of the most recently queued out-of-order segment: RFC 2018 §4 wants
    /// the block holding it reported first.
    last_ofo: Option<SeqNum>,
}

impl RecvBuffer {
    /// In-order octets waiting for the application.
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    pub(super) fn has_ofo(&self) -> bool {
        !self.ofo.is_empty()
    }

    pub(super) fn capacity(&self) -> usize {
        self.data.capacity() + self.ofo.capacity()
    }

    /// Copies in-order data out; releases memory once empty.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.data.len());
        // Two copies of the ring's contiguous halves, not one per octet: the
        // per-octet loop took half the daemon's CPU on a one-stream
        // transfer with offload.
        let (front, back) = self.data.as_slices();
        let first = front.len().min(n);
        buf[..first].copy_from_slice(&front[..first]);
        buf[first..n].copy_from_slice(&back[..n - first]);
        self.data.drain(..n);
        if self.data.is_empty() {
            self.data = VecDeque::new();
        }
        n
    }

    /// Places a segment whose data starts at `seq` and that the caller already
    /// trimmed to the window `[rcv_nxt, rcv_nxt + window)`.
    pub(super) fn place(
        &mut self,
        rcv_nxt: SeqNum,
        seq: SeqNum,
        payload: &[u8],
        fin: bool,
        window: usize,
        max_ofo: usize,
    ) -> Placed {
        let mut placed = Placed::default();
        if seq == rcv_nxt {
            self.data.extend(payload);
            placed.advanced = payload.len();
            placed.fin = fin;
            let mut next = rcv_nxt + payload.len();
            // Pull in queued segments that the new data reached.
            while !placed.fin
                && let Some(first) = self.ofo.first()
                && first.seq.le(next)
            {
                let seg = self.ofo.remove(0);
                self.ofo_bytes = self.ofo_bytes.saturating_sub(seg.data.len());
                if seg.end().gt(next) {
                    let skip = usize::try_from(next - seg.seq).unwrap_or(0);
                    let fresh = seg.data.get(skip..).unwrap_or(&[]);
                    self.data.extend(fresh);
                    placed.advanced += fresh.len();
                    next += fresh.len();
                }
                if seg.fin && seg.end() == next {
                    placed.fin = true;
                }
            }
            if self.ofo.is_empty() {
                self.ofo = Vec::new();
                self.last_ofo = None;
            }
            return placed;
        }
        if payload.is_empty() && !fin {
            return placed;
        }
        let room = window.saturating_sub(self.data.len());
        if self.ofo.len() >= max_ofo || self.ofo_bytes.saturating_add(payload.len()) > room {
            placed.dropped = true;
            return placed;
        }
        let end = seq + payload.len();
        // An exact or covered duplicate adds nothing.
        if self
            .ofo
            .iter()
            .any(|s| s.seq.le(seq) && end.le(s.end()) && (s.fin || !fin))
        {
            placed.queued = true;
            self.last_ofo = Some(seq);
            return placed;
        }
        let at = self
            .ofo
            .iter()
            .position(|s| seq.lt(s.seq))
            .unwrap_or(self.ofo.len());
        self.ofo.insert(
            at,
            OutOfOrder {
                seq,
                data: payload.to_vec(),
                fin,
            },
        );
        self.ofo_bytes += payload.len();
        self.last_ofo = Some(seq);
        placed.queued = true;
        placed
    }

    /// RFC 2018 receive side: the out-of-order data as coalesced blocks, the one
    /// holding the most recent arrival first, then the others in order.
    pub(super) fn sack_blocks(&self) -> [Option<SackBlock>; MAX_SACK_BLOCKS] {
        let mut merged: Vec<SackBlock> = Vec::new();
        for seg in &self.ofo {
            match merged.last_mut() {
                Some(last) if seg.seq.le(last.right) => last.right = last.right.max(seg.end()),
                _ => merged.push(SackBlock {
                    left: seg.seq,
                    right: seg.end(),
                }),
            }
        }
        let first = self.last_ofo.and_then(|s| {
            merged
                .iter()
                .position(|b| b.left.le(s) && s.lt(b.right.max(b.left + 1)))
        });
        let mut out = [None; MAX_SACK_BLOCKS];
        let mut slots = out.iter_mut();
        if let Some(i) = first
            && let (Some(slot), Some(b)) = (slots.next(), merged.get(i))
        {
            *slot = Some(*b);
        }
        for (i, b) in merged.iter().enumerate() {
            if Some(i) == first {
                continue;
            }
            match slots.next() {
                Some(slot) => *slot = Some(*b),
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn reads_across_the_ring_wrap_return_every_octet_in_order() {
        let mut r = RecvBuffer::default();
        let mut next = 0u8;
        let mut expect = 0u8;
        let mut rcv_nxt = SeqNum(1);
        // Uneven writes and reads make the ring wrap at many offsets.
        for round in 0..200usize {
            let chunk: Vec<u8> = (0..(round * 37) % 700 + 1)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            let placed = r.place(rcv_nxt, rcv_nxt, &chunk, false, 1 << 20, 4);
            assert_eq!(placed.advanced, chunk.len());
            rcv_nxt += chunk.len();
            let mut buf = vec![0u8; (round * 53) % 900 + 1];
            let n = r.read(&mut buf);
            for b in &buf[..n] {
                expect = expect.wrapping_add(1);
                assert_eq!(*b, expect);
            }
        }
        let mut rest = vec![0u8; 1 << 20];
        let n = r.read(&mut rest);
        for b in &rest[..n] {
            expect = expect.wrapping_add(1);
            assert_eq!(*b, expect);
        }
        assert_eq!(expect, next);
        assert_eq!(r.len(), 0);
    }
}
