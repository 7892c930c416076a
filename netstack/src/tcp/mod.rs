//! TCP: sequence arithmetic, options, initial sequence numbers, SYN cookies, the
//! retransmission timer estimate, settings, counters and the handshake contract
//! between the listener and a connection.

pub(crate) mod config;
pub(crate) mod conn;
pub(crate) mod cookie;
pub(crate) mod handshake;
pub(crate) mod isn;
pub(crate) mod mib;
pub(crate) mod options;
pub(crate) mod rtt;
pub(crate) mod seq;
pub(crate) mod siphash;
pub(crate) mod syncache;
