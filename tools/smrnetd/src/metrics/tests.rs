use super::*;
use std::sync::atomic::AtomicBool;

pub(super) fn shared() -> Arc<Shared> {
    shared_with_table(64)
}

/// As [`shared`], the connection table starting with `table_capacity`
/// buckets (rounded up to a power of two).
fn shared_with_table(table_capacity: usize) -> Arc<Shared> {
    let mut cfg = netstack::StackConfig::new(vec!["198.18.0.2".parse().unwrap()]);
    cfg.workers = 2;
    cfg.insecure_deterministic_seed = Some(1);
    cfg.table_capacity = table_capacity;
    cfg.pool_cap = 256;
    let stack = Arc::new(netstack::Stack::new(cfg));
    let epoch = std::time::Instant::now();
    Arc::new(Shared {
        forward: super::super::forward::Plane::new(Arc::clone(&stack), epoch),
        stack,
        services: Default::default(),
        http_body_bytes: 0,
        stats: (0..2)
            .map(|_| super::super::worker::WorkerStats::default())
            .collect(),
        pcap: None,
        stop: AtomicBool::new(false),
        epoch,
        mtu: 1500,
        faults: Default::default(),
        wakers: Default::default(),
        steering: Default::default(),
        offload: Default::default(),
    })
}

/// `(name, type)` of every `# TYPE` line.
fn types(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut it = l.split(' ');
            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn every_metric_has_help_type_prefix_and_unit_naming() {
    let text = Metrics::new(shared()).render();
    let types = types(&text);
    assert!(types.len() > 80, "{}", types.len());
    for (name, ty) in &types {
        assert!(name.starts_with("smrnet_"), "{name}");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
        match ty.as_str() {
            "counter" => assert!(name.ends_with("_total"), "counter {name}"),
            "gauge" => assert!(!name.ends_with("_total"), "gauge {name}"),
            "histogram" => assert!(
                name.ends_with("_seconds") || name.ends_with("_bytes"),
                "histogram {name}"
            ),
            other => panic!("{name}: unexpected type {other}"),
        }
        assert!(
            !name.contains("_ms") && !name.contains("_ns"),
            "base units only: {name}"
        );
    }
    // Every sample line belongs to a declared family.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            types.iter().any(|(n, _)| name == n
                || name
                    .strip_prefix(n.as_str())
                    .is_some_and(|s| ["_bucket", "_count", "_sum"].contains(&s))),
            "{line}"
        );
    }
}

