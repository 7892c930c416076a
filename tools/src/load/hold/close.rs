//! Closing a hold without the kernel aborting the close.
//!
//! A closed socket whose FIN is not yet acknowledged is an *orphan*
//! (FIN-WAIT-1, CLOSING, LAST-ACK with no descriptor). Linux caps orphans
//! machine-wide at `net.ipv4.tcp_max_orphans` (131072 on the development
//! machine) and, past it, aborts each new one ("TCP: too many orphaned
//! sockets", `TcpExtTCPAbortOnMemory`): it frees the socket and sends one
//! RST, which a full TUN queue may drop. The server then holds an
//! ESTABLISHED connection nobody will ever close: a 200,000-connection hold
//! closed all at once left 51,472 such connections in the daemon.
//!
//! A FIN the daemon never reads is as bad: each orphan's FIN (and its
//! retransmissions) waits in the TUN device's queue (the lab's is
//! [`TUN_TXQUEUELEN`] frames deep), and past it the kernel drops them. The
//! client gives up after its orphan retries (`TcpExtTCPAbortOnTimeout`,
//! with no RST), and again the daemon keeps an ESTABLISHED connection: a
//! million-connection hold on a loaded machine, paced only by the orphan
//! cap, dropped 2.16 million frames at the queue and left 5,085.
//!
//! So the close is paced: connections are dropped in batches, and before
//! each batch the closer waits while the machine's orphan count
//! (`/proc/net/sockstat`) is at or over [`orphan_limit`]: a quarter of the
//! cap, and at most half the TUN queue. The holding processes of a
//! multi-process hold may all read the count at once, so each closes
//! [`batch_for`] its share of that limit at a time, and the worst burst is
//! twice the limit. Bounded: after [`bound`] (or `--close-timeout`) the rest
//! are closed unpaced, and counted.

use crate::lab::TUN_TXQUEUELEN;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Connections dropped between two looks at the orphan count, at most.
pub(crate) const CLOSE_BATCH: usize = 1024;
/// ... and at least, however many processes share the limit.
const MIN_BATCH: usize = 16;
/// The shortest time the paced close may pace for.
const MIN_BOUND: Duration = Duration::from_secs(100);
/// Pacing time allowed per connection of the whole hold: 4,000 closes a
/// second, below what a loaded 2-core machine drained when a million
/// connections closed (about 7,000 a second).
const PER_CONNECTION: Duration = Duration::from_micros(250);

/// How long a hold of `total` connections (across every holding process:
/// the orphan cap is machine-wide, so they all pace against one count)
/// may pace its close before it closes the rest at once. A fixed bound
/// would cut a large hold's close short: a million-connection hold with a
/// 100 s bound left 192,966 connections unclosed.
pub(crate) fn bound(total: usize) -> Duration {
    MIN_BOUND.max(PER_CONNECTION.saturating_mul(u32::try_from(total).unwrap_or(u32::MAX)))
}
/// The cap assumed when `tcp_max_orphans` cannot be read (from inside a
/// network namespace the file does not exist; the cap is machine-wide).
const ASSUMED_MAX_ORPHANS: u64 = 65_536;
/// How long one wait for the orphans to drain sleeps.
const WAIT: Duration = Duration::from_millis(10);

/// What a paced close did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Closed {
    pub secs: f64,
    /// Waits for the orphan count to fall under the limit.
    pub waits: u64,
    /// Connections closed without pacing once the bound had passed.
    pub unpaced: u64,
}

/// The batch each of `procs` holding processes closes between two looks at
/// the orphan count: its share of [`orphan_limit`], within
/// [`MIN_BATCH`]..=[`CLOSE_BATCH`].
pub(crate) fn batch_for(procs: usize) -> usize {
    let share = orphan_limit() / procs.max(1) as u64;
    usize::try_from(share)
        .unwrap_or(CLOSE_BATCH)
        .clamp(MIN_BATCH, CLOSE_BATCH)
}

