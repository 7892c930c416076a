//! `smrnetd`: the Stack as a daemon on a multi-queue TUN device.
//!
//! Packet workers are plain threads, one per TUN queue, each the only driver
//! of its `netstack::Worker`; a single-threaded tokio runtime on the main
//! thread runs the control plane (signals and the metrics listener).
//!
//! Lifecycle: open the device (inside `--netns` if given) and the pcap file,
//! bind the metrics listener, drop privileges (`--user`) while still
//! single-threaded, start the workers, then wait for SIGINT/SIGTERM or a
//! worker's death. On a signal the listeners close, the workers close their
//! connections gracefully for [`worker::GRACEFUL_CLOSE`], reset the rest,
//! flush, and the daemon exits 0 (well inside 2 s). A worker that returns an
//! error or panics stops the others and the daemon exits non-zero with the
//! worker's message: never a half-alive daemon.
//!
//! Around the workers: a device thread follows the TUN device over
//! rtnetlink ([`device`]) and restores its addresses and MTU, or stops the
//! daemon with the reason when the device or its namespace is deleted;
//! SIGHUP reloads the listeners and the log filter live ([`reload`]); a full
//! pcap disk and a taken metrics port are told once and survived
//! ([`pcap`], [`metrics_http`]). Each is counted ([`faults`]).

pub mod config;
pub mod device;
pub mod faults;
pub mod forward;
pub mod metrics;
pub mod metrics_http;
pub mod netns;
pub mod offload;
pub mod pcap;
pub mod pool_watch;
pub mod privs;
pub mod reload;
pub mod rtnl;
pub mod serve;
pub mod services;
pub mod steering;
pub mod tun;
pub mod usage;
pub mod worker;

use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netstack::{Stack, StackConfig, SynCacheConfig};
use tokio::sync::mpsc;

use self::config::Config;
use self::worker::{Shared, WorkerStats};

/// How long the whole stop may take before the daemon gives up on a worker.
pub const STOP_DEADLINE: Duration = Duration::from_millis(1800);

/// Replaces the log filter (a SIGHUP that changed `log`).
type SetLog = Box<dyn Fn(Option<&str>) -> Result<(), String>>;

fn log_filter(filter: Option<&str>) -> Result<tracing_subscriber::EnvFilter, String> {
    use tracing_subscriber::EnvFilter;
    Ok(match filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("invalid `log`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    })
}

/// Sets up logging from `--log`, else `RUST_LOG`, else `info`; returns how
/// to change the filter later.
fn init_logging(filter: Option<&str>) -> Result<SetLog, String> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(filter)?)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    Ok(Box::new(move |f| {
        handle
            .reload(log_filter(f)?)
            .map_err(|e| format!("cannot change the log filter: {e}"))
    }))
}

