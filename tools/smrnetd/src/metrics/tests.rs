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

/// A counter added to the TCP MIB without an export clause would be
/// counted and never seen; only the two halves of the `CurrEstab` gauge are
/// exported in another form.
#[test]
fn every_tcp_mib_counter_is_exported() {
    let folded = ["estab_entered", "estab_left"];
    let snapshot = netstack::TcpMibSnapshot::default();
    assert_eq!(
        snapshot.iter().count(),
        netstack::TcpMibSnapshot::METRICS.len() + folded.len(),
        "a TCP MIB counter is neither exported nor folded into a gauge"
    );
    for m in netstack::TcpMibSnapshot::METRICS {
        assert!(!folded.contains(&m.field), "{} is folded", m.field);
    }
}

/// The generated lists and what a scrape renders agree: every generated
/// metric is rendered with its HELP and TYPE, and every family the
/// exposition declares comes from a generated list or is rendered by hand
/// under a `names` constant.
#[test]
fn the_exposition_is_what_the_generated_lists_declare() {
    let text = Metrics::new(shared()).render();
    let types = types(&text);
    for m in described() {
        let kind = match m.kind {
            smr::stat::Kind::Counter => "counter",
            smr::stat::Kind::Gauge => "gauge",
        };
        assert!(
            types.iter().any(|(n, t)| n == m.name && t == kind),
            "{} is not declared as a {kind}",
            m.name
        );
        assert!(
            text.contains(&format!("# HELP {} {}", m.name, m.help)),
            "{} has another HELP",
            m.name
        );
    }
    let by_hand = [
        names::TCP_HANDSHAKE_SECONDS,
        names::POOL_REUSE_LATENCY_SECONDS,
        names::WORKER_BUSY_SECONDS,
        names::FORWARD_ACCEPTED,
        names::FORWARD_UPSTREAM_CONNECTS,
        names::FORWARD_UPSTREAM_FAILURES,
        names::FORWARD_BYTES,
        names::FORWARD_SPLICE_ENDS,
        names::FORWARD_ACTIVE_SPLICES,
        names::FORWARD_TASK_WAKEUPS,
        names::FORWARD_SPLICE_SECONDS,
        names::OFFLOAD_ENABLED,
        names::OFFLOAD_REFUSED,
        names::WORKER_OFFLOAD_FRAMES,
        names::WORKER_OFFLOAD_BYTES,
        names::OFFLOAD_REJECTED,
        names::OFFLOAD_SUPER_SEGMENT_BYTES,
    ];
    for name in by_hand {
        assert!(
            types.iter().any(|(n, _)| n == name),
            "{name} is not rendered"
        );
    }
    assert!(text.contains(&format!("{} 0\n", names::TCP_HANDSHAKE_SECONDS_COUNT)));
    for (name, _) in &types {
        assert!(
            described().any(|m| m.name == name) || by_hand.contains(&name.as_str()),
            "{name} is exported without a generated declaration or a names constant"
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

/// The load tools, the lab, the benches, the demo and the end-to-end tests
/// read a scrape by the generated `names` constants, so a renamed metric
/// does not build there. A name spelled as a `"smrnet_..."` literal would
/// escape that, so none may remain in their sources (parser fixtures aside,
/// which use made-up names on purpose); and they must actually use the
/// constants (imported as `metric`), or this test checks nothing.
#[test]
fn the_readers_read_metrics_by_the_generated_names_only() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate is tools/smrnetd; the readers live in tools/src and tests/.
    let readers = [
        "../src/load",
        "../src/lab",
        "../src/bench",
        "../src/demo",
        "../../tests/tests/e2e",
    ];
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
    let mut uses = 0;
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        if let Some(i) = source.find("\"smrnet_") {
            let name: String = source[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            panic!(
                "{} spells {name} as a literal; read it as smrnetd::metrics::names::*",
                file.display()
            );
        }
        uses += source.matches("metric::").count();
    }
    assert!(uses > 40, "the readers use only {uses} generated names");
}

/// One declaration per family: the generated lists name each metric once,
/// and the exposition declares each family once.
#[test]
fn every_exported_family_is_declared_exactly_once() {
    let mut names: Vec<&str> = described().map(|m| m.name).collect();
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
