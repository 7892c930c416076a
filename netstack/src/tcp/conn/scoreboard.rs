//! The sender's SACK scoreboard (RFC 2018 §4, a bounded cut of RFC 6675).
//!
//! What the peer reported holding above SND.UNA, as at most four merged
//! ranges, nearest first. During fast recovery it answers one question: where
//! is the next hole worth retransmitting? Blocks that are malformed, below
//! SND.UNA or beyond SND.MAX are ignored, so a peer cannot make us retransmit
//! what we never sent.

use crate::tcp::options::{MAX_SACK_BLOCKS, SackBlock};
use crate::tcp::seq::SeqNum;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Scoreboard {
    len: u8,
    ranges: [SackBlock; MAX_SACK_BLOCKS],
}

impl Scoreboard {
    fn as_slice(&self) -> &[SackBlock] {
        self.ranges.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Folds in the blocks of one ACK and forgets what SND.UNA passed.
    pub(super) fn update(&mut self, blocks: &[SackBlock], snd_una: SeqNum, snd_max: SeqNum) {
        let mut all = [SackBlock::default(); 2 * MAX_SACK_BLOCKS];
        let mut n = 0;
        for b in self.as_slice().iter().chain(blocks) {
            let valid = b.left.lt(b.right) && b.right.le(snd_max) && snd_una.lt(b.right);
            if let (true, Some(slot)) = (valid, all.get_mut(n)) {
                *slot = SackBlock {
                    left: b.left.max(snd_una),
                    right: b.right,
                };
                n += 1;
            }
        }
        let all = all.get_mut(..n).unwrap_or(&mut []);
        all.sort_unstable_by_key(|b| b.left.0.wrapping_sub(snd_una.0));
        self.len = 0;
        let mut merged: Option<SackBlock> = None;
        for b in all.iter() {
            match merged.as_mut() {
                Some(m) if b.left.le(m.right) => m.right = m.right.max(b.right),
                _ => {
                    if let Some(m) = merged.replace(*b) {
                        self.push(m);
                    }
                }
            }
        }
        if let Some(m) = merged {
            self.push(m);
        }
    }

    fn push(&mut self, b: SackBlock) {
        if let Some(slot) = self.ranges.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The first octet at or after `from` that the peer has not reported and
    /// that lies below something it has (so it is a hole, not just unacked
    /// data in flight), with the hole's length.
    pub(super) fn next_hole(&self, from: SeqNum) -> Option<(SeqNum, usize)> {
        let mut at = from;
        for b in self.as_slice() {
            if at.lt(b.left) {
                return Some((at, usize::try_from(b.left - at).unwrap_or(0)));
            }
            at = at.max(b.right);
        }
        None
    }
}
