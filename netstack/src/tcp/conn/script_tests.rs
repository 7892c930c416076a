//! Segment scripts for the handshake, data transfer, closing, and the
//! RFC 5961 / RFC 7323 rules.

use core::time::Duration;

use super::script::*;
use super::*;
use crate::tcp::options::Timestamps;

#[test]
fn syn_sent_syn_ack_establishes() {
    let mut s = Script::established(&plain());
    assert!(
        s.tcb
            .take_events()
            .contains(Events::CONNECTED | Events::WRITABLE)
    );
    let m = s.mib.snapshot();
    assert_eq!((m.active_opens, m.estab_entered, m.out_segs), (1, 1, 2));
}

#[test]
fn syn_sent_offers_configured_options() {
    let cfg = TcpConfig::default();
    let mib = TcpMib::default();
    let mut tcb = Tcb::connect(&cfg, local(), remote(), SeqNum(ISS), Instant::ZERO, &mib);
    let syn = tcb.poll_transmit(Instant::ZERO, &mib).unwrap().header;
    assert_eq!(syn.options.window_scale, Some(cfg.window_scale));
    assert!(syn.options.sack_permitted);
    assert!(syn.options.timestamps.is_some());
    assert_eq!(syn.window, 65535);
}

#[test]
fn syn_sent_bad_ack_is_answered_with_rst() {
    let mut s = Script::syn_sent(&plain());
    let d = s.inject(Seg::new(SYN | ACK, IRS, ISS + 7));
    assert_eq!(d, SegmentDisposition::Rejected);
    s.expect(RST, ISS + 7, 0);
    assert_eq!(s.tcb.state(), State::SynSent);
}

#[test]
fn syn_sent_rst_with_acceptable_ack_refuses() {
    let mut s = Script::syn_sent(&plain());
    assert_eq!(
        s.inject(Seg::new(RST | ACK, 0, ISS + 1)),
        SegmentDisposition::Reset
    );
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.recv(&mut [0; 4]), Err(ConnError::Refused));
    assert_eq!(s.mib.snapshot().attempt_fails, 1);
    s.expect_nothing();
    let ev = s.tcb.take_events();
    assert!(ev.contains(Events::RESET | Events::REFUSED), "{ev:?}");
    assert!(!ev.contains(Events::TIMED_OUT), "{ev:?}");
}

#[test]
fn syn_sent_rst_without_ack_is_ignored() {
    let mut s = Script::syn_sent(&plain());
    let d = s.inject(Seg::new(RST, 0, 0));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::BadRst));
    assert_eq!(s.tcb.state(), State::SynSent);
}

#[test]
fn simultaneous_open_reaches_established() {
    let mut s = Script::syn_sent(&plain());
    let d = s.inject(Seg::new(SYN, IRS, 0).mss(1000));
    assert_eq!(d, SegmentDisposition::SimultaneousOpen);
    assert_eq!(s.tcb.state(), State::SynReceived);
    s.expect(SYN | ACK, ISS, IRS + 1);
    // The peer's SYN-ACK repeats its SYN and acknowledges ours.
    let d = s.inject(Seg::new(SYN | ACK, IRS, ISS + 1));
    assert_eq!(d, SegmentDisposition::Established);
    assert_eq!(s.tcb.state(), State::Established);
}

#[test]
fn syn_received_unacceptable_ack_sends_rst() {
    let mut s = Script::syn_sent(&plain());
    s.inject(Seg::new(SYN, IRS, 0));
    s.expect(SYN | ACK, ISS, IRS + 1);
    let d = s.inject(Seg::new(ACK, IRS + 1, ISS + 50));
    assert_eq!(d, SegmentDisposition::Rejected);
    s.expect(RST, ISS + 50, 0);
}

#[test]
fn data_is_acked_after_second_full_segment() {
    let mut s = Script::established(&plain());
    let full = vec![7u8; 1000];
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).data(&full));
    s.expect_nothing();
    s.inject(Seg::new(ACK, IRS + 1001, ISS + 1).data(&full));
    s.expect(ACK, ISS + 1, IRS + 2001);
    let mut buf = [0u8; 4000];
    assert_eq!(s.tcb.recv(&mut buf), Ok(2000));
    assert!(buf[..2000].iter().all(|b| *b == 7));
    assert_eq!(s.tcb.recv(&mut buf), Err(ConnError::WouldBlock));
}

