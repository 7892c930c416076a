//! TCP options: MSS, window scale, SACK-permitted, SACK blocks, timestamps.
//!
//! Parsing is ours rather than smoltcp's `TcpOption::parse` because smoltcp keeps
//! at most three SACK blocks (a peer without timestamps may send four), rejects a
//! known option with an unexpected length where RFC 9293 asks us to ignore it, and
//! its `TcpRepr` cannot carry the ECE/CWR/URG bits we must see. Invariant: parsing
//! reads only inside the slice it is given, never allocates, never panics, and gives
//! every input one defined outcome:
//!
//! | input | outcome |
//! |---|---|
//! | End of Option List | stop; the rest is padding |
//! | an option whose length octet is missing, below 2, or runs past the header | [`MalformedOption`]: the segment is dropped (`bad_tcp_option`), since the header itself cannot be trusted |
//! | a known kind with the wrong length | ignored, like Linux |
//! | a second copy of an option | ignored: the first one wins |
//! | window scale above 14 | read as 14 (RFC 7323 §2.3) |
//! | an unknown kind | skipped by its length (RFC 9293 §3.1: MUST ignore) |
//!
//! Options that only mean something on a SYN (MSS, window scale, SACK-permitted) are
//! reported on any segment; deciding to honour them is the state machine's job.

use super::seq::SeqNum;

const KIND_END: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WINDOW_SCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMPS: u8 = 8;

/// The largest shift RFC 7323 §2.3 allows: windows up to 2^30 octets.
pub const MAX_WINDOW_SCALE: u8 = 14;

/// The most option space a TCP header has: data offset 15 words minus the fixed 20 octets.
pub const MAX_OPTIONS_LEN: usize = 40;

/// The most SACK blocks that fit in the option space (RFC 2018 §3: 4, or 3 next to timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The header's option bytes cannot be walked: an option's length octet is missing,
/// below 2, or points past the end of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedOption;

/// RFC 7323 timestamps: the sender's clock and the most recent value it echoes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// TSval: the sender's timestamp clock when it sent this segment.
    pub value: u32,
    /// TSecr: the TSval most recently received from the peer (zero unless ACK is set).
    pub echo_reply: u32,
}

/// One RFC 2018 SACK block: the peer holds `[left, right)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: SeqNum,
    /// Sequence number just past the block.
    pub right: SeqNum,
}

/// Up to [`MAX_SACK_BLOCKS`] SACK blocks, most important first, held inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    len: u8,
    blocks: [SackBlock; MAX_SACK_BLOCKS],
}

