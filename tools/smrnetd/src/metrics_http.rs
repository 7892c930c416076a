//! The metrics endpoint: `GET /metrics` over plain HTTP/1.1, one request
//! per connection, and its listener's faults.
//!
//! A port that cannot be bound (taken, or refused) does not stop the
//! daemon: it is reported once, counted on every attempt, and retried every
//! [`BIND_RETRY`] until it binds. Accept errors are told once per run of
//! them and backed off, never spun on.

use core::net::SocketAddr;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::faults::{self, Faults};
use super::metrics::Metrics;
use super::worker::Shared;

/// Time between attempts to bind a metrics port that was not free.
pub const BIND_RETRY: Duration = Duration::from_secs(1);
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds the metrics listener now (before privileges are dropped: a port
/// below 1024 needs them).
pub fn bind_now(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds `addr`, telling the first failure once and counting each, until
/// it succeeds (every `period`).
pub async fn bind_retrying(
    addr: SocketAddr,
    first: io::Error,
    faults: &Faults,
    period: Duration,
) -> TcpListener {
    faults::bump(&faults.metrics_bind_failures);
    tracing::warn!(
        %addr, error = %first,
        "cannot listen for metrics; serving on without them, retrying every {period:?}"
    );
    loop {
        tokio::time::sleep(period).await;
        match TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "metrics at http://{addr}/metrics (bound on retry)");
                return l;
            }
            Err(_) => faults::bump(&faults.metrics_bind_failures),
        }
    }
}

/// Serves metrics on the listener bound at start, or on the one a retry
/// binds.
pub async fn serve(
    first: Result<std::net::TcpListener, (SocketAddr, io::Error)>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
) {
    let listener = match first.and_then(|l| {
        let addr = l
            .local_addr()
            .map_err(|e| (SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
        TcpListener::from_std(l).map_err(|e| (addr, e))
    }) {
        Ok(l) => l,
        Err((addr, e)) => bind_retrying(addr, e, &shared.faults, BIND_RETRY).await,
    };
    serve_on(listener, metrics, shared).await;
}

/// Serves `GET /metrics` (and a pointer to it on `/`), one request per
/// connection, refreshing the values for each scrape.
async fn serve_on(listener: TcpListener, metrics: Arc<Metrics>, shared: Arc<Shared>) {
    let mut failing = false;
    loop {
        let mut sock = match listener.accept().await {
            Ok((sock, _)) => {
                failing = false;
                sock
            }
            Err(e) => {
                // Told once per run of failures (e.g. out of descriptors).
                if !failing {
                    tracing::warn!(error = %e, "metrics listener cannot accept; retrying");
                    failing = true;
                }
                faults::bump(&shared.faults.metrics_accept_failures);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                true
            })
            .await;
            if !matches!(read, Ok(true)) {
                return;
            }
            let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
            let (status, ctype, body) =
                if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
                    (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        metrics.render(),
                    )
                } else if line.starts_with(b"GET / ") {
                    (
                        "200 OK",
                        "text/plain",
                        "smrnetd: metrics at /metrics\n".to_owned(),
                    )
                } else {
                    ("404 Not Found", "text/plain", "not found\n".to_owned())
                };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_port_is_told_once_and_bound_when_freed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = blocker.local_addr().unwrap();
            let first = bind_now(addr).unwrap_err();
            let faults = Arc::new(Faults::default());
            let f = Arc::clone(&faults);
            let task = tokio::spawn(async move {
                bind_retrying(addr, first, &f, Duration::from_millis(20)).await
            });
            tokio::time::sleep(Duration::from_millis(70)).await;
            let failed = faults
                .metrics_bind_failures
                .load(std::sync::atomic::Ordering::Relaxed);
            assert!(failed >= 2, "each attempt counts: {failed}");
            drop(blocker);
            let l = tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .expect("bound within 2 s of the port being freed")
                .unwrap();
            assert_eq!(l.local_addr().unwrap(), addr);
        });
    }
}
