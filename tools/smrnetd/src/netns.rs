//! Running code inside an existing network namespace: the one helper the
//! daemon (`--netns NAME`: open the TUN queues there; the forward thread,
//! whose upstream sockets must be created there), the load tools (`--netns`,
//! scraping the daemon's metrics from its namespace) and the lab share.
//!
//! `setns(2)` moves only the calling thread. [`NetnsFd::run`] therefore runs
//! a function on a short-lived thread that enters the namespace and ends
//! there, so the caller (and every other thread) stays where it was; file
//! descriptors the function opens (TUN queues, sockets, a runtime's threads
//! spawned from it) keep that namespace after the thread is gone.
//! [`NetnsFd::enter`] moves the calling thread for good. A [`NetnsFd`] holds
//! the namespace open by file descriptor, so a later thread can enter it even
//! after the caller moved elsewhere or the name was removed.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// The file `ip netns add NAME` creates.
pub fn path_of(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// An open handle on a network namespace.
#[derive(Debug)]
pub struct NetnsFd {
    file: File,
    what: String,
}

impl NetnsFd {
    /// A namespace by `ip netns` name (`smrnet-lab-abc123`), or by path
    /// (`/proc/PID/ns/net`, `/run/netns/NAME`).
    pub fn open(name: &str) -> io::Result<NetnsFd> {
        let path = if name.contains('/') {
            PathBuf::from(name)
        } else {
            path_of(name)
        };
        let file = File::open(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot open network namespace {} ({e}); create it with `ip netns add NAME` \
                     or list them with `ip netns list`",
                    path.display()
                ),
            )
        })?;
        Ok(NetnsFd {
            file,
            what: path.display().to_string(),
        })
    }

    /// The namespace the calling thread is in now.
    pub fn current() -> io::Result<NetnsFd> {
        NetnsFd::open("/proc/thread-self/ns/net")
    }

    /// The namespace process `pid` (its main thread) is in.
    pub fn of_pid(pid: u32) -> io::Result<NetnsFd> {
        NetnsFd::open(&format!("/proc/{pid}/ns/net"))
    }

    /// Moves the calling thread into this namespace, for good.
    pub fn enter(&self) -> io::Result<()> {
        move_into_link_name_space(self.file.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
            |e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!(
                        "cannot enter network namespace {} ({e}); this needs root",
                        self.what
                    ),
                )
            },
        )
    }

    /// Runs `f` on a new thread inside this namespace and returns its
    /// result; a panic in `f` resumes in the caller.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> io::Result<R> {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("netns".to_owned())
                .spawn_scoped(s, || {
                    self.enter()?;
                    Ok(f())
                })?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Runs `f` inside the namespace `netns` names (on a new thread), or right
/// here when `None`.
pub fn run_in<R: Send>(netns: Option<&str>, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    match netns {
        None => Ok(f()),
        Some(name) => NetnsFd::open(name)?.run(f),
    }
}

/// Moves the calling thread into namespace `name`, for good.
pub fn enter(name: &str) -> io::Result<()> {
    NetnsFd::open(name)?.enter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_named_in_the_error_with_the_fix() {
        let err = run_in(Some("smrnet-no-such-namespace"), || ()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/run/netns/smrnet-no-such-namespace"), "{msg}");
        assert!(msg.contains("ip netns add"), "{msg}");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn no_namespace_runs_here() {
        assert_eq!(run_in(None, || 7).unwrap(), 7);
    }

    #[test]
    fn the_current_namespace_runs_on_its_own_thread_and_borrows() {
        let here = std::thread::current().id();
        let local = String::from("abc");
        let Ok(ns) = NetnsFd::current() else {
            return; // no /proc: nothing to check
        };
        // Entering one's own namespace needs CAP_SYS_ADMIN; as another user
        // the error must say so instead of running `f`.
        match ns.run(|| (std::thread::current().id(), local.len())) {
            Ok((there, n)) => {
                assert_ne!(there, here);
                assert_eq!(n, 3);
            }
            Err(e) => assert!(e.to_string().contains("needs root"), "{e}"),
        }
    }
}