impl SackBlocks {
    /// Adds a block; returns `false` (and adds nothing) once four are held.
    pub fn push(&mut self, block: SackBlock) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = block;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The blocks held, in the order they were pushed or received.
    pub fn as_slice(&self) -> &[SackBlock] {
        self.blocks.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// No blocks are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many blocks are held.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// The options of one segment, parsed or to be emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size the sender can receive (RFC 9293 §3.7.1); SYN only.
    pub mss: Option<u16>,
    /// Window scale shift, at most [`MAX_WINDOW_SCALE`] (RFC 7323 §2); SYN only.
    pub window_scale: Option<u8>,
    /// The sender can receive SACK blocks (RFC 2018 §2); SYN only.
    pub sack_permitted: bool,
    /// RFC 7323 timestamps.
    pub timestamps: Option<Timestamps>,
    /// RFC 2018 SACK blocks.
    pub sack_blocks: SackBlocks,
}

fn read_u16(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

impl TcpOptions {
    /// Parses the option bytes of a TCP header (the octets between the fixed header
    /// and the data offset).
    pub fn parse(mut bytes: &[u8]) -> Result<TcpOptions, MalformedOption> {
        let mut options = TcpOptions::default();
        let mut saw_sack = false;
        while let Some(&kind) = bytes.first() {
            match kind {
                KIND_END => break,
                KIND_NOP => {
                    bytes = bytes.get(1..).unwrap_or(&[]);
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*bytes.get(1).ok_or(MalformedOption)?);
            if len < 2 {
                return Err(MalformedOption);
            }
            let body = bytes.get(2..len).ok_or(MalformedOption)?;
            bytes = bytes.get(len..).ok_or(MalformedOption)?;
            match (kind, body.len()) {
                (KIND_MSS, 2) if options.mss.is_none() => options.mss = read_u16(body),
                (KIND_WINDOW_SCALE, 1) if options.window_scale.is_none() => {
                    options.window_scale = body.first().map(|&s| s.min(MAX_WINDOW_SCALE));
                }
                (KIND_SACK_PERMITTED, 0) => options.sack_permitted = true,
                (KIND_SACK, n) if n > 0 && n % 8 == 0 && !saw_sack => {
                    saw_sack = true;
                    for edges in body.chunks_exact(8) {
                        let (Some(left), Some(right)) =
                            (read_u32(edges), edges.get(4..).and_then(read_u32))
                        else {
                            break;
                        };
                        let block = SackBlock {
                            left: SeqNum(left),
                            right: SeqNum(right),
                        };
                        if !options.sack_blocks.push(block) {
                            break;
                        }
                    }
                }
                (KIND_TIMESTAMPS, 8) if options.timestamps.is_none() => {
                    if let (Some(value), Some(echo_reply)) =
                        (read_u32(body), body.get(4..).and_then(read_u32))
                    {
                        options.timestamps = Some(Timestamps { value, echo_reply });
                    }
                }
                _ => {}
            }
        }
        Ok(options)
    }

    /// How many SACK blocks fit beside the other options, given the 40-octet limit.
    fn sack_blocks_that_fit(&self) -> usize {
        let room = MAX_OPTIONS_LEN - self.len_without_sack();
        let fit = room.saturating_sub(4) / 8;
        fit.min(self.sack_blocks.len())
    }

    fn len_without_sack(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.timestamps.is_some() || self.sack_permitted {
            // SACK-permitted rides with timestamps in 12 octets, or alone padded to 4.
            len += if self.timestamps.is_some() { 12 } else { 4 };
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        len
    }

    /// The number of option octets [`emit`](Self::emit) writes: a multiple of 4, at
    /// most [`MAX_OPTIONS_LEN`]. SACK blocks that do not fit are left out, last first.
    pub fn emitted_len(&self) -> usize {
        let sacks = self.sack_blocks_that_fit();
        self.len_without_sack() + if sacks > 0 { 4 + 8 * sacks } else { 0 }
    }

    /// Writes the options in the order Linux uses (so middleboxes that pattern-match
    /// on it are content), padded with NOPs to a multiple of 4 octets. Returns the
    /// length written, or `None` if `buf` is shorter than [`emitted_len`](Self::emitted_len).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.emitted_len();
        let out = buf.get_mut(..len)?;
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let [hi, lo] = mss.to_be_bytes();
            put(&[KIND_MSS, 4, hi, lo]);
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(_)) => put(&[KIND_SACK_PERMITTED, 2, KIND_TIMESTAMPS, 10]),
            (false, Some(_)) => put(&[KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]),
            (true, None) => put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(ts) = self.timestamps {
            put(&ts.value.to_be_bytes());
            put(&ts.echo_reply.to_be_bytes());
        }
        if let Some(shift) = self.window_scale {
            put(&[KIND_NOP, KIND_WINDOW_SCALE, 3, shift.min(MAX_WINDOW_SCALE)]);
        }
        let sacks = self.sack_blocks_that_fit();
        if sacks > 0 {
            put(&[KIND_NOP, KIND_NOP, KIND_SACK, (2 + 8 * sacks) as u8]);
            for block in self.sack_blocks.as_slice().iter().take(sacks) {
                put(&block.left.0.to_be_bytes());
                put(&block.right.0.to_be_bytes());
            }
        }
        debug_assert_eq!(at, len);
        Some(len)
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
