//! The connection table (in_pcb hash) read lock-free under SMR. Not yet built: see the issue tracker.
