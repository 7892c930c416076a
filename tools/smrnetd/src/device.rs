//! Following the TUN device: a dedicated thread reads rtnetlink link and
//! address notifications for the device and puts back what the daemon
//! configured on the kernel side when it goes missing, the way wireguard-go
//! and tailscaled follow their devices.
//!
//! What it follows: the administrative link state (`ip link set down/up`),
//! the configured addresses (`--tun-ipv4`, `--tun-ipv6`; the kernel drops a
//! device's global IPv6 addresses on link down, and an operator may delete
//! either), and the MTU. What it does: an address removed while the link is
//! up is re-added at once, one removed while it is down is re-added when the
//! link comes back up (the link state itself is the operator's to choose),
//! and an MTU changed away from `--mtu` is set back. Under `--attach` the
//! device is someone else's: it is watched and counted, never changed.
//! When the device is deleted, or the namespace it lives in is deleted, the
//! daemon stops with that reason and a non-zero exit.
//!
//! [`Follower`] is the sans-IO state machine (messages in, events and
//! requests out); [`spawn`] is the thread that drives it. Invariant: every
//! request answers one event, so the thread sends at most one request per
//! notification it reads, and it never retries on its own.

use core::net::IpAddr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tokio::sync::mpsc::UnboundedSender;

use super::rtnl::{self, IFF_UP, Msg};

/// How often the thread wakes without a notification (namespace check,
/// stop flag).
const TICK: Duration = Duration::from_millis(500);
/// Bound on a dump: a namespace with a TUN device has a handful of links.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests awaiting their acknowledgement, at most.
const MAX_PENDING: usize = 16;

/// What happened to the device, one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LinkDown,
    LinkUp,
    AddressRemoved,
    AddressRestored,
    MtuChanged,
    MtuRestored,
    RestoreFailed,
    Resync,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::LinkDown,
        Kind::LinkUp,
        Kind::AddressRemoved,
        Kind::AddressRestored,
        Kind::MtuChanged,
        Kind::MtuRestored,
        Kind::RestoreFailed,
        Kind::Resync,
    ];

    /// The `kind` label of `smrnet_device_events_total`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::LinkDown => "link_down",
            Kind::LinkUp => "link_up",
            Kind::AddressRemoved => "address_removed",
            Kind::AddressRestored => "address_restored",
            Kind::MtuChanged => "mtu_changed",
            Kind::MtuRestored => "mtu_restored",
            Kind::RestoreFailed => "restore_failed",
            Kind::Resync => "resync",
        }
    }
}

/// A request to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddAddress(IpAddr, u8),
    SetMtu(u32),
}

/// What the daemon configured on the device and wants kept.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    /// Addresses with their prefix (empty under `--attach`).
    pub addresses: Vec<(IpAddr, u8)>,
    /// `None` under `--attach`.
    pub mtu: Option<u32>,
}

/// The result of one input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<(Kind, String)>,
    pub actions: Vec<Action>,
    pub stop: Option<String>,
}

/// The device as last told by the kernel.
#[derive(Debug)]
pub struct Follower {
    wanted: Wanted,
    index: Option<u32>,
    up: bool,
    mtu: Option<u32>,
    /// Wanted addresses not on the device.
    missing: Vec<(IpAddr, u8)>,
    /// Between `begin_sync` and `end_sync`: state only, no events.
    syncing: bool,
    pending: Vec<(u32, Action)>,
}

impl Follower {
    pub fn new(wanted: Wanted) -> Follower {
        let mut f = Follower {
            wanted,
            index: None,
            up: false,
            mtu: None,
            missing: Vec::new(),
            syncing: false,
            pending: Vec::new(),
        };
        f.begin_sync();
        f
    }

    /// Whether the link is administratively up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Before a dump: every wanted address is missing until the dump shows it.
    pub fn begin_sync(&mut self) {
        self.syncing = true;
        self.missing = self.wanted.addresses.clone();
    }

    /// After the dumps: what needs restoring now.
    pub fn end_sync(&mut self) -> Outcome {
        self.syncing = false;
        let mut out = Outcome::default();
        if self.index.is_none() {
            out.stop = Some(format!(
                "TUN device {} is not in its namespace any more",
                self.wanted.name
            ));
            return out;
        }
        if self.up {
            out.actions
                .extend(self.missing.iter().map(|&(a, p)| Action::AddAddress(a, p)));
        }
        if let (Some(want), Some(have)) = (self.wanted.mtu, self.mtu)
            && want != have
        {
            out.actions.push(Action::SetMtu(want));
        }
        out
    }

    /// Remembers request `seq`, so its acknowledgement can be told.
    pub fn sent(&mut self, seq: u32, action: Action) {
        if self.pending.len() == MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push((seq, action));
    }

