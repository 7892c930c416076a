//! smrnet's `Stack` as the server of `bench stack`: one worker handle per
//! client thread, all sharing one Stack (table, listener, SYN cache, pool).
//!
//! The application is what a service on the daemon would be: it drains the
//! accept queue and serves connections from the worker's event list in the
//! worker's turns (read the request, echo it, close once the peer has
//! closed, all on the connection the turn holds locked: no lookup), so it
//! visits only connections that have something to do.

use super::Server;
use super::client::{REQUEST_LEN, SERVER};
use netstack::{Events, ListenerHandle, Stack, StackConfig, Worker};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct SmrnetServer {
    stack: Arc<Stack>,
    listener: Arc<ListenerHandle>,
    worker: usize,
    frame: Vec<u8>,
    scratch: [u8; REQUEST_LEN * 4],
}

impl SmrnetServer {
    /// One Stack for `workers` threads and `open` idle connections beside
    /// the churn, with a listener on [`SERVER`]; returns one server per worker.
    pub(crate) fn shared(
        workers: usize,
        open: usize,
        window: usize,
        backend: pcb::Backend,
    ) -> Vec<SmrnetServer> {
        let mut cfg = StackConfig::new(vec![SERVER.ip()]);
        let conns = open + window * workers;
        cfg.workers = workers;
        cfg.table_capacity = conns;
        // Room for every connection plus PCBs waiting out a grace period.
        cfg.pool_cap = 2 * conns + 64 * 1024;
        cfg.accept_queue = 4 * window * workers;
        cfg.insecure_deterministic_seed = Some(0x5eed);
        cfg.pcb_backend = backend;
        let stack = Arc::new(Stack::new(cfg));
        let listener = Arc::new(stack.listen(SERVER).expect("the bench address is ours"));
        (0..workers)
            .map(|worker| SmrnetServer {
                stack: Arc::clone(&stack),
                listener: Arc::clone(&listener),
                worker,
                frame: vec![0; 2048],
                scratch: [0; REQUEST_LEN * 4],
            })
            .collect()
    }

    fn serve(&mut self, w: &Worker<'_>) {
        // Idle connections are never used again; the churned ones are served
        // from the event list, so the accepted handles need not be kept.
        while w.stack().accept(&self.listener).is_some() {}
        let scratch = &mut self.scratch;
        // One call drains the list, turns that queue new events included.
        w.poll_events(usize::MAX, |conn, events| {
            if !events.contains(Events::READABLE) && !events.contains(Events::PEER_CLOSED) {
                return;
            }
            loop {
                match conn.read(scratch) {
                    Ok(0) => {
                        let _ = conn.close();
                        break;
                    }
                    Ok(n) => {
                        // The send buffer holds far more than a request.
                        let _ = conn.write(&scratch[..n]);
                    }
                    Err(_) => break,
                }
            }
        });
    }
}

impl Server for SmrnetServer {
    fn exchange(&mut self, now: Duration, input: &mut Vec<Vec<u8>>, output: &mut Vec<Vec<u8>>) {
        let now = netstack::Instant::from_nanos(now.as_nanos() as u64);
        let stack = Arc::clone(&self.stack);
        let w = stack.worker(self.worker);
        for frame in input.drain(..) {
            w.handle_frame(now, &frame);
        }
        self.serve(&w);
        w.handle_timeout(now);
        while let Some(n) = w.poll_transmit(now, &mut self.frame) {
            output.push(self.frame[..n].to_vec());
        }
    }
}
