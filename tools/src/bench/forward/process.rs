//! External programs `bench forward` runs: installed when missing (Debian
//! packages, through apt-get), run with a time bound, and stopped on drop.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `program` on PATH, or install the Debian `package` that provides it.
pub fn ensure_installed(program: &str, package: &str) -> io::Result<()> {
    if on_path(program) {
        return Ok(());
    }
    eprintln!("bench forward: {program} is missing; apt-get install {package}");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() && on_path(program) => Ok(()),
        Ok(s) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{program} is not installed and `apt-get install {package}` failed ({s})"),
        )),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{program} is not installed and apt-get could not run: {e}"),
        )),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join(program).is_file()))
        || Path::new(program).is_file()
}

/// Run `cmd` to its end, at most `limit`, and return its stdout; killed
/// (and an error) past the limit, an error naming `what` on a failure exit.
pub fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> io::Result<Vec<u8>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("start {what}: {e}")))?;
    // Both pipes are read on threads so a chatty child never blocks on
    // a full pipe while this thread waits for it.
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} still running after {limit:?}; killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(io::Error::other(format!(
            "{what} failed ({status}): {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    Ok(out)
}

/// A child process that is stopped (SIGTERM, then SIGKILL after `grace`)
/// when this guard goes.
pub struct Guarded {
    child: Child,
    what: &'static str,
}

impl Guarded {
    pub fn new(child: Child, what: &'static str) -> Guarded {
        Guarded { child, what }
    }

    /// Fails if the process has already exited.
    pub fn check_running(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(s) => Err(io::Error::other(format!("{} exited: {s}", self.what))),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        const GRACE: Duration = Duration::from_secs(2);
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("bench forward: {} ignored SIGTERM; killing it", self.what);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_run_returns_stdout_and_kills_an_overrun() {
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo hi"]);
        assert_eq!(
            run_bounded(echo, Duration::from_secs(10), "sh").unwrap(),
            b"hi\n"
        );
        let mut slow = Command::new("sleep");
        slow.arg("30");
        let t0 = Instant::now();
        let e = run_bounded(slow, Duration::from_millis(200), "sleep").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(5));
        let mut fails = Command::new("sh");
        fails.args(["-c", "echo why >&2; exit 3"]);
        let e = run_bounded(fails, Duration::from_secs(10), "sh").unwrap_err();
        assert!(e.to_string().contains("why"), "{e}");
    }
}
