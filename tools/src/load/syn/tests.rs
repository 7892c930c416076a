use super::*;
use crate::load::safety::Cidr;
use proptest::prelude::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn syn_from(rng: &mut SplitMix64, spoof: &Ipv4Prefix, mode: OptionsMode) -> Syn {
    Syn {
        src: IpAddr::V4(spoof.random(rng)),
        dst: IpAddr::V4(TARGET),
        src_port: 1024 + rng.below(64512) as u16,
        dst_port: 7,
        isn: rng.next_u32(),
        ip_id: rng.next_u32() as u16,
        window: 1024 + rng.below(64512) as u16,
        options: SynOptions::draw(mode, rng),
    }
}

/// Parse `bytes` back with smoltcp, checking both checksums, and return what
/// it says.
fn parse_back(bytes: &[u8]) -> (Ipv4Repr, TcpRepr<'_>) {
    let caps = ChecksumCapabilities::default();
    let ip = Ipv4Packet::new_checked(bytes).expect("IPv4 header parses");
    assert!(ip.verify_checksum(), "IPv4 header checksum is wrong");
    let ip_repr = Ipv4Repr::parse(&ip, &caps).expect("IPv4 repr (checksum verified)");
    assert_eq!(ip_repr.next_header, IpProtocol::Tcp);
    assert_eq!(usize::from(ip.total_len()), bytes.len());
    let payload = &bytes[usize::from(ip.header_len())..];
    let tcp = TcpPacket::new_checked(payload).expect("TCP header parses");
    let (src, dst) = (
        IpAddress::Ipv4(ip_repr.src_addr),
        IpAddress::Ipv4(ip_repr.dst_addr),
    );
    assert!(tcp.verify_checksum(&src, &dst), "TCP checksum is wrong");
    assert!(tcp.syn() && !tcp.ack() && !tcp.rst() && !tcp.fin() && !tcp.psh());
    let tcp_repr = TcpRepr::parse(&tcp, &src, &dst, &caps).expect("TCP repr");
    (ip_repr, tcp_repr)
}

#[test]
fn built_syns_parse_back_with_valid_checksums_and_only_syn_set() {
    let spoof: Ipv4Prefix = "198.19.128.0/17".parse().unwrap();
    for mode in [OptionsMode::Random, OptionsMode::Fixed, OptionsMode::None] {
        let mut rng = SplitMix64::new(7);
        for _ in 0..2000 {
            let syn = syn_from(&mut rng, &spoof, mode);
            let mut buf = [0u8; MAX_SYN_LEN];
            let len = write_syn(&mut buf, &syn);
            let (ip, tcp) = parse_back(&buf[..len]);
            assert_eq!(
                (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr)),
                (syn.src, syn.dst)
            );
            assert_eq!(tcp.control, TcpControl::Syn);
            assert_eq!(tcp.ack_number, None);
            assert!(tcp.payload.is_empty());
            assert_eq!((tcp.src_port, tcp.dst_port), (syn.src_port, syn.dst_port));
            assert_eq!(tcp.seq_number.0 as u32, syn.isn);
            assert_eq!(tcp.window_len, syn.window);
            assert_eq!(tcp.max_seg_size, syn.options.mss);
            assert_eq!(
                tcp.window_scale,
                syn.options.window_scale.map(|w| w.min(14))
            );
            assert_eq!(tcp.sack_permitted, syn.options.sack_permitted);
            assert_eq!(tcp.timestamp.map(|t| t.tsval), syn.options.tsval);
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..len]).unwrap().ident(),
                syn.ip_id
            );
        }
    }
}

