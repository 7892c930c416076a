//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: a full memory barrier on
//! every running thread of this process, issued by one thread. It turns the
//! readers' compiler-only fences into real ones after the fact, which is what
//! lets lazy SMR and pserialize readers run without a fence instruction.
//!
//! Under loom the barrier is `fence(SeqCst)` (see `primitive`).

#[cfg(not(loom))]
mod imp {
    use rustix::thread::{MembarrierCommand, membarrier};
    use std::sync::OnceLock;

    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

    /// Register this process for private expedited barriers (once; the
    /// kernel refuses the command with EPERM until registered).
    pub(crate) fn register() -> Result<(), String> {
        REGISTERED
            .get_or_init(|| {
                membarrier(MembarrierCommand::RegisterPrivateExpedited)
                    .map_err(|e| format!("membarrier(REGISTER_PRIVATE_EXPEDITED) failed: {e}"))
            })
            .clone()
    }

    /// Issue the barrier. Only valid after a successful `register`.
    pub(crate) fn barrier() -> Result<(), String> {
        membarrier(MembarrierCommand::PrivateExpedited)
            .map_err(|e| format!("membarrier(PRIVATE_EXPEDITED) failed: {e}"))
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) fn register() -> Result<(), String> {
        Ok(())
    }

    pub(crate) fn barrier() -> Result<(), String> {
        crate::primitive::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

pub(crate) use imp::{barrier, register};
