//! End-to-end tests: each starts `smrnetd` in its own lab (a private network
//! namespace, see `smrnet lab`), drives it with kernel sockets from inside
//! that namespace, and removes the lab when it ends, pass or fail.
//!
//! Run as root (CI does). Elsewhere every test is reported as skipped, with
//! the reason, unless `SMRNET_E2E_REQUIRE=1` turns that into a failure.

mod backends;
mod bench;
mod clients;
mod demo;
mod faults;
mod forward;
mod hostile;
mod lifecycle;
mod load;
mod names;
mod observability;
mod offload;
mod operability;
mod reload;
mod steering;
mod syn;
mod traffic;

use tests::{Test, run_main};

/// The suite, named by each test's function.
macro_rules! suite {
    ($($module:ident::$name:ident),* $(,)?) => {
        &[$(Test { name: stringify!($name), run: $module::$name }),*]
    };
}

fn main() {
    run_main(suite![
        // The slow ones first, so the pair of runner threads overlap them.
        traffic::ten_thousand_sequential_connections_leave_the_table_and_pool_empty,
        traffic::echo_round_trips_1mib_on_100_parallel_connections,
        backends::every_pcb_backend_serves_parallel_and_sequential_echo_and_drains,
        bench::bench_e2e_reports_every_backend_and_mode_with_matching_daemon_counts,
        bench::bench_path_tiny_run_reports_every_row_on_both_sides_and_removes_its_namespaces,
        offload::offload_on_carries_super_segments_byte_exact_both_ways,
        offload::offload_off_moves_the_same_bytes_one_frame_at_a_time,
        offload::offload_refused_falls_back_logs_why_and_serves,
        offload::a_lab_daemon_runs_with_the_offload_the_environment_names,
        bench::bench_forward_reports_both_proxies_in_both_modes_and_the_flood_reaches_only_legit,
        traffic::ping_v4_and_v6_are_answered,
        traffic::http_body_reaches_curl_and_a_std_client,
        traffic::port_without_listener_refuses_with_rst,
        hostile::malformed_burst_is_counted_and_daemon_keeps_serving,
        observability::metrics_pass_promtool_and_count_what_the_test_did,
        faults::link_flap_keeps_v4_and_v6_serving,
        faults::address_deleted_under_the_daemon_is_restored,
        faults::mtu_changed_under_the_daemon_is_set_back,
        faults::deleted_device_stops_the_daemon_with_its_reason,
        faults::deleted_namespace_stops_the_daemon_with_its_reason,
        faults::pcap_on_a_full_disk_stops_capturing_and_serves_on,
        reload::sighup_adds_a_service_and_removes_one_with_connections_open,
        reload::sighup_with_a_bad_file_changes_nothing_and_says_why,
        reload::sighup_moves_the_syncache_and_accept_queue_limits_live,
        reload::sighup_adds_a_forward_listener_and_removing_it_stops_new_connections,
        lifecycle::sigterm_exits_zero_within_2s_with_connections_open,
        lifecycle::sigint_exits_zero_within_2s_with_connections_open,
        lifecycle::user_nobody_still_serves,
        lifecycle::lab_cli_up_exec_down_leaves_nothing_behind,
        operability::lab_up_prometheus_scrapes_the_daemon_and_lab_down_removes_it,
        operability::lab_up_with_the_metrics_port_taken_names_it_and_leaves_nothing,
        operability::failed_lab_up_removes_everything_it_created,
        load::churn_3s_has_no_errors_and_the_daemon_counts_every_connection,
        load::hold_3000_over_17_sources_and_2_processes_drains_after_close,
        load::hold_5000_grows_a_table_sized_for_64_and_shrinks_it_back,
        load::compare_kernel_prints_both_rates_and_removes_its_namespaces,
        load::syn_compare_kernel_floods_both_with_one_seed_and_removes_its_namespaces,
        steering::ebpf_steering_keeps_every_segment_on_its_home_worker,
        steering::steering_off_runs_on_the_kernels_default_and_says_so,
        steering::steering_refused_falls_back_logs_why_and_serves,
        syn::syn_flood_reaches_the_listener_and_legit_clients_still_connect,
        syn::ipv6_syn_flood_moves_the_syn_cache_and_legit_ipv6_clients_still_connect,
        demo::demo_quick_writes_its_folder_and_leaves_no_namespace,
        forward::forward_splices_both_ways_and_carries_the_half_close,
        forward::forward_to_a_down_upstream_resets_the_client_and_logs_once,
        forward::forward_to_a_silent_upstream_resets_the_client_after_the_connect_timeout,
        forward::forward_under_a_syn_flood_reaches_the_upstream_only_for_legit_clients,
        forward::sigint_closes_both_sides_of_every_splice,
        forward::forward_reply_written_off_the_home_worker_is_sent_within_a_millisecond,
    ]);
}
