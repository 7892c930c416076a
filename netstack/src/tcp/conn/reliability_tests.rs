//! Segment scripts for reliability: reassembly and SACK, retransmission and
//! its timer, fast retransmit and NewReno, zero-window and keepalive probes.

use core::time::Duration;

use super::script::{ACK, FIN, IRS, ISS, SYN, Script, Seg, plain};
use super::*;
use crate::tcp::options::SackBlock;

#[test]
fn ofo_queue_is_bounded() {
    let cfg = TcpConfig {
        max_ofo_segments: 3,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    for i in 0..5u32 {
        s.inject(Seg::new(ACK, IRS + 101 + i * 100, ISS + 1).data(&[1; 10]));
        // Every out-of-order segment is acknowledged at once.
        s.expect(ACK, ISS + 1, IRS + 1);
    }
    let m = s.mib.snapshot();
    assert_eq!((m.ofo_queued, m.ofo_drops), (3, 2));
    // Filling the hole delivers the first queued segment only.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).data(&[0; 100]));
    assert_eq!(s.tcb.recv_available(), 110);
}

#[test]
fn ofo_data_is_reassembled_in_order() {
    let mut s = Script::established(&plain());
    s.inject(Seg::new(ACK, IRS + 4, ISS + 1).data(b"def"));
    s.inject(Seg::new(ACK, IRS + 7, ISS + 1).data(b"ghi").data(b"ghi"));
    s.inject(Seg::new(FIN | ACK, IRS + 10, ISS + 1));
    assert_eq!(s.tcb.recv_available(), 0);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).data(b"abc"));
    let mut buf = [0u8; 16];
    assert_eq!(s.tcb.recv(&mut buf), Ok(9));
    assert_eq!(&buf[..9], b"abcdefghi");
    assert_eq!(s.tcb.state(), State::CloseWait);
    assert_eq!(s.tcb.recv(&mut buf), Ok(0));
    let acks = s.drain();
    assert_eq!(acks.last().unwrap().header.ack, SeqNum(IRS + 11));
}

#[test]
fn sack_blocks_describe_ofo_data() {
    let cfg = TcpConfig {
        sack: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).sack_permitted());
    s.drain();
    let block = |l: u32, r: u32| SackBlock {
        left: SeqNum(IRS + l),
        right: SeqNum(IRS + r),
    };
    let mut sacks = Vec::new();
    for (at, len) in [(101, 100), (201, 50), (401, 10)] {
        s.inject(Seg::new(ACK, IRS + at, ISS + 1).data(&vec![1; len]));
        let ack = s.expect(ACK, ISS + 1, IRS + 1);
        sacks.push(ack.header.options.sack_blocks);
    }
    assert_eq!(sacks[0].as_slice(), &[block(101, 201)]);
    // Adjacent segments coalesce.
    assert_eq!(sacks[1].as_slice(), &[block(101, 251)]);
    // The newest block first, then the rest.
    assert_eq!(sacks[2].as_slice(), &[block(401, 411), block(101, 251)]);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).data(&[1; 100]));
    let ack = s.expect(ACK, ISS + 1, IRS + 251);
    assert_eq!(
        ack.header.options.sack_blocks.as_slice(),
        &[block(401, 411)]
    );
}

#[test]
fn retransmits_with_backoff_then_times_out() {
    let cfg = TcpConfig {
        data_retries: 3,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    s.tcb.send(b"data").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    let mut fired = Vec::new();
    for _ in 0..3 {
        fired.push(s.fire_next().as_nanos() / 1_000_000);
        let again = s.expect(ACK, ISS + 1, IRS + 1);
        assert_eq!(again.payload, b"data");
    }
    // 1 s, then 2 s and 4 s later.
    assert_eq!(fired, [1000, 3000, 7000]);
    assert_eq!(s.fire_next(), Instant::from_secs(15));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(ConnError::TimedOut));
    let m = s.mib.snapshot();
    assert_eq!((m.retrans_segs, m.timeouts, m.estab_resets), (3, 4, 1));
}

