//! Running load inside an existing network namespace while the daemon's
//! metrics are read from another.
//!
//! Network namespaces belong to threads: [`run_in`] moves one fresh thread
//! into the target namespace and runs the load there (the runtime it builds
//! inherits the namespace), while the calling thread stays where it was.
//! [`NetnsFd`] holds a namespace open by file descriptor so a later thread
//! can enter it even after the caller moved elsewhere.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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
            Path::new("/run/netns").join(name)
        };
        let file = File::open(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "open network namespace {} ({e}); list them with `ip netns list` or \
                     `smrnet lab list`",
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

    /// Move the calling thread into this namespace.
    pub fn enter(&self) -> io::Result<()> {
        rustix::thread::move_into_link_name_space(
            self.file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!(
                    "enter network namespace {} ({e}); this needs root",
                    self.what
                ),
            )
        })
    }

    /// Run `f` on a new thread inside this namespace and return its result.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> io::Result<R> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Run `f` inside the namespace `netns` names (on a new thread), or right
/// here when `None`.
pub fn run_in<R: Send>(netns: Option<&str>, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    match netns {
        None => Ok(f()),
        Some(name) => NetnsFd::open(name)?.run(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_named_in_the_error() {
        let err = run_in(Some("smrnet-no-such-namespace"), || ()).unwrap_err();
        assert!(
            err.to_string()
                .contains("/run/netns/smrnet-no-such-namespace"),
            "{err}"
        );
    }

    #[test]
    fn no_namespace_runs_here() {
        assert_eq!(run_in(None, || 7).unwrap(), 7);
    }
}
