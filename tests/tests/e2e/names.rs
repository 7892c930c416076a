//! The metric names the tests read, in one place: the daemon's exporter is
//! the authority, and a renamed metric fails with its name, never reads as 0.

pub const PASSIVE_OPENS: &str = "smrnet_tcp_passive_opens_total";
pub const TABLE_ENTRIES: &str = "smrnet_table_entries";
pub const TABLE_BUCKETS: &str = "smrnet_table_buckets";
pub const TABLE_GROWS: &str = "smrnet_table_grows_total";
pub const TABLE_SHRINKS: &str = "smrnet_table_shrinks_total";
pub const POOL_PENDING: &str = "smrnet_pool_pending_objects";
pub const DROPS: &str = "smrnet_ip_drops_total";
pub const BAD_TCP_CHECKSUM: &str = "reason=\"bad_tcp_checksum\"";
pub const CSUM_ERRORS: &str = "smrnet_in_csum_errors_total";
pub const OUT_RSTS: &str = "smrnet_tcp_out_rsts_total";
pub const CURR_ESTAB: &str = "smrnet_tcp_curr_estab";
pub const HANDSHAKES: &str = "smrnet_tcp_handshake_seconds_count";
pub const ECHO_REPLIES: &str = "smrnet_icmp_out_echo_replies_total";
pub const DEVICE_EVENTS: &str = "smrnet_device_events_total";
pub const DEVICE_LINK_UP: &str = "smrnet_device_link_up";
pub const RELOADS: &str = "smrnet_reloads_total";
pub const PCAP_STOPPED: &str = "smrnet_pcap_stopped";