#[test]
fn syn_retransmits_then_attempt_fails() {
    let cfg = TcpConfig {
        syn_retries: 2,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.fire_next();
    s.expect(SYN, ISS, 0);
    s.fire_next();
    s.expect(SYN, ISS, 0);
    s.fire_next();
    s.expect_nothing();
    assert_eq!(s.tcb.error(), Some(ConnError::TimedOut));
    assert_eq!(s.mib.snapshot().attempt_fails, 1);
    // The events say why, for an application that reads them after the
    // connection (and its error) left the table.
    let ev = s.tcb.take_events();
    assert!(ev.contains(Events::RESET | Events::TIMED_OUT), "{ev:?}");
    assert!(!ev.contains(Events::REFUSED), "{ev:?}");
}

#[test]
fn rtt_samples_come_from_the_syn_and_from_data() {
    let mut s = Script::syn_sent(&plain());
    s.at_ms(100);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1));
    assert_eq!(s.tcb.rtt.srtt(), Some(Duration::from_millis(100)));
    s.drain();
    s.tcb.send(b"x").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    s.at_ms(400);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2));
    // SRTT <- 7/8 * 100 + 1/8 * 300.
    assert_eq!(s.tcb.rtt.srtt(), Some(Duration::from_millis(125)));
}

#[test]
fn retransmitted_segment_is_not_timed() {
    let mut s = Script::established(&plain());
    s.tcb.send(b"x").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    s.fire_next();
    s.expect(ACK, ISS + 1, IRS + 1);
    let before = s.tcb.rtt.srtt();
    s.at_ms(1500);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2));
    assert_eq!(
        s.tcb.rtt.srtt(),
        before,
        "Karn: no sample from a retransmission"
    );
}

/// Established with `n` segments of 1000 octets in flight, Nagle off.
fn with_flight(n: u32) -> Script {
    let mut s = Script::established(&plain());
    s.tcb.set_nagle(false);
    s.tcb.cwnd = 100_000;
    s.tcb.send(&vec![9u8; n as usize * 1000]).unwrap();
    assert_eq!(s.drain().len(), n as usize);
    s
}

#[test]
fn three_dup_acks_fast_retransmit() {
    let mut s = with_flight(6);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1001));
    for _ in 0..2 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1001));
        s.expect_nothing();
    }
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1001));
    let again = s.expect(ACK, ISS + 1001, IRS + 1);
    assert_eq!(again.payload.len(), 1000);
    assert_eq!(s.mib.snapshot().fast_retrans, 1);
    assert_eq!(s.tcb.ssthresh, 2500);
}

#[test]
fn newreno_partial_ack_retransmits_next() {
    let mut s = with_flight(6);
    for _ in 0..3 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    }
    s.expect(ACK, ISS + 1, IRS + 1);
    // A partial ACK: the first hole is filled, the second remains.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2001));
    let again = s.expect(ACK, ISS + 2001, IRS + 1);
    assert_eq!(again.payload.len(), 1000);
    assert!(s.tcb.recover.is_some());
    // The full ACK ends recovery.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 6001));
    assert!(s.tcb.recover.is_none());
    assert_eq!(s.tcb.cwnd, s.tcb.ssthresh.min(1000));
}

#[test]
fn zero_window_probe_sent() {
    let mut s = Script::established(&plain());
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(0));
    s.tcb.send(b"stuck").unwrap();
    s.expect_nothing();
    let at = s.fire_next();
    assert_eq!(at, Instant::from_secs(1));
    s.expect(ACK, ISS, IRS + 1);
    assert_eq!(s.mib.snapshot().window_probes, 1);
    // Unanswered, the next probe waits twice as long.
    assert_eq!(s.fire_next(), Instant::from_secs(3));
    s.expect(ACK, ISS, IRS + 1);
    // The window opens: the data goes.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(1000));
    let data = s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(data.payload, b"stuck");
}

#[test]
fn keepalive_probes_then_aborts() {
    let mut cfg = plain();
    cfg.keepalive.idle = Duration::from_secs(10);
    cfg.keepalive.interval = Duration::from_secs(2);
    cfg.keepalive.probes = 3;
    let mut s = Script::established(&cfg);
    s.tcb.set_keepalive(true);
    assert_eq!(s.fire_next(), Instant::from_secs(10));
    s.expect(ACK, ISS, IRS + 1);
    // An answer resets the count.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    assert_eq!(s.fire_next(), Instant::from_secs(20));
    s.expect(ACK, ISS, IRS + 1);
    assert_eq!(s.fire_next(), Instant::from_secs(22));
    s.expect(ACK, ISS, IRS + 1);
    assert_eq!(s.fire_next(), Instant::from_secs(24));
    s.expect(ACK, ISS, IRS + 1);
    assert_eq!(s.fire_next(), Instant::from_secs(26));
    s.expect_nothing();
    assert_eq!(s.tcb.error(), Some(ConnError::TimedOut));
    let m = s.mib.snapshot();
    assert_eq!((m.keepalive_probes, m.keepalive_timeouts), (4, 1));
}

