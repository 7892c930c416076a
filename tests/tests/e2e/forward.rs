//! The `forward` service: connections the daemon accepts are spliced to a
//! kernel-socket upstream that the test runs on the lab namespace's
//! loopback (the only place the daemon may forward to).

use crate::clients::connect;
use crate::names as metric;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, Lab, Outcome, lab_with, scrape};
use tools::load::syn::{self, SynArgs};

const FORWARD_PORT: u16 = 8000;
pub(crate) const UPSTREAM_PORT: u16 = 18080;
/// The longest an upstream server runs, whatever the test does.
const UPSTREAM_LIFETIME: Duration = Duration::from_secs(120);

fn forward_lab(upstream_port: u16) -> Lab {
    let listen = format!("0.0.0.0:{FORWARD_PORT}=forward:127.0.0.1:{upstream_port}");
    lab_with(2, &["--listen", &listen])
}

fn front() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(DAEMON_V4), FORWARD_PORT)
}

/// How the test's upstream answers a connection.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    /// Reads to end of stream, then answers `got N:` and the bytes, and
    /// closes: a reply only a carried half-close lets through.
    ReplyAfterEof,
    /// Echoes what arrives until end of stream, then closes.
    Echo,
    /// Reads until end of stream or an error and records which.
    Hold,
}

/// How a held upstream connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Eof,
    Reset,
    Other(String),
}

/// A kernel TCP server on the lab namespace's 127.0.0.1, stopped on drop.
pub(crate) struct Upstream {
    accepts: Arc<AtomicU64>,
    ended: Arc<Mutex<Vec<Ended>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    pub(crate) fn start(lab: &Lab, mode: Mode) -> Upstream {
        let listener = lab
            .in_netns(|| TcpListener::bind(("127.0.0.1", UPSTREAM_PORT)))
            .expect("enter the lab")
            .expect("bind the upstream in the lab namespace");
        listener.set_nonblocking(true).expect("nonblocking");
        let accepts = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, e, st) = (accepts.clone(), ended.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + UPSTREAM_LIFETIME;
            // Relaxed: a stop flag; the join orders everything after it.
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        // Relaxed: a count read after the test's traffic.
                        a.fetch_add(1, Ordering::Relaxed);
                        let e = e.clone();
                        std::thread::spawn(move || serve(s, mode, &e));
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(err) => panic!("upstream accept: {err}"),
                }
            }
        });
        Upstream {
            accepts,
            ended,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn accepts(&self) -> u64 {
        // Relaxed: see `start`.
        self.accepts.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Relaxed: see `start`.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut s: TcpStream, mode: Mode, ended: &Mutex<Vec<Ended>>) {
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = vec![0u8; 64 * 1024];
    match mode {
        Mode::ReplyAfterEof => {
            let mut got = Vec::new();
            if s.read_to_end(&mut got).is_err() {
                return;
            }
            let _ = write!(s, "got {}:", got.len());
            let _ = s.write_all(&got);
        }
        Mode::Echo => loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        },
        Mode::Hold => {
            let end = loop {
                match s.read(&mut buf) {
                    Ok(0) => break Ended::Eof,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => break Ended::Reset,
                    Err(e) => break Ended::Other(e.to_string()),
                }
            };
            ended.lock().unwrap().push(end);
        }
    }
}

/// Payload `i` of `len` bytes (differs per connection).
pub(crate) fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (j * 31 + i * 7) as u8).collect()
}

