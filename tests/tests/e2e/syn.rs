//! `smrnet load syn` against a lab: the flood reaches the listener, the
//! legitimate client keeps succeeding, and the daemon keeps serving.

use crate::clients::http_get_once;
use crate::names as metric;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use tests::{DAEMON_V4, DAEMON_V6, ECHO_PORT, HTTP_PORT, Lab, Outcome, lab};
use tools::load::syn::{self, SynArgs};

/// A modest rate the daemon's two workers absorb without the TUN queue
/// overflowing, so every SYN sent should be counted.
const RATE: u64 = 20_000;

pub fn syn_flood_reaches_the_listener_and_legit_clients_still_connect() -> Outcome {
    let lab = lab();
    let args = SynArgs {
        rate: Some(RATE),
        duration: 3.0,
        batch: 32,
        seed: Some(0x5eed),
        probe_concurrency: 2,
        ..SynArgs::for_lab(&lab, SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT))
    };
    let kernel_before = lab.in_netns(kernel_snmp).expect("enter the lab");
    let report = syn::run(&args, &AtomicBool::new(false)).unwrap_or_else(|e| panic!("syn: {e}"));
    let kernel_after = lab.in_netns(kernel_snmp).expect("enter the lab");
    eprintln!("{report}");
    assert_eq!(report.spoof_prefix, "198.19.128.0/17");
    assert_spoofed_sources_are_routed_via_the_daemon(&lab, &args, IpAddr::V4(DAEMON_V4));
    let sent = report.flood.sent as f64;
    // Paced: close to the asked rate over 3 s, neither far below nor above.
    assert!(
        sent >= 0.8 * 3.0 * RATE as f64 && sent <= 3.0 * RATE as f64 + 2000.0,
        "sent {sent} SYNs in 3 s at {RATE}/s"
    );
    let reached = report
        .listen_syns_per_sent
        .expect("the daemon exports smrnet_listen_syns_total");
    assert!(
        reached >= 0.9,
        "only {:.1} % of the flood's SYNs reached the listener",
        reached * 100.0
    );
    assert_answered_and_probes_ok(&report, sent, "");
    // The SYN-ACKs to the spoofed sources ended in the lab namespace's
    // kernel: dropped as not its address (no forwarding), with no ICMP
    // unreachable and nothing forwarded anywhere.
    let k = |name: &str| kernel_after[name] - kernel_before[name];
    assert!(
        k("Ip.InAddrErrors") >= 0.9 * sent,
        "the namespace's kernel dropped only {} of the daemon's answers to {sent} spoofed SYNs",
        k("Ip.InAddrErrors")
    );
    assert_eq!(
        k("Ip.ForwDatagrams"),
        0.0,
        "the lab namespace forwarded packets"
    );
    assert_eq!(
        k("Icmp.OutDestUnreachs"),
        0.0,
        "the lab namespace sent ICMP unreachables"
    );
    // The daemon still serves after the flood.
    let http = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    lab.in_netns(|| http_get_once(http).expect("HTTP after the flood"))
        .expect("enter the lab");
    Outcome::Passed
}

