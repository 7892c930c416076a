//! SIGHUP: the configuration file re-read and applied live, or refused
//! with nothing changed.

use crate::clients::connect;
use crate::names::{
    ACCEPT_QUEUE_LIMIT, LISTEN_QUEUE_OVERFLOWS, RELOADS, SYNCACHE_ADDED, SYNCACHE_LIMIT,
    SYNCACHE_LISTENER_LIMIT, SYNCACHE_OVERFLOWS, SYNCOOKIES_SENT,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, ECHO_PORT, Lab, Outcome, lab_with_config_file, scrape};
use tools::load::syn::{self, OptionsMode, SynArgs};

/// A config file in the temp dir, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(tag: &str, text: &str) -> ConfigFile {
        let path =
            std::env::temp_dir().join(format!("smrnet-e2e-{tag}-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the config file");
        ConfigFile(path)
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.0, text).expect("rewrite the config file");
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn at(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(DAEMON_V4), port)
}

fn echo_once(s: &mut std::net::TcpStream, what: &[u8]) -> std::io::Result<()> {
    s.write_all(what)?;
    let mut back = vec![0u8; what.len()];
    s.read_exact(&mut back)?;
    assert_eq!(back, what);
    Ok(())
}

fn signal(lab: &Lab, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(lab.pid() as i32).expect("a pid");
    rustix::process::kill_process(pid, sig).expect("signal the daemon");
}

fn hup(lab: &Lab) {
    signal(lab, rustix::process::Signal::HUP);
}

fn reloads(lab: &Lab, result: &str) -> f64 {
    scrape(lab).sum_where(RELOADS, &format!("result=\"{result}\""))
}