#[test]
fn delayed_ack_fires_after_timeout() {
    let mut s = Script::established(&plain());
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).data(b"hello"));
    s.expect_nothing();
    let at = s.fire_next();
    assert_eq!(at, Instant::from_millis(40));
    s.expect(ACK, ISS + 1, IRS + 6);
    s.expect_nothing();
}

#[test]
fn send_is_segmented_by_peer_mss() {
    let mut s = Script::established(&plain());
    s.tcb.set_nagle(false);
    assert_eq!(s.tcb.send(&[1u8; 2500]), Ok(2500));
    let a = s.expect(ACK, ISS + 1, IRS + 1);
    let b = s.expect(ACK, ISS + 1001, IRS + 1);
    let c = s.expect(ACK, ISS + 2001, IRS + 1);
    assert_eq!(
        (a.payload.len(), b.payload.len(), c.payload.len()),
        (1000, 1000, 500)
    );
    s.expect_nothing();
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2501));
    assert_eq!(s.tcb.send_sequence().0, SeqNum(ISS + 2501));
    assert_eq!(s.tcb.buffer_bytes(), 0);
}

#[test]
fn nagle_holds_small_segment_until_ack() {
    let mut s = Script::established(&plain());
    s.tcb.send(b"a").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    s.tcb.send(b"b").unwrap();
    s.tcb.send(b"c").unwrap();
    s.expect_nothing();
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2));
    let sent = s.expect(ACK, ISS + 2, IRS + 1);
    assert_eq!(sent.payload, b"bc");
}

#[test]
fn nagle_off_sends_small_segments_at_once() {
    let mut s = Script::established(&plain());
    s.tcb.set_nagle(false);
    s.tcb.send(b"a").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    s.tcb.send(b"b").unwrap();
    s.expect(ACK, ISS + 2, IRS + 1);
}

#[test]
fn window_update_uses_the_wl1_wl2_rule() {
    let mut s = Script::established(&plain());
    s.tcb.set_nagle(false);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(2000));
    assert_eq!(s.tcb.snd_wnd, 2000);
    // Newer data (higher SEQ) sets the window, even to less.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(1800).data(&[0; 10]));
    s.inject(Seg::new(ACK, IRS + 11, ISS + 1).win(1500).data(&[0; 10]));
    assert_eq!(s.tcb.snd_wnd, 1500);
    // A segment that starts earlier (an old retransmission overlapping new
    // data) is accepted but must not set the window: SEG.SEQ < SND.WL1.
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(9000).data(&[0; 30]));
    assert_eq!(s.tcb.recv_available(), 30);
    assert_eq!(s.tcb.snd_wnd, 1500);
    s.tcb.send(&[0u8; 3000]).unwrap();
    let sent: Vec<usize> = s.drain().iter().map(|x| x.payload.len()).collect();
    // One full segment fits in 1500; the 500 left would be a silly window
    // (RFC 9293 §3.8.6.2.1), so it waits for the ACK.
    assert_eq!(sent, [1000]);
}

#[test]
fn active_close_goes_through_fin_wait_to_time_wait() {
    let mut s = Script::established(&plain());
    s.tcb.close();
    assert_eq!(s.tcb.state(), State::FinWait1);
    s.expect(FIN | ACK, ISS + 1, IRS + 1);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2));
    assert_eq!(s.tcb.state(), State::FinWait2);
    s.inject(Seg::new(FIN | ACK, IRS + 1, ISS + 2));
    assert_eq!(s.tcb.state(), State::TimeWait);
    s.expect(ACK, ISS + 2, IRS + 2);
    let m = s.mib.snapshot();
    assert_eq!((m.estab_entered, m.estab_left, m.time_waits), (1, 1, 1));
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack() {
    let mut s = Script::established(&plain());
    s.inject(Seg::new(FIN | ACK, IRS + 1, ISS + 1));
    assert_eq!(s.tcb.state(), State::CloseWait);
    s.expect(ACK, ISS + 1, IRS + 2);
    assert!(s.tcb.take_events().contains(Events::PEER_CLOSED));
    assert_eq!(s.tcb.recv(&mut [0; 8]), Ok(0));
    s.tcb.send(b"bye").unwrap();
    s.tcb.close();
    assert_eq!(s.tcb.state(), State::LastAck);
    let fin = s.expect(FIN | ACK, ISS + 1, IRS + 2);
    assert_eq!(fin.payload, b"bye");
    s.inject(Seg::new(ACK, IRS + 2, ISS + 5));
    assert_eq!(s.tcb.state(), State::Closed);
    assert!(s.tcb.is_closed());
    assert_eq!(s.tcb.error(), None);
    let m = s.mib.snapshot();
    assert_eq!((m.estab_entered, m.estab_left), (1, 1));
}