/// SIGHUP: re-reads the flags and the file; applies the listeners and the
/// log filter, or changes nothing and says why.
fn on_sighup(running: &mut Config, shared: &Shared, set_log: &SetLog) {
    let refuse = |why: String| {
        faults::bump(&shared.faults.reloads_refused);
        tracing::warn!("SIGHUP: reload refused, nothing changed: {why}");
    };
    let new = match config::Args::load_again() {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    let plan = match reload::plan(running, &new, shared.stack.syncache_capacity()) {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    if let Some(log) = &plan.log
        && let Err(e) = set_log(log.as_deref())
    {
        return refuse(e);
    }
    if let Err(e) = reload::apply(&shared.stack, &shared.services, &plan) {
        if plan.log.is_some() {
            let _ = set_log(running.log.as_deref());
        }
        return refuse(e);
    }
    faults::bump(&shared.faults.reloads_applied);
    shared.forward.wake.notify_one();
    for spec in plan.add.iter().chain(&plan.swap) {
        tracing::info!(addr = %spec.addr, service = spec.service.name(), "SIGHUP: listening");
    }
    for addr in &plan.remove {
        tracing::info!(%addr, "SIGHUP: listener closed; its connections finish");
    }
    if let Some(log) = &plan.log {
        tracing::info!(
            log = log.as_deref().unwrap_or("(default)"),
            "SIGHUP: log filter changed"
        );
    }
    if let Some(l) = &plan.limits {
        tracing::info!(
            syncache_limit = l.syncache_limit,
            syncache_per_listener = l.syncache_per_listener,
            accept_queue = l.accept_queue,
            "SIGHUP: limits changed (raised: at once; lowered: for new entries, those over it \
             stay until they leave)"
        );
    }
    if plan.is_empty() {
        tracing::info!("SIGHUP: configuration reloaded, nothing to change");
    }
    running.listeners = new.listeners;
    running.log = new.log;
    running.syncache_limit = new.syncache_limit;
    running.syncache_per_listener = new.syncache_per_listener;
    running.accept_queue = new.accept_queue;
}

/// Runs the daemon until SIGINT/SIGTERM (Ok) or a fatal error.
pub fn run(cfg: Config) -> Result<(), String> {
    let set_log = init_logging(cfg.log.as_deref())?;
    if let Some(warning) = config::insecure_seed_warning(&cfg) {
        // On stderr directly as well, so no `--log` filter can hide it.
        eprintln!("smrnetd: {warning}");
        tracing::warn!("{warning}");
    }

    // The device first: it is the part that needs privileges. The netlink
    // socket that follows it is opened beside it, in its namespace.
    let open = |c: &Config| -> io::Result<_> { Ok((tun::open_queues(c)?, rtnl::Socket::open()?)) };
    let ((queues, offload), rtnl_socket) = match &cfg.netns {
        Some(ns) => {
            let c = cfg.clone();
            netns::run_in(Some(ns), move || open(&c)).and_then(|r| r)
        }
        None => open(&cfg),
    }
    .map_err(|e| e.to_string())?;
    let netns_watch = match &cfg.netns {
        Some(ns) => Some(
            device::NamespaceWatch::new(ns)
                .map_err(|e| format!("cannot stat network namespace {ns}: {e}"))?,
        ),
        None => None,
    };
    tracing::info!(
        device = %cfg.device,
        netns = cfg.netns.as_deref().unwrap_or("-"),
        queues = queues.len(),
        "TUN device open"
    );

    // Before dropping privileges: loading a BPF program needs them.
    let steering = steering::set_up(
        &queues[0],
        cfg.steering_ebpf,
        cfg.steering_force_fallback,
        &netstack::FlowSteering {
            key: steering::key(cfg.insecure_deterministic_seed),
            queues: u16::try_from(queues.len()).unwrap_or(u16::MAX),
        },
    );

    let pcap = match &cfg.pcap {
        None => None,
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| format!("cannot create pcap file {}: {e}", path.display()))?;
            let w = pcap::PcapWriter::new(BufWriter::new(file), 65535, cfg.pcap_max_bytes)
                .map_err(|e| format!("cannot write pcap file {}: {e}", path.display()))?;
            Some(Mutex::new(w))
        }
    };

    // The metrics socket is bound before dropping privileges (a port below
    // 1024 needs them), but served only once the runtime starts.
    let metrics_listener = cfg.metrics.map(|addr| {
        let bound = metrics_http::bind_now(addr);
        if let Ok(l) = &bound
            && let Ok(at) = l.local_addr()
        {
            // The bound address (port 0 picks a free one) is what a scraper needs.
            tracing::info!(addr = %at, "metrics at http://{at}/metrics");
        }
        bound.map_err(|e| (addr, e))
    });

    let user = match &cfg.user {
        Some(name) => Some(privs::lookup(name).map_err(|e| e.to_string())?),
        None => None,
    };
    // The forward thread enters --netns (its upstream sockets live there)
    // and drops its own privileges before it reports ready.
    let (forward_thread, forward_shared) = forward::spawn(cfg.netns.clone(), user.clone())
        .map_err(|e| format!("cannot start the forward service: {e}"))?;
    if let Some(user) = &user {
        // Credentials are per thread (raw syscalls): the namespace helper
        // has ended, the forward thread has dropped its own, and neither
        // workers nor the runtime exist yet.
        privs::drop_to(user).map_err(|e| e.to_string())?;
        tracing::info!(user = %user.name, uid = user.uid, gid = user.gid, "dropped privileges");
    }

    let mut scfg = StackConfig::new(cfg.addresses.clone());
    scfg.workers = cfg.workers;
    scfg.table_capacity = cfg.table_size;
    scfg.pool_cap = cfg.pool_cap;
    scfg.syncache = SynCacheConfig {
        max_entries: cfg.syncache_limit,
        max_per_listener: cfg.syncache_per_listener,
        ..SynCacheConfig::default()
    };
    scfg.accept_queue = cfg.accept_queue;
    scfg.smr_mode = cfg.smr_mode;
    scfg.pcb_backend = cfg.pcb_backend;
    scfg.insecure_deterministic_seed = cfg.insecure_deterministic_seed;
    let wakers = Arc::new(
        smrnet_tokio::Wakers::new(cfg.workers)
            .map_err(|e| format!("cannot create the workers' wake-up eventfds: {e}"))?,
    );
    let waking = Arc::clone(&wakers);
    scfg.waker = Some(netstack::WorkerWaker::new(move |w| waking.wake(w)));
    let stack = Arc::new(Stack::new(scfg));
    let mut listeners = Vec::new();
    for spec in &cfg.listeners {
        let l = stack
            .listen(spec.addr)
            .map_err(|e| format!("cannot listen on {}: {e}", spec.addr))?;
        tracing::info!(addr = %spec.addr, service = spec.service.name(), "listening");
        listeners.push((l, *spec));
    }

    let epoch = std::time::Instant::now();
    // Every call the forward plane makes on the stack ends in the stack's
    // after-touch step, which wakes the connection's home worker through
    // `scfg.waker` if it is parked (once per park).
    let forward = forward::Plane::new(Arc::clone(&stack), epoch);
    let shared = Arc::new(Shared {
        forward,
        stack: Arc::clone(&stack),
        services: reload::Services::new(reload::ServiceSet { listeners }),
        http_body_bytes: cfg.http_body_bytes,
        stats: (0..cfg.workers).map(|_| WorkerStats::default()).collect(),
        pcap,
        stop: AtomicBool::new(false),
        epoch,
        mtu: cfg.mtu as usize,
        faults: faults::Faults::default(),
        wakers,
        steering,
        offload,
    });

    // The forward thread serves the forward listeners from now on.
    let _ = forward_shared.send(Arc::clone(&shared));
    drop(forward_thread);

    // Anything outside the workers that must stop the daemon says why here.
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<String>();
    let device_stop = Arc::new(AtomicBool::new(false));
    device::spawn(
        rtnl_socket,
        wanted(&cfg),
        netns_watch,
        Arc::clone(&shared.faults.device),
        Arc::clone(&device_stop),
        fatal_tx.clone(),
    )
    .map_err(|e| format!("cannot start the device thread: {e}"))?;

    // Workers report their end (Ok or the reason) on this channel.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Result<(), String>)>();
    let mut handles = Vec::new();
    for (i, device) in queues.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let tx = done_tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("smrnet-w{i}"))
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker::run(i, shared, device)
                }));
                let outcome = match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(panic) => Err(format!(
                        "panicked: {}",
                        panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".to_owned())
                    )),
                };
                let _ = tx.send((i, outcome));
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        handles.push(h);
    }
    drop(done_tx);
    tracing::info!(
        workers = cfg.workers,
        addresses = ?cfg.addresses,
        metrics = ?cfg.metrics,
        pcb_backend = %cfg.pcb_backend,
        "smrnetd running"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the control-plane runtime: {e}"))?;
    let metrics = Arc::new(metrics::Metrics::new(Arc::clone(&shared)));
    let outcome: Result<(), String> = rt.block_on(async {
        if let Some(first) = metrics_listener {
            tokio::spawn(metrics_http::serve(
                first,
                Arc::clone(&metrics),
                Arc::clone(&shared),
            ));
        }
        // The pool cap in the log: one line when refusals start, one when
        // they stop (`pool_watch.rs`).
        {
            let stack = Arc::clone(&stack);
            tokio::spawn(async move {
                let mut watch = pool_watch::PoolWatch::default();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let refused = stack.pool_stats().exhausted;
                    if let Some(e) = watch.observe(refused, stack.oldest_read_section()) {
                        pool_watch::log(e);
                    }
                }
            });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| format!("cannot catch SIGINT: {e}"))?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| format!("cannot catch SIGHUP: {e}"))?;
        let mut running = cfg.clone();
        let failure = loop {
            break tokio::select! {
                _ = hup.recv() => {
                    on_sighup(&mut running, &shared, &set_log);
                    continue;
                }
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); None }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); None }
                Some(reason) = fatal_rx.recv() => Some(reason),
                Some((i, r)) = done_rx.recv() => {
                    let died = match r {
                        Err(e) => format!("worker {i} died: {e}"),
                        Ok(()) => format!("worker {i} stopped unexpectedly"),
                    };
                    // A worker whose device was deleted under it fails first;
                    // the device thread's reason says why.
                    match tokio::time::timeout(Duration::from_millis(300), fatal_rx.recv()).await {
                        Ok(Some(reason)) => Some(format!("{reason} ({died})")),
                        _ => Some(died),
                    }
                }
            };
        };
        // Stop accepting, then tell the workers.
        for l in shared.services.current().handles() {
            stack.close_listener(l);
        }
        // Release: pairs with the Acquire load in each worker's turn (and
        // in the device thread's).
        shared.stop.store(true, Ordering::Release);
        shared.wakers.wake_all();
        shared.forward.wake.notify_one();
        device_stop.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
        let mut remaining = handles.len() - usize::from(failure.is_some());
        let mut first_failure = failure;
        while remaining > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some((i, r))) => {
                    remaining -= 1;
                    if let Err(e) = r
                        && first_failure.is_none()
                    {
                        first_failure = Some(format!("worker {i} died while stopping: {e}"));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    return Err(first_failure.unwrap_or_else(|| {
                        format!("{remaining} worker(s) did not stop within {STOP_DEADLINE:?}")
                    }));
                }
            }
        }
        match first_failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    if let Some(p) = &shared.pcap {
        let mut w = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = w.flush();
    }
    match &outcome {
        Ok(()) => {
            for h in handles {
                let _ = h.join();
            }
            tracing::info!("stopped");
        }
        Err(e) => tracing::error!(error = %e, "smrnetd failed"),
    }
    outcome
}

/// What the device thread keeps on the device: the configured addresses
/// and MTU, or nothing under `--attach`.
fn wanted(cfg: &Config) -> device::Wanted {
    let mut addresses = Vec::new();
    if !cfg.attach {
        if let Some(v4) = cfg.tun_ipv4 {
            addresses.push((v4.addr.into(), v4.prefix));
        }
        if let Some(v6) = cfg.tun_ipv6 {
            addresses.push((v6.addr.into(), v6.prefix));
        }
    }
    device::Wanted {
        name: cfg.device.clone(),
        addresses,
        mtu: (!cfg.attach).then_some(u32::from(cfg.mtu)),
    }
}
