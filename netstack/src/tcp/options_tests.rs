use super::*;
use proptest::prelude::*;

fn block(left: u32, right: u32) -> SackBlock {
    SackBlock {
        left: SeqNum(left),
        right: SeqNum(right),
    }
}

#[test]
fn a_linux_syn_parses() {
    // MSS 1460, SACK-permitted + timestamps, NOP, window scale 7.
    let bytes = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let options = TcpOptions::parse(&bytes).unwrap();
    assert_eq!(options.mss, Some(1460));
    assert!(options.sack_permitted);
    assert_eq!(
        options.timestamps,
        Some(Timestamps {
            value: 1,
            echo_reply: 0
        })
    );
    assert_eq!(options.window_scale, Some(7));
}

#[test]
fn zero_and_one_lengths_are_malformed() {
    assert_eq!(TcpOptions::parse(&[2, 0, 0, 0]), Err(MalformedOption));
    assert_eq!(TcpOptions::parse(&[30, 1, 0, 0]), Err(MalformedOption));
}

#[test]
fn an_option_running_past_the_header_is_malformed() {
    assert_eq!(TcpOptions::parse(&[8, 10, 0, 0]), Err(MalformedOption));
    assert_eq!(TcpOptions::parse(&[1, 1, 1, 2]), Err(MalformedOption));
}

#[test]
fn end_of_list_hides_whatever_follows() {
    assert_eq!(TcpOptions::parse(&[0, 2, 0, 0]), Ok(TcpOptions::default()));
}

#[test]
fn known_kinds_with_wrong_lengths_are_ignored() {
    let options = TcpOptions::parse(&[2, 3, 5, 3, 4, 7, 0, 4, 3, 1, 8, 2]).unwrap();
    assert_eq!(options, TcpOptions::default());
}

#[test]
fn the_first_copy_of_a_duplicated_option_wins() {
    let options = TcpOptions::parse(&[2, 4, 0, 100, 2, 4, 0, 200, 3, 3, 2, 3, 3, 9]).unwrap();
    assert_eq!(options.mss, Some(100));
    assert_eq!(options.window_scale, Some(2));
}

#[test]
fn window_scale_above_fourteen_reads_as_fourteen() {
    let options = TcpOptions::parse(&[3, 3, 200, 0]).unwrap();
    assert_eq!(options.window_scale, Some(MAX_WINDOW_SCALE));
}

#[test]
fn four_sack_blocks_are_all_kept() {
    let mut bytes = vec![1, 1, 5, 34];
    for i in 0..4u32 {
        bytes.extend_from_slice(&(i * 10).to_be_bytes());
        bytes.extend_from_slice(&(i * 10 + 5).to_be_bytes());
    }
    let options = TcpOptions::parse(&bytes).unwrap();
    assert_eq!(options.sack_blocks.len(), 4);
    assert_eq!(options.sack_blocks.as_slice()[3], block(30, 35));
}

#[test]
fn a_sack_option_that_is_not_whole_blocks_is_ignored() {
    let options = TcpOptions::parse(&[5, 6, 0, 0, 0, 1]).unwrap();
    assert!(options.sack_blocks.is_empty());
}

#[test]
fn unknown_kinds_are_skipped_by_length() {
    let options = TcpOptions::parse(&[99, 4, 0xff, 0xff, 2, 4, 1, 0]).unwrap();
    assert_eq!(options.mss, Some(256));
}

#[test]
fn sack_blocks_that_do_not_fit_beside_timestamps_are_left_out() {
    let mut options = TcpOptions {
        timestamps: Some(Timestamps {
            value: 9,
            echo_reply: 8,
        }),
        ..TcpOptions::default()
    };
    for i in 0..4 {
        assert!(options.sack_blocks.push(block(i, i + 1)));
    }
    assert!(!options.sack_blocks.push(block(9, 10)));
    assert_eq!(options.emitted_len(), 12 + 4 + 3 * 8);
    let mut buf = [0u8; MAX_OPTIONS_LEN];
    let len = options.emit(&mut buf).unwrap();
    let parsed = TcpOptions::parse(&buf[..len]).unwrap();
    assert_eq!(
        parsed.sack_blocks.as_slice(),
        &options.sack_blocks.as_slice()[..3]
    );
}

#[test]
fn emit_refuses_a_short_buffer() {
    let options = TcpOptions {
        mss: Some(1),
        ..TcpOptions::default()
    };
    assert_eq!(options.emit(&mut [0u8; 3]), None);
}

prop_compose! {
    fn any_options()(
        mss in proptest::option::of(any::<u16>()),
        window_scale in proptest::option::of(0u8..=MAX_WINDOW_SCALE),
        sack_permitted: bool,
        timestamps in proptest::option::of((any::<u32>(), any::<u32>())),
        blocks in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
    ) -> TcpOptions {
        let mut options = TcpOptions {
            mss,
            window_scale,
            sack_permitted,
            timestamps: timestamps.map(|(value, echo_reply)| Timestamps { value, echo_reply }),
            sack_blocks: SackBlocks::default(),
        };
        for (l, r) in blocks {
            options.sack_blocks.push(block(l, r));
        }
        options
    }
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_OPTIONS_LEN)) {
        let _ = TcpOptions::parse(&bytes);
    }

    #[test]
    fn emitted_options_parse_back(options in any_options()) {
        let mut buf = [0u8; MAX_OPTIONS_LEN];
        let len = options.emit(&mut buf).unwrap();
        prop_assert_eq!(len, options.emitted_len());
        prop_assert!(len % 4 == 0 && len <= MAX_OPTIONS_LEN);
        let parsed = TcpOptions::parse(&buf[..len]).unwrap();
        let kept = options.sack_blocks_that_fit();
        prop_assert_eq!(parsed.sack_blocks.as_slice(), &options.sack_blocks.as_slice()[..kept]);
        prop_assert_eq!(parsed.mss, options.mss);
        prop_assert_eq!(parsed.window_scale, options.window_scale);
        prop_assert_eq!(parsed.sack_permitted, options.sack_permitted);
        prop_assert_eq!(parsed.timestamps, options.timestamps);
    }
}
