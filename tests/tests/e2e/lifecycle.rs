//! Starting, stopping and privileges.

use crate::clients::{connect, http_get_once};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, ECHO_PORT, HTTP_PORT, Outcome, lab, lab_with, smrnet_binary};

pub fn sigterm_exits_zero_within_2s_with_connections_open() -> Outcome {
    stop_with_connections_open(rustix::process::Signal::TERM, "SIGTERM")
}

pub fn sigint_exits_zero_within_2s_with_connections_open() -> Outcome {
    stop_with_connections_open(rustix::process::Signal::INT, "SIGINT")
}

fn stop_with_connections_open(signal: rustix::process::Signal, name: &str) -> Outcome {
    const OPEN: usize = 20;
    let mut lab = lab();
    let echo = SocketAddr::new(IpAddr::V4(DAEMON_V4), ECHO_PORT);
    // Established and idle: each has echoed one message.
    let mut streams = lab
        .in_netns(|| {
            (0..OPEN)
                .map(|i| {
                    let mut s = connect(echo).unwrap_or_else(|e| panic!("connection {i}: {e}"));
                    s.write_all(b"ping").expect("write");
                    let mut back = [0u8; 4];
                    s.read_exact(&mut back).expect("echo");
                    s
                })
                .collect::<Vec<_>>()
        })
        .expect("enter the lab");

    let t0 = Instant::now();
    lab.daemon_mut().signal(signal).expect("send the signal");
    let status = lab
        .daemon_mut()
        .wait_timeout(Duration::from_secs(2))
        .expect("wait for the daemon");
    let took = t0.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running 2 s after {name}"));
    assert!(status.success(), "exit status {status} after {name}");
    eprintln!("{name}: exited in {:.0} ms", took.as_secs_f64() * 1e3);

    // Its connections were closed or reset, not left hanging.
    for (i, s) in streams.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) => {}
            other => panic!("connection {i} after shutdown: expected FIN or RST, got {other:?}"),
        }
    }
    lab.down().expect("lab down");
    Outcome::Passed
}

pub fn user_nobody_still_serves() -> Outcome {
    let lab = lab_with(2, &["--user", "nobody"]);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", lab.pid())).expect("read status");
    let uids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid line")
        .split_whitespace()
        .collect();
    assert!(
        uids.iter().all(|u| *u != "0"),
        "the daemon still has uid 0 somewhere (real, effective, saved, fs): {uids:?}"
    );
    // Credentials are per thread (raw syscalls): every thread dropped its
    // own, the forward thread (which entered the namespace first) included.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", lab.pid())).expect("list threads");
    for task in tasks {
        let task = task.expect("a thread");
        let status = std::fs::read_to_string(task.path().join("status")).expect("thread status");
        let name = status.lines().next().unwrap_or("").to_owned();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .expect("Uid line")
            .to_owned();
        assert!(
            uid.split_whitespace().all(|u| u != "0"),
            "thread {name} still has uid 0: {uid}"
        );
    }
    // It serves new connections and its metrics after the drop (the lab's
    // own readiness check already connected once).
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    lab.in_netns(|| {
        for i in 0..20 {
            http_get_once(addr).unwrap_or_else(|e| panic!("connection {i} as nobody: {e}"));
        }
    })
    .expect("enter the lab");
    lab.scrape().expect("metrics as nobody");
    Outcome::Passed
}

/// Runs `smrnet lab down --all` for a private run directory when dropped, so
/// a failing CLI test still removes its lab.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = Command::new(smrnet_binary())
            .args(["lab", "down", "--all"])
            .env("SMRNET_RUN_DIR", &self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn lab_cli_up_exec_down_leaves_nothing_behind() -> Outcome {
    let dir = RunDir(std::env::temp_dir().join(format!("smrnet-e2e-run-{}", std::process::id())));
    let smrnet = |args: &[&str]| {
        let out = Command::new(smrnet_binary())
            .args(args)
            .env("SMRNET_RUN_DIR", &dir.0)
            .output()
            .expect("run smrnet");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "smrnet {}: {}\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let up = smrnet(&["lab", "up", "--workers", "1", "--metrics", "127.0.0.1:0"]);
    let field = |name: &str| {
        up.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("`lab up` printed no {name}:\n{up}"))
    };
    let netns = field("namespace");
    let metrics = field("metrics");
    assert!(netns.starts_with("smrnet-lab-"), "namespace {netns}");
    let netns_path = PathBuf::from("/run/netns").join(&netns);
    assert!(netns_path.exists());

    // exec runs inside the namespace: the kernel end of the link is there.
    let addrs = smrnet(&[
        "lab", "exec", "--", "ip", "-brief", "addr", "show", "dev", "smr0",
    ]);
    assert!(
        addrs.contains("198.18.0.1/15"),
        "ip addr inside the lab:\n{addrs}"
    );
    // And the metrics URL it printed answers.
    let addr: SocketAddr = metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .expect("metrics address");
    let (status, body) =
        tools::lab::http_get(addr, "/metrics", Duration::from_secs(5)).expect("scrape");
    assert_eq!(status, 200);
    // A lab the CLI starts gets `SMRNET_LAB_OFFLOAD` too (inherited).
    assert_eq!(
        tests::Metrics::parse(&body).sum(crate::names::OFFLOAD_ENABLED),
        crate::offload::offload_enabled_by_the_environment(),
        "{} of a CLI lab with SMRNET_LAB_OFFLOAD={:?}",
        crate::names::OFFLOAD_ENABLED,
        std::env::var_os("SMRNET_LAB_OFFLOAD")
    );
    assert!(smrnet(&["lab", "list"]).contains(&netns));

    smrnet(&["lab", "down"]);
    assert!(!netns_path.exists(), "namespace {netns} left behind");
    assert!(
        smrnet(&["lab", "list"]).trim().is_empty(),
        "lab still recorded"
    );
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "the daemon still listens on {addr} after lab down"
    );
    Outcome::Passed
}
