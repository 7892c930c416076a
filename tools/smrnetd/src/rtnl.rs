//! A minimal rtnetlink codec and socket: just what following one device
//! needs (link and address messages in, address and MTU requests out).
//!
//! Why not a crate: the daemon reads four message types and writes two, all
//! fixed kernel ABI (`linux/netlink.h`, `linux/rtnetlink.h`, `if_link.h`,
//! `if_addr.h`) that has not changed shape in twenty years; the socket is a
//! plain `AF_NETLINK` one through rustix, which the daemon already uses.
//! `netlink-packet-route` would bring a large, fast-moving API to decode two
//! structs.
//!
//! Invariant: [`parse`] never panics and never reads past the buffer: every
//! length it follows is checked against what is left, and a message or
//! attribute that lies about its length ends the parse with [`Malformed`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `IFF_UP`: the administrative state (`ip link set ... up`).
pub const IFF_UP: u32 = 0x1;

/// Multicast groups: links, IPv4 addresses, IPv6 addresses.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// One decoded message (those this module does not use are `Other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `RTM_NEWLINK` (`deleted: false`) or `RTM_DELLINK`.
    Link {
        deleted: bool,
        index: u32,
        flags: u32,
        name: Option<String>,
        mtu: Option<u32>,
    },
    /// `RTM_NEWADDR` (`deleted: false`) or `RTM_DELADDR`.
    Addr {
        deleted: bool,
        index: u32,
        addr: IpAddr,
        prefix: u8,
    },
    /// The answer to request `seq`: 0 is an acknowledgement, else an errno.
    Ack {
        seq: u32,
        errno: i32,
    },
    /// End of a dump.
    Done {
        seq: u32,
    },
    /// The kernel dropped messages for this socket.
    Overrun,
    Other,
}

/// A message or attribute whose length does not fit the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends every message of one datagram to `out`.
pub fn parse(buf: &[u8], out: &mut Vec<Msg>) -> Result<(), Malformed> {
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0).ok_or(Malformed)? as usize;
        let kind = u16_at(rest, 4).ok_or(Malformed)?;
        let seq = u32_at(rest, 8).ok_or(Malformed)?;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(Malformed);
        }
        let body = &rest[NLMSG_HDRLEN..len];
        out.push(decode(kind, seq, body)?);
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(())
}

fn decode(kind: u16, seq: u32, body: &[u8]) -> Result<Msg, Malformed> {
    Ok(match kind {
        NLMSG_ERROR => {
            // A negative errno, then the request's header.
            let err = u32_at(body, 0).ok_or(Malformed)? as i32;
            Msg::Ack {
                seq,
                errno: err.wrapping_neg(),
            }
        }
        NLMSG_DONE => Msg::Done { seq },
        NLMSG_OVERRUN => Msg::Overrun,
        NLMSG_NOOP => Msg::Other,
        RTM_NEWLINK | RTM_DELLINK => {
            let index = u32_at(body, 4).ok_or(Malformed)?;
            let flags = u32_at(body, 8).ok_or(Malformed)?;
            let (mut name, mut mtu) = (None, None);
            for (ty, v) in attributes(body.get(IFINFOMSG_LEN..).ok_or(Malformed)?)? {
                match ty {
                    IFLA_IFNAME => {
                        let v = v.split(|&b| b == 0).next().unwrap_or_default();
                        name = Some(String::from_utf8_lossy(v).into_owned());
                    }
                    IFLA_MTU => mtu = u32_at(v, 0),
                    _ => {}
                }
            }
            Msg::Link {
                deleted: kind == RTM_DELLINK,
                index,
                flags,
                name,
                mtu,
            }
        }
        RTM_NEWADDR | RTM_DELADDR => {
            let family = *body.first().ok_or(Malformed)?;
            let prefix = *body.get(1).ok_or(Malformed)?;
            let index = u32_at(body, 4).ok_or(Malformed)?;
            let (mut local, mut address) = (None, None);
            for (ty, v) in attributes(body.get(IFADDRMSG_LEN..).ok_or(Malformed)?)? {
                let ip = match (family, v.len()) {
                    (AF_INET, 4) => IpAddr::V4(Ipv4Addr::from(
                        <[u8; 4]>::try_from(v).map_err(|_| Malformed)?,
                    )),
                    (AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(
                        <[u8; 16]>::try_from(v).map_err(|_| Malformed)?,
                    )),
                    _ => continue,
                };
                match ty {
                    IFA_LOCAL => local = Some(ip),
                    IFA_ADDRESS => address = Some(ip),
                    _ => {}
                }
            }
            // IFA_LOCAL is the local end on a point-to-point link (IFA_ADDRESS
            // is then the peer); elsewhere only IFA_ADDRESS is given.
            match local.or(address) {
                Some(addr) => Msg::Addr {
                    deleted: kind == RTM_DELADDR,
                    index,
                    addr,
                    prefix,
                },
                None => Msg::Other,
            }
        }
        _ => Msg::Other,
    })
}

