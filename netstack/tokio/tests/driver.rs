//! The ready-made [`Driver`] on real threads: two stacks, each driven by a
//! `Driver` on its own thread, joined by a datagram socket pair standing in
//! for a TUN queue, with the application on a tokio runtime.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netstack::StackConfig;
use smrnet_tokio::{Driver, Frames, Net, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// One end of the "wire": each datagram is one IP frame.
struct Wire(UnixDatagram);

impl AsFd for Wire {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Frames for Wire {
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
    fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        self.0.send(frame).map(drop)
    }
}

/// Runs `app` against two driven stacks (A and B), then stops the drivers
/// and joins their threads, also when `app` panics.
async fn with_two_stacks<F, T>(app: impl FnOnce(Net, Net) -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    let (wa, wb) = UnixDatagram::pair().expect("socket pair");
    wa.set_nonblocking(true).unwrap();
    wb.set_nonblocking(true).unwrap();
    let (net_a, driver_a) = Driver::new(StackConfig::new(vec![A])).expect("driver A");
    let (net_b, driver_b) = Driver::new(StackConfig::new(vec![B])).expect("driver B");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = [(driver_a, Wire(wa)), (driver_b, Wire(wb))]
        .into_iter()
        .map(|(d, wire)| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || d.run(0, &wire, &stop))
        })
        .collect();
    // At most 20 s, so a lost wake-up or a hang fails instead of blocking.
    let out = tokio::time::timeout(Duration::from_secs(20), app(net_a, net_b)).await;
    // Relaxed: a stop flag; the drivers see it within their 100 ms cap.
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("driver thread").expect("driver run");
    }
    out.expect("the exchange finished within 20 s")
}

/// An application's write must reach the wire at once, not when the
/// sleeping driver's poll times out: the stack wakes the parked worker
/// through the waker `Driver::new` installs. The client pauses before each
/// write so that its driver is surely asleep in poll(2) by then.
#[tokio::test(flavor = "current_thread")]
async fn an_application_write_wakes_the_sleeping_driver_at_once() {
    const ROUNDS: usize = 20;
    const PAUSE: Duration = Duration::from_millis(50);
    let mut rounds = with_two_stacks(|a, b| async move {
        let listener = TcpListener::bind(&b, SocketAddr::new(B, 7)).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut byte = [0u8; 1];
            while s.read_exact(&mut byte).await.is_ok() {
                s.write_all(&byte).await.unwrap();
            }
        });
        let mut c = TcpStream::connect(&a, SocketAddr::new(B, 7)).await.unwrap();
        let mut rounds = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            tokio::time::sleep(PAUSE).await;
            let started = Instant::now();
            let sent = [i as u8];
            c.write_all(&sent).await.unwrap();
            let mut got = [0u8; 1];
            c.read_exact(&mut got).await.unwrap();
            rounds.push(started.elapsed());
            assert_eq!(got, sent, "round {i}");
        }
        drop(c);
        server.await.unwrap();
        rounds
    })
    .await;
    rounds.sort();
    let median = rounds[ROUNDS / 2];
    // Without the wake-up the client's write waits for its sleeping
    // driver's next deadline or the 100 ms sleep cap (tens of ms a round,
    // checked with a no-op waker); with it, a round takes well under a
    // millisecond on an idle machine. The median leaves a loaded machine
    // its occasional slow round.
    assert!(
        median < Duration::from_millis(10),
        "median one-byte round trip {median:?} (max {:?}): the drivers slept through the writes",
        rounds[ROUNDS - 1]
    );
}

/// With a wake relay spawned on the application's runtime, the drivers'
/// events reach the tasks through it (the registry wakes no task from a
/// driver's thread itself), an exchange is still byte-exact, and the
/// relay is woken at most once per task wake-up it carries.
#[tokio::test(flavor = "current_thread")]
async fn a_wake_relay_carries_the_drivers_wake_ups_to_the_tasks() {
    const ROUNDS: usize = 50;
    let (relayed, relay_wakes) = with_two_stacks(|a, b| async move {
        let relays: Vec<_> = [&a, &b]
            .into_iter()
            .map(|n| tokio::spawn(n.wake_relay().expect("the first relay")))
            .collect();
        assert!(a.wake_relay().is_none(), "one relay per Net");
        let listener = TcpListener::bind(&b, SocketAddr::new(B, 7)).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 100];
            while s.read_exact(&mut buf).await.is_ok() {
                s.write_all(&buf).await.unwrap();
            }
        });
        let mut c = TcpStream::connect(&a, SocketAddr::new(B, 7)).await.unwrap();
        for i in 0..ROUNDS {
            let sent = [i as u8; 100];
            c.write_all(&sent).await.unwrap();
            let mut got = [0u8; 100];
            c.read_exact(&mut got).await.unwrap();
            assert_eq!(got, sent, "round {i}");
        }
        drop(c);
        server.await.unwrap();
        let (ca, cb) = (a.counters(), b.counters());
        for r in relays {
            r.abort();
        }
        (ca.relayed + cb.relayed, ca.relay_wakes + cb.relay_wakes)
    })
    .await;
    // Each round wakes the server's reader and the client's reader at
    // least once; every one of those went through a relay.
    assert!(
        relayed >= 2 * ROUNDS as u64,
        "{relayed} wake-ups relayed in {ROUNDS} rounds"
    );
    assert!(
        (1..=relayed).contains(&relay_wakes),
        "{relay_wakes} relay wake-ups for {relayed} relayed"
    );
}
