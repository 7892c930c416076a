//! The `smrnetd` process a lab runs. A [`Daemon`] owns its child: dropping it
//! stops the process (SIGTERM, then SIGKILL after a grace period), so no
//! test or failed `lab up` leaves a daemon running. A detached lab's daemon
//! is not our child any more; [`stop_pid`] stops it by pid after checking
//! that the pid still names that lab's daemon.

use super::LabError;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets between SIGTERM and SIGKILL when a lab is torn
/// down. The bound for a clean exit is 2 s; this leaves slack.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

const POLL: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

impl Daemon {
    /// Start `program args...` with stdout and stderr appended to `log`, in
    /// its own process group so a Ctrl-C at the terminal reaches the lab
    /// (which then stops the daemon in order), not the daemon directly.
    pub fn spawn(program: &Path, args: &[OsString], log: &Path) -> Result<Daemon, LabError> {
        let out =
            File::create(log).map_err(|e| LabError::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("duplicate the log file", e))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                // Nothing will write to it: a failed start leaves no file.
                let _ = std::fs::remove_file(log);
                LabError::io(
                    format!(
                        "start {} (build it with `cargo build --release`, or pass \
                         --daemon PATH)",
                        program.display()
                    ),
                    e,
                )
            })?;
        super::interrupt::own_pid(child.id(), log);
        Ok(Daemon {
            pid: child.id(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Err if the daemon has exited (with the end of its log).
    pub fn check_running(&mut self) -> Result<(), LabError> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                self.child = None;
                super::interrupt::disown_pid(self.pid);
                Err(LabError::DaemonExited {
                    status: status.to_string(),
                    log_tail: log_tail(&self.log),
                })
            }
            Some(Err(e)) => Err(LabError::io("wait for smrnetd", e)),
            None => Err(LabError::Daemon("the daemon was already stopped".into())),
        }
    }

    /// Send `signal` to the daemon.
    pub fn signal(&self, signal: rustix::process::Signal) -> Result<(), LabError> {
        signal_pid(self.pid, signal)
    }

    /// Wait at most `timeout` for the daemon to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        let Some(child) = self.child.as_mut() else {
            return Err(LabError::Daemon("the daemon was already stopped".into()));
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| LabError::io("wait for smrnetd", e))?
            {
                self.child = None;
                super::interrupt::disown_pid(self.pid);
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status and
    /// whether the daemon had to be killed.
    pub fn stop(&mut self, grace: Duration) -> Result<(ExitStatus, bool), LabError> {
        if self.child.is_none() {
            return Err(LabError::Daemon("the daemon was already stopped".into()));
        }
        // The process may have exited on its own; a failed signal is then fine.
        let _ = self.signal(rustix::process::Signal::TERM);
        if let Some(status) = self.wait_timeout(grace)? {
            return Ok((status, false));
        }
        let _ = self.signal(rustix::process::Signal::KILL);
        match self.wait_timeout(Duration::from_secs(5))? {
            Some(status) => Ok((status, true)),
            None => Err(LabError::Daemon(format!(
                "smrnetd (pid {}) survived SIGKILL for 5 s",
                self.pid
            ))),
        }
    }

    /// Hand the process over (a detached lab): dropping the `Daemon` no
    /// longer stops it, nor removes its log.
    pub fn detach(mut self) -> u32 {
        self.child = None;
        super::interrupt::disown_pid(self.pid);
        self.log = PathBuf::new();
        self.pid
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            match self.stop(STOP_GRACE) {
                Ok((_, true)) => eprintln!(
                    "smrnet lab: cleanup: smrnetd (pid {}) ignored SIGTERM and was killed",
                    self.pid
                ),
                Ok(_) => {}
                Err(e) => eprintln!("smrnet lab: cleanup: {e}"),
            }
        }
        // A failing test wants the log; errors from `Lab::up` carry its tail.
        if self.log.as_os_str().is_empty() {
            return; // detached
        }
        if std::thread::panicking() {
            eprintln!(
                "smrnet lab: smrnetd's log is kept at {}",
                self.log.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

pub(super) fn signal_pid(pid: u32, signal: rustix::process::Signal) -> Result<(), LabError> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| LabError::Daemon(format!("invalid pid {pid}")))?;
    rustix::process::kill_process(pid, signal)
        .map_err(|e| LabError::io(format!("signal smrnetd (pid {pid:?})"), e.into()))
}

/// The process exists and has not yet been reaped or become a zombie.
pub(super) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Whether `pid` is a `smrnetd` started for namespace `netns` (guards
/// against signalling an unrelated process that reused the pid).
fn is_lab_daemon(pid: u32, netns: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        // argv[0], or argv[1] under an interpreter or wrapper.
        args.iter().take(2).any(|a| a.ends_with(b"smrnetd")) && args.contains(&netns.as_bytes())
    })
}

/// Stop a detached lab's daemon by pid: SIGTERM, `grace`, SIGKILL. A pid that
/// is gone, or now names another process, is left alone.
pub fn stop_pid(pid: u32, netns: &str, grace: Duration) -> Result<(), LabError> {
    if !alive(pid) || !is_lab_daemon(pid, netns) {
        return Ok(());
    }
    signal_pid(pid, rustix::process::Signal::TERM)?;
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    if alive(pid) {
        eprintln!("smrnet lab: smrnetd (pid {pid}) still running after {grace:?}; killing it");
        let _ = signal_pid(pid, rustix::process::Signal::KILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if alive(pid) {
            return Err(LabError::Daemon(format!(
                "smrnetd (pid {pid}) survived SIGKILL for 5 s"
            )));
        }
    }
    Ok(())
}

/// The last lines of the daemon's log, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