/// The Internet checksum (RFC 1071) of `chunks`, computed here rather than
/// by smoltcp, which builds the packets under test.
fn internet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |b| u64::from(*b));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn ipv6_syns_have_a_valid_header_and_a_checksum_computed_independently() {
    let spoof: SpoofPrefix = "fd00:5eed:0:0:8000::/65".parse().unwrap();
    let target = Ipv6Addr::new(0xfd00, 0x5eed, 0, 0, 0, 0, 0, 2);
    for mode in [OptionsMode::Random, OptionsMode::Fixed, OptionsMode::None] {
        let mut rng = SplitMix64::new(11);
        for _ in 0..2000 {
            let mut syn = syn_from(&mut rng, &"198.19.0.0/16".parse().unwrap(), mode);
            syn.src = spoof.random(&mut rng);
            syn.dst = IpAddr::V6(target);
            let mut buf = [0u8; MAX_SYN_LEN];
            let len = write_syn(&mut buf, &syn);
            let bytes = &buf[..len];
            // The fixed header by hand (RFC 8200): version 6, the flow
            // label, payload length, next header TCP, hop limit 64.
            assert_eq!(bytes[0] >> 4, 6);
            let flow = u32::from_be_bytes([0, bytes[1] & 0x0f, bytes[2], bytes[3]]);
            assert_eq!(flow, u32::from(syn.ip_id));
            assert_eq!(
                usize::from(u16::from_be_bytes([bytes[4], bytes[5]])),
                len - 40
            );
            assert_eq!((bytes[6], bytes[7]), (6, 64));
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[24..40]).unwrap());
            assert_eq!((IpAddr::V6(src), IpAddr::V6(dst)), (syn.src, syn.dst));
            assert!(spoof.contains(IpAddr::V6(src)));
            // The TCP checksum over the IPv6 pseudo-header (RFC 8200 8.1):
            // a segment whose checksum is right sums to zero.
            let tcp = &bytes[40..];
            let tcp_len = (tcp.len() as u32).to_be_bytes();
            let pseudo_tail = [0, 0, 0, 6];
            assert_eq!(
                internet_checksum(&[&bytes[8..40], &tcp_len, &pseudo_tail, tcp]),
                0,
                "TCP checksum is wrong"
            );
            // And the TCP header means what was asked.
            let src_a = IpAddress::Ipv6(src);
            let dst_a = IpAddress::Ipv6(dst);
            let packet = TcpPacket::new_checked(tcp).expect("TCP header parses");
            let repr = TcpRepr::parse(&packet, &src_a, &dst_a, &ChecksumCapabilities::default())
                .expect("TCP repr");
            assert_eq!(repr.control, TcpControl::Syn);
            assert_eq!((repr.src_port, repr.dst_port), (syn.src_port, syn.dst_port));
            assert_eq!(repr.seq_number.0 as u32, syn.isn);
            assert_eq!(repr.max_seg_size, syn.options.mss);
            assert_eq!(repr.timestamp.map(|t| t.tsval), syn.options.tsval);
        }
    }
}

#[test]
fn the_independent_checksum_agrees_on_ipv4_too() {
    let mut rng = SplitMix64::new(5);
    let spoof: Ipv4Prefix = "198.19.128.0/17".parse().unwrap();
    for _ in 0..500 {
        let syn = syn_from(&mut rng, &spoof, OptionsMode::Random);
        let mut buf = [0u8; MAX_SYN_LEN];
        let len = write_syn(&mut buf, &syn);
        let bytes = &buf[..len];
        assert_eq!(internet_checksum(&[&bytes[..20]]), 0, "IPv4 header");
        let tcp = &bytes[20..];
        let pseudo = [0, 6, 0, tcp.len() as u8];
        assert_eq!(internet_checksum(&[&bytes[12..20], &pseudo, tcp]), 0, "TCP");
    }
}

#[test]
fn spoof_prefixes_parse_both_families_and_default_by_the_targets() {
    let v6: SpoofPrefix = "fd00:5eed:0:0:8000::/65".parse().unwrap();
    assert_eq!(v6.to_string(), "fd00:5eed:0:0:8000::/65");
    assert_eq!(v6.prefix_len(), 65);
    assert!(v6.contains("fd00:5eed::ffff:ffff:ffff:ffff".parse().unwrap()));
    assert!(!v6.contains("fd00:5eed::2".parse().unwrap()));
    assert!(!v6.contains("198.19.128.1".parse().unwrap()));
    let e = "fd00:5eed::1/64".parse::<SpoofPrefix>().unwrap_err();
    assert!(
        e.contains("host bits") && e.contains("fd00:5eed::/64"),
        "{e}"
    );
    assert!(
        "fd00::/129"
            .parse::<SpoofPrefix>()
            .unwrap_err()
            .contains("0..=128")
    );
    assert_eq!(
        "198.19.128.0/17"
            .parse::<SpoofPrefix>()
            .unwrap()
            .to_string(),
        "198.19.128.0/17"
    );
    // The lab's IPv6 default is the /64 the lab routes toward the daemon,
    // not a part of the /64 on the link.
    let t6: SocketAddr = "[fd00:5eed::2]:7".parse().unwrap();
    let d6 = SpoofPrefix::lab_default(t6.ip());
    assert_eq!(d6.to_string(), "fd00:5eed:0:1::/64");
    let link: SpoofPrefix = "fd00:5eed::/64".parse().unwrap();
    assert!(!link.contains(d6.network()));
    assert!(!d6.contains(t6.ip()));
    let mut rng = SplitMix64::new(1);
    let p: SpoofPrefix = "fd00:5eed::ff00/120".parse().unwrap();
    let mut seen = [false; 256];
    for _ in 0..20_000 {
        let IpAddr::V6(a) = p.random(&mut rng) else {
            panic!("an IPv6 prefix drew an IPv4 address")
        };
        assert!(p.contains(IpAddr::V6(a)));
        seen[usize::from(a.octets()[15])] = true;
    }
    assert!(seen.iter().all(|s| *s), "a /120 is covered");
}

