//! Two stacks on the fake network talk through the tokio API: bulk data
//! both ways, both close orders, resets, refused and timed-out connects,
//! and many streams at once.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;

use smrnet_tokio::{TcpListener, TcpStream};
use support::{B4, Lab, NetConfig, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MB: usize = 1 << 20;

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(B4, port)
}

#[tokio::test(flavor = "current_thread")]
async fn one_megabyte_each_way_arrives_byte_exact() {
    let mut lab = Lab::new(NetConfig {
        loss_per_mille: 5,
        jitter: std::time::Duration::from_micros(300),
        ..NetConfig::default()
    });
    let listener = TcpListener::bind(&lab.b, server_addr(5000)).unwrap();
    let a = lab.a.clone();
    let up = pattern(1, MB);
    let down = pattern(2, MB);
    let (up2, down2) = (up.clone(), down.clone());
    let server = tokio::spawn(async move {
        let (s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), support::A4);
        let (mut r, mut w) = tokio::io::split(s);
        let writer = tokio::spawn(async move {
            w.write_all(&down2).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        let _w = writer.await.unwrap();
        got
    });
    let client = async move {
        let s = TcpStream::connect(&a, server_addr(5000)).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), server_addr(5000));
        assert_eq!(s.local_addr().unwrap().ip(), support::A4);
        let (mut r, mut w) = tokio::io::split(s);
        let writer = tokio::spawn(async move {
            w.write_all(&up2).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        let _w = writer.await.unwrap();
        got
    };
    let client_got = lab.run(client).await;
    let server_got = lab.run(async move { server.await.unwrap() }).await;
    assert!(
        client_got == down,
        "client received {} bytes, not the server's 1 MB",
        client_got.len()
    );
    assert!(
        server_got == up,
        "server received {} bytes, not the client's 1 MB",
        server_got.len()
    );
    assert!(lab.net.lost > 0, "the loss the test asked for happened");
}

/// Client shuts down first; the server reads to the end, answers, closes.
#[tokio::test(flavor = "current_thread")]
async fn client_closes_first_and_still_reads_the_reply() {
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(5001)).unwrap();
    let a = lab.a.clone();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        s.write_all(b"reply to ").await.unwrap();
        s.write_all(&req).await.unwrap();
        s.shutdown().await.unwrap();
        req
    });
    let reply = lab
        .run(async move {
            let mut s = TcpStream::connect(&a, server_addr(5001)).await.unwrap();
            s.write_all(b"request").await.unwrap();
            s.shutdown().await.unwrap();
            let err = s.write_all(b"late").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BrokenPipe);
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await.unwrap();
            reply
        })
        .await;
    assert_eq!(reply, b"reply to request");
    assert_eq!(
        lab.run(async move { server.await.unwrap() }).await,
        b"request"
    );
}

/// Server closes first (sends and drops); the client reads everything,
/// then end of stream, then can still send its last words.
#[tokio::test(flavor = "current_thread")]
async fn server_closes_first_and_still_reads_the_last_words() {
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(5002)).unwrap();
    let a = lab.a.clone();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        let mut last = Vec::new();
        s.read_to_end(&mut last).await.unwrap();
        last
    });
    let got = lab
        .run(async move {
            let mut s = TcpStream::connect(&a, server_addr(5002)).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(b"ok, bye").await.unwrap();
            drop(s);
            got
        })
        .await;
    assert_eq!(got, b"bye");
    assert_eq!(
        lab.run(async move { server.await.unwrap() }).await,
        b"ok, bye"
    );
    // Both sides closed: the connections leave the tables (TIME-WAIT aside).
    lab.steps(100).await;
    assert_eq!(lab.a.counters().streams + lab.b.counters().streams, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn abort_resets_the_peer_which_reads_connection_reset() {
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(5003)).unwrap();
    let a = lab.a.clone();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        s.abort();
    });
    let (read_err, write_err) = lab
        .run(async move {
            let mut s = TcpStream::connect(&a, server_addr(5003)).await.unwrap();
            s.write_all(b"x").await.unwrap();
            let mut buf = [0u8; 16];
            let read_err = s.read(&mut buf).await.unwrap_err().kind();
            let write_err = s.write_all(b"more").await.unwrap_err().kind();
            (read_err, write_err)
        })
        .await;
    lab.run(async move { server.await.unwrap() }).await;
    assert_eq!(read_err, ErrorKind::ConnectionReset);
    assert_eq!(write_err, ErrorKind::ConnectionReset);
}

#[tokio::test(flavor = "current_thread")]
async fn connect_to_a_closed_port_is_refused() {
    let mut lab = Lab::new(NetConfig::default());
    let a = lab.a.clone();
    let err = lab
        .run(async move { TcpStream::connect(&a, server_addr(5999)).await.unwrap_err() })
        .await;
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test(flavor = "current_thread")]
async fn connect_to_nobody_times_out() {
    let mut lab = Lab::new(NetConfig::default());
    lab.net.keep_stray = false;
    let a = lab.a.clone();
    let nobody = SocketAddr::from(([10, 0, 0, 99], 80));
    let err = lab
        .run(async move { TcpStream::connect(&a, nobody).await.unwrap_err() })
        .await;
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[tokio::test(flavor = "current_thread")]
async fn many_concurrent_streams_each_echo_their_own_bytes() {
    const STREAMS: usize = 64;
    const BYTES: usize = 16 * 1024;
    let mut lab = Lab::new(NetConfig::default());
    let listener = TcpListener::bind(&lab.b, server_addr(5004)).unwrap();
    let server = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..STREAMS {
            let (s, _) = listener.accept().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(s);
                tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let a = lab.a.clone();
    let ok = lab
        .run(async move {
            let mut tasks = Vec::new();
            for i in 0..STREAMS {
                let a = a.clone();
                tasks.push(tokio::spawn(async move {
                    let s = TcpStream::connect(&a, server_addr(5004)).await.unwrap();
                    let data = pattern(100 + i as u64, BYTES);
                    let (mut r, mut w) = tokio::io::split(s);
                    let sent = data.clone();
                    let writer = tokio::spawn(async move {
                        w.write_all(&sent).await.unwrap();
                        w.shutdown().await.unwrap();
                        w
                    });
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await.unwrap();
                    let _w = writer.await.unwrap();
                    got == data
                }));
            }
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.unwrap());
            }
            ok
        })
        .await;
    assert_eq!(ok, STREAMS);
    lab.run(async move { server.await.unwrap() }).await;
}
