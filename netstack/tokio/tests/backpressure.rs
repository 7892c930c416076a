//! Backpressure and cancellation: a task that does not read stalls its
//! peer's writes (the window closes, the send buffer fills, `poll_write`
//! is `Pending`), and dropping a pending `accept`, `read` or `write` future
//! loses nothing.

mod support;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};

use netstack::TcpConfig;
use smrnet_tokio::{TcpListener, TcpStream};
use support::{B4, Lab, NetConfig, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(B4, port)
}

#[tokio::test(flavor = "current_thread")]
async fn a_reader_that_does_not_read_stalls_the_writer_until_it_reads() {
    const TOTAL: usize = 1 << 20;
    let mut lab = Lab::new(NetConfig::default());
    let tcp = TcpConfig::default();
    let listener = TcpListener::bind(&lab.b, server_addr(6000)).unwrap();
    let accepted = tokio::spawn(async move { listener.accept().await.map(|(s, _)| (s, listener)) });
    let a = lab.a.clone();
    let written = Arc::new(AtomicUsize::new(0));
    let w2 = Arc::clone(&written);
    let data = pattern(7, TOTAL);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        let mut s = TcpStream::connect(&a, server_addr(6000)).await.unwrap();
        let mut off = 0;
        while off < sent.len() {
            let n = s
                .write(&sent[off..(off + 4096).min(sent.len())])
                .await
                .unwrap();
            off += n;
            // Relaxed: a progress gauge the test reads between steps.
            w2.store(off, Ordering::Relaxed);
        }
        s.shutdown().await.unwrap();
        s
    });
    let (mut server, _listener) = lab
        .run(async move { accepted.await.unwrap().unwrap() })
        .await;
    // Long enough to move 1 MB many times over at the fake network's speed.
    lab.steps(20_000).await;
    // Relaxed: see above.
    let stalled_at = written.load(Ordering::Relaxed);
    assert!(
        !writer.is_finished(),
        "the writer finished without a reader"
    );
    assert!(stalled_at > 0, "nothing was written at all");
    assert!(
        stalled_at <= tcp.send_buffer + tcp.recv_buffer,
        "{stalled_at} bytes accepted by the writer's stack: more than its send buffer \
         ({}) plus the reader's receive buffer ({})",
        tcp.send_buffer,
        tcp.recv_buffer
    );
    // The stall is stable: more time moves nothing.
    lab.steps(2_000).await;
    assert_eq!(written.load(Ordering::Relaxed), stalled_at);
    let got = lab
        .run(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        })
        .await;
    assert!(
        got == data,
        "received {} bytes, not the 1 MB sent",
        got.len()
    );
    lab.run(async move { drop(writer.await.unwrap()) }).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_accept_future_leaves_the_connection_for_the_next_accept() {
    let mut lab = Lab::new(NetConfig::default());
    let listener = Arc::new(TcpListener::bind(&lab.b, server_addr(6001)).unwrap());
    // An accept polled once (Pending: nobody has connected), then dropped
    // after the connection that would have woken it arrived.
    let mut cx = Context::from_waker(Waker::noop());
    let client = {
        let mut accept = pin!(listener.accept());
        assert!(accept.as_mut().poll(&mut cx).is_pending());
        let a = lab.a.clone();
        let client = lab
            .run(async move { TcpStream::connect(&a, server_addr(6001)).await.unwrap() })
            .await;
        // The client is established; the server once the final ACK lands.
        lab.steps(10).await;
        assert_eq!(
            lab.b.stack().accept_queue_len(&listener.handle()),
            1,
            "the connection waits in the queue"
        );
        // The accept future is dropped here, at the end of its block.
        client
    };
    let l = Arc::clone(&listener);
    let (s, peer) = lab.run(async move { l.accept().await.unwrap() }).await;
    assert_eq!(peer.ip(), support::A4);
    assert_eq!(Some(peer), client.local_addr().ok());
    drop(s);
}

