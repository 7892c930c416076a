//! SIGHUP: re-read the configuration and apply what can change while the
//! daemon runs.
//!
//! Live: the listeners and their services (added, removed, or a service
//! swapped on an address), the log filter, and the SYN-cache and
//! accept-queue limits. A raised limit applies to the next SYN or final
//! ACK; a lowered one to new entries only: SYN-cache entries and queued
//! connections over it are kept until they complete, expire or are
//! accepted, and meanwhile each new SYN or final ACK over it is counted as
//! an overflow (`smrnet_syncache_overflows_total`, answered with a cookie;
//! `smrnet_listen_queue_overflows_total`, its handshake completed later).
//! The SYN cache's tables are allocated at start, so its overall limit can
//! be raised live only up to the value the daemon started with. Everything
//! else sizes or places something built once at start (the device, the
//! workers and their queues, the table and pool, the metrics and pcap
//! files), so a change to it refuses the whole reload, naming the fields,
//! and nothing changes. A file that does not parse refuses the same way.
//! Established connections are never touched: a removed listener only
//! stops taking new connections (its queue is reset by `close_listener`, new
//! SYNs meet an RST), and the connections it accepted finish with the
//! service they started with.
//!
//! Invariant: a reload is all or nothing. [`plan`] decides without side
//! effects; [`apply`] opens every new listener before it closes any old
//! one, undoes the opens if one fails, and moves the limits (which
//! cannot fail once planned) only after the listeners succeeded.

use core::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use netstack::{ListenerHandle, Stack};

use super::config::{Config, ListenSpec};

/// The listeners the workers serve, swapped whole by a reload.
#[derive(Debug, Default)]
pub struct Services {
    /// Bumped after each swap. Release; pairs with the Acquire in
    /// [`Services::changed`], so a worker that sees the new generation
    /// reads the new set.
    generation: AtomicU64,
    current: RwLock<Arc<ServiceSet>>,
}

/// One generation of listeners, each with its service.
#[derive(Debug, Default)]
pub struct ServiceSet {
    pub listeners: Vec<(ListenerHandle, ListenSpec)>,
}

impl ServiceSet {
    pub fn handles(&self) -> Vec<ListenerHandle> {
        self.listeners.iter().map(|(h, _)| *h).collect()
    }

    /// The listeners whose connections the workers serve themselves
    /// (every one but those served through the tokio API, which the
    /// forward thread accepts from).
    pub fn served_handles(&self) -> Vec<ListenerHandle> {
        self.listeners
            .iter()
            .filter(|(_, s)| !s.service.on_async_api())
            .map(|(h, _)| *h)
            .collect()
    }

    /// Whether any listener is served through the tokio API (forward,
    /// echo-async).
    pub fn has_forward(&self) -> bool {
        self.listeners.iter().any(|(_, s)| s.service.on_async_api())
    }

    pub fn specs(&self) -> Vec<ListenSpec> {
        self.listeners.iter().map(|(_, s)| *s).collect()
    }
}

