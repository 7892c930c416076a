//! `IP_BIND_ADDRESS_NO_PORT`, which neither std, tokio nor rustix exposes.
//!
//! With it, `bind(addr, 0)` fixes only the source address and the kernel
//! chooses the port at `connect`, by the whole 4-tuple; so one source
//! address can carry a full port range of connections to *each* target
//! instead of one port range in total.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

const SOL_IP: i32 = 0;
/// From linux/in.h.
const IP_BIND_ADDRESS_NO_PORT: i32 = 24;

unsafe extern "C" {
    // The C library's setsockopt(2) wrapper (std links the C library).
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const core::ffi::c_void, len: u32)
    -> i32;
}

/// Set `IP_BIND_ADDRESS_NO_PORT` on a socket (IPv4 and IPv6 sockets alike:
/// the option lives at the IP level for both).
pub fn set_bind_address_no_port(sock: impl AsFd) -> io::Result<()> {
    let one: i32 = 1;
    // SAFETY: the fd is a live socket borrowed for the call; the value
    // pointer and length describe `one`, a live i32, as setsockopt(2)
    // requires for an integer option.
    let rc = unsafe {
        setsockopt(
            sock.as_fd().as_raw_fd(),
            SOL_IP,
            IP_BIND_ADDRESS_NO_PORT,
            (&raw const one).cast(),
            size_of::<i32>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_is_accepted_by_a_tcp_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // A listener is a TCP socket too; the kernel accepts the option on it.
        set_bind_address_no_port(&l).unwrap();
    }
}