/// The `(type, value)` pairs of a run of `rtattr`s.
fn attributes(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, Malformed> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16_at(b, 0).ok_or(Malformed)?);
        let ty = u16_at(b, 2).ok_or(Malformed)? & 0x3fff;
        if len < 4 || len > b.len() {
            return Err(Malformed);
        }
        out.push((ty, &b[4..len]));
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

fn header(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) {
    out.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
}

fn attribute(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = out.len() as u32;
    out[0..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// A dump request for every link (`RTM_GETLINK`) or address (`RTM_GETADDR`).
pub fn dump_request(links: bool, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let kind = if links { RTM_GETLINK } else { RTM_GETADDR };
    header(&mut out, kind, NLM_F_REQUEST | NLM_F_DUMP, seq);
    // rtgenmsg: the family, padded to ifinfomsg size so both parsers accept it.
    out.extend_from_slice(&[AF_UNSPEC; IFINFOMSG_LEN]);
    finish(out)
}

/// `ip addr replace ADDR/PREFIX dev INDEX` (IPv6 without duplicate address
/// detection: the kernel side of a TUN has no other host to collide with).
pub fn add_address_request(index: u32, addr: IpAddr, prefix: u8, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    header(
        &mut out,
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
    );
    let (family, flags, bytes) = match addr {
        IpAddr::V4(a) => (AF_INET, 0, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, IFA_F_NODAD, a.octets().to_vec()),
    };
    out.extend_from_slice(&[family, prefix, flags, 0]);
    out.extend_from_slice(&index.to_ne_bytes());
    attribute(&mut out, IFA_LOCAL, &bytes);
    attribute(&mut out, IFA_ADDRESS, &bytes);
    finish(out)
}

/// `ip link set dev INDEX mtu MTU`.
pub fn set_mtu_request(index: u32, mtu: u32, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    header(&mut out, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
    out.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
    out.extend_from_slice(&index.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // flags
    out.extend_from_slice(&0u32.to_ne_bytes()); // change
    attribute(&mut out, IFLA_MTU, &mtu.to_ne_bytes());
    finish(out)
}

/// A `NETLINK_ROUTE` socket subscribed to link and address changes, in the
/// network namespace of the thread that opened it (for ever after).
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// Opens and subscribes; call it inside the device's namespace.
    pub fn open() -> io::Result<Socket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            // NETLINK_ROUTE is protocol 0, which rustix spells `None`.
            None,
        )
        .map_err(|e| io::Error::other(format!("cannot open a netlink socket: {e}")))?;
        let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))
            .map_err(|e| io::Error::other(format!("cannot bind the netlink socket: {e}")))?;
        // Room for a burst (a flap of a device with many addresses); an
        // overrun is recovered by a fresh dump anyway.
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 1 << 20);
        Ok(Socket { fd })
    }

    /// Sends one request to the kernel.
    pub fn send(&self, request: &[u8]) -> io::Result<()> {
        rustix::net::sendto(
            &self.fd,
            request,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        Ok(())
    }

    /// Receives one datagram (non-blocking if `nonblocking`).
    pub fn recv(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let flags = if nonblocking {
            RecvFlags::DONTWAIT
        } else {
            RecvFlags::empty()
        };
        let len = buf.len();
        let (_, n) = rustix::net::recv(&self.fd, buf, flags)?;
        Ok(n.min(len))
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests;
