//! `smrnet load churn --compare-kernel`: the same churn against the Linux
//! kernel's own TCP, as a baseline beside smrnetd.
//!
//! Two namespaces joined by a veth pair, 198.19.0.1 (client, plus
//! 198.19.0.16-31 as extra sources, mirroring a lab) and 198.19.0.2
//! (server): inside RFC 2544's 198.18.0.0/15 like the lab, but a different
//! /24, and nothing in the root namespace (the veth is created inside the
//! client namespace with its peer placed straight into the server's). A
//! tokio server runs on a thread moved into the server namespace with the
//! lab daemon's three services on their ports: echo (7), discard (9) and
//! http (80), the last two answered by the daemon's own sans-IO service
//! code ([`smrnetd::services::Session`], same body size as a lab's
//! daemon) so both sides speak byte-for-byte the same protocol. The load
//! runs from the client namespace.
//!
//! Invariant: [`KernelPair`] owns both namespaces and the server thread;
//! dropping it (on any path, including a Ctrl-C that stops the churn)
//! stops the server and deletes both namespaces, and the veth with them.

use super::churn::{self, ChurnOpts, ChurnReport};
use super::netns::NetnsFd;
use crate::lab::{self, LabError, Netns};
use smrnetd::config::Service;
use smrnetd::services::{Next, Session};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every comparison namespace is named `smrnet-kc-<id>-{client,server}`.
pub const NETNS_PREFIX: &str = "smrnet-kc-";
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const EXTRA_FIRST: u8 = 16;
const EXTRA_COUNT: u8 = 16;
const ECHO_PORT: u16 = crate::lab::ECHO_PORT;
const DISCARD_PORT: u16 = crate::lab::DISCARD_PORT;
const HTTP_PORT: u16 = crate::lab::HTTP_PORT;
/// The http body the kernel side serves: the daemon's default, as in a lab.
pub const HTTP_BODY_BYTES: usize = 1024;

/// The kernel's echo service on the far end of the veth.
pub fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), ECHO_PORT)
}

/// The kernel's discard service on the far end of the veth.
pub fn discard_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), DISCARD_PORT)
}

/// The kernel's http service on the far end of the veth.
pub fn http_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_V4), HTTP_PORT)
}

/// The client namespace's addresses: 198.19.0.1, then 198.19.0.16-31.
pub fn client_addrs() -> Vec<IpAddr> {
    std::iter::once(CLIENT_V4)
        .chain((EXTRA_FIRST..EXTRA_FIRST + EXTRA_COUNT).map(|i| Ipv4Addr::new(198, 19, 0, i)))
        .map(IpAddr::V4)
        .collect()
}

/// Two namespaces, a veth between them, and a kernel-socket server.
#[derive(Debug)]
pub struct KernelPair {
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<io::Result<()>>>,
    // Drop order: the server thread is joined (in Drop) before these go.
    client: Netns,
    _server_ns: Netns,
}

fn lab_err(e: LabError) -> io::Error {
    io::Error::other(e.to_string())
}

