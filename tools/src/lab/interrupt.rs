//! Ctrl-C and SIGTERM. Two policies: the `smrnet` command only raises a flag
//! (`install`), which the lab's bounded wait loops see and unwind from, so
//! the guards remove what exists; a test runner, whose tests cannot poll a
//! flag, tears down every lab this process still owns and exits
//! (`install_teardown`). Either way a signal never leaves a namespace or a
//! daemon behind, as the default action (terminate at once) would.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What this process has created and not yet removed or handed over.
static OWNED: Mutex<Owned> = Mutex::new(Owned {
    netns: Vec::new(),
    pids: Vec::new(),
});

struct Owned {
    netns: Vec<String>,
    /// Daemons and their log files.
    pids: Vec<(u32, std::path::PathBuf)>,
}

fn owned() -> std::sync::MutexGuard<'static, Owned> {
    OWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn own_netns(name: &str) {
    owned().netns.push(name.to_string());
}

pub(crate) fn disown_netns(name: &str) {
    owned().netns.retain(|n| n != name);
}

pub(crate) fn own_pid(pid: u32, log: &std::path::Path) {
    owned().pids.push((pid, log.to_path_buf()));
}

pub(crate) fn disown_pid(pid: u32) {
    owned().pids.retain(|(p, _)| *p != pid);
}

pub fn interrupted() -> bool {
    // Relaxed: a flag polled in a loop; nothing is published with it.
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Catch SIGINT and SIGTERM for the rest of the process and only raise the
/// flag. For the `smrnet` command.
pub fn install() -> std::io::Result<()> {
    on_signal(|| {
        // Relaxed: see `interrupted`.
        INTERRUPTED.store(true, Ordering::Relaxed);
    })
}

/// Catch SIGINT and SIGTERM; on the first, kill every daemon and delete
/// every namespace this process still owns, then exit with status 130.
pub fn install_teardown() -> std::io::Result<()> {
    on_signal(|| {
        let (pids, netns) = {
            let o = owned();
            (o.pids.clone(), o.netns.clone())
        };
        eprintln!(
            "smrnet lab: interrupted; removing {} lab namespace(s) and {} daemon(s)",
            netns.len(),
            pids.len()
        );
        for (pid, log) in pids {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = std::fs::remove_file(log);
        }
        // Deleting a namespace whose daemon still holds the device is fine:
        // the device goes when the last reference does.
        for ns in netns {
            let _ = super::netns::ip(&["netns", "del", &ns]);
        }
        std::process::exit(130);
    })
}

fn on_signal(action: fn()) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Register both handlers before returning, so a signal that arrives
    // right after this call is already caught.
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("lab-signals".into())
        .spawn(move || {
            rt.block_on(async {
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    action();
                }
            })
        })?;
    Ok(())
}
