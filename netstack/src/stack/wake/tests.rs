use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use super::*;
use crate::stack::StackConfig;
use crate::time::Instant;

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// A two-worker stack whose waker records every wake-up.
fn stack() -> (Stack, Arc<Mutex<Vec<usize>>>) {
    let woken = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&woken);
    let mut cfg = StackConfig::new(vec![US]);
    cfg.insecure_deterministic_seed = Some(3);
    cfg.workers = 2;
    cfg.waker = Some(WorkerWaker::new(move |w| log.lock().unwrap().push(w)));
    (Stack::new(cfg), woken)
}

fn drain(w: Worker<'_>) {
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        if w.poll_transmit(Instant::ZERO, &mut buf).is_none() {
            return;
        }
    }
    panic!("poll_transmit never ran dry");
}

/// A connection homed on worker 0 with its SYN sent: nothing queued.
fn quiet_connection(s: &Stack) -> crate::stack::ConnHandle {
    let h = s
        .connect(Instant::ZERO, 0, None, SocketAddr::new(PEER, 80))
        .unwrap();
    drain(s.worker(0));
    h
}

#[test]
fn work_queued_for_a_parked_worker_wakes_it_once() {
    let (s, woken) = stack();
    let h = quiet_connection(&s);
    assert!(
        s.worker(0).park(),
        "nothing is queued: the worker may sleep"
    );
    // Another thread acts on worker 0's connection: its output now waits on
    // worker 0's ready list.
    s.abort(&h).unwrap();
    s.abort(&h).unwrap();
    assert_eq!(*woken.lock().unwrap(), vec![0], "one wake-up per park");
    assert_eq!(s.wakes_sent(0), 1);
    assert_eq!(s.wakes_sent(1), 0);
    s.worker(0).unpark();
}

#[test]
fn park_refuses_to_sleep_on_work_already_queued() {
    let (s, woken) = stack();
    let h = quiet_connection(&s);
    s.close(&h).unwrap();
    assert!(!s.worker(0).park(), "the close queued output for worker 0");
    s.close(&h).unwrap();
    assert!(woken.lock().unwrap().is_empty(), "a refused park is awake");
    drain(s.worker(0));
    while s.poll_events(0).is_some() {}
    assert!(s.worker(0).park(), "everything was taken");
}

#[test]
fn an_awake_worker_costs_pushers_no_wake_up() {
    let (s, woken) = stack();
    let h = quiet_connection(&s);
    assert!(s.worker(0).park());
    s.worker(0).unpark();
    s.abort(&h).unwrap();
    // Worker 1 parked does not matter: the connection is worker 0's.
    assert!(s.worker(1).park());
    s.abort(&h).unwrap();
    assert!(woken.lock().unwrap().is_empty());
    assert_eq!(s.wakes_sent(0), 0);
}

#[test]
fn no_wake_up_is_lost_between_park_and_a_concurrent_push() {
    // A worker thread parks and sleeps on a channel the waker signals;
    // another thread keeps queuing work for it. If a push slipped between
    // `park`'s look at the queues and the flag, the worker would sleep
    // through it and the bounded wait below would time out.
    use std::sync::mpsc;
    use std::time::Duration;
    const ROUNDS: usize = 2000;
    let (tx, rx) = mpsc::channel::<()>();
    let tx = Mutex::new(tx);
    let mut cfg = StackConfig::new(vec![US]);
    cfg.insecure_deterministic_seed = Some(4);
    cfg.workers = 2;
    cfg.waker = Some(WorkerWaker::new(move |_| {
        let _ = tx.lock().unwrap().send(());
    }));
    let s = Stack::new(cfg);
    let h = quiet_connection(&s);
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let s = &s;
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let w = s.worker(0);
            let mut served = 0;
            let mut buf = [0u8; 2048];
            for _ in 0..ROUNDS * 4 {
                if w.park() {
                    let woke = rx.recv_timeout(Duration::from_secs(5));
                    w.unpark();
                    assert!(woke.is_ok(), "slept through queued work");
                }
                while w.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
                while s.poll_events(0).is_some() {}
                served += 1;
                if done_rx.try_recv().is_ok() {
                    break;
                }
            }
            served
        });
        for _ in 0..ROUNDS {
            let _ = s.set_nagle(&h, false);
            std::thread::yield_now();
        }
        // One last push so a parked worker wakes and sees the end.
        done_tx.send(ROUNDS).unwrap();
        let _ = s.set_nagle(&h, true);
        let served = worker.join().unwrap();
        assert!(served > 0);
    });
}
