//! What an operator meets around the daemon: `lab up --prometheus`, and
//! `lab up` failing with a message that names the cause and leaves nothing.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tests::{Outcome, have, smrnet_binary};

/// A private run directory: `smrnet lab down --all` for it and its removal
/// when dropped, so a failing test still removes its lab.
struct RunDir(PathBuf);

impl RunDir {
    fn new(what: &str) -> RunDir {
        let dir = std::env::temp_dir().join(format!("smrnet-e2e-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the run directory");
        RunDir(dir)
    }

    fn smrnet(&self, args: &[&str]) -> Output {
        Command::new(smrnet_binary())
            .args(args)
            .env("SMRNET_RUN_DIR", &self.0)
            .output()
            .expect("run smrnet")
    }

    fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = self.smrnet(&["lab", "down", "--all"]);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lab_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(tools::lab::NETNS_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// The first `smrnet-lab-<6 hex digits>` in `text`.
fn lab_namespace_in(text: &str) -> Option<String> {
    let prefix = tools::lab::NETNS_PREFIX;
    text.match_indices(prefix).find_map(|(i, _)| {
        let id = text.get(i + prefix.len()..i + prefix.len() + 6)?;
        id.chars()
            .all(|c| c.is_ascii_hexdigit())
            .then(|| format!("{prefix}{id}"))
    })
}

fn field(up: &str, name: &str) -> String {
    up.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("`lab up` printed no {name}:\n{up}"))
}

fn get(addr: SocketAddr, path: &str) -> String {
    match tools::lab::http_get(addr, path, Duration::from_secs(5)) {
        Ok((200, body)) => body,
        other => panic!("GET http://{addr}{path}: {other:?}"),
    }
}

pub fn lab_up_prometheus_scrapes_the_daemon_and_lab_down_removes_it() -> Outcome {
    if !have("prometheus") {
        return Outcome::Skipped("prometheus is not installed (apt-get install prometheus)".into());
    }
    let run = RunDir::new("prometheus");
    let out = run.smrnet(&[
        "lab",
        "up",
        "--workers",
        "1",
        "--metrics",
        "127.0.0.1:0",
        "--prometheus",
    ]);
    let up = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lab up --prometheus: {}\n{up}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let url = field(&up, "prometheus");
    let prom: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("prometheus address");
    let metrics = field(&up, "metrics");
    let metrics = metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");

    // The rules are loaded, all of them.
    let rules = get(prom, "/api/v1/rules");
    for alert in [
        "SmrnetPoolNearCap",
        "SmrnetTableNearCap",
        "SmrnetPoolExhausted",
        "SmrnetStalledReader",
        "SmrnetSynCookiesSent",
        "SmrnetListenQueueOverflow",
        "SmrnetWorkerStalled",
    ] {
        assert!(rules.contains(alert), "{alert} not loaded:\n{rules}");
    }
    // And the daemon is scraped: `up` for its address turns 1 within a few
    // scrape intervals (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = "/api/v1/query?query=smrnet_workers";
    loop {
        let body = get(prom, query);
        if body.contains(metrics) && body.contains("\"1\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus has no smrnet_workers from {metrics} after 30 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let down = run.smrnet(&["lab", "down"]);
    assert!(down.status.success(), "lab down: {down:?}");
    assert!(
        std::net::TcpStream::connect_timeout(&prom, Duration::from_millis(500)).is_err(),
        "prometheus still listens on {prom} after lab down"
    );
    assert_eq!(run.files(), Vec::<String>::new(), "files left behind");
    Outcome::Passed
}

/// `--metrics` on a port another process holds: the first line says so and
/// names the port; no namespace, daemon or file is left.
pub fn lab_up_with_the_metrics_port_taken_names_it_and_leaves_nothing() -> Outcome {
    let run = RunDir::new("port-taken");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = run.smrnet(&["lab", "up", "--workers", "1", "--metrics", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lab up succeeded on a taken port");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&addr) && first.contains("in use"),
        "the first line does not say {addr} is in use:\n{stderr}"
    );
    // Refused before anything was created (other tests' labs come and go
    // meanwhile, so the namespace list itself proves nothing here).
    assert!(
        !stderr.contains(tools::lab::NETNS_PREFIX),
        "a namespace was involved:\n{stderr}"
    );
    assert_eq!(run.files(), Vec::<String>::new(), "files left behind");
    drop(taken);
    Outcome::Passed
}

/// A daemon that dies during start-up (here: an unwritable pcap path, after
/// the device exists): the error is the daemon's own, first; the namespace,
/// the state and the log file are all gone.
pub fn failed_lab_up_removes_everything_it_created() -> Outcome {
    let run = RunDir::new("failed-up");
    let pcap = Path::new("/nonexistent-smrnet-dir/lab.pcap");
    let out = run.smrnet(&[
        "lab",
        "up",
        "--workers",
        "1",
        "--metrics",
        "127.0.0.1:0",
        "--",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lab up succeeded with a bad --pcap");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("smrnet: smrnetd exited") && first.contains("lab.pcap"),
        "the first line does not give the daemon's reason:\n{stderr}"
    );
    // The daemon's log (quoted in the error) names the lab's namespace:
    // that one must be gone (other tests' labs come and go meanwhile).
    let netns = lab_namespace_in(&stderr).expect("the log tail names the namespace");
    assert!(
        !lab_namespaces().contains(&netns),
        "namespace {netns} was left behind"
    );
    assert_eq!(run.files(), Vec::<String>::new(), "files left behind");

    // A daemon that cannot even start: its log file goes too.
    let out = run.smrnet(&["lab", "up", "--daemon", "/nonexistent-smrnet-dir/smrnetd"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lab up succeeded without a daemon");
    assert!(
        stderr.starts_with("smrnet: start /nonexistent-smrnet-dir/smrnetd"),
        "{stderr}"
    );
    assert_eq!(run.files(), Vec::<String>::new(), "files left behind");
    Outcome::Passed
}