#[test]
fn simultaneous_close_goes_through_closing() {
    use Step::*;
    let mut s = Script::established(&plain());
    s.run(vec![
        App(Tcb::close),
        Is(State::FinWait1),
        Out(FIN | ACK, ISS + 1, IRS + 1),
        // The peer's FIN crosses ours: it does not acknowledge our FIN.
        In(Seg::new(FIN | ACK, IRS + 1, ISS + 1)),
        Is(State::Closing),
        Out(ACK, ISS + 2, IRS + 2),
        Quiet,
        In(Seg::new(ACK, IRS + 2, ISS + 2)),
        Is(State::TimeWait),
        At(59_999),
        Is(State::TimeWait),
        At(60_000),
        Is(State::Closed),
    ]);
}

#[test]
fn lost_fin_is_retransmitted_in_last_ack() {
    use Step::*;
    let mut s = Script::established(&plain());
    s.run(vec![
        In(Seg::new(FIN | ACK, IRS + 1, ISS + 1)),
        Is(State::CloseWait),
        Out(ACK, ISS + 1, IRS + 2),
        App(Tcb::close),
        Is(State::LastAck),
        Out(FIN | ACK, ISS + 1, IRS + 2),
        Quiet,
        At(1000),
        Out(FIN | ACK, ISS + 1, IRS + 2),
        At(3000),
        Out(FIN | ACK, ISS + 1, IRS + 2),
        In(Seg::new(ACK, IRS + 2, ISS + 2)),
        Is(State::Closed),
        Quiet,
    ]);
}

#[test]
fn fin_wait_2_times_out() {
    let mut s = Script::established(&plain());
    s.tcb.close();
    s.expect(FIN | ACK, ISS + 1, IRS + 1);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2));
    assert_eq!(s.tcb.state(), State::FinWait2);
    // Data from the peer restarts the limit.
    s.at_ms(30_000);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2).data(b"more"));
    s.fire_next();
    s.expect(ACK, ISS + 2, IRS + 5);
    let at = s.fire_next();
    assert_eq!(at, Instant::from_secs(90));
    assert!(s.tcb.is_closed());
}

#[test]
fn time_wait_expires_after_2msl() {
    let mut s = Script::established(&plain());
    s.tcb.close();
    s.drain();
    s.inject(Seg::new(FIN | ACK, IRS + 1, ISS + 2));
    assert_eq!(s.tcb.state(), State::TimeWait);
    let tw = s.tcb.time_wait().expect("TIME-WAIT form");
    assert_eq!(tw.expires_at(), Instant::from_secs(60));
    s.drain();
    s.advance(Duration::from_secs(59));
    s.fire();
    assert_eq!(s.tcb.state(), State::TimeWait);
    assert_eq!(s.fire_next(), Instant::from_secs(60));
    assert!(s.tcb.is_closed());
    assert!(s.tcb.take_events().contains(Events::CLOSED));
}

#[test]
fn out_of_window_segment_is_acked_and_dropped() {
    let mut s = Script::established(&plain());
    let d = s.inject(Seg::new(ACK, IRS + 1_000_000, ISS + 1).data(b"x"));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::OutOfWindow));
    s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(s.tcb.recv_available(), 0);
    assert_eq!(s.mib.snapshot().out_of_window, 1);
}

#[test]
fn ack_for_unsent_data_is_acked_and_dropped() {
    let mut s = Script::established(&plain());
    let d = s.inject(Seg::new(ACK, IRS + 1, ISS + 500).data(b"x"));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::AckTooNew));
    s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(s.tcb.recv_available(), 0);
}

#[test]
fn ack_older_than_max_window_is_dropped_with_ack() {
    let mut s = Script::established(&plain());
    let d = s.inject(Seg::new(ACK, IRS + 1, ISS.wrapping_sub(70_000)).data(b"x"));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::AckTooOld));
    s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(s.tcb.recv_available(), 0);
}

