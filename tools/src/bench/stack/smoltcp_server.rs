//! The baseline server: smoltcp's `Interface` with one `tcp::Socket` per
//! connection, echoing the request and closing.
//!
//! smoltcp has no listener object: a listening socket becomes the
//! connection, so the server keeps as many sockets as there can be
//! connections at once (the idle ones plus the churn window) and puts each
//! closed socket back into LISTEN. Its demultiplexer tries every socket in
//! turn, and the application learns nothing about which socket changed, so
//! it too visits every socket after each poll: that scan is what this
//! baseline measures against an indexed connection table.

use super::Server;
use super::client::{REQUEST_LEN, SERVER};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::VecDeque;
use std::time::Duration;

/// Frames in both directions, in memory.
#[derive(Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

struct RxToken(Vec<u8>);
struct TxToken<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

/// One socket and what its connection still owes the client.
struct Slot {
    handle: SocketHandle,
    /// Request octets read and not yet echoed.
    owed: usize,
}

pub(crate) struct SmoltcpServer {
    iface: Interface,
    device: Queues,
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    scratch: [u8; REQUEST_LEN * 4],
}

impl SmoltcpServer {
    /// A server with `sockets` listening sockets on [`SERVER`].
    pub(crate) fn new(sockets: usize) -> SmoltcpServer {
        let mut device = Queues::default();
        let mut iface =
            Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            let IpAddress::Ipv4(v4) = IpAddress::from(SERVER.ip()) else {
                unreachable!("the bench server address is IPv4")
            };
            addrs
                .push(IpCidr::new(IpAddress::Ipv4(v4), 15))
                .expect("one address fits");
        });
        let mut set = SocketSet::new(Vec::with_capacity(sockets));
        let slots = (0..sockets)
            .map(|_| {
                let mut s = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; 1024]),
                    tcp::SocketBuffer::new(vec![0; 1024]),
                );
                // The client acknowledges at once; don't add a timer wait.
                s.set_ack_delay(None);
                s.listen(SERVER.port()).expect("port 7 is a valid endpoint");
                Slot {
                    handle: set.add(s),
                    owed: 0,
                }
            })
            .collect();
        SmoltcpServer {
            iface,
            device,
            sockets: set,
            slots,
            scratch: [0; REQUEST_LEN * 4],
        }
    }

    fn serve(&mut self) {
        for slot in &mut self.slots {
            let s = self.sockets.get_mut::<tcp::Socket>(slot.handle);
            while s.can_recv() {
                match s.recv_slice(&mut self.scratch) {
                    Ok(n) if n > 0 => slot.owed += n,
                    _ => break,
                }
            }
            if slot.owed > 0 && s.can_send() {
                let n = slot.owed.min(self.scratch.len());
                if let Ok(sent) = s.send_slice(&self.scratch[..n]) {
                    slot.owed -= sent;
                }
            }
            if slot.owed == 0 && s.state() == tcp::State::CloseWait {
                s.close();
            }
            if s.state() == tcp::State::Closed {
                slot.owed = 0;
                s.listen(SERVER.port()).expect("port 7 is a valid endpoint");
            }
        }
    }
}

impl Server for SmoltcpServer {
    fn exchange(&mut self, now: Duration, input: &mut Vec<Vec<u8>>, output: &mut Vec<Vec<u8>>) {
        let now = Instant::from_micros(now.as_micros() as i64);
        self.device.rx.extend(input.drain(..));
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.serve();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        output.append(&mut self.device.tx);
    }
}
