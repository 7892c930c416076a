//! Kernel-socket clients for the daemon's services. Call them from inside
//! the lab's namespace (`Lab::in_netns`). Every read and write is bounded by
//! a socket timeout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One HTTP/1.1 request on `s`: returns the status and the body, read to
/// the response's Content-Length (the connection stays usable).
pub fn http_request(s: &mut TcpStream, path: &str) -> io::Result<(u16, Vec<u8>)> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: smrnet-e2e\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded: headers over 16 KiB are an error.
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 << 10 {
            return Err(bad("response headers over 16 KiB"));
        }
        if s.read(&mut byte)? == 0 {
            return Err(bad("connection closed inside the response headers"));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .ok_or_else(|| bad("no Content-Length"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((status, body))
}

/// Connect, one request, read the response, close (the client closes first).
pub fn http_get_once(addr: SocketAddr) -> io::Result<Vec<u8>> {
    let mut s = connect(addr)?;
    let (status, body) = http_request(&mut s, "/")?;
    if status != 200 {
        return Err(bad(&format!("HTTP status {status}")));
    }
    Ok(body)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Deterministic bytes for connection `seed` (xorshift), so each echo
/// connection's data differs and a mix-up between connections shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
