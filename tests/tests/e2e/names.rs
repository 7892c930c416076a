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
pub const SYNCACHE_ADDED: &str = "smrnet_syncache_added_total";
pub const SYNCACHE_LIMIT: &str = "smrnet_syncache_limit_entries";
pub const SYNCACHE_LISTENER_LIMIT: &str = "smrnet_syncache_listener_limit_entries";
pub const SYNCACHE_OVERFLOWS: &str = "smrnet_syncache_overflows_total";
pub const SYNCOOKIES_SENT: &str = "smrnet_syncookies_sent_total";
pub const ACCEPT_QUEUE_LIMIT: &str = "smrnet_accept_queue_limit";
pub const LISTEN_QUEUE_OVERFLOWS: &str = "smrnet_listen_queue_overflows_total";
pub const STEERING_LOADED: &str = "smrnet_steering_ebpf_loaded";
pub const STEERING_REFUSED: &str = "smrnet_steering_ebpf_refused";
pub const FOREIGN_SEGMENTS: &str = "smrnet_stack_foreign_segments_total";
pub const WORKER_PACKETS_IN: &str = "smrnet_worker_packets_in_total";