#[test]
fn rst_exact_seq_resets_established() {
    let mut s = Script::established(&plain());
    assert_eq!(
        s.inject(Seg::new(RST, IRS + 1, 0)),
        SegmentDisposition::Reset
    );
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.send(b"x"), Err(ConnError::Reset));
    assert!(s.tcb.take_events().contains(Events::RESET | Events::CLOSED));
    let m = s.mib.snapshot();
    assert_eq!((m.estab_resets, m.in_rsts, m.estab_left), (1, 1, 1));
    s.expect_nothing();
}

#[test]
fn rst_in_window_not_exact_sends_challenge_ack() {
    let mut s = Script::established(&plain());
    assert_eq!(
        s.inject(Seg::new(RST, IRS + 100, 0)),
        SegmentDisposition::ChallengeAck
    );
    assert_eq!(s.tcb.state(), State::Established);
    s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(s.mib.snapshot().challenge_acks, 1);
}

#[test]
fn rst_out_of_window_is_ignored_silently() {
    let mut s = Script::established(&plain());
    let d = s.inject(Seg::new(RST, IRS + 1_000_000, 0));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::BadRst));
    s.expect_nothing();
    assert_eq!(s.mib.snapshot().rsts_ignored, 1);
}

#[test]
fn syn_in_established_sends_challenge_ack() {
    let mut s = Script::established(&plain());
    assert_eq!(
        s.inject(Seg::new(SYN, IRS + 1, 0)),
        SegmentDisposition::ChallengeAck
    );
    assert_eq!(s.tcb.state(), State::Established);
    s.expect(ACK, ISS + 1, IRS + 1);
}

#[test]
fn challenge_acks_are_rate_limited() {
    let cfg = TcpConfig {
        challenge_acks_per_sec: 3,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    let mut acks = 0;
    for _ in 0..10 {
        s.inject(Seg::new(SYN, IRS + 1, 0));
        acks += s.drain().len();
    }
    assert_eq!(acks, 3);
    let m = s.mib.snapshot();
    assert_eq!((m.challenge_acks, m.challenge_acks_limited), (3, 7));
    // A new second, a new allowance.
    s.advance(Duration::from_secs(1));
    s.inject(Seg::new(SYN, IRS + 1, 0));
    assert_eq!(s.drain().len(), 1);
}

/// Established with timestamps: our clock reads ISS at time zero.
fn established_ts() -> Script {
    let cfg = TcpConfig {
        timestamps: true,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    let d = s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).mss(1000).ts(100, ISS));
    assert_eq!(d, SegmentDisposition::Established);
    let ack = s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(
        ack.header.options.timestamps,
        Some(Timestamps {
            value: ISS,
            echo_reply: 100
        })
    );
    s
}

#[test]
fn paws_drops_old_timestamp() {
    let mut s = established_ts();
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).ts(200, ISS).data(b"new"));
    assert_eq!(s.tcb.recv_available(), 3);
    let d = s.inject(Seg::new(ACK, IRS + 4, ISS + 1).ts(150, ISS).data(b"old"));
    assert_eq!(d, SegmentDisposition::Dropped(SegmentDrop::Paws));
    assert_eq!(s.tcb.recv_available(), 3);
    let ack = s.expect(ACK, ISS + 1, IRS + 4);
    assert_eq!(ack.header.options.timestamps.unwrap().echo_reply, 200);
    assert_eq!(s.mib.snapshot().paws_drops, 1);
}

#[test]
fn ts_recent_follows_the_segment_at_last_ack_sent() {
    let mut s = established_ts();
    // A segment beyond Last.ACK.sent (out of order) does not update TS.Recent.
    s.inject(Seg::new(ACK, IRS + 11, ISS + 1).ts(300, ISS).data(b"later"));
    let ack = s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(ack.header.options.timestamps.unwrap().echo_reply, 100);
    s.inject(
        Seg::new(ACK, IRS + 1, ISS + 1)
            .ts(301, ISS)
            .data(b"0123456789"),
    );
    let ack = s.expect(ACK, ISS + 1, IRS + 16);
    assert_eq!(ack.header.options.timestamps.unwrap().echo_reply, 301);
}