    /// One message from the kernel.
    pub fn on(&mut self, msg: &Msg) -> Outcome {
        let mut out = Outcome::default();
        match *msg {
            Msg::Link {
                deleted,
                index,
                flags,
                ref name,
                mtu,
            } => {
                if self.index.is_none() && name.as_deref() == Some(self.wanted.name.as_str()) {
                    self.index = Some(index);
                }
                if Some(index) != self.index {
                    return out;
                }
                if deleted {
                    out.stop = Some(format!("TUN device {} was deleted", self.wanted.name));
                    return out;
                }
                let up = flags & IFF_UP != 0;
                let was_up = core::mem::replace(&mut self.up, up);
                let old_mtu = self.mtu;
                self.mtu = mtu.or(old_mtu);
                if self.syncing {
                    return out;
                }
                if was_up && !up {
                    out.events.push((Kind::LinkDown, "link set down".into()));
                } else if !was_up && up {
                    out.events.push((Kind::LinkUp, "link set up".into()));
                    out.actions
                        .extend(self.missing.iter().map(|&(a, p)| Action::AddAddress(a, p)));
                }
                if let (Some(old), Some(new)) = (old_mtu, mtu)
                    && old != new
                {
                    out.events
                        .push((Kind::MtuChanged, format!("MTU changed from {old} to {new}")));
                    if let Some(want) = self.wanted.mtu
                        && want != new
                    {
                        out.actions.push(Action::SetMtu(want));
                    }
                }
            }
            Msg::Addr {
                deleted,
                index,
                addr,
                prefix,
            } => {
                if Some(index) != self.index {
                    return out;
                }
                let Some(&wanted) = self.wanted.addresses.iter().find(|(a, _)| *a == addr) else {
                    return out;
                };
                if !deleted {
                    self.missing.retain(|(a, _)| *a != addr);
                    return out;
                }
                if self.missing.contains(&wanted) {
                    return out;
                }
                self.missing.push(wanted);
                if self.syncing {
                    return out;
                }
                out.events.push((
                    Kind::AddressRemoved,
                    format!("address {addr}/{prefix} removed"),
                ));
                if self.up {
                    out.actions.push(Action::AddAddress(wanted.0, wanted.1));
                }
            }
            Msg::Ack { seq, errno } => {
                let Some(at) = self.pending.iter().position(|(s, _)| *s == seq) else {
                    return out;
                };
                let (_, action) = self.pending.remove(at);
                let what = match action {
                    Action::AddAddress(a, p) => format!("address {a}/{p}"),
                    Action::SetMtu(m) => format!("MTU {m}"),
                };
                if errno != 0 {
                    let e = io::Error::from_raw_os_error(errno);
                    out.events.push((
                        Kind::RestoreFailed,
                        format!("could not restore {what}: {e}"),
                    ));
                } else {
                    let kind = match action {
                        Action::AddAddress(..) => Kind::AddressRestored,
                        Action::SetMtu(_) => Kind::MtuRestored,
                    };
                    out.events.push((kind, format!("{what} restored")));
                }
            }
            // The driver re-reads the device after an overrun.
            Msg::Overrun | Msg::Done { .. } | Msg::Other => {}
        }
        out
    }
}

/// The device's counters and link gauge; one writer, the device thread.
#[derive(Debug, Default)]
pub struct DeviceStats {
    events: [AtomicU64; Kind::ALL.len()],
    link_up: AtomicBool,
}

impl DeviceStats {
    fn count(&self, kind: Kind) {
        let c = &self.events[kind as usize];
        // Relaxed: statistics only, single writer.
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Events of `kind` so far.
    pub fn events(&self, kind: Kind) -> u64 {
        // Relaxed: statistics only.
        self.events[kind as usize].load(Ordering::Relaxed)
    }

    /// Whether the link was up when last told.
    pub fn link_up(&self) -> bool {
        // Relaxed: statistics only.
        self.link_up.load(Ordering::Relaxed)
    }
}

/// Where the device lives: the `/run/netns/NAME` file and its identity when
/// the daemon started, so that `ip netns del` is noticed.
#[derive(Debug, Clone)]
pub struct NamespaceWatch {
    pub name: String,
    pub path: PathBuf,
    pub id: (u64, u64),
}

impl NamespaceWatch {
    /// Records the identity of namespace `name` now.
    pub fn new(name: &str) -> io::Result<NamespaceWatch> {
        let path = super::netns::path_of(name);
        let m = std::fs::metadata(&path)?;
        Ok(NamespaceWatch {
            name: name.to_owned(),
            path,
            id: (m.dev(), m.ino()),
        })
    }

