//! One Stack driven by two worker threads at once, while the application
//! calls into it from a third: connections are spread over the workers by
//! flow, each worker keeps its own timers and output, and every octet arrives.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::Duration;

use netstack::{AppError, ConnError, Instant, PcbBackend, Stack, State};
use support::{A4, B4, BACKENDS, stack_config};

const CONNS: usize = 8;
const BYTES: usize = 64 * 1024;

/// The server worker a frame from the client goes to: by client port, as an
/// RSS hash would spread flows over queues.
fn worker_for(frame: &[u8]) -> usize {
    let sport = u16::from_be_bytes([frame[20], frame[21]]);
    usize::from(sport) % 2
}

fn serve(
    stack: Arc<Stack>,
    index: usize,
    clock: Arc<AtomicU64>,
    rx: Receiver<Vec<u8>>,
    tx: Sender<Vec<u8>>,
    stop: Arc<AtomicBool>,
) {
    let worker = stack.worker(index);
    let mut buf = vec![0; 65536];
    // Relaxed: a flag polled in a loop; the channels order the data.
    while !stop.load(Ordering::Relaxed) {
        // Relaxed: the fake clock is only a number.
        let now = Instant::from_nanos(clock.load(Ordering::Relaxed));
        if let Ok(frame) = rx.recv_timeout(Duration::from_millis(1)) {
            worker.handle_frame(now, &frame);
            while let Ok(more) = rx.try_recv() {
                worker.handle_frame(now, &more);
            }
        }
        if worker.poll_timeout().is_some_and(|t| t <= now) {
            worker.handle_timeout(now);
        }
        while let Some(n) = worker.poll_transmit(now, &mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    }
}

#[test]
fn two_workers_serve_connections_concurrently_with_the_application_on_every_backend() {
    for backend in BACKENDS {
        two_workers_serve(backend);
    }
}

fn two_workers_serve(backend: PcbBackend) {
    let mut client_cfg = stack_config(vec![A4], 1);
    client_cfg.pcb_backend = backend;
    let client = Arc::new(Stack::new(client_cfg));
    let mut server_cfg = stack_config(vec![B4], 2);
    server_cfg.workers = 2;
    server_cfg.pcb_backend = backend;
    let server = Arc::new(Stack::new(server_cfg));
    let clock = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (to_client, from_server) = channel::<Vec<u8>>();
    let mut to_server = Vec::new();
    let mut threads = Vec::new();
    for index in 0..2 {
        let (tx, rx) = channel();
        to_server.push(tx);
        let (s, c, t, st) = (
            server.clone(),
            clock.clone(),
            to_client.clone(),
            stop.clone(),
        );
        threads.push(thread::spawn(move || serve(s, index, c, rx, t, st)));
    }
    let listener = server.listen(SocketAddr::new(B4, 80)).unwrap();
    let data: Vec<u8> = (0..BYTES).map(|i| (i % 251) as u8).collect();
    let conns: Vec<_> = (0..CONNS)
        .map(|_| {
            client
                .connect(Instant::ZERO, 0, None, SocketAddr::new(B4, 80))
                .unwrap()
        })
        .collect();
    let mut sent = [0usize; CONNS];
    let mut accepted = Vec::new();
    let mut received = std::collections::HashMap::new();
    let mut buf = vec![0; 65536];
    let start = std::time::Instant::now();
    let w = client.worker(0);
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{backend}: stalled: accepted {}, received {:?}",
            accepted.len(),
            received.values().collect::<Vec<_>>()
        );
        // Relaxed: the fake clock is only a number.
        let now = Instant::from_nanos(clock.fetch_add(100_000, Ordering::Relaxed));
        while let Ok(frame) = from_server.try_recv() {
            w.handle_frame(now, &frame);
        }
        if w.poll_timeout().is_some_and(|t| t <= now) {
            w.handle_timeout(now);
        }
        for (i, c) in conns.iter().enumerate() {
            if client.state_of(c) == Some(State::Established) && sent[i] < BYTES {
                match client.write(c, &data[sent[i]..]) {
                    Ok(n) => sent[i] += n,
                    Err(AppError::Conn(ConnError::WouldBlock)) => {}
                    Err(e) => panic!("write: {e}"),
                }
            }
        }
        while let Some(n) = w.poll_transmit(now, &mut buf) {
            let frame = buf[..n].to_vec();
            to_server[worker_for(&frame)].send(frame).unwrap();
        }
        while let Some(h) = server.accept(&listener) {
            accepted.push(h);
        }
        for h in &accepted {
            let got: &mut Vec<u8> = received.entry(*h).or_default();
            while let Ok(n) = server.read(h, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        if received.len() == CONNS && received.values().all(|v| v.len() == BYTES) {
            break;
        }
        thread::sleep(Duration::from_micros(200));
    }
    // Relaxed: see `serve`.
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    for v in received.values() {
        assert!(*v == data, "octets differ");
    }
    let homes: std::collections::HashSet<_> = accepted
        .iter()
        .map(|h| usize::from(h.remote().port()) % 2)
        .collect();
    assert_eq!(
        homes.len(),
        2,
        "both workers should have completed handshakes"
    );
    assert_eq!(server.mib().passive_opens, CONNS as u64);
}
