//! Our Stack against an independent TCP: smoltcp's `Interface` and
//! `tcp::Socket` on a fake IP device, stepped by one fake clock. Handshake,
//! data both ways, and an orderly close, with us as server and as client.

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use netstack::{AppError, ConnError, ConnHandle, Instant, Stack, State};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};
use support::{B4, FakeClock, stack_config};

/// A device whose "wire" is two queues the test moves frames through.
#[derive(Default)]
struct FakeDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

impl Device for FakeDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: SmolInstant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _t: SmolInstant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

/// Our stack (10.0.0.2) and smoltcp (10.0.0.1) on one wire and one clock.
struct Pair {
    clock: FakeClock,
    ours: Stack,
    device: FakeDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    socket: SocketHandle,
    buf: Vec<u8>,
}

/// With `TRACE_FRAMES` set, prints one line per segment (for debugging a
/// failing run).
fn trace(from: &str, frame: &[u8]) {
    if std::env::var_os("TRACE_FRAMES").is_none() {
        return;
    }
    if let Ok(d) = netstack::parse_frame(frame)
        && let netstack::Transport::Tcp(s) = d.transport
    {
        let h = s.header;
        eprintln!(
            "{from:>7}> {:?} seq {} ack {} win {} len {}",
            h.flags,
            h.seq.0,
            h.ack.0,
            h.window,
            s.payload.len()
        );
    }
}

fn smol_now(t: Instant) -> SmolInstant {
    SmolInstant::from_micros((t.as_nanos() / 1000) as i64)
}

impl Pair {
    fn new() -> Pair {
        let clock = FakeClock::default();
        let mut device = FakeDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, &mut device, smol_now(clock.now()));
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24))
                .unwrap();
        });
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        let mut sockets = SocketSet::new(Vec::new());
        let socket = sockets.add(socket);
        Pair {
            clock,
            ours: Stack::new(stack_config(vec![B4], 42)),
            device,
            iface,
            sockets,
            socket,
            buf: vec![0; 65536],
        }
    }

    fn smol(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.socket)
    }

    /// One round: smoltcp polls, frames cross both ways, timers fire, and the
    /// clock moves to the next deadline (at most 10 ms on).
    fn step(&mut self) {
        let now = self.clock.now();
        self.iface
            .poll(smol_now(now), &mut self.device, &mut self.sockets);
        let worker = self.ours.worker(0);
        while let Some(frame) = self.device.tx.pop_front() {
            trace("smoltcp", &frame);
            worker.handle_frame(now, &frame);
        }
        if worker.poll_timeout().is_some_and(|t| t <= now) {
            worker.handle_timeout(now);
        }
        while let Some(n) = worker.poll_transmit(now, &mut self.buf) {
            trace("ours", &self.buf[..n]);
            self.device.rx.push_back(self.buf[..n].to_vec());
        }
        if !self.device.rx.is_empty() {
            return;
        }
        let mut next = now + Duration::from_millis(10);
        if let Some(t) = worker.poll_timeout() {
            next = next.min(t);
        }
        if let Some(d) = self.iface.poll_delay(smol_now(now), &self.sockets) {
            next = next.min(now + Duration::from_micros(d.total_micros()));
        }
        self.clock
            .advance_to(next.max(now + Duration::from_micros(100)));
    }

    fn run_until(&mut self, steps: usize, mut done: impl FnMut(&mut Pair) -> bool) -> bool {
        for _ in 0..steps {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }
}

fn pattern(i: usize) -> u8 {
    (i * 7 + i / 251) as u8
}

/// Sends `total` octets from smoltcp to us and `total` back, checking each.
fn exchange(p: &mut Pair, ours: ConnHandle, total: usize) {
    let data: Vec<u8> = (0..total).map(pattern).collect();
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0; 8192];
    assert!(
        p.run_until(200_000, |p| {
            if sent < total && p.smol().can_send() {
                sent += p.smol().send_slice(&data[sent..]).unwrap();
            }
            while let Ok(n) = p.ours.read(&ours, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got.len() == total
        }),
        "smoltcp -> us stalled: sent {sent} got {} smol {:?} ours {:?} {:?}",
        got.len(),
        p.smol().state(),
        p.ours.state_of(&ours),
        p.ours.mib()
    );
    assert!(got == data, "smoltcp -> us: octets differ");
    let (mut sent, mut got) = (0, Vec::new());
    assert!(
        p.run_until(200_000, |p| {
            while sent < total {
                match p.ours.write(&ours, &data[sent..]) {
                    Ok(0) | Err(AppError::Conn(ConnError::WouldBlock)) => break,
                    Ok(n) => sent += n,
                    Err(e) => panic!("write: {e}"),
                }
            }
            while p.smol().can_recv() {
                let n = p.smol().recv_slice(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got.len() == total
        }),
        "us -> smoltcp stalled: sent {sent} got {} smol {:?} ours {:?} {:?}",
        got.len(),
        p.smol().state(),
        p.ours.state_of(&ours),
        p.ours.mib()
    );
    assert!(got == data, "us -> smoltcp: octets differ");
}

#[test]
fn smoltcp_client_against_our_server() {
    let mut p = Pair::new();
    let listener = p.ours.listen(SocketAddr::new(B4, 80)).unwrap();
    let cx = p.iface.context();
    p.sockets
        .get_mut::<tcp::Socket>(p.socket)
        .connect(cx, (Ipv4Address::new(10, 0, 0, 2), 80), 49500)
        .unwrap();
    let mut server = None;
    assert!(p.run_until(1000, |p| {
        server = server.or_else(|| p.ours.accept(&listener));
        server.is_some() && p.smol().state() == tcp::State::Established
    }));
    let server = server.unwrap();
    exchange(&mut p, server, 200_000);
    // smoltcp closes first; we read EOF, close, and it reaches TIME-WAIT.
    p.smol().close();
    let mut buf = [0; 16];
    assert!(p.run_until(1000, |p| matches!(p.ours.read(&server, &mut buf), Ok(0))));
    p.ours.close(&server).unwrap();
    assert!(p.run_until(1000, |p| {
        p.smol().state() == tcp::State::TimeWait && p.ours.state_of(&server).is_none()
    }));
}

#[test]
fn our_client_against_smoltcp_server() {
    let mut p = Pair::new();
    p.smol().listen(8080).unwrap();
    let remote = SocketAddr::new("10.0.0.1".parse().unwrap(), 8080);
    let client = p.ours.connect(p.clock.now(), 0, None, remote).unwrap();
    assert!(p.run_until(1000, |p| {
        p.ours.state_of(&client) == Some(State::Established)
            && p.smol().state() == tcp::State::Established
    }));
    exchange(&mut p, client, 200_000);
    // We close first and end in TIME-WAIT; smoltcp closes after our FIN.
    p.ours.close(&client).unwrap();
    assert!(p.run_until(1000, |p| !p.smol().may_recv()));
    p.smol().close();
    assert!(p.run_until(1000, |p| {
        p.ours.state_of(&client) == Some(State::TimeWait) && !p.smol().is_open()
    }));
}