/// The IPv6 flood: spoofed sources from the lab's IPv6 spoof prefix
/// (`fd00:5eed:0:1::/64`, the default for an IPv6 target, which the lab
/// routes toward the daemon rather than having it on the link) reach the
/// daemon's listener, its SYN cache and cookies answer them, the legitimate
/// probe over IPv6 keeps succeeding, and the namespace's kernel drops the
/// SYN-ACKs to the spoofed sources without forwarding or answering them.
pub fn ipv6_syn_flood_moves_the_syn_cache_and_legit_ipv6_clients_still_connect() -> Outcome {
    const RATE6: u64 = 5_000;
    let lab = lab();
    let args = SynArgs {
        rate: Some(RATE6),
        duration: 3.0,
        batch: 32,
        seed: Some(0x6eed),
        probe_concurrency: 2,
        ..SynArgs::for_lab(&lab, SocketAddr::new(IpAddr::V6(DAEMON_V6), ECHO_PORT))
    };
    let kernel_before = lab.in_netns(kernel_snmp6).expect("enter the lab");
    let report = syn::run(&args, &AtomicBool::new(false)).unwrap_or_else(|e| panic!("syn: {e}"));
    let kernel_after = lab.in_netns(kernel_snmp6).expect("enter the lab");
    eprintln!("{report}");
    assert_eq!(report.spoof_prefix, "fd00:5eed:0:1::/64");
    assert_spoofed_sources_are_routed_via_the_daemon(&lab, &args, IpAddr::V6(DAEMON_V6));
    let sent = report.flood.sent as f64;
    assert!(
        sent >= 0.8 * 3.0 * RATE6 as f64,
        "sent {sent} IPv6 SYNs in 3 s at {RATE6}/s"
    );
    assert_answered_and_probes_ok(&report, sent, "IPv6 ");
    let k = |name: &str| kernel_after[name] - kernel_before[name];
    assert!(
        k("Ip6InAddrErrors") >= 0.9 * sent,
        "the namespace's kernel dropped only {} of the daemon's answers to {sent} spoofed SYNs",
        k("Ip6InAddrErrors")
    );
    assert_eq!(
        k("Ip6OutForwDatagrams"),
        0.0,
        "the lab namespace forwarded packets"
    );
    assert_eq!(
        k("Icmp6OutDestUnreachs"),
        0.0,
        "the lab namespace sent ICMPv6 unreachables"
    );
    Outcome::Passed
}

/// The lab namespace's kernel reaches the flood's spoofed sources through
/// the route via the daemon's address on the TUN device, not as on-link
/// neighbours: `ip route get` for sampled sources shows the gateway. That
/// route is what carries the daemon's SYN-ACKs to them back into the
/// namespace's kernel (and to its drop).
fn assert_spoofed_sources_are_routed_via_the_daemon(lab: &Lab, args: &SynArgs, daemon: IpAddr) {
    let spoof = args.spoof();
    let mut rng = smr::rng::SplitMix64::new(7);
    for _ in 0..4 {
        let src: IpAddr = match spoof {
            syn::SpoofPrefix::V4(p) => p.random(&mut rng).into(),
            syn::SpoofPrefix::V6(p) => p.random(&mut rng).into(),
        };
        let out = std::process::Command::new("ip")
            .args(["-n", lab.netns().name(), "route", "get", &src.to_string()])
            .output()
            .expect("run ip route get");
        let route = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && route.contains(&format!("via {daemon} dev {}", tools::lab::DEVICE)),
            "the lab's route to spoofed source {src} is not via the daemon: {route}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The calling thread's namespace's IPv6 counters (`Ip6InAddrErrors`), from
/// /proc/thread-self/net/snmp6: one `name value` pair a line.
fn kernel_snmp6() -> HashMap<String, f64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp6").expect("read snmp6");
    text.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(char::is_whitespace)?;
            Some((n.to_string(), v.trim().parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

/// The calling thread's namespace's IP and ICMP counters, `Ip.InAddrErrors`
/// style, from /proc/thread-self/net/snmp (per thread: /proc/self would
/// show the main thread's namespace).
fn kernel_snmp() -> HashMap<String, f64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("read snmp");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = HashMap::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((proto, names)), Some((_, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            out.insert(format!("{proto}.{n}"), v.parse().unwrap_or(f64::NAN));
        }
    }
    out
}

/// The daemon answered (SYN cache or cookies) at least 90 % of the `sent`
/// spoofed SYNs, and the legitimate probe made at least 100 attempts with
/// 99 % success both before and during the flood. `family` prefixes the
/// messages ("" or "IPv6 ").
fn assert_answered_and_probes_ok(report: &syn::SynReport, sent: f64, family: &str) {
    let d = |n: &str| report.daemon.get(n).copied().unwrap_or(0.0);
    assert!(
        d(metric::SYNCACHE_ADDED) + d(metric::SYNCOOKIES_SENT) >= 0.9 * sent,
        "SYN cache + cookies answered too few of {sent} {family}SYNs: {:?}",
        report.daemon
    );
    for (phase, p) in [
        ("no flood", &report.baseline),
        ("under flood", &report.under_flood),
    ] {
        let p = p.as_ref().expect("the probe ran");
        let ratio = syn::success_ratio(p);
        assert!(
            p.attempted >= 100 && ratio >= 0.99,
            "legit {family}{phase}: {} ok of {} ({:.2} %)",
            p.ok,
            p.attempted,
            ratio * 100.0
        );
    }
}