pub fn forward_splices_both_ways_and_carries_the_half_close() -> Outcome {
    const CONNS: usize = 20;
    const LEN: usize = 100 * 1024;
    let lab = forward_lab(UPSTREAM_PORT);
    let upstream = Upstream::start(&lab, Mode::ReplyAfterEof);
    lab.in_netns(|| {
        for i in 0..CONNS {
            let mut s = connect(front()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            let data = payload(i, LEN);
            s.write_all(&data).expect("send the request");
            // Half-close: the upstream answers only once it sees our FIN.
            s.shutdown(Shutdown::Write).expect("shutdown");
            let mut reply = Vec::new();
            s.read_to_end(&mut reply)
                .unwrap_or_else(|e| panic!("connection {i}: reply: {e}"));
            let mut want = format!("got {LEN}:").into_bytes();
            want.extend_from_slice(&data);
            assert!(
                reply == want,
                "connection {i}: {} reply bytes, not the {} expected",
                reply.len(),
                want.len()
            );
        }
    })
    .expect("enter the lab");
    assert_eq!(upstream.accepts(), CONNS as u64);
    let m = scrape(&lab);
    assert_eq!(m.sum(metric::FORWARD_UPSTREAM_CONNECTS), CONNS as f64);
    assert_eq!(
        m.sum_where(metric::FORWARD_BYTES, "direction=\"to_upstream\""),
        (CONNS * LEN) as f64
    );
    assert!(m.sum_where(metric::FORWARD_BYTES, "direction=\"to_client\"") >= (CONNS * LEN) as f64);
    assert_eq!(m.sum(metric::FORWARD_UPSTREAM_FAILURES), 0.0);
    Outcome::Passed
}

pub fn forward_to_a_down_upstream_resets_the_client_and_logs_once() -> Outcome {
    const TRIES: usize = 10;
    // Nobody listens on the upstream port.
    let lab = forward_lab(UPSTREAM_PORT);
    lab.in_netns(|| {
        for i in 0..TRIES {
            // The stack completes the handshake (so no ConnectionRefused);
            // the upstream's refusal then resets the client, so quickly
            // that the reset may already be the connect's outcome.
            let outcome = connect(front()).and_then(|mut s| {
                let _ = s.write_all(b"hello");
                let mut buf = [0u8; 16];
                s.read(&mut buf)
            });
            match outcome {
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("connection {i}: expected an RST, got {other:?}"),
            }
        }
    })
    .expect("enter the lab");
    let m = scrape(&lab);
    assert_eq!(
        m.sum_where(metric::FORWARD_UPSTREAM_FAILURES, "reason=\"refused\""),
        TRIES as f64
    );
    let log = std::fs::read_to_string(lab.log()).expect("read the daemon log");
    let lines = log
        .lines()
        .filter(|l| l.contains("upstream refused"))
        .count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} 'upstream refused' log lines for {TRIES} quick failures: not rate-limited"
    );
    Outcome::Passed
}

pub fn forward_under_a_syn_flood_reaches_the_upstream_only_for_legit_clients() -> Outcome {
    const LEGIT: usize = 40;
    let lab = forward_lab(UPSTREAM_PORT);
    let upstream = Upstream::start(&lab, Mode::Echo);
    let args = SynArgs {
        rate: Some(20_000),
        duration: 3.0,
        batch: 32,
        seed: Some(0x5eed),
        probe_concurrency: 1,
        no_probe: true,
        ..SynArgs::for_lab(&lab, SocketAddrV4::new(DAEMON_V4, FORWARD_PORT))
    };
    let connected = std::thread::scope(|scope| {
        let flood = scope.spawn(|| syn::run(&args, &AtomicBool::new(false)));
        // Legitimate clients during the flood, each verified end to end.
        let connected = lab
            .in_netns(|| {
                std::thread::sleep(Duration::from_millis(300));
                let mut ok = 0u64;
                for i in 0..LEGIT {
                    let Ok(mut s) = connect(front()) else {
                        continue;
                    };
                    ok += 1;
                    let data = payload(i, 1000);
                    s.write_all(&data).expect("send");
                    let mut back = vec![0u8; data.len()];
                    s.read_exact(&mut back).expect("echo through forward");
                    assert_eq!(back, data, "connection {i}");
                    std::thread::sleep(Duration::from_millis(30));
                }
                ok
            })
            .expect("enter the lab");
        let report = flood.join().expect("flood thread").expect("syn flood");
        eprintln!("{report}");
        assert!(
            report.flood.sent > 10_000,
            "the flood sent only {}",
            report.flood.sent
        );
        connected
    });
    assert!(
        connected as f64 >= 0.9 * LEGIT as f64,
        "only {connected} of {LEGIT} legit clients connected under the flood"
    );
    // Every legit connection reached the upstream once, and nothing else did.
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.accepts() < connected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        upstream.accepts(),
        connected,
        "the upstream accepted {} connections for {connected} legitimate clients",
        upstream.accepts()
    );
    Outcome::Passed
}

