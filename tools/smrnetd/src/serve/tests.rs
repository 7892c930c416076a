//! The services over two sans-IO stacks wired back to back: a client Stack
//! (198.18.0.1) and the served Stack (198.18.0.2), with a fake clock.

use super::*;
use crate::config::{ListenSpec, Service};
use core::net::{IpAddr, SocketAddr};
use netstack::{Instant, StackConfig, State};

const CLIENT: &str = "198.18.0.1";
const SERVER: &str = "198.18.0.2";

struct Pair {
    client: Stack,
    server: Stack,
    srv: Server,
    listeners: Vec<ListenerHandle>,
    now: u64,
}

fn stack(addr: &str, seed: u64) -> Stack {
    let mut cfg = StackConfig::new(vec![addr.parse::<IpAddr>().unwrap()]);
    cfg.insecure_deterministic_seed = Some(seed);
    cfg.table_capacity = 64;
    cfg.pool_cap = 1024;
    Stack::new(cfg)
}

impl Pair {
    fn new(body: usize) -> Pair {
        let server = stack(SERVER, 2);
        let specs: Vec<ListenSpec> = [
            (7, Service::Echo),
            (9, Service::Discard),
            (80, Service::Http),
        ]
        .into_iter()
        .map(|(port, service)| ListenSpec {
            addr: SocketAddr::new("0.0.0.0".parse().unwrap(), port),
            service,
        })
        .collect();
        let listeners = specs
            .iter()
            .map(|s| server.listen(s.addr).unwrap())
            .collect();
        Pair {
            client: stack(CLIENT, 1),
            server,
            srv: Server::new(0, specs, body),
            listeners,
            now: 1_000_000,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// One exchange both ways plus a service turn; 1 ms passes.
    fn step(&mut self) {
        let now = self.now();
        let (cw, sw) = (self.client.worker(0), self.server.worker(0));
        let mut buf = [0u8; 2048];
        cw.handle_timeout(now);
        sw.handle_timeout(now);
        while let Some(n) = cw.poll_transmit(now, &mut buf) {
            sw.handle_frame(now, &buf[..n]);
        }
        self.srv.serve(&sw, &self.listeners);
        while let Some(n) = sw.poll_transmit(now, &mut buf) {
            cw.handle_frame(now, &buf[..n]);
        }
        while self.client.poll_events(0).is_some() {}
        self.now += 1_000_000;
    }

    fn connect(&mut self, port: u16) -> ConnHandle {
        let remote = SocketAddr::new(SERVER.parse().unwrap(), port);
        let c = self.client.connect(self.now(), 0, None, remote).unwrap();
        for _ in 0..100 {
            self.step();
            if self.client.state_of(&c) == Some(State::Established) {
                return c;
            }
        }
        panic!("no handshake: {:?}", self.client.state_of(&c));
    }

    /// Writes `data` and reads until `want` bytes came back or the peer closed.
    fn exchange(&mut self, c: &ConnHandle, data: &[u8], want: usize) -> (Vec<u8>, bool) {
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..20_000 {
            if sent < data.len()
                && let Ok(n) = self.client.write(c, &data[sent..])
            {
                sent += n;
            }
            self.step();
            loop {
                match self.client.read(c, &mut buf) {
                    Ok(0) => return (got, true),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
            if got.len() >= want && sent == data.len() {
                return (got, false);
            }
        }
        panic!(
            "stalled: sent {sent} of {}, got {} of {want}",
            data.len(),
            got.len()
        );
    }
}

#[test]
fn echo_round_trips_a_quarter_mebibyte_byte_exactly() {
    let mut p = Pair::new(0);
    let c = p.connect(7);
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 + i / 251) as u8).collect();
    let (got, closed) = p.exchange(&c, &data, data.len());
    assert!(!closed);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    let hs = p.server.handshake_times();
    assert_eq!(
        hs.count(),
        1,
        "the passive open is in the handshake histogram"
    );
    assert!(hs.sum_ns > 0 && hs.sum_ns < 1_000_000_000, "{}", hs.sum_ns);
}

#[test]
fn discard_answers_nothing_and_closes_when_the_peer_does() {
    let mut p = Pair::new(0);
    let c = p.connect(9);
    let (got, _) = p.exchange(&c, &[1u8; 5000], 0);
    for _ in 0..20 {
        p.step();
    }
    assert!(got.is_empty());
    assert_eq!(p.srv.len(), 1);
    p.client.close(&c).unwrap();
    for _ in 0..50 {
        p.step();
    }
    assert_eq!(p.srv.len(), 0, "the session ends with the connection");
}

#[test]
fn http_keep_alive_answers_every_request_with_the_body() {
    let mut p = Pair::new(3000);
    let c = p.connect(80);
    let req = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n";
    for _ in 0..3 {
        let (got, closed) = p.exchange(&c, req, 3000);
        assert!(!closed, "keep-alive");
        let text = String::from_utf8(got).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 3000"), "{head}");
        assert_eq!(body.as_bytes(), crate::services::http_body(3000));
    }
}

#[test]
fn http_connection_close_closes_after_the_response() {
    let mut p = Pair::new(10);
    let c = p.connect(80);
    let (got, closed) = p.exchange(
        &c,
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        usize::MAX,
    );
    assert!(closed);
    assert!(got.ends_with(b"smrnet\nsmr"));
}

#[test]
fn stop_closes_served_connections_and_refuses_new_sessions() {
    let mut p = Pair::new(0);
    let c = p.connect(7);
    let (got, _) = p.exchange(&c, b"ping", 4);
    assert_eq!(got, b"ping");
    p.srv.stop(&p.server);
    let (_, closed) = p.exchange(&c, b"", usize::MAX);
    assert!(closed, "the client sees our FIN");
    p.srv.abort_all(&p.server);
    assert!(p.srv.is_empty());
}

/// What a held connection costs the server, beyond the stack: one map entry
/// (a map's slots run from one to two entries per connection held).
/// Measured RSS per held connection is about 1 KiB in all, so this entry is
/// a budget, not a curiosity.
#[test]
fn a_served_connection_is_a_small_map_entry() {
    let entry = core::mem::size_of::<(ConnHandle, Served)>();
    assert!(entry <= 80, "(ConnHandle, Served) grew to {entry} bytes");
}

#[test]
fn idle_connections_hold_no_output_buffer_and_buffers_are_reused() {
    let mut p = Pair::new(64);
    let conns: Vec<ConnHandle> = (0..3).map(|_| p.connect(7)).collect();
    for (i, c) in conns.iter().enumerate() {
        let data = vec![i as u8; 1000 + i];
        let (got, closed) = p.exchange(c, &data, data.len());
        assert!(!closed && got == data, "connection {i}: echo differs");
    }
    let http = p.connect(80);
    let (got, _) = p.exchange(&http, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    assert!(got.starts_with(b"HTTP/1.1 200"), "http answered");
    for _ in 0..5 {
        p.step();
    }
    assert_eq!(p.srv.len(), 4);
    for (conn, s) in &p.srv.served {
        assert!(
            s.out.is_none(),
            "idle connection {conn:?} still holds an output buffer"
        );
    }
    assert!(
        !p.srv.spare.is_empty() && p.srv.spare.len() <= SPARE_OUTPUTS,
        "sent buffers are kept for reuse, within the bound: {}",
        p.srv.spare.len()
    );
    assert!(p.srv.spare.iter().all(|b| b.buf.is_empty() && b.off == 0));
}