impl KernelPair {
    /// Create both namespaces, the veth, addresses, and start the server
    /// with `threads` runtime threads; returns once it accepts.
    pub fn up(threads: usize) -> io::Result<KernelPair> {
        let mut pair = KernelPair::link()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server_fd = NetnsFd::open(pair._server_ns.name())?;
        let stop2 = pair.stop.clone();
        pair.server = Some(
            std::thread::Builder::new()
                .name("smrnet-kc-server".into())
                .spawn(move || {
                    server_fd.enter()?;
                    echo_server(threads, &stop2, ready_tx)
                })?,
        );
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(pair),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(pair.stop_server().err().unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel echo server did not start",
                )
            })),
        }
    }

    /// Both namespaces, the veth and its addresses, and no server: the
    /// caller runs its own in [`KernelPair::server_netns`] (`bench forward`
    /// runs haproxy there).
    pub fn link() -> io::Result<KernelPair> {
        lab::preflight().map_err(lab_err)?;
        let id = format!(
            "{:06x}",
            (u64::from(std::process::id()) << 20
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos() as u64)
                & 0xff_ffff
        );
        let client = Netns::create(&format!("{NETNS_PREFIX}{id}-client")).map_err(lab_err)?;
        let server_ns = Netns::create(&format!("{NETNS_PREFIX}{id}-server")).map_err(lab_err)?;
        let (c, s) = (client.name().to_string(), server_ns.name().to_string());
        let ip = |args: &[&str]| lab::ip(args).map_err(lab_err);
        ip(&[
            "-n", &c, "link", "add", "kc0", "type", "veth", "peer", "name", "kc1", "netns", &s,
        ])?;
        for a in client_addrs() {
            ip(&["-n", &c, "addr", "add", &format!("{a}/24"), "dev", "kc0"])?;
        }
        ip(&[
            "-n",
            &s,
            "addr",
            "add",
            &format!("{SERVER_V4}/24"),
            "dev",
            "kc1",
        ])?;
        ip(&["-n", &c, "link", "set", "kc0", "up"])?;
        ip(&["-n", &s, "link", "set", "kc1", "up"])?;
        let (lo, hi) = lab::LOCAL_PORT_RANGE;
        // Both: the server side makes outgoing connections when it runs a
        // proxy (`bench forward`'s haproxy to its loopback upstream).
        for ns in [&c, &s] {
            NetnsFd::open(ns)?.run(|| {
                std::fs::write(
                    "/proc/sys/net/ipv4/ip_local_port_range",
                    format!("{lo} {hi}"),
                )
            })??;
        }
        Ok(KernelPair {
            stop: Arc::new(AtomicBool::new(false)),
            server: None,
            client,
            _server_ns: server_ns,
        })
    }

    pub fn client_netns(&self) -> &str {
        self.client.name()
    }

    pub fn server_netns(&self) -> &str {
        self._server_ns.name()
    }

    /// Routes `prefix` (a SYN flood's spoofed sources) from the server back
    /// through the client namespace, which owns none of those addresses and
    /// does not forward, so it drops the SYN-ACKs, as a lab namespace does
    /// the daemon's; and turns off the server's reverse-path filter so the
    /// kernel answers the spoofed SYNs at all (as smrnetd does).
    pub fn route_back(&self, prefix: &str) -> io::Result<()> {
        let s = self._server_ns.name().to_string();
        lab::ip(&[
            "-n",
            &s,
            "route",
            "add",
            prefix,
            "via",
            &CLIENT_V4.to_string(),
            "dev",
            "kc1",
        ])
        .map_err(lab_err)?;
        NetnsFd::open(&s)?.run(|| {
            for conf in ["all", "default", "kc1"] {
                std::fs::write(format!("/proc/sys/net/ipv4/conf/{conf}/rp_filter"), "0")?;
            }
            Ok::<(), io::Error>(())
        })?
    }

    /// Run `opts` (retargeted at the kernel server, from the client
    /// namespace's addresses) and return the report.
    pub fn churn(&self, opts: &ChurnOpts, stop: &AtomicBool) -> io::Result<ChurnReport> {
        let mut o = opts.clone();
        o.target = server_addr();
        o.source_addrs = client_addrs();
        NetnsFd::open(self.client.name())?.run(|| churn::run_until(&o, stop))?
    }

    fn stop_server(&mut self) -> io::Result<()> {
        // Relaxed: polled by the server's wait loop every 100 ms.
        self.stop.store(true, Ordering::Relaxed);
        match self.server.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the kernel echo server panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for KernelPair {
    fn drop(&mut self) {
        if let Err(e) = self.stop_server() {
            eprintln!("smrnet load: kernel echo server: {e}");
        }
        // The namespaces (and the veth inside them) go with the guards.
    }
}

/// Echo on 198.19.0.2:7, discard on :9 and http on :80 until `stop`;
/// tells `ready` once all three listen.
fn echo_server(
    threads: usize,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("smrnet-kc-echo")
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listen = |addr: SocketAddr| -> io::Result<tokio::net::TcpListener> {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.set_reuseaddr(true)?;
            sock.bind(addr)?;
            sock.listen(4096)
        };
        let mut listeners = Vec::new();
        for (addr, service) in [
            (server_addr(), None),
            (discard_addr(), Some(Service::Discard)),
            (http_addr(), Some(Service::Http)),
        ] {
            match listen(addr) {
                Ok(l) => listeners.push((l, service)),
                Err(e) => {
                    let msg = format!("kernel server: listen on {addr}: {e}");
                    let _ = ready.send(Err(io::Error::new(e.kind(), msg.clone())));
                    return Err(io::Error::new(e.kind(), msg));
                }
            }
        }
        let _ = ready.send(Ok(()));
        let mut acceptors = Vec::new();
        for (listener, service) in listeners {
            acceptors.push(tokio::spawn(accept_loop(listener, service)));
        }
        // Relaxed: a flag polled every 100 ms.
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for a in acceptors {
            a.abort();
        }
        Ok(())
    })
}

/// Accepts until aborted; `None` is the plain echo loop the churn
/// comparison has always used, `Some` a daemon service session.
async fn accept_loop(listener: tokio::net::TcpListener, service: Option<Service>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            // Out of descriptors, say: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match service {
            None => tokio::spawn(echo(sock)),
            Some(s) => tokio::spawn(serve_session(sock, s)),
        };
    }
}

async fn echo(mut sock: tokio::net::TcpStream) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One connection through the daemon's own service code: read, feed, write
/// what it answers, close when it says so or the peer does.
async fn serve_session(mut sock: tokio::net::TcpStream, service: Service) {
    let Some(mut session) = Session::new(service, HTTP_BODY_BYTES) else {
        return;
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut next = session.on_data(&buf[..n], &mut out);
        loop {
            if !out.is_empty() && sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            if next == Next::Close || !session.has_backlog() {
                break;
            }
            next = session.resume(&mut out);
        }
        if next == Next::Close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_addresses_are_in_the_lab_range_but_not_the_tun_lab_s_24() {
        for a in client_addrs().into_iter().chain([IpAddr::V4(SERVER_V4)]) {
            assert!(super::super::safety::check_target(a, &[]).is_ok());
            let IpAddr::V4(v4) = a else { panic!() };
            assert_eq!(v4.octets()[..3], [198, 19, 0]);
        }
        assert_eq!(client_addrs().len(), 17);
    }
}