pub fn sigint_closes_both_sides_of_every_splice() -> Outcome {
    const OPEN: usize = 5;
    let mut lab = forward_lab(UPSTREAM_PORT);
    let upstream = Upstream::start(&lab, Mode::Hold);
    let mut clients = lab
        .in_netns(|| {
            (0..OPEN)
                .map(|i| {
                    let mut s = connect(front()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
                    s.write_all(b"held").expect("write");
                    s
                })
                .collect::<Vec<_>>()
        })
        .expect("enter the lab");
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.accepts() < OPEN as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        upstream.accepts(),
        OPEN as u64,
        "every splice reached the upstream"
    );
    lab.daemon_mut()
        .signal(rustix::process::Signal::INT)
        .expect("send SIGINT");
    let status = lab
        .daemon_mut()
        .wait_timeout(Duration::from_secs(2))
        .expect("wait for the daemon")
        .expect("still running 2 s after SIGINT");
    assert!(status.success(), "exit status {status} after SIGINT");
    for (i, s) in clients.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("client {i} after SIGINT: expected FIN or RST, got {other:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while upstream.ended.lock().unwrap().len() < OPEN && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended = upstream.ended.lock().unwrap();
    assert_eq!(ended.len(), OPEN, "upstream sides closed: {ended:?}");
    assert!(
        ended.iter().all(|e| *e == Ended::Eof || *e == Ended::Reset),
        "{ended:?}"
    );
    drop(ended);
    lab.down().expect("lab down");
    Outcome::Passed
}

pub fn forward_to_a_silent_upstream_resets_the_client_after_the_connect_timeout() -> Outcome {
    use rustix::net::{AddressFamily, SocketType, bind, listen, socket};
    let lab = forward_lab(UPSTREAM_PORT);
    // An upstream whose accept queue is full: the kernel drops further
    // SYNs, so the forward's connect gets no answer at all.
    let upstream = lab
        .in_netns(|| {
            let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
            let at = SocketAddr::from(([127, 0, 0, 1], UPSTREAM_PORT));
            bind(&fd, &at)?;
            listen(&fd, 0)?;
            let fillers: Vec<_> = (0..3)
                .filter_map(|_| TcpStream::connect_timeout(&at, Duration::from_millis(200)).ok())
                .collect();
            Ok::<_, std::io::Error>((fd, fillers))
        })
        .expect("enter the lab")
        .expect("a full upstream");
    let t0 = Instant::now();
    let outcome = lab
        .in_netns(|| {
            connect(front()).and_then(|mut s| {
                let mut buf = [0u8; 16];
                s.read(&mut buf)
            })
        })
        .expect("enter the lab");
    let took = t0.elapsed();
    match outcome {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected an RST after the connect timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(10),
        "reset after {took:?}, not after the 3 s connect timeout"
    );
    let m = scrape(&lab);
    assert_eq!(
        m.sum_where(metric::FORWARD_UPSTREAM_FAILURES, "reason=\"timed_out\""),
        1.0
    );
    drop(upstream);
    Outcome::Passed
}

/// Round trips through `forward` to an upstream that echoes at once: the
/// reply is written into the client's stack connection by the forward
/// thread, not by the packet worker the connection is homed on, so only a
/// wake-up gets it sent before that worker's poll(2) times out (up to 10
/// ms). Returns every round trip's time, in order.
fn forward_round_trips(lab: &Lab, trips: usize, len: usize) -> Vec<Duration> {
    lab.in_netns(|| {
        let mut s = connect(front()).expect("connect to forward");
        let mut back = vec![0u8; len];
        let mut rtts = Vec::with_capacity(trips);
        // The first trips set up the splice (the upstream connect) and warm
        // the path; they are not measured.
        for i in 0..trips + WARM_UP {
            let data = payload(i, len);
            let t0 = Instant::now();
            s.write_all(&data).expect("send the request");
            s.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("round trip {i}: {e}"));
            let took = t0.elapsed();
            assert!(back == data, "round trip {i}: the reply differs");
            if i >= WARM_UP {
                rtts.push(took);
            }
        }
        rtts
    })
    .expect("enter the lab")
}

/// Round trips not measured (the splice's set-up).
const WARM_UP: usize = 10;

pub fn forward_reply_written_off_the_home_worker_is_sent_within_a_millisecond() -> Outcome {
    const TRIPS: usize = 200;
    let lab = forward_lab(UPSTREAM_PORT);
    let _upstream = Upstream::start(&lab, Mode::Echo);
    let before = scrape(&lab);
    let mut rtts = forward_round_trips(&lab, TRIPS, 64);
    let after = scrape(&lab);
    rtts.sort_unstable();
    let (median, p90, max) = (rtts[TRIPS / 2], rtts[TRIPS * 9 / 10], rtts[TRIPS - 1]);
    let delta = |name: &str| after.sum(name) - before.sum(name);
    let received = delta(metric::WORKER_WAKEUPS_RECEIVED);
    eprintln!(
        "forward round trip over {TRIPS}: median {median:?}, p90 {p90:?}, max {max:?}; \
         wake-ups sent {}, received {received}",
        delta(metric::WORKER_WAKEUPS_SENT)
    );
    assert!(
        median < Duration::from_millis(1),
        "median round trip {median:?}: the forward thread's reply waited for the home worker's poll timeout"
    );
    // The worker sleeps between a request and its reply: the reply goes
    // out because the forward thread's write woke it.
    assert!(
        received >= (TRIPS / 2) as f64,
        "{received} sleeps ended by a wake-up over {TRIPS} round trips"
    );
    Outcome::Passed
}
