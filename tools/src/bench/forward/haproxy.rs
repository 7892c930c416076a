//! The kernel-TCP arm of `bench forward`: Debian's haproxy in `mode tcp`,
//! with a private config file in a temp dir of its own, run in the
//! foreground (`-db`) inside the comparison's server namespace, so it
//! forwards from the veth address to the same upstream code on that
//! namespace's loopback.
//!
//! Invariant: [`Haproxy`] owns the process and the temp dir; dropping it
//! (on any path) stops the process and removes the dir.

use super::process::Guarded;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long haproxy may take to start listening.
const READY: Duration = Duration::from_secs(10);

pub struct Haproxy {
    /// Taken (stopped) in `Drop` before the directory is removed.
    process: Option<Guarded>,
    dir: PathBuf,
}

/// The config: `threads` threads, one TCP frontend on `listen`, one server.
pub fn config(listen: SocketAddr, upstream: SocketAddr, threads: usize) -> String {
    format!(
        "global\n\
         \x20   nbthread {threads}\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         frontend forward\n\
         \x20   bind {listen}\n\
         \x20   default_backend upstream\n\
         backend upstream\n\
         \x20   server upstream {upstream}\n"
    )
}

impl Haproxy {
    /// Start haproxy in `netns`; returns once `listen` accepts (checked
    /// from inside `netns`).
    pub fn start(
        netns: &str,
        listen: SocketAddr,
        upstream: SocketAddr,
        threads: usize,
    ) -> io::Result<Haproxy> {
        let dir = std::env::temp_dir().join(format!("smrnet-haproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cleanup = |e: io::Error| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, config(listen, upstream, threads)).map_err(cleanup)?;
        let log = std::fs::File::create(dir.join("haproxy.log")).map_err(cleanup)?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "haproxy", "-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(cleanup)?)
            .stderr(log)
            .spawn()
            .map_err(|e| cleanup(io::Error::new(e.kind(), format!("start haproxy: {e}"))))?;
        let mut h = Haproxy {
            process: Some(Guarded::new(child, "haproxy")),
            dir,
        };
        let deadline = Instant::now() + READY;
        loop {
            if let Some(Err(e)) = h.process.as_mut().map(Guarded::check_running) {
                return Err(io::Error::other(format!("{e}: {}", h.log())));
            }
            let up = crate::load::netns::NetnsFd::open(netns)?
                .run(|| TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok())?;
            if up {
                return Ok(h);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "haproxy not listening on {listen} after {READY:?}: {}",
                        h.log()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_forwards_in_tcp_mode_with_the_asked_threads() {
        let c = config(
            "198.19.0.2:8000".parse().unwrap(),
            "127.0.0.1:18080".parse().unwrap(),
            3,
        );
        assert!(c.contains("    nbthread 3\n"));
        assert!(c.contains("    mode tcp\n"));
        assert!(c.contains("    bind 198.19.0.2:8000\n"));
        assert!(c.contains("    server upstream 127.0.0.1:18080\n"));
    }
}