#[test]
fn options_modes_mean_what_they_say() {
    let mut rng = SplitMix64::new(1);
    let none = SynOptions::draw(OptionsMode::None, &mut rng);
    assert_eq!(none, SynOptions::default());
    let fixed = SynOptions::draw(OptionsMode::Fixed, &mut rng);
    assert_eq!(
        (fixed.mss, fixed.window_scale, fixed.sack_permitted),
        (Some(1460), Some(7), true)
    );
    assert!(fixed.tsval.is_some());
    // Random: over many draws every option is seen both present and absent.
    let draws: Vec<_> = (0..1000)
        .map(|_| SynOptions::draw(OptionsMode::Random, &mut rng))
        .collect();
    assert!(draws.iter().any(|o| o.mss.is_some()) && draws.iter().any(|o| o.mss.is_none()));
    assert!(draws.iter().any(|o| o.sack_permitted) && draws.iter().any(|o| !o.sack_permitted));
    assert!(draws.iter().any(|o| o.tsval.is_some()) && draws.iter().any(|o| o.tsval.is_none()));
    assert!(
        draws.iter().any(|o| o.window_scale.is_some())
            && draws.iter().any(|o| o.window_scale.is_none())
    );
}

#[test]
fn bare_syn_is_40_bytes_and_full_options_fit_the_buffer() {
    let mut buf = [0u8; MAX_SYN_LEN];
    let mut rng = SplitMix64::new(3);
    let spoof: Ipv4Prefix = "198.19.0.0/16".parse().unwrap();
    let mut syn = syn_from(&mut rng, &spoof, OptionsMode::None);
    assert_eq!(write_syn(&mut buf, &syn), 40);
    syn.options = SynOptions {
        mss: Some(1460),
        window_scale: Some(14),
        sack_permitted: true,
        tsval: Some(1),
    };
    assert_eq!(write_syn(&mut buf, &syn), 60);
    // The same over IPv6: a 40-byte header instead of 20.
    syn.src = "fd00:5eed::8000:0:0:1".parse().unwrap();
    syn.dst = "fd00:5eed::2".parse().unwrap();
    assert_eq!(write_syn(&mut buf, &syn), MAX_SYN_LEN);
    syn.options = SynOptions::default();
    assert_eq!(write_syn(&mut buf, &syn), 60);
}

proptest! {
    #[test]
    fn spoofed_sources_stay_inside_the_prefix(seed: u64, addr: u32, len in 0u8..=32) {
        let prefix = Ipv4Prefix::new(Ipv4Addr::from(addr), len).unwrap();
        let mut rng = SplitMix64::new(seed);
        for _ in 0..256 {
            let a = prefix.random(&mut rng);
            prop_assert!(prefix.contains(a), "{a} outside {prefix}");
            prop_assert!(u32::from(a) >= u32::from(prefix.network()));
            prop_assert!(u32::from(a) <= u32::from(prefix.last()));
        }
    }
}

#[test]
fn spoofed_sources_cover_the_prefix() {
    // A /24 drawn 20,000 times: every one of the 256 addresses shows up.
    let prefix: Ipv4Prefix = "198.19.200.0/24".parse().unwrap();
    let mut rng = SplitMix64::new(99);
    let mut seen = [false; 256];
    for _ in 0..20_000 {
        seen[usize::from(prefix.random(&mut rng).octets()[3])] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn thread_generators_differ_and_repeat_per_seed() {
    let a: Vec<u64> = (0..4)
        .map(|i| SplitMix64::for_thread(42, i).next_u64())
        .collect();
    let b: Vec<u64> = (0..4)
        .map(|i| SplitMix64::for_thread(42, i).next_u64())
        .collect();
    assert_eq!(a, b);
    let mut d = a.clone();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), 4);
}