    fn gone(&self) -> bool {
        std::fs::metadata(&self.path).map_or(true, |m| (m.dev(), m.ino()) != self.id)
    }
}

/// Starts the device thread. It reports a reason to stop on `fatal`, once,
/// and ends; it also ends when `stop` is set.
pub fn spawn(
    sock: rtnl::Socket,
    wanted: Wanted,
    netns: Option<NamespaceWatch>,
    stats: Arc<DeviceStats>,
    stop: Arc<AtomicBool>,
    fatal: UnboundedSender<String>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("smrnet-device".into())
        .spawn(move || {
            if let Err(reason) = follow(&sock, wanted, netns.as_ref(), &stats, &stop) {
                let _ = fatal.send(reason);
            }
        })?;
    Ok(())
}

/// The thread's body: returns the reason the daemon must stop, or Ok when
/// asked to end.
fn follow(
    sock: &rtnl::Socket,
    wanted: Wanted,
    netns: Option<&NamespaceWatch>,
    stats: &DeviceStats,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut f = Follower::new(wanted);
    let mut seq = 1u32;
    let mut buf = vec![0u8; 64 * 1024];
    let mut msgs = Vec::new();
    sync(sock, &mut f, &mut seq, &mut buf, stats)?;
    loop {
        // Acquire: pairs with the Release store that starts the shutdown.
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(ns) = netns
            && ns.gone()
        {
            return Err(format!(
                "network namespace {} was deleted ({} is gone)",
                ns.name,
                ns.path.display()
            ));
        }
        let ts = Timespec {
            tv_sec: TICK.as_secs() as _,
            tv_nsec: TICK.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(sock, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll on the netlink socket failed: {e}")),
        }
        // Drain what is there (bounded: the socket buffer holds at most 1 MiB).
        let mut resync = false;
        loop {
            let n = match sock.recv(&mut buf, true) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error()) => {
                    resync = true;
                    continue;
                }
                Err(e) => return Err(format!("the netlink socket failed: {e}")),
            };
            msgs.clear();
            if rtnl::parse(&buf[..n], &mut msgs).is_err() {
                tracing::warn!(bytes = n, "malformed netlink message ignored");
            }
            for m in &msgs {
                resync |= *m == Msg::Overrun;
                let out = f.on(m);
                apply(sock, &mut f, &mut seq, out, stats)?;
            }
        }
        if resync {
            tell(
                stats,
                Kind::Resync,
                "netlink overrun: reading the device again",
            );
            sync(sock, &mut f, &mut seq, &mut buf, stats)?;
        }
    }
}

/// Dumps links and addresses into `f`, then restores what is missing.
fn sync(
    sock: &rtnl::Socket,
    f: &mut Follower,
    seq: &mut u32,
    buf: &mut [u8],
    stats: &DeviceStats,
) -> Result<(), String> {
    f.begin_sync();
    let mut msgs = Vec::new();
    for links in [true, false] {
        *seq = seq.wrapping_add(1);
        let want = *seq;
        sock.send(&rtnl::dump_request(links, want))
            .map_err(|e| format!("cannot ask the kernel about the device: {e}"))?;
        let deadline = Instant::now() + DUMP_TIMEOUT;
        'dump: loop {
            if Instant::now() >= deadline {
                return Err("the kernel did not answer a netlink dump within 2 s".into());
            }
            let mut fds = [PollFd::new(sock, PollFlags::IN)];
            let ts = Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            match poll(&mut fds, Some(&ts)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(format!("poll on the netlink socket failed: {e}")),
            }
            let n = match sock.recv(buf, true) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("the netlink socket failed: {e}")),
            };
            msgs.clear();
            let _ = rtnl::parse(&buf[..n], &mut msgs);
            for m in &msgs {
                if *m == (Msg::Done { seq: want }) {
                    break 'dump;
                }
                let out = f.on(m);
                if let Some(reason) = out.stop {
                    return Err(reason);
                }
            }
        }
    }
    // Relaxed: statistics only (a gauge for the scraper).
    stats.link_up.store(f.is_up(), Ordering::Relaxed);
    let out = f.end_sync();
    apply(sock, f, seq, out, stats)
}

/// Logs and counts the events, sends the requests, or returns the reason
/// to stop.
fn apply(
    sock: &rtnl::Socket,
    f: &mut Follower,
    seq: &mut u32,
    out: Outcome,
    stats: &DeviceStats,
) -> Result<(), String> {
    if let Some(reason) = out.stop {
        return Err(reason);
    }
    for (kind, what) in &out.events {
        tell(stats, *kind, what);
    }
    // Relaxed: statistics only (a gauge for the scraper).
    stats.link_up.store(f.is_up(), Ordering::Relaxed);
    for action in out.actions {
        *seq = seq.wrapping_add(1);
        let request = match action {
            Action::AddAddress(a, p) => {
                let index = f.index.unwrap_or(0);
                rtnl::add_address_request(index, a, p, *seq)
            }
            Action::SetMtu(m) => rtnl::set_mtu_request(f.index.unwrap_or(0), m, *seq),
        };
        match sock.send(&request) {
            Ok(()) => f.sent(*seq, action),
            Err(e) => tell(
                stats,
                Kind::RestoreFailed,
                &format!("could not send {action:?}: {e}"),
            ),
        }
    }
    Ok(())
}

fn tell(stats: &DeviceStats, kind: Kind, what: &str) {
    stats.count(kind);
    match kind {
        Kind::RestoreFailed => tracing::warn!(event = kind.name(), "device: {what}"),
        _ => tracing::info!(event = kind.name(), "device: {what}"),
    }
}

#[cfg(test)]
mod tests;
