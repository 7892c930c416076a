use super::*;

fn tuple() -> (SocketAddr, SocketAddr) {
    (
        "192.0.2.1:443".parse().unwrap(),
        "198.51.100.7:51000".parse().unwrap(),
    )
}

fn cookies() -> SynCookies {
    SynCookies::new(SecretKey(*b"sixteen byte key"))
}

/// An instant in the middle of a period, far from the origin.
fn now() -> Instant {
    Instant::from_secs(64 * 1000 + 30)
}

#[test]
fn every_mss_and_option_combination_round_trips() {
    let (local, foreign) = tuple();
    let jar = cookies();
    let scales = core::iter::once(None).chain((0..=MAX_WINDOW_SCALE).map(Some));
    for (index, &mss) in MSS_TABLE.iter().enumerate() {
        let cookie = jar.generate(local, foreign, mss, now());
        for window_scale in scales.clone() {
            for sack_permitted in [false, true] {
                let tsval = SynCookies::timestamp_value(0x1234_5678, window_scale, sack_permitted);
                assert!(SeqNum(tsval).le(SeqNum(0x1234_5678)));
                let got = jar
                    .validate(cookie, local, foreign, Some(tsval), now())
                    .unwrap();
                assert_eq!(
                    got,
                    CookieOptions {
                        mss,
                        window_scale,
                        sack_permitted,
                        timestamps: true
                    },
                    "index {index}"
                );
            }
        }
        let plain = jar.validate(cookie, local, foreign, None, now()).unwrap();
        assert_eq!(
            plain,
            CookieOptions {
                mss,
                window_scale: None,
                sack_permitted: false,
                timestamps: false
            }
        );
    }
}

#[test]
fn the_peer_mss_rounds_down_to_the_table() {
    assert_eq!(MSS_TABLE[SynCookies::mss_index(1459)], 1440);
    assert_eq!(MSS_TABLE[SynCookies::mss_index(65535)], 8960);
    assert_eq!(MSS_TABLE[SynCookies::mss_index(100)], 256);
}

#[test]
fn the_timestamp_never_runs_ahead_of_the_clock_even_at_the_wrap() {
    for clock in [0u32, 1, 63, 64, u32::MAX, 0x8000_0000] {
        let tsval = SynCookies::timestamp_value(clock, Some(14), true);
        assert!(SeqNum(tsval).le(SeqNum(clock)), "{clock:#x} -> {tsval:#x}");
        assert!(clock.wrapping_sub(tsval) < 128);
    }
}

#[test]
fn cookies_live_for_their_period_and_the_next_only() {
    let (local, foreign) = tuple();
    let jar = cookies();
    let period_start = Instant::from_secs(64 * 500);
    let cookie = jar.generate(local, foreign, 1460, period_start);
    let valid = |t: Instant| jar.validate(cookie, local, foreign, None, t).is_some();
    assert!(valid(period_start));
    assert!(valid(period_start + Duration::from_secs(127)));
    assert!(!valid(period_start + Duration::from_secs(128)));
    assert!(!valid(period_start + Duration::from_secs(64 * 1000)));
    // Nor from before it was minted (a clock that ran backwards by a period).
    assert!(!valid(Instant::from_secs(64 * 499)));
}

#[test]
fn a_cookie_for_another_tuple_is_rejected() {
    let (local, foreign) = tuple();
    let jar = cookies();
    let cookie = jar.generate(local, foreign, 1460, now());
    let others: [(SocketAddr, SocketAddr); 6] = [
        (local, "198.51.100.7:51001".parse().unwrap()),
        (local, "198.51.100.8:51000".parse().unwrap()),
        ("192.0.2.1:444".parse().unwrap(), foreign),
        ("192.0.2.2:443".parse().unwrap(), foreign),
        (foreign, local),
        // The same addresses as IPv4-mapped IPv6: another family's tuple.
        (
            "[::ffff:192.0.2.1]:443".parse().unwrap(),
            "[::ffff:198.51.100.7]:51000".parse().unwrap(),
        ),
    ];
    for (l, f) in others {
        assert_eq!(jar.validate(cookie, l, f, None, now()), None, "{l} {f}");
    }
    let other_key = SynCookies::new(SecretKey([0; 16]));
    assert_eq!(
        other_key.validate(cookie, local, foreign, None, now()),
        None
    );
}

#[test]
fn a_changed_mss_index_is_caught_by_the_mac() {
    let (local, foreign) = tuple();
    let jar = cookies();
    let cookie = jar.generate(local, foreign, 536, now());
    for index in 0..8u32 {
        let forged = SeqNum((cookie.0 & !7) | index);
        let ok = jar.validate(forged, local, foreign, None, now()).is_some();
        assert_eq!(ok, forged == cookie);
    }
}

/// Blind guessing. With a 28-bit MAC, each guess succeeds with probability
/// p = 2^-28 ≈ 3.7e-9, so 10^5 guesses expect λ ≈ 3.7e-4 successes. We require fewer
/// than 10 (a rate below 1 in 10^4): for an ideal MAC the chance of 10 or more is
/// about λ^10/10! < 10^-40, so this never fails by bad luck, while a MAC that
/// ignored its input or kept only a few bits (p ≥ 2^-13) would expect ≥ 12
/// successes and fail. The seed is fixed, so the run is reproducible.
#[test]
fn random_guesses_almost_never_pass() {
    let (local, foreign) = tuple();
    let jar = cookies();
    let mut rng = smr::rng::SplitMix64::new(0x0123_4567_89ab_cdef);
    let mut accepted = 0u32;
    let tries = 100_000;
    for _ in 0..tries {
        let guess = SeqNum(rng.next_u64() as u32);
        accepted += u32::from(jar.validate(guess, local, foreign, None, now()).is_some());
    }
    assert!(
        accepted < 10,
        "{accepted} of {tries} random cookies accepted"
    );
}