#[test]
fn fast_retransmitted_segment_is_not_timed() {
    let mut s = with_flight(6);
    let before = s.tcb.rtt.srtt();
    for _ in 0..3 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    }
    s.expect(ACK, ISS + 1, IRS + 1);
    s.at_ms(100);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 6001));
    assert_eq!(
        s.tcb.rtt.srtt(),
        before,
        "Karn: no sample from a retransmission"
    );
}

#[test]
fn dup_acks_after_a_timeout_do_not_start_fast_recovery() {
    let mut s = with_flight(6);
    s.fire_next();
    s.expect(ACK, ISS + 1, IRS + 1);
    for _ in 0..4 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    }
    assert!(s.tcb.recover.is_none());
    assert_eq!(s.mib.snapshot().fast_retrans, 0);
}

#[test]
fn a_retransmission_overtaken_by_an_ack_sends_nothing_new() {
    let mut s = with_flight(6);
    for _ in 0..3 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    }
    // Before the fast retransmit leaves, everything is acknowledged and the
    // window closes; the data queued now must wait for the window.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 6001).win(0));
    s.tcb.send(&[1; 500]).unwrap();
    s.expect_nothing();
    assert!(s.tcb.poll_at().is_some(), "the persist timer is armed");
}

#[test]
fn sack_scoreboard_repairs_every_hole_in_one_recovery() {
    let cfg = TcpConfig {
        sack: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000).sack_permitted());
    s.drain();
    s.tcb.set_nagle(false);
    s.tcb.cwnd = 100_000;
    s.tcb.send(&[9u8; 6000]).unwrap();
    assert_eq!(s.drain().len(), 6);
    // Segments 1, 3 and 5 (of 0..6) arrive; 0, 2 and 4 are lost.
    let dup = |blocks: &[(u32, u32)]| Seg::new(ACK, IRS + 1, ISS + 1).sack(blocks);
    s.inject(dup(&[(1001, 2001)]));
    s.inject(dup(&[(3001, 4001), (1001, 2001)]));
    s.inject(dup(&[(5001, 6001), (3001, 4001), (1001, 2001)]));
    s.expect(ACK, ISS + 1, IRS + 1);
    s.expect_nothing();
    let all = [(5001, 6001), (3001, 4001), (1001, 2001)];
    s.inject(dup(&all));
    let second = s.expect(ACK, ISS + 2001, IRS + 1);
    assert_eq!(second.payload.len(), 1000);
    s.inject(dup(&all));
    s.expect(ACK, ISS + 4001, IRS + 1);
    s.inject(dup(&all));
    s.expect_nothing();
    assert_eq!(s.mib.snapshot().retrans_segs, 3);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 6001));
    assert!(s.tcb.recover.is_none());
}

#[test]
fn sack_blocks_beyond_what_was_sent_are_ignored() {
    let cfg = TcpConfig {
        sack: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000).sack_permitted());
    s.drain();
    s.tcb.set_nagle(false);
    s.tcb.cwnd = 100_000;
    s.tcb.send(&[9u8; 3000]).unwrap();
    s.drain();
    let bogus = [(50_001, 60_001), (2001, 1001)];
    for _ in 0..6 {
        s.inject(Seg::new(ACK, IRS + 1, ISS + 1).sack(&bogus));
    }
    // Only the fast retransmit of the first segment; nothing from the blocks.
    s.expect(ACK, ISS + 1, IRS + 1);
    s.expect_nothing();
}

#[test]
fn data_segments_make_room_for_sack_blocks() {
    let cfg = TcpConfig {
        sack: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000).sack_permitted());
    s.drain();
    // Out-of-order data from the peer: our segments now carry one SACK block.
    s.inject(Seg::new(ACK, IRS + 101, ISS + 1).data(&[1; 10]));
    s.drain();
    s.tcb.send(&[2u8; 3000]).unwrap();
    let seg = s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(seg.header.options.sack_blocks.len(), 1);
    let options = seg.header.options.emitted_len();
    assert_eq!(seg.payload.len() + options, 1000);
}