#[test]
fn prefix_parsing_refuses_with_the_reason() {
    assert_eq!(
        "198.19.128.0/17".parse::<Ipv4Prefix>().unwrap().to_string(),
        "198.19.128.0/17"
    );
    assert_eq!("10.0.0.1".parse::<Ipv4Prefix>().unwrap().prefix_len(), 32);
    let e = "198.19.128.1/17".parse::<Ipv4Prefix>().unwrap_err();
    assert!(
        e.contains("host bits") && e.contains("198.19.128.0/17"),
        "{e}"
    );
    assert!(
        "198.19.0.0/33"
            .parse::<Ipv4Prefix>()
            .unwrap_err()
            .contains("0..=32")
    );
    assert!(
        "nope/8"
            .parse::<Ipv4Prefix>()
            .unwrap_err()
            .contains("not an IPv4")
    );
}

#[test]
fn token_bucket_never_exceeds_rate_times_time_plus_burst() {
    // 10,000 pps, burst 64, asked for 64 every 1 ms of fake time over 2 s.
    let mut b = TokenBucket::new(10_000.0, 64, Duration::ZERO);
    let mut total = 0u64;
    for ms in 1..=2000u64 {
        let now = Duration::from_millis(ms);
        total += u64::from(b.take(now, 64));
        let bound = 10_000.0 * now.as_secs_f64() + 64.0;
        assert!(total as f64 <= bound, "{total} > {bound} at {ms} ms");
    }
    // And it does not fall far behind either: within one burst of 20,000.
    assert!(total >= 20_000 - 64, "only {total} in 2 s at 10k/s");
}

#[test]
fn token_bucket_caps_idle_credit_at_the_burst() {
    let mut b = TokenBucket::new(1_000.0, 32, Duration::ZERO);
    // Idle for 10 s: credit for 10,000, but the burst caps it.
    assert_eq!(b.take(Duration::from_secs(10), 1000), 32);
    assert_eq!(b.take(Duration::from_secs(10), 1000), 0);
    assert!(b.wait_hint() > Duration::ZERO);
    // A clock that steps back grants nothing.
    assert_eq!(b.take(Duration::from_secs(5), 1000), 0);
    assert_eq!(b.take(Duration::from_millis(10_010), 1000), 10);
}