/// Drop every stream of `groups`, `batch` at a time, waiting before each
/// batch while `orphans()` is at or over `limit`. Runs inside the runtime
/// that owns the streams.
pub(super) async fn paced(
    groups: Vec<Vec<TcpStream>>,
    batch_len: usize,
    limit: u64,
    bound: Duration,
    mut orphans: impl FnMut() -> Option<u64>,
) -> Closed {
    let start = Instant::now();
    let deadline = start + bound;
    let mut out = Closed::default();
    let batch_len = batch_len.max(1);
    let mut batch = Vec::with_capacity(batch_len);
    let mut all = groups.into_iter().flatten().peekable();
    while all.peek().is_some() {
        batch.extend(all.by_ref().take(batch_len));
        if Instant::now() >= deadline {
            out.unpaced += batch.len() as u64;
        } else {
            while orphans().is_some_and(|n| n >= limit) && Instant::now() < deadline {
                out.waits += 1;
                tokio::time::sleep(WAIT).await;
            }
        }
        batch.clear();
    }
    out.secs = start.elapsed().as_secs_f64();
    out
}

/// The orphans a close lets be in flight: a quarter of
/// `net.ipv4.tcp_max_orphans`, and no more than half the lab's TUN queue,
/// so the FINs, their acknowledgements and retransmissions fit in it.
pub(crate) fn orphan_limit() -> u64 {
    let cap = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_orphans")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(ASSUMED_MAX_ORPHANS);
    (cap / 4).min(u64::from(TUN_TXQUEUELEN) / 2).max(1)
}

/// TCP orphans now, machine-wide: `orphan` of the `TCP:` line of
/// `/proc/net/sockstat`.
pub(super) fn orphans() -> Option<u64> {
    parse_orphans(&std::fs::read_to_string("/proc/net/sockstat").ok()?)
}

fn parse_orphans(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "orphan" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_orphan_count_is_read_from_sockstat() {
        let s =
            "sockets: used 5\nTCP: inuse 3 orphan 17 tw 2 alloc 9 mem 169\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_orphans(s), Some(17));
        assert_eq!(parse_orphans("sockets: used 5\n"), None);
        assert!(orphan_limit() >= 1);
        assert!(orphan_limit() <= u64::from(TUN_TXQUEUELEN) / 2);
    }

    /// Fifty processes share the limit; one process closes whole batches.
    #[test]
    fn the_batch_is_a_share_of_the_limit() {
        assert!(batch_for(50) as u64 * 50 <= orphan_limit().max(50 * MIN_BATCH as u64));
        assert!(batch_for(50) >= MIN_BATCH);
        assert_eq!(batch_for(100_000), MIN_BATCH);
        assert!(batch_for(1) <= CLOSE_BATCH);
    }

    /// The orphan count is looked at once per batch of the given size.
    #[test]
    fn a_close_looks_once_per_batch() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (groups, _peers) = pairs(25).await;
            let looks = Cell::new(0u64);
            let closed = paced(groups, 10, 100, Duration::from_secs(10), || {
                looks.set(looks.get() + 1);
                Some(0)
            })
            .await;
            assert_eq!(looks.get(), 3);
            assert_eq!((closed.waits, closed.unpaced), (0, 0));
        });
    }

    /// `n` connected pairs over loopback; the accepted ends are returned
    /// too, to keep them open.
    async fn pairs(n: usize) -> (Vec<Vec<TcpStream>>, Vec<TcpStream>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..n {
            mine.push(TcpStream::connect(addr).await.unwrap());
            theirs.push(l.accept().await.unwrap().0);
        }
        (vec![mine], theirs)
    }

    #[test]
    fn the_bound_grows_with_the_hold() {
        assert_eq!(bound(0), MIN_BOUND);
        assert_eq!(bound(3_000), MIN_BOUND);
        assert_eq!(bound(1_000_000), Duration::from_secs(250));
        assert!(bound(usize::MAX) >= Duration::from_secs(1_000_000));
    }

    #[test]
    fn a_close_waits_while_the_orphans_are_over_the_limit_and_closes_everything() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (groups, _peers) = pairs(CLOSE_BATCH + 1).await;
            // Over the limit for the first five looks, then under it.
            let looks = Cell::new(0u64);
            let closed = paced(groups, CLOSE_BATCH, 100, Duration::from_secs(10), || {
                looks.set(looks.get() + 1);
                Some(if looks.get() <= 5 { 100 } else { 0 })
            })
            .await;
            assert_eq!(closed.waits, 5);
            assert_eq!(closed.unpaced, 0);
        });
    }

    #[test]
    fn a_close_stops_pacing_at_its_bound_and_counts_the_rest() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (groups, _peers) = pairs(CLOSE_BATCH + 10).await;
            let closed = paced(groups, CLOSE_BATCH, 1, Duration::from_millis(50), || {
                Some(5)
            })
            .await;
            assert!(closed.waits >= 1);
            assert_eq!(closed.unpaced, 10, "{closed:?}");
        });
    }
}