impl Services {
    pub fn new(set: ServiceSet) -> Services {
        Services {
            generation: AtomicU64::new(0),
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The current set.
    pub fn current(&self) -> Arc<ServiceSet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current set if its generation is not `seen` (and records it).
    pub fn changed(&self, seen: &mut u64) -> Option<Arc<ServiceSet>> {
        // Acquire: pairs with the Release in `replace`.
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(self.current())
    }

    fn replace(&self, set: ServiceSet) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        // Release: pairs with the Acquire in `changed`.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// What a reload changes.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Addresses to listen on, with their service.
    pub add: Vec<ListenSpec>,
    /// Addresses to stop listening on.
    pub remove: Vec<SocketAddr>,
    /// Addresses kept whose service changes (for new connections).
    pub swap: Vec<ListenSpec>,
    /// The new log filter, if it changed (`None` inside: back to the default).
    pub log: Option<Option<String>>,
    /// The new limits, if any of them changed.
    pub limits: Option<Limits>,
}

/// The limits a reload may move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub syncache_limit: usize,
    pub syncache_per_listener: usize,
    pub accept_queue: usize,
}

impl Limits {
    pub fn of(c: &Config) -> Limits {
        Limits {
            syncache_limit: c.syncache_limit,
            syncache_per_listener: c.syncache_per_listener,
            accept_queue: c.accept_queue,
        }
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Decides what reloading `new` over `old` changes, or refuses naming every
/// field that cannot change while running (`syncache_capacity`: the most the
/// SYN cache's tables were allocated for, `Stack::syncache_capacity`).
pub fn plan(old: &Config, new: &Config, syncache_capacity: usize) -> Result<Plan, String> {
    let fixed: [(&str, bool); 18] = [
        ("device", old.device != new.device),
        ("attach", old.attach != new.attach),
        ("tun-ipv4", old.tun_ipv4 != new.tun_ipv4),
        ("tun-ipv6", old.tun_ipv6 != new.tun_ipv6),
        ("address", old.addresses != new.addresses),
        ("mtu", old.mtu != new.mtu),
        ("netns", old.netns != new.netns),
        ("user", old.user != new.user),
        ("workers", old.workers != new.workers),
        (
            "http-body-bytes",
            old.http_body_bytes != new.http_body_bytes,
        ),
        ("table-size", old.table_size != new.table_size),
        ("pool-cap", old.pool_cap != new.pool_cap),
        ("smr-mode", old.smr_mode != new.smr_mode),
        ("pcb-backend", old.pcb_backend != new.pcb_backend),
        (
            "steering",
            old.steering_ebpf != new.steering_ebpf
                || old.steering_force_fallback != new.steering_force_fallback,
        ),
        ("metrics", old.metrics != new.metrics),
        (
            "pcap",
            old.pcap != new.pcap || old.pcap_max_bytes != new.pcap_max_bytes,
        ),
        (
            "insecure-deterministic-seed",
            old.insecure_deterministic_seed != new.insecure_deterministic_seed,
        ),
    ];
    let refused: Vec<&str> = fixed
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| *name)
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "cannot change while running (restart to apply): {}",
            refused
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if new.syncache_limit > syncache_capacity && new.syncache_limit != old.syncache_limit {
        return Err(format!(
            "`syncache-limit` = {} is above the {syncache_capacity} entries the SYN cache \
             was allocated for at start (restart to raise it further)",
            new.syncache_limit
        ));
    }
    let mut p = Plan::default();
    if Limits::of(old) != Limits::of(new) {
        p.limits = Some(Limits::of(new));
    }
    for spec in &new.listeners {
        match old.listeners.iter().find(|o| o.addr == spec.addr) {
            None => p.add.push(*spec),
            Some(o) if o.service != spec.service => p.swap.push(*spec),
            Some(_) => {}
        }
    }
    for o in &old.listeners {
        if !new.listeners.iter().any(|n| n.addr == o.addr) {
            p.remove.push(o.addr);
        }
    }
    if old.log != new.log {
        p.log = Some(new.log.clone());
    }
    Ok(p)
}

/// Applies the listener part of `plan` to the stack and publishes the new
/// set; on a failed listen nothing changes.
pub fn apply(stack: &Stack, services: &Services, plan: &Plan) -> Result<(), String> {
    let current = services.current();
    let mut opened = Vec::new();
    for spec in &plan.add {
        match stack.listen(spec.addr) {
            Ok(h) => opened.push((h, *spec)),
            Err(e) => {
                for (h, _) in opened {
                    stack.close_listener(h);
                }
                return Err(format!("cannot listen on {}: {e}", spec.addr));
            }
        }
    }
    let mut next = Vec::new();
    for (h, spec) in &current.listeners {
        if plan.remove.contains(&spec.addr) {
            continue;
        }
        let spec = plan
            .swap
            .iter()
            .find(|s| s.addr == spec.addr)
            .unwrap_or(spec);
        next.push((*h, *spec));
    }
    next.extend(opened);
    services.replace(ServiceSet { listeners: next });
    for (h, spec) in &current.listeners {
        if plan.remove.contains(&spec.addr) {
            stack.close_listener(*h);
        }
    }
    if let Some(l) = plan.limits {
        // `plan` checked the capacity; a refusal here would be a bug, and
        // it changes nothing, so it is reported rather than hidden.
        stack
            .set_syncache_limits(l.syncache_limit, l.syncache_per_listener)
            .map_err(|e| e.to_string())?;
        stack.set_accept_queue_limit(l.accept_queue);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
