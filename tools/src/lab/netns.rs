//! Network namespaces and the `ip` command. A [`Netns`] deletes its namespace
//! when dropped unless it was explicitly handed over ([`Netns::keep`]), so a
//! lab that fails half-way never leaves a namespace behind.

use super::LabError;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Run `ip ARGS...`; a failure carries the command line and `ip`'s own message.
pub(crate) fn ip(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io("run `ip` (is iproute2 installed?)", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `ip ARGS...` succeeded (a probe: its error output is discarded).
pub(crate) fn ip_ok(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A named network namespace created by this process (or recorded in a lab's
/// state file), deleted on drop unless kept.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owned: bool,
}

impl Netns {
    /// `ip netns add NAME` and bring its loopback up.
    pub fn create(name: &str) -> Result<Netns, LabError> {
        // The first `ip netns add` on a machine makes /run/netns a shared
        // mount; two doing that at once can fail. Labs in one process (the
        // test suite) therefore create their namespaces one at a time.
        static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = CREATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ip(&["netns", "add", name])?;
        drop(serial);
        super::interrupt::own_netns(name);
        let ns = Netns {
            name: name.to_string(),
            owned: true,
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A namespace that already exists (a detached lab's); dropping it deletes it.
    pub fn adopt(name: &str) -> Netns {
        super::interrupt::own_netns(name);
        Netns {
            name: name.to_string(),
            owned: true,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where iproute2 keeps the namespace's bind mount.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Move the calling thread (only it) into the namespace. Network
    /// namespaces are per thread, so other threads of the process are not
    /// affected; threads spawned afterwards by this thread inherit it.
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        smrnetd::netns::enter(&self.name)
    }

    /// Leave the namespace in place (a detached lab); returns its name.
    pub fn keep(mut self) -> String {
        self.owned = false;
        super::interrupt::disown_netns(&self.name);
        std::mem::take(&mut self.name)
    }

    /// Delete the namespace now, reporting failure.
    pub fn delete(mut self) -> Result<(), LabError> {
        self.owned = false;
        let result = delete(&self.name);
        if result.is_ok() {
            super::interrupt::disown_netns(&self.name);
        }
        result
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        match delete(&self.name) {
            Ok(()) => super::interrupt::disown_netns(&self.name),
            Err(e) => eprintln!("smrnet lab: cleanup: {e}"),
        }
    }
}

/// `ip netns del NAME`; a namespace that is already gone is not an error.
fn delete(name: &str) -> Result<(), LabError> {
    if !PathBuf::from("/run/netns").join(name).exists() {
        return Ok(());
    }
    ip(&["netns", "del", name])
}
