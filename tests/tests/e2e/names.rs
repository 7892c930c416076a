//! The metric names the tests read, in one place: the daemon's generated
//! `names` are the authority (a renamed metric does not build), and the
//! short aliases below are what the tests were written with.

pub use smrnetd::metrics::names::*;

pub const PASSIVE_OPENS: &str = TCP_PASSIVE_OPENS;
pub const POOL_PENDING: &str = POOL_PENDING_OBJECTS;
pub const DROPS: &str = IP_DROPS;
pub const BAD_TCP_CHECKSUM: &str = "reason=\"bad_tcp_checksum\"";
pub const CSUM_ERRORS: &str = IN_CSUM_ERRORS;
pub const OUT_RSTS: &str = TCP_OUT_RSTS;
pub const CURR_ESTAB: &str = TCP_CURR_ESTAB;
pub const HANDSHAKES: &str = TCP_HANDSHAKE_SECONDS_COUNT;
pub const ECHO_REPLIES: &str = ICMP_OUT_ECHO_REPLIES;
pub const SYNCACHE_LIMIT: &str = SYNCACHE_LIMIT_ENTRIES;
pub const SYNCACHE_LISTENER_LIMIT: &str = SYNCACHE_LISTENER_LIMIT_ENTRIES;
pub const STEERING_LOADED: &str = STEERING_EBPF_LOADED;
pub const STEERING_REFUSED: &str = STEERING_EBPF_REFUSED;
pub const FOREIGN_SEGMENTS: &str = STACK_FOREIGN_SEGMENTS;
