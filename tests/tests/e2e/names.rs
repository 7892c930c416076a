//! The metric names the tests read, in one place: the daemon's exporter is
//! the authority, and a renamed metric fails with its name, never reads as 0.

pub const PASSIVE_OPENS: &str = "smrnet_tcp_passive_opens_total";
pub const TABLE_ENTRIES: &str = "smrnet_table_entries";
pub const POOL_PENDING: &str = "smrnet_pool_pending_objects";
pub const DROPS: &str = "smrnet_drops_total";
pub const BAD_CHECKSUM_LABEL: &str = "bad_checksum";
pub const OUT_RSTS: &str = "smrnet_tcp_out_rsts_total";