#[test]
fn the_issue_s_metrics_are_all_there() {
    let text = Metrics::new(shared()).render();
    for name in [
        "smrnet_tcp_passive_opens_total",
        "smrnet_tcp_active_opens_total",
        "smrnet_tcp_curr_estab",
        "smrnet_tcp_time_wait_connections",
        "smrnet_syncache_entries",
        "smrnet_syncache_overflows_total",
        "smrnet_syncookies_sent_total",
        "smrnet_syncookies_validated_total",
        "smrnet_syncookies_failed_total",
        "smrnet_listen_queue_overflows_total",
        "smrnet_ip_drops_total{reason=\"bad_tcp_checksum\"}",
        "smrnet_in_csum_errors_total",
        "smrnet_smr_write_sequence",
        "smrnet_smr_read_sequence",
        "smrnet_smr_lag",
        "smrnet_smr_advances_total",
        "smrnet_smr_polls_total",
        "smrnet_smr_waits_total",
        "smrnet_smr_membarriers_total",
        "smrnet_smr_membarrier_failures_total",
        "smrnet_smr_oldest_read_section_seconds",
        "smrnet_pool_live_objects",
        "smrnet_pool_cached_bytes",
        "smrnet_pool_pending_objects",
        "smrnet_pool_pending_bytes",
        "smrnet_pool_peak_pending_objects",
        "smrnet_pool_exhausted_total",
        "smrnet_pool_membarrier_failures_total",
        "smrnet_pool_chunks",
        "smrnet_pool_frees_per_advance",
        "smrnet_pool_reuse_latency_seconds_bucket{le=\"+Inf\"}",
        "smrnet_tcp_handshake_seconds_bucket{le=\"+Inf\"} 0",
        "smrnet_tcp_handshake_seconds_sum 0",
        "smrnet_tcp_handshake_seconds_count 0",
        "smrnet_table_entries",
        "smrnet_table_max_chain_length",
        "smrnet_worker_packets_in_total{worker=\"1\"}",
        "smrnet_worker_packets_out_total{worker=\"0\"}",
        "smrnet_worker_batches_total{worker=\"0\"}",
        "smrnet_worker_busy_seconds_total{worker=\"1\"}",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}

#[test]
fn values_come_from_the_stack_at_scrape_time() {
    let shared = shared();
    let m = Metrics::new(Arc::clone(&shared));
    let w = shared.stack.worker(0);
    w.handle_frame(netstack::Instant::from_nanos(0), &[0x45, 0, 0]);
    // Relaxed: statistics only.
    shared.stats[1]
        .packets_in
        .store(7, std::sync::atomic::Ordering::Relaxed);
    let text = m.render();
    assert!(
        text.contains("smrnet_ip_drops_total{reason=\"truncated_ip\"} 1"),
        "{text}"
    );
    assert!(text.contains("smrnet_ip_in_receives_total 1"));
    assert!(text.contains("smrnet_worker_packets_in_total{worker=\"1\"} 7"));
}

#[test]
fn resident_memory_is_this_process_s_at_scrape_time() {
    let m = Metrics::new(shared());
    let text = m.render();
    let line = text
        .lines()
        .find(|l| l.starts_with("smrnet_process_resident_memory_bytes "))
        .unwrap_or_else(|| panic!("no resident memory gauge in\n{text}"));
    let bytes: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    // A test process has at least a megabyte resident and far less than a terabyte.
    assert!(bytes > 1e6 && bytes < 1e12, "{line}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    // Same quantity as VmRSS, read a moment apart.
    assert!(
        (bytes / 1024.0 - vm_rss_kb).abs() < vm_rss_kb * 0.5,
        "{line} vs {vm_rss_kb} kB"
    );
}

/// A counter added to the TCP MIB but not to the export list would be
/// counted and never seen; only the two halves of the `CurrEstab` gauge are
/// exported in another form.
#[test]
fn every_tcp_mib_counter_is_exported() {
    let folded = ["EstabEntered", "EstabLeft"];
    for (name, _) in netstack::TcpMibSnapshot::default().iter() {
        if folded.contains(&name) {
            continue;
        }
        assert!(
            MIB.iter().any(|(m, _, _)| *m == name),
            "{name} is not exported"
        );
    }
}

/// The value of an unlabelled sample line.
fn value(text: &str, name: &str) -> f64 {
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

#[test]
fn a_scrape_walks_a_bounded_number_of_buckets_however_large_the_table() {
    // A table sized for 2^20 connections: the full walk would visit every
    // bucket on every scrape (O(table) work, 1M PCB reads at a million
    // connections); the scrape samples at most SAMPLE_BUCKETS of them.
    let m = Metrics::new(shared_with_table(1 << 20));
    for _ in 0..3 {
        let text = m.render();
        assert_eq!(value(&text, "smrnet_table_buckets"), (1 << 20) as f64);
        let walked = value(&text, "smrnet_table_sampled_buckets");
        assert!(
            walked <= pcb::SAMPLE_BUCKETS as f64 && walked > 0.0,
            "a scrape walked {walked} buckets"
        );
    }
    // A small table is walked whole.
    let text = Metrics::new(shared()).render();
    assert_eq!(
        value(&text, "smrnet_table_sampled_buckets"),
        value(&text, "smrnet_table_buckets")
    );
}

/// The metric names the load tools, the lab, the demo and the end-to-end
/// tests read from a scrape (every `"smrnet_..."` literal in their sources,
/// parser fixtures aside): each must be a family the daemon declares, or one
/// of its histogram series, so a renamed metric fails here, in a unit test,
/// rather than reading as missing in a lab.
#[test]
fn every_metric_name_the_readers_expect_is_exported() {
    let text = Metrics::new(shared()).render();
    let families: Vec<String> = types(&text).into_iter().map(|(n, _)| n).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate is tools/smrnetd; the readers live in tools/src and tests/.
    let readers = [
        "../src/load",
        "../src/lab",
        "../src/bench",
        "../src/demo",
        "../../tests/tests/e2e",
    ];
    // Parser unit tests use made-up names on purpose.
    let fixtures = ["src/load/scrape.rs", "src/load/syn/tests.rs"];
    let mut files = Vec::new();
    let mut dirs: Vec<_> = readers.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !fixtures.iter().any(|f| path.ends_with(f))
            {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() > 20,
        "found only {} reader sources",
        files.len()
    );
    let mut checked = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for (i, _) in source.match_indices("\"smrnet_") {
            let name: String = source[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let known = families.iter().any(|f| {
                name == *f
                    || name
                        .strip_prefix(f.as_str())
                        .is_some_and(|s| ["_bucket", "_count", "_sum"].contains(&s))
            });
            assert!(
                known,
                "{} reads {name}, which the daemon does not export",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "checked only {checked} names");
}

/// One declaration per family: the describe tables name each metric once,
/// and the exposition declares each family once.
#[test]
fn every_exported_family_is_declared_exactly_once() {
    let mut names: Vec<&str> = MIB
        .iter()
        .map(|(_, n, _)| *n)
        .chain(COUNTERS.iter().map(|(n, _, _)| *n))
        .chain(GAUGES.iter().map(|(n, _, _)| *n))
        .collect();
    let all = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all, "a metric is described twice");
    let text = Metrics::new(shared()).render();
    let mut families: Vec<String> = types(&text).into_iter().map(|(n, _)| n).collect();
    let all = families.len();
    families.sort_unstable();
    families.dedup();
    assert_eq!(families.len(), all, "a family is declared twice");
    for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
        let help = line.splitn(4, ' ').nth(3).unwrap_or("");
        assert!(!help.trim().is_empty(), "empty HELP: {line}");
    }
}
