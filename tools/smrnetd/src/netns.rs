//! `--netns NAME`: run one function inside an existing network namespace.
//!
//! `setns(2)` moves only the calling thread, so the function runs on a
//! short-lived helper thread that enters `/run/netns/NAME` and ends there;
//! the daemon's other threads (and its metrics listener) never leave the
//! namespace the daemon was started in. File descriptors the function opens
//! (TUN queues) keep their namespace after the thread is gone.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// The file `ip netns add NAME` creates.
pub fn path_of(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Runs `f` on a helper thread inside namespace `name` and returns its result.
pub fn run_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = path_of(name);
    let ns = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot open network namespace {} (create it with `ip netns add {name}`): {e}",
                path.display()
            ),
        )
    })?;
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
                |e| io::Error::other(format!("setns into network namespace {name} failed: {e}")),
            )?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("the namespace helper thread panicked"))?
}

/// Moves the calling thread into namespace `name`, for good (the forward
/// thread, whose upstream sockets must be created there).
pub fn enter(name: &str) -> io::Result<()> {
    let path = path_of(name);
    let ns = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open network namespace {}: {e}", path.display()),
        )
    })?;
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| io::Error::other(format!("setns into network namespace {name} failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_a_clear_error() {
        let e = run_in("smrnetd-test-no-such-ns", || Ok(())).unwrap_err();
        assert!(e.to_string().contains("ip netns add"), "{e}");
    }
}
