//! `/metrics` is valid Prometheus exposition and counts what happened.

use crate::clients::http_get_once;
use crate::names::{CURR_ESTAB, HANDSHAKES, PASSIVE_OPENS, TABLE_ENTRIES};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use tests::{DAEMON_V4, HTTP_PORT, Metrics, Outcome, have, lab};

pub fn metrics_pass_promtool_and_count_what_the_test_did() -> Outcome {
    const CONNS: usize = 50;
    let lab = lab();
    let before = Metrics::parse(&lab.scrape().expect("scrape"));
    let addr = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    lab.in_netns(|| {
        for i in 0..CONNS {
            http_get_once(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        }
    })
    .expect("enter the lab");
    let text = lab.scrape().expect("scrape");
    let after = Metrics::parse(&text);
    assert_eq!(
        after.sum(PASSIVE_OPENS) - before.sum(PASSIVE_OPENS),
        CONNS as f64,
        "{PASSIVE_OPENS} should have grown by exactly the connections made"
    );
    assert_eq!(
        after.sum(HANDSHAKES) - before.sum(HANDSHAKES),
        CONNS as f64,
        "the handshake-time histogram should hold one sample per connection"
    );
    // Client-closed connections leave the table at their last ACK.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let m = Metrics::parse(&lab.scrape().expect("scrape"));
        if m.sum(TABLE_ENTRIES) == 0.0 && m.sum(CURR_ESTAB) == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "5 s after the last close: {} table entries, {} established",
            m.sum(TABLE_ENTRIES),
            m.sum(CURR_ESTAB)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    if !have("promtool") {
        return Outcome::Skipped(
            "counters match, but promtool is not installed (apt-get install prometheus)".into(),
        );
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Outcome::Passed
}
