//! Ctrl-C and SIGTERM while a lab is being built or held in the foreground:
//! the signal only raises a flag, and the lab's bounded wait loops see it and
//! unwind, so the guards remove what exists (a process killed by the default
//! signal action would leave its namespace behind).

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    // Relaxed: a flag polled in a loop; nothing is published with it.
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Catch SIGINT and SIGTERM for the rest of the process. Only the `smrnet`
/// command calls this; a test harness keeps its own signal handling.
pub fn install() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Register both handlers before returning, so a signal that arrives
    // right after `install` is already caught.
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
                    // Relaxed: see `interrupted`.
                    INTERRUPTED.store(true, Ordering::Relaxed);
                }
            })
        })?;
    Ok(())
}
