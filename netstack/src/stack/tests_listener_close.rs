//! `close_listener` racing a worker that completes a handshake on the same
//! listener, in the one interleaving that used to lose the connection: the
//! worker fetched the listener's state before the close removed it, and
//! locks the accept queue after the close emptied it.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::test_hooks::Point;
use super::*;
use crate::tcp::conn::Events;
use crate::tcp::syncache::CookiePolicy;
use crate::time::Instant;
use crate::wire::{TcpFlags, Transport, parse};

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
/// How long a step may take before the test calls it hung (a loaded
/// 2-core CI machine finishes each in microseconds).
const WATCHDOG: Duration = Duration::from_secs(20);

fn stack_owning(addr: IpAddr, cookies: CookiePolicy) -> Stack {
    let mut cfg = StackConfig::new(vec![addr]);
    cfg.syncache.cookies = cookies;
    cfg.insecure_deterministic_seed = Some(9);
    cfg.table_capacity = 64;
    cfg.pool_cap = 1024;
    Stack::new(cfg)
}

fn drain(w: &Worker<'_>, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(n) = w.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 100, "poll_transmit never ran dry");
    }
    out
}

fn only(frames: Vec<Vec<u8>>) -> Vec<u8> {
    assert_eq!(frames.len(), 1, "expected exactly one frame");
    frames.into_iter().next().unwrap()
}

fn is_rst(frame: &[u8]) -> bool {
    matches!(parse(frame), Ok(d) if matches!(d.transport,
        Transport::Tcp(seg) if seg.header.flags.contains(TcpFlags::RST)))
}

/// Every thread reaching a hook point reports it with a sender that lets it
/// go, and waits (at most `WATCHDOG`) for that.
fn pause_at_every_point(stack: &Stack) -> Receiver<(Point, Sender<()>)> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    stack.hooks.install(move |point| {
        let (resume, wait) = mpsc::channel();
        if tx.lock().unwrap().send((point, resume)).is_ok() {
            let _ = wait.recv_timeout(WATCHDOG);
        }
    });
    rx
}

#[test]
fn close_listener_returns_when_a_handshake_completes_during_the_close() {
    close_while_a_final_ack_completes(CookiePolicy::WhenFull);
}

/// The same through a SYN cookie: the final ACK needs no SYN-cache entry, so
/// draining the cache does not stop it either.
#[test]
fn close_listener_returns_when_a_cookie_handshake_completes_during_the_close() {
    close_while_a_final_ack_completes(CookiePolicy::Always);
}

fn close_while_a_final_ack_completes(cookies: CookiePolicy) {
    let server = Arc::new(stack_owning(US, cookies));
    let client = stack_owning(PEER, CookiePolicy::WhenFull);
    let addr = SocketAddr::new(US, 80);
    let listener = server.listen(addr).unwrap();
    let now = Instant::ZERO;
    let conn = client.connect(now, 0, None, addr).unwrap();
    let syn = only(drain(&client.worker(0), now));
    server.worker(0).handle_frame(now, &syn);
    let syn_ack = only(drain(&server.worker(0), now));
    client.worker(0).handle_frame(now, &syn_ack);
    let final_ack = only(drain(&client.worker(0), now));
    let paused = pause_at_every_point(&server);

    // The worker takes the final ACK and stops holding the listener's state.
    let (worker_done, worker_finished) = mpsc::channel();
    let s = server.clone();
    std::thread::spawn(move || {
        s.worker(0).handle_frame(now, &final_ack);
        let _ = worker_done.send(());
    });
    let (point, resume_worker) = paused.recv_timeout(WATCHDOG).expect("worker paused");
    assert_eq!(point, Point::ListenerStateFetched);

    // The close removes the state and empties the (still empty) queue.
    let (close_done, close_finished) = mpsc::channel();
    let s = server.clone();
    std::thread::spawn(move || {
        s.close_listener(listener);
        let _ = close_done.send(());
    });
    let (point, resume_close) = paused.recv_timeout(WATCHDOG).expect("close paused");
    assert_eq!(point, Point::AcceptQueueDrained);

    // The worker completes the handshake now, then the close goes on.
    resume_worker.send(()).unwrap();
    worker_finished
        .recv_timeout(WATCHDOG)
        .expect("the worker finished the final ACK");
    resume_close.send(()).unwrap();
    assert!(
        close_finished.recv_timeout(WATCHDOG).is_ok(),
        "close_listener hung: the completed handshake's in-flight count sits in an \
         accept queue nobody drains"
    );

    assert_eq!(server.connections(), 0, "no connection left unreachable");
    assert_eq!(server.stack_counters().closed_listener_drops, 1);
    if cookies == CookiePolicy::Always {
        assert_eq!(server.syncache_len(), 0, "a cookie handshake kept no entry");
    }
    let replies = drain(&server.worker(0), now);
    assert!(
        replies.iter().any(|f| is_rst(f)),
        "the peer is told the handshake failed"
    );
    for f in &replies {
        client.worker(0).handle_frame(now, f);
    }
    let mut events = Events::NONE;
    while let Some((h, ev)) = client.poll_events(0) {
        if h == conn {
            events |= ev;
        }
    }
    assert!(events.contains(Events::RESET), "{events:?}");
    // The port is free again.
    server.listen(addr).unwrap();
}
