//! Every reason `on_segment` drops a segment for reaches its own named MIB
//! counter, exactly once: each case feeds one segment that is dropped for one
//! reason and reads the counter by its exported name.

use super::script::*;
use super::*;
use crate::tcp::config::TcpConfig;
use crate::wire::TcpFlags;

/// Established with timestamps on both sides (our clock reads ISS at zero).
fn established_ts() -> Script {
    let cfg = TcpConfig {
        timestamps: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    let d = s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000).ts(100, ISS));
    assert_eq!(d, SegmentDisposition::Established);
    s.drain();
    s
}

/// A connection closed by an acceptable RST, still answering segments.
fn closed() -> Script {
    let mut s = Script::established(&plain());
    assert_eq!(
        s.inject(Seg::new(RST, IRS + 1, 0)),
        SegmentDisposition::Reset
    );
    s.drain();
    s
}

/// The counter named `name` in a snapshot of `mib`.
fn named(mib: &TcpMib, name: &str) -> u64 {
    mib.snapshot()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// Feeds `seg` to `s`, checks it is dropped for `reason`, and that the
/// counter named `name` (and no other drop counter) went up by one.
fn check(mut s: Script, seg: Seg, reason: SegmentDrop, name: &str) {
    let all = [
        SegmentDrop::OutOfWindow,
        SegmentDrop::Paws,
        SegmentDrop::AckTooNew,
        SegmentDrop::AckTooOld,
        SegmentDrop::NoAck,
        SegmentDrop::BadRst,
        SegmentDrop::Unexpected,
        SegmentDrop::Closed,
    ];
    let before: Vec<u64> = all.iter().map(|r| s.mib.segment_drop(*r).get()).collect();
    let named_before = named(&s.mib, name);
    assert_eq!(s.inject(seg), SegmentDisposition::Dropped(reason));
    assert_eq!(
        named(&s.mib, name),
        named_before + 1,
        "{reason:?} -> {name}"
    );
    for (r, b) in all.iter().zip(before) {
        let want = b + u64::from(*r == reason);
        assert_eq!(s.mib.segment_drop(*r).get(), want, "{r:?} after {reason:?}");
    }
}

#[test]
fn out_of_window_counts_tcp_out_of_window() {
    let seg = Seg::new(ACK, IRS + 1_000_000, ISS + 1).data(b"x");
    check(
        Script::established(&plain()),
        seg,
        SegmentDrop::OutOfWindow,
        "TCPOutOfWindow",
    );
}

#[test]
fn paws_counts_paws_estab() {
    let seg = Seg::new(ACK, IRS + 1, ISS + 1).ts(50, ISS).data(b"old");
    check(established_ts(), seg, SegmentDrop::Paws, "PAWSEstab");
}

#[test]
fn ack_of_unsent_data_counts_drop_ack_too_new() {
    let seg = Seg::new(ACK, IRS + 1, ISS + 1000);
    check(
        Script::established(&plain()),
        seg,
        SegmentDrop::AckTooNew,
        "TCPDropAckTooNew",
    );
}

#[test]
fn ack_older_than_the_window_counts_drop_ack_too_old() {
    let seg = Seg::new(ACK, IRS + 1, ISS.wrapping_sub(1_000_000));
    check(
        Script::established(&plain()),
        seg,
        SegmentDrop::AckTooOld,
        "TCPDropAckTooOld",
    );
}

#[test]
fn segment_without_ack_counts_drop_no_ack() {
    let seg = Seg::new(TcpFlags(0), IRS + 1, 0).data(b"x");
    check(
        Script::established(&plain()),
        seg,
        SegmentDrop::NoAck,
        "TCPDropNoAck",
    );
}

#[test]
fn unacceptable_rst_counts_rsts_ignored() {
    let seg = Seg::new(RST, 0, 0);
    check(
        Script::syn_sent(&plain()),
        seg,
        SegmentDrop::BadRst,
        "TCPRstsIgnored",
    );
}

#[test]
fn syn_sent_non_syn_counts_drop_syn_sent_unexpected() {
    let seg = Seg::new(FIN, IRS, 0);
    check(
        Script::syn_sent(&plain()),
        seg,
        SegmentDrop::Unexpected,
        "TCPDropSynSentUnexpected",
    );
}

#[test]
fn segment_for_closed_connection_counts_drop_closed() {
    let seg = Seg::new(ACK, IRS + 1, ISS + 1);
    check(closed(), seg, SegmentDrop::Closed, "TCPDropClosed");
}
