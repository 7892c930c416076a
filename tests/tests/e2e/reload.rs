//! SIGHUP: the configuration file re-read and applied live, or refused
//! with nothing changed.

use crate::clients::connect;
use crate::names::RELOADS;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, Lab, Outcome, lab_with_config_file, scrape};

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

fn hup(lab: &Lab) {
    let pid = rustix::process::Pid::from_raw(lab.pid() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("send SIGHUP");
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
