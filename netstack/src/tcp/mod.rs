//! TCP building blocks that need no connection table: sequence arithmetic, options,
//! initial sequence numbers, SYN cookies and the retransmission timer estimate.

pub(crate) mod cookie;
pub(crate) mod isn;
pub(crate) mod options;
pub(crate) mod rtt;
pub(crate) mod seq;
pub(crate) mod siphash;