#[test]
fn window_scale_applies_both_ways() {
    let cfg = TcpConfig {
        window_scale: 2,
        recv_buffer: 200_000,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1).wscale(3).win(1000));
    let ack = s.expect(ACK, ISS + 1, IRS + 1);
    // A SYN's window is never scaled: 1000 octets.
    assert_eq!(s.tcb.snd_wnd, 1000);
    // We offered 65535 on our SYN; now we advertise 200000 >> 2.
    assert_eq!(ack.header.window, 50_000);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1).win(1000));
    assert_eq!(s.tcb.snd_wnd, 8000);
}

#[test]
fn no_window_scale_when_the_peer_does_not_offer_it() {
    let cfg = TcpConfig {
        window_scale: 5,
        recv_buffer: 200_000,
        ..plain()
    };
    let mut s = Script::syn_sent(&cfg);
    s.inject(Seg::new(SYN | ACK, IRS, ISS + 1));
    let ack = s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(ack.header.window, 65535);
}

#[test]
fn mss_is_the_smaller_of_both_less_timestamp_space() {
    let s = established_ts();
    assert_eq!(s.tcb.snd_mss, 1000 - 12);
    let s = Script::established(&TcpConfig {
        mss: 600,
        ..plain()
    });
    assert_eq!(s.tcb.snd_mss, 600);
}

#[test]
fn abort_sends_rst_and_reports_aborted() {
    let mut s = Script::established(&plain());
    s.tcb.abort();
    s.expect(RST, ISS + 1, 0);
    assert!(s.tcb.is_closed());
    assert_eq!(s.tcb.recv(&mut [0; 1]), Err(ConnError::Aborted));
    let m = s.mib.snapshot();
    assert_eq!((m.out_rsts, m.estab_resets, m.estab_left), (1, 1, 1));
}

#[test]
fn reading_reopens_a_closed_window() {
    let cfg = TcpConfig {
        recv_buffer: 4000,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    for i in 0..4 {
        s.inject(Seg::new(ACK, IRS + 1 + i * 1000, ISS + 1).data(&[0; 1000]));
    }
    let last = s.drain().pop().unwrap();
    assert_eq!(last.header.window, 0);
    let d = s.inject(Seg::new(ACK, IRS + 4001, ISS + 1).data(&[0; 10]));
    assert_eq!(
        d,
        SegmentDisposition::Accepted,
        "zero window still takes the ACK"
    );
    assert_eq!(s.tcb.recv_available(), 4000);
    s.drain();
    s.tcb.recv(&mut [0; 2500]).unwrap();
    let update = s.expect(ACK, ISS + 1, IRS + 4001);
    assert_eq!(update.header.window, 2500);
}

#[test]
fn close_in_syn_received_waits_for_established_then_sends_fin() {
    let mut s = Script::syn_sent(&plain());
    s.inject(Seg::new(SYN, IRS, 0));
    s.expect(SYN | ACK, ISS, IRS + 1);
    s.tcb.send(b"late").unwrap();
    s.tcb.close();
    assert_eq!(s.tcb.state(), State::SynReceived);
    s.expect_nothing();
    s.inject(Seg::new(ACK, IRS + 1, ISS + 1));
    assert_eq!(s.tcb.state(), State::FinWait1);
    let fin = s.expect(FIN | ACK, ISS + 1, IRS + 1);
    assert_eq!(fin.payload, b"late");
    let m = s.mib.snapshot();
    assert_eq!((m.estab_entered, m.estab_left), (1, 1));
}

#[test]
fn close_in_syn_sent_just_ends() {
    let mut s = Script::syn_sent(&plain());
    s.tcb.close();
    assert!(s.tcb.is_closed());
    assert_eq!(s.tcb.poll_at(), None);
    s.expect_nothing();
}

#[test]
fn timestamps_time_even_a_retransmission() {
    let mut s = established_ts();
    assert_eq!(s.tcb.rtt.srtt(), Some(Duration::ZERO));
    s.tcb.send(b"x").unwrap();
    s.expect(ACK, ISS + 1, IRS + 1);
    assert_eq!(s.fire_next(), Instant::from_secs(1));
    let again = s.expect(ACK, ISS + 1, IRS + 1);
    let tsval = again.header.options.timestamps.unwrap().value;
    assert_eq!(tsval, ISS + 1000);
    s.at_ms(1200);
    s.inject(Seg::new(ACK, IRS + 1, ISS + 2).ts(300, tsval));
    // The echo says which transmission is acknowledged: a 200 ms sample.
    assert_eq!(s.tcb.rtt.srtt(), Some(Duration::from_millis(25)));
}
