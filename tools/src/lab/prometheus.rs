//! `lab up --prometheus`: Debian's `prometheus` server beside a lab, on the
//! host side where the daemon's metrics listener is, scraping the daemon and
//! evaluating the alerting rules of `ops/alerts.yml` (built into this binary,
//! so an installed `smrnet` needs no checkout).
//!
//! Everything it uses lives in one directory, `<run dir>/lab-<id>-prometheus`
//! (configuration, rules, the TSDB and its log). Invariant, as for the rest
//! of the lab: a [`Prometheus`] owns its process and that directory until
//! it is stopped or handed to the lab's state file, so a failure or an
//! interrupt at any step removes both.

use super::daemon::{alive, log_tail, signal_pid};
use super::{LabError, http_get, interrupt};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The alerting rules, as checked by `promtool test rules` in CI.
pub const ALERT_RULES: &str = include_str!("../../../ops/alerts.yml");
/// Scrape and rule-evaluation interval: short, so an alert is seen firing
/// within seconds of the load that causes it.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// The address tried first: Prometheus's own default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9090";
/// Between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a detached lab records to stop its Prometheus later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrometheusState {
    pub pid: u32,
    pub listen: SocketAddr,
    pub dir: PathBuf,
}

/// A running Prometheus server: stopped, and its directory removed, on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Option<Child>,
    state: PrometheusState,
}

/// The server's configuration: one job scraping the daemon, the rules file.
pub fn config(metrics: SocketAddr, rules: &Path) -> String {
    let secs = INTERVAL.as_secs();
    format!(
        "global:\n  scrape_interval: {secs}s\n  evaluation_interval: {secs}s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: smrnet\n    static_configs:\n      - targets: [\"{metrics}\"]\n",
        rules = rules.display().to_string(),
    )
}

impl Prometheus {
    /// Start `prometheus` listening on `listen`, scraping `metrics`, with its
    /// files under `dir` (created; it must not exist), and wait until it
    /// says it is ready or `deadline` passes.
    pub fn start(
        dir: &Path,
        listen: SocketAddr,
        metrics: SocketAddr,
        deadline: Instant,
    ) -> Result<Prometheus, LabError> {
        std::fs::create_dir(dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        // Owned from here: an early return removes the directory.
        let mut p = Prometheus {
            child: None,
            state: PrometheusState {
                pid: 0,
                listen,
                dir: dir.to_path_buf(),
            },
        };
        let rules = dir.join("alerts.yml");
        let conf = dir.join("prometheus.yml");
        let log = dir.join("prometheus.log");
        std::fs::write(&rules, ALERT_RULES)
            .map_err(|e| LabError::io(format!("write {}", rules.display()), e))?;
        std::fs::write(&conf, config(metrics, &rules))
            .map_err(|e| LabError::io(format!("write {}", conf.display()), e))?;
        let out = std::fs::File::create(&log)
            .map_err(|e| LabError::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("duplicate the log file", e))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=1d")
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: a Ctrl-C reaches the lab, which stops it in order.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                LabError::io(
                    "start prometheus (install Debian's `prometheus` package)".to_string(),
                    e,
                )
            })?;
        p.state.pid = child.id();
        interrupt::own_pid(child.id(), &log);
        p.child = Some(child);
        p.wait_ready(deadline, &log)?;
        Ok(p)
    }

    fn wait_ready(&mut self, deadline: Instant, log: &Path) -> Result<(), LabError> {
        loop {
            if interrupt::interrupted() {
                return Err(LabError::Interrupted);
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                interrupt::disown_pid(self.state.pid);
                return Err(LabError::Daemon(format!(
                    "prometheus exited ({status}); the end of its log:\n{}",
                    log_tail(log)
                )));
            }
            if http_get(self.state.listen, "/-/ready", Duration::from_millis(500))
                .is_ok_and(|(status, _)| status == 200)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("prometheus to be ready on {}", self.state.listen),
                    log_tail: log_tail(log),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn listen(&self) -> SocketAddr {
        self.state.listen
    }

    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    pub fn state(&self) -> &PrometheusState {
        &self.state
    }

    /// Hand the server to a state file: it outlives this process until
    /// `smrnet lab down`.
    pub fn detach(mut self) -> PrometheusState {
        self.child = None;
        interrupt::disown_pid(self.state.pid);
        let state = self.state.clone();
        self.state.dir = PathBuf::new();
        state
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first: Prometheus then closes its TSDB cleanly.
            let _ = signal_pid(child.id(), rustix::process::Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            interrupt::disown_pid(self.state.pid);
        }
        if !self.state.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.state.dir);
        }
    }
}

/// Stop a detached lab's Prometheus by pid (only if the pid still names a
/// `prometheus` whose configuration is in `state.dir`), then remove its
/// directory.
pub fn stop_detached(state: &PrometheusState) -> Result<(), LabError> {
    let conf = format!(
        "--config.file={}",
        state.dir.join("prometheus.yml").display()
    );
    let ours = std::fs::read(format!("/proc/{}/cmdline", state.pid)).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"prometheus")) && args.contains(&conf.as_bytes())
    });
    if ours {
        let _ = signal_pid(state.pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_GRACE;
        while alive(state.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(state.pid) {
            let _ = signal_pid(state.pid, rustix::process::Signal::KILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive(state.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    match std::fs::remove_dir_all(&state.dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(LabError::io(format!("remove {}", state.dir.display()), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_scrapes_the_daemon_and_loads_the_rules() {
        let c = config(
            "127.0.0.1:9464".parse().unwrap(),
            Path::new("/run/x/alerts.yml"),
        );
        assert!(c.contains("targets: [\"127.0.0.1:9464\"]"), "{c}");
        assert!(c.contains("- \"/run/x/alerts.yml\""), "{c}");
        assert!(
            c.contains("job_name: smrnet"),
            "the rules' SmrnetDown selects job=smrnet"
        );
        assert!(ALERT_RULES.contains("up{job=\"smrnet\"}"));
    }
}