fn target(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v4(p: Ipv4Prefix) -> SpoofPrefix {
    SpoofPrefix::V4(p)
}

#[test]
fn safety_refuses_targets_and_prefixes_outside_the_lab() {
    let lab: Ipv4Prefix = "198.19.128.0/17".parse().unwrap();
    assert!(safety::check(target("198.18.0.2:7"), &v4(lab), &[]).is_ok());
    let e = safety::check(target("192.0.2.1:80"), &v4(lab), &[]).unwrap_err();
    assert!(
        e.contains("--target") && e.contains("--allow-network"),
        "{e}"
    );
    let outside: Ipv4Prefix = "10.0.0.0/8".parse().unwrap();
    let e = safety::check(target("198.18.0.2:7"), &v4(outside), &[]).unwrap_err();
    assert!(e.contains("--spoof-prefix"), "{e}");
    // A prefix that only starts inside the lab is refused too.
    let wide: Ipv4Prefix = "198.16.0.0/13".parse().unwrap();
    assert!(safety::check(target("198.18.0.2:7"), &v4(wide), &[]).is_err());
    // The whole lab range would contain the daemon and the kernel address.
    let whole: Ipv4Prefix = "198.18.0.0/15".parse().unwrap();
    let e = safety::check(target("198.18.0.2:7"), &v4(whole), &[]).unwrap_err();
    assert!(e.contains("contains the target"), "{e}");
    let kernel: Ipv4Prefix = "198.18.0.0/31".parse().unwrap();
    let e = safety::check(target("198.18.0.9:7"), &v4(kernel), &[]).unwrap_err();
    assert!(e.contains("198.18.0.1"), "{e}");
    // --allow-network lifts the range rule for what it names, not the
    // overlap rule.
    let allowed: Vec<Cidr> = vec![
        "192.0.2.0/24".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    assert!(safety::check(target("192.0.2.1:80"), &v4(outside), &allowed).is_ok());
    let own: Ipv4Prefix = "192.0.2.0/24".parse().unwrap();
    assert!(safety::check(target("192.0.2.1:80"), &v4(own), &allowed).is_err());
    // IPv6: the lab's default is fine; a prefix of the other family, one
    // that holds the daemon, or one outside the lab is refused.
    let t6 = target("[fd00:5eed::2]:7");
    let d6 = SpoofPrefix::lab_default(t6.ip());
    assert!(safety::check(t6, &d6, &[]).is_ok());
    let e = safety::check(t6, &v4(lab), &[]).unwrap_err();
    assert!(e.contains("family"), "{e}");
    let e = safety::check(target("198.18.0.2:7"), &d6, &[]).unwrap_err();
    assert!(e.contains("family"), "{e}");
    let whole6: SpoofPrefix = "fd00:5eed::/64".parse().unwrap();
    let e = safety::check(t6, &whole6, &[]).unwrap_err();
    assert!(e.contains("contains the target"), "{e}");
    let low6: SpoofPrefix = "fd00:5eed::/112".parse().unwrap();
    let e = safety::check(target("[fd00:5eed::8000:0:0:1]:7"), &low6, &[]).unwrap_err();
    assert!(
        e.contains("fd00:5eed::1") || e.contains("fd00:5eed::2"),
        "{e}"
    );
    let out6: SpoofPrefix = "2001:db8::/64".parse().unwrap();
    let e = safety::check(t6, &out6, &[]).unwrap_err();
    assert!(e.contains("--spoof-prefix"), "{e}");
}

#[test]
fn default_args_are_the_command_lines_defaults() {
    let a = SynArgs::default();
    assert_eq!(a.target, target("198.18.0.2:7"));
    assert!(
        a.spoof_prefix.is_none(),
        "the prefix defaults by the target's family"
    );
    assert_eq!(a.spoof().to_string(), "198.19.128.0/17");
    assert_eq!(a.options, OptionsMode::Random);
    assert_eq!(
        (a.rate, a.duration, a.threads, a.batch),
        (None, 10.0, 1, 64)
    );
    assert_eq!(
        (a.seed, a.netns.as_deref(), a.probe_port),
        (None, None, None)
    );
    assert_eq!(a.metrics, "http://127.0.0.1:9464/metrics");
    assert_eq!(a.probe_concurrency, 4);
    assert!(!a.no_probe && !a.json && !a.compare_kernel);
    assert!(a.allow_network.is_empty());
    // What the defaults aim at is allowed without --allow-network.
    assert!(safety::check(a.target, &a.spoof(), &a.allow_network).is_ok());
}

#[test]
fn arguments_out_of_bounds_are_refused_before_anything_is_sent() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        syn: SynArgs,
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    for (flags, needle) in [
        (&["--duration", "301"][..], "--duration"),
        (&["--duration", "0"][..], "--duration"),
        (&["--threads", "0"][..], "--threads"),
        (&["--rate", "0"][..], "--rate"),
        (&["--target", "192.0.2.1:80"][..], "--target"),
    ] {
        let cli = Cli::try_parse_from(std::iter::once("syn").chain(flags.iter().copied()))
            .expect("flags parse");
        let e = run(&cli.syn, &stop).unwrap_err();
        assert!(e.to_string().contains(needle), "{flags:?}: {e}");
    }
}

#[test]
fn metrics_scrape_sums_series_and_computes_deltas() {
    let before = Scrape::parse(
        "# HELP smrnet_listen_syns_total x\nsmrnet_listen_syns_total{worker=\"0\"} 5\n\
         smrnet_listen_syns_total{worker=\"1\"} 5\nsmrnet_ip_drops_total{reason=\"a\"} 1\n",
    );
    let after = Scrape::parse(
        "smrnet_listen_syns_total{worker=\"0\"} 105\nsmrnet_listen_syns_total{worker=\"1\"} 55\n\
         smrnet_ip_drops_total{reason=\"a\"} 1\nsmrnet_ip_drops_total{reason=\"b\"} 4\ngarbage\n",
    );
    let d = Scrape::deltas(
        &before,
        &after,
        &[
            "smrnet_listen_syns_total",
            "smrnet_ip_drops_total",
            "smrnet_missing",
        ],
    );
    assert_eq!(d["smrnet_listen_syns_total"], 150.0);
    assert_eq!(d["smrnet_ip_drops_total"], 4.0);
    assert!(!d.contains_key("smrnet_missing"));
    assert_eq!(
        after.text.lines().count(),
        5,
        "keeps the text for metrics.prom"
    );
}