/// Reads and writes raced against a future that is always ready next, so
/// most of them are dropped while pending: the bytes that arrive are
/// exactly the bytes whose writes completed, in order.
#[tokio::test(flavor = "current_thread")]
async fn dropped_read_and_write_futures_lose_no_byte() {
    const TOTAL: usize = 256 * 1024;
    let mut lab = Lab::new(NetConfig {
        loss_per_mille: 10,
        ..NetConfig::default()
    });
    let listener = TcpListener::bind(&lab.b, server_addr(6002)).unwrap();
    let a = lab.a.clone();
    let data = pattern(9, TOTAL);
    let sent = data.clone();
    let cancelled_writes = Arc::new(AtomicUsize::new(0));
    let cw = Arc::clone(&cancelled_writes);
    let writer = tokio::spawn(async move {
        let mut s = TcpStream::connect(&a, server_addr(6002)).await.unwrap();
        let mut off = 0;
        while off < sent.len() {
            tokio::select! {
                biased;
                r = s.write(&sent[off..]) => off += r.unwrap(),
                () = tokio::task::yield_now() => {
                    // Relaxed: a counter the test reads at the end.
                    cw.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        s.shutdown().await.unwrap();
        s
    });
    let (got, cancelled_reads) = lab
        .run(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 3000];
            let mut cancelled = 0usize;
            loop {
                tokio::select! {
                    biased;
                    r = s.read(&mut buf) => match r.unwrap() {
                        0 => break,
                        n => got.extend_from_slice(&buf[..n]),
                    },
                    () = tokio::task::yield_now() => cancelled += 1,
                }
            }
            (got, cancelled)
        })
        .await;
    lab.run(async move { drop(writer.await.unwrap()) }).await;
    assert!(
        got == data,
        "received {} bytes, not the {TOTAL} sent",
        got.len()
    );
    assert!(
        cancelled_reads > 0,
        "no read was ever dropped while pending"
    );
    assert!(
        cancelled_writes.load(Ordering::Relaxed) > 0,
        "no write was ever dropped while pending"
    );
}

/// A pending read, dropped after the data that would have woken it
/// arrived: the next read gets that data.
#[tokio::test(flavor = "current_thread")]
async fn a_read_dropped_after_its_wake_up_leaves_the_data() {
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(6003)).unwrap();
    let a = lab.a.clone();
    let client = tokio::spawn(async move { TcpStream::connect(&a, server_addr(6003)).await });
    let (mut server, _) = lab
        .run(async move { listener.accept().await.unwrap() })
        .await;
    let mut client = lab.run(async move { client.await.unwrap().unwrap() }).await;
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 64];
    {
        let mut read = pin!(server.read(&mut buf));
        assert!(read.as_mut().poll(&mut cx).is_pending());
        lab.run(async move {
            client.write_all(b"kept").await.unwrap();
            client
        })
        .await;
        lab.steps(20).await;
        // Woken, never polled again: dropped.
    }
    let mut kept = [0u8; 4];
    let got = lab
        .run(async move {
            server.read_exact(&mut kept).await.unwrap();
            kept
        })
        .await;
    assert_eq!(&got, b"kept");
}

/// Accepts raced against a future that is always ready next: every
/// connection is still accepted exactly once.
#[tokio::test(flavor = "current_thread")]
async fn accepts_dropped_while_pending_lose_no_connection() {
    const CLIENTS: usize = 8;
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(6004)).unwrap();
    let a = lab.a.clone();
    let clients = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..CLIENTS {
            held.push(TcpStream::connect(&a, server_addr(6004)).await.unwrap());
        }
        held
    });
    let (accepted, cancelled) = lab
        .run(async move {
            let mut accepted = Vec::new();
            let mut cancelled = 0usize;
            while accepted.len() < CLIENTS {
                tokio::select! {
                    biased;
                    r = listener.accept() => accepted.push(r.unwrap().1),
                    () = tokio::task::yield_now() => cancelled += 1,
                }
            }
            (accepted, cancelled)
        })
        .await;
    let held = lab.run(async move { clients.await.unwrap() }).await;
    let mut want: Vec<SocketAddr> = held.iter().map(|s| s.local_addr().unwrap()).collect();
    let mut got = accepted;
    want.sort();
    got.sort();
    assert_eq!(got, want, "every client accepted exactly once");
    assert!(cancelled > 0, "no accept was ever dropped while pending");
}