/// Waits (bounded) for the reload counter of `result` to reach `n`.
fn wait_reloads(lab: &Lab, result: &str, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while reloads(lab, result) < n {
        assert!(
            Instant::now() < deadline,
            "no {result} reload counted in 3 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const BEFORE: &str = "listen = [\"0.0.0.0:7=echo\", \"0.0.0.0:80=http\"]\n";

pub fn sighup_adds_a_service_and_removes_one_with_connections_open() -> Outcome {
    let file = ConfigFile::new("reload", BEFORE);
    let lab = lab_with_config_file(&file.0);
    let mut open = lab
        .in_netns(|| {
            (0..3)
                .map(|i| {
                    let mut s = connect(at(7)).unwrap_or_else(|e| panic!("echo {i}: {e}"));
                    echo_once(&mut s, b"before").expect("echo before the reload");
                    s
                })
                .collect::<Vec<_>>()
        })
        .expect("enter the lab");
    file.rewrite("listen = [\"0.0.0.0:80=http\", \"0.0.0.0:8080=echo\"]\n");
    hup(&lab);
    wait_reloads(&lab, "applied", 1.0);
    lab.in_netns(|| {
        // The new service answers.
        let mut s = connect(at(8080)).expect("connect to the new echo port");
        echo_once(&mut s, b"new").expect("echo on the new port");
        // The removed listener's connections finish with their service.
        for (i, s) in open.iter_mut().enumerate() {
            echo_once(s, b"after").unwrap_or_else(|e| panic!("connection {i} after: {e}"));
            s.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("clean close");
            assert!(rest.is_empty());
        }
        // New connections to the removed port meet an RST.
        match connect(at(7)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            other => panic!("port 7 after its removal: expected RST, got {other:?}"),
        }
    })
    .expect("enter the lab");
    assert_eq!(reloads(&lab, "refused"), 0.0);
    Outcome::Passed
}

pub fn sighup_with_a_bad_file_changes_nothing_and_says_why() -> Outcome {
    let file = ConfigFile::new("reload-bad", BEFORE);
    let lab = lab_with_config_file(&file.0);
    // A change that needs a restart, beside one that could be live: neither
    // is applied.
    file.rewrite("table-size = 4096\nlisten = [\"0.0.0.0:80=http\"]\n");
    hup(&lab);
    wait_reloads(&lab, "refused", 1.0);
    // A file that does not parse.
    file.rewrite("listen = [\"0.0.0.0:7=echo\"\n");
    hup(&lab);
    wait_reloads(&lab, "refused", 2.0);
    lab.in_netns(|| {
        let mut s = connect(at(7)).expect("port 7 still listens");
        echo_once(&mut s, b"still").expect("echo after refused reloads");
    })
    .expect("enter the lab");
    assert_eq!(reloads(&lab, "applied"), 0.0);
    let log = std::fs::read_to_string(lab.log()).expect("read the log");
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reload refused"))
        .collect();
    assert_eq!(refusals.len(), 2, "one line per refusal: {refusals:#?}");
    assert!(refusals[0].contains("`table-size`"), "{}", refusals[0]);
    assert!(
        refusals[1].contains(".toml"),
        "names the file: {}",
        refusals[1]
    );
    Outcome::Passed
}

const LIMITS_BEFORE: &str = "listen = [\"0.0.0.0:7=echo\", \"0.0.0.0:80=http\"]\nsyncache-limit = 4096\n\
                             syncache-per-listener = 4096\naccept-queue = 64\n";

/// `n` connections to the echo port opened while the daemon is stopped, so
/// that their SYNs, and then their final ACKs, reach it in one burst (more
/// final ACKs in one read batch than the accept queue holds, if it is
/// small). Every connect must succeed (the kernel's side completes on the
/// SYN-ACK); the daemon's side may hold some back (bounded by the clients'
/// timeouts). The connections are closed on return.
fn burst_of_connections(lab: &Lab, n: usize) {
    /// Continues the daemon when dropped, on every path out.
    struct Stopped<'a>(&'a Lab);
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            signal(self.0, rustix::process::Signal::CONT);
        }
    }
    signal(lab, rustix::process::Signal::STOP);
    let stopped = Stopped(lab);
    let cont = || signal(lab, rustix::process::Signal::CONT);
    let result = lab.in_netns(|| {
        std::thread::scope(|scope| {
            let clients: Vec<_> = (0..n)
                .map(|i| {
                    scope.spawn(move || {
                        connect(at(ECHO_PORT)).unwrap_or_else(|e| panic!("connection {i}: {e}"))
                    })
                })
                .collect();
            // The SYNs are queued on the stopped daemon's device.
            std::thread::sleep(Duration::from_millis(200));
            cont();
            let joined: Vec<_> = clients.into_iter().map(|c| c.join()).collect();
            // Long enough for every final ACK of the burst to arrive.
            std::thread::sleep(Duration::from_millis(300));
            joined
        })
    });
    drop(stopped);
    for r in result.expect("enter the lab") {
        if let Err(panic) = r {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A short flood of spoofed SYNs (`n` of them) at the echo port.
fn syn_flood(lab: &Lab, n: u64) -> syn::SynReport {
    let args = SynArgs {
        target: std::net::SocketAddr::V4(SocketAddrV4::new(DAEMON_V4, ECHO_PORT)),
        spoof_prefix: Some("198.19.128.0/17".parse().expect("prefix")),
        options: OptionsMode::Random,
        rate: Some(2 * n),
        duration: 0.5,
        threads: 1,
        batch: 16,
        seed: Some(0x1117),
        netns: Some(lab.netns().name().to_string()),
        metrics: lab.metrics_url(),
        probe_concurrency: 1,
        probe_port: None,
        no_probe: true,
        allow_network: Vec::new(),
        json: false,
        compare_kernel: false,
    };
    syn::run(&args, &AtomicBool::new(false)).unwrap_or_else(|e| panic!("syn: {e}"))
}

pub fn sighup_moves_the_syncache_and_accept_queue_limits_live() -> Outcome {
    let file = ConfigFile::new("reload-limits", LIMITS_BEFORE);
    let lab = lab_with_config_file(&file.0);
    let m = scrape(&lab);
    assert_eq!(
        (
            m.sum(SYNCACHE_LIMIT),
            m.sum(SYNCACHE_LISTENER_LIMIT),
            m.sum(ACCEPT_QUEUE_LIMIT)
        ),
        (4096.0, 4096.0, 64.0)
    );

    // Accept queue: a burst of 32 handshakes under the start limit of 64
    // never overflows; lowered to 1 by a reload, the same burst does (the
    // final ACKs past the first of a read batch are dropped and counted,
    // their SYN-cache entries kept for the SYN-ACK's retransmission).
    burst_of_connections(&lab, 32);
    assert_eq!(scrape(&lab).sum(LISTEN_QUEUE_OVERFLOWS), 0.0);
    file.rewrite(&LIMITS_BEFORE.replace("accept-queue = 64", "accept-queue = 1"));
    hup(&lab);
    wait_reloads(&lab, "applied", 1.0);
    assert_eq!(scrape(&lab).sum(ACCEPT_QUEUE_LIMIT), 1.0);
    burst_of_connections(&lab, 32);
    let overflows = scrape(&lab).sum(LISTEN_QUEUE_OVERFLOWS);
    assert!(overflows >= 1.0, "no listen-queue overflow at a limit of 1");

    // SYN cache: lowered to 16 entries, a flood of 200 spoofed SYNs adds at
    // most 16 entries (whatever the burst above still holds is kept) and
    // is answered with cookies past them, each counted as an overflow.
    file.rewrite(
        &LIMITS_BEFORE
            .replace("syncache-limit = 4096", "syncache-limit = 16")
            .replace("syncache-per-listener = 4096", "syncache-per-listener = 16"),
    );
    hup(&lab);
    wait_reloads(&lab, "applied", 2.0);
    let m0 = scrape(&lab);
    assert_eq!(
        (m0.sum(SYNCACHE_LIMIT), m0.sum(SYNCACHE_LISTENER_LIMIT)),
        (16.0, 16.0)
    );
    assert_eq!(m0.sum(ACCEPT_QUEUE_LIMIT), 64.0, "back to the file's value");
    let report = syn_flood(&lab, 200);
    let m1 = scrape(&lab);
    let d = |m: &tests::Metrics, n: &str| m.sum(n) - m0.sum(n);
    let sent = report.flood.sent as f64;
    assert!(sent >= 150.0, "the flood sent only {sent} SYNs");
    assert!(
        d(&m1, SYNCACHE_ADDED) <= 16.0,
        "{} entries added under a limit of 16",
        d(&m1, SYNCACHE_ADDED)
    );
    assert!(
        d(&m1, SYNCOOKIES_SENT) >= 0.8 * sent - 16.0
            && d(&m1, SYNCACHE_OVERFLOWS) >= 0.8 * sent - 16.0,
        "cookies {} overflows {} for {sent} SYNs",
        d(&m1, SYNCOOKIES_SENT),
        d(&m1, SYNCACHE_OVERFLOWS)
    );

    // Raised back: the next flood's SYNs get entries at once, beside the
    // ones still held.
    file.rewrite(LIMITS_BEFORE);
    hup(&lab);
    wait_reloads(&lab, "applied", 3.0);
    let m2 = scrape(&lab);
    let report = syn_flood(&lab, 200);
    let m3 = scrape(&lab);
    let added = m3.sum(SYNCACHE_ADDED) - m2.sum(SYNCACHE_ADDED);
    assert_eq!(m3.sum(SYNCACHE_LIMIT), 4096.0);
    assert!(
        added >= 0.8 * report.flood.sent as f64,
        "raised limit: {added} entries added for {} SYNs",
        report.flood.sent
    );
    // And the daemon serves on.
    lab.in_netns(|| {
        let mut s = connect(at(ECHO_PORT)).expect("connect after the reloads");
        echo_once(&mut s, b"after").expect("echo after the reloads");
    })
    .expect("enter the lab");
    assert_eq!(reloads(&lab, "refused"), 0.0);
    Outcome::Passed
}
