//! Test support: a fake clock and a seeded fake network between stacks.
//!
//! The network carries frames between [`Stack`]s by destination address with a
//! configurable one-way delay, jitter (which reorders), loss and duplication,
//! all drawn from one seeded generator, so a failing run replays exactly.
//! [`FakeNet::step`] drains every worker's output into the network, jumps the
//! clock to the next event (a frame's arrival or a worker's deadline), and
//! delivers or fires what is due. Frames for addresses no stack owns are kept
//! in `stray`, for tests that play a raw peer.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use netstack::{Instant, PcbBackend, Stack, StackConfig, TcpConfig};

/// A clock only the test moves.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeClock {
    now: Instant,
}

impl FakeClock {
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn sleep(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Moves to `t` if it is later.
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }
}

/// The workspace's seeded generator, with the draws a fake network wants.
#[derive(Clone, Debug)]
pub struct Rng(smr::rng::SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(smr::rng::SplitMix64::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.next_u64() % 1000 < u64::from(per_mille)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// How the network misbehaves.
#[derive(Clone, Copy, Debug)]
pub struct NetConfig {
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..jitter` per frame (reorders).
    pub jitter: Duration,
    pub loss_per_mille: u32,
    pub dup_per_mille: u32,
    pub seed: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss_per_mille: 0,
            dup_per_mille: 0,
            seed: 1,
        }
    }
}

/// Decides whether a frame enters the wire.
pub type Filter = Box<dyn FnMut(&[u8]) -> bool>;

struct Flight {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
}

/// Stacks joined by a misbehaving wire. See the module docs.
pub struct FakeNet {
    pub clock: FakeClock,
    pub stacks: Vec<Arc<Stack>>,
    pub cfg: NetConfig,
    /// Frames to addresses no stack owns.
    pub stray: Vec<Vec<u8>>,
    /// When false, frames to no stack are not kept.
    pub keep_stray: bool,
    pub sent: u64,
    pub lost: u64,
    /// A filter applied to every frame before it enters the wire: return
    /// false to drop it (for targeted loss).
    pub filter: Option<Filter>,
    flights: Vec<Flight>,
    order: u64,
    rng: Rng,
    buf: Vec<u8>,
}

/// The destination address of an IPv4 or IPv6 frame.
pub fn dst_of(frame: &[u8]) -> Option<IpAddr> {
    match frame.first()? >> 4 {
        4 => {
            let b: [u8; 4] = frame.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 => {
            let b: [u8; 16] = frame.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

pub const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
pub const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
pub const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));

/// Every connection-table backend, for the tests that run under each.
pub const BACKENDS: [PcbBackend; 4] = PcbBackend::ALL;

/// A stack config for tests: seeded, small tables.
pub fn stack_config(addresses: Vec<IpAddr>, seed: u64) -> StackConfig {
    let mut cfg = StackConfig::new(addresses);
    cfg.insecure_deterministic_seed = Some(seed);
    cfg.table_capacity = 256;
    cfg.pool_cap = 4096;
    cfg.tcp = TcpConfig::default();
    cfg
}

impl FakeNet {
    pub fn new(stacks: Vec<Arc<Stack>>, cfg: NetConfig) -> FakeNet {
        FakeNet {
            clock: FakeClock::default(),
            stacks,
            cfg,
            stray: Vec::new(),
            keep_stray: true,
            sent: 0,
            lost: 0,
            filter: None,
            flights: Vec::new(),
            order: 0,
            rng: Rng::new(cfg.seed),
            buf: vec![0; 65536 + 128],
        }
    }

    /// Two stacks: A owns 10.0.0.1 and fd00::1, B owns 10.0.0.2 and fd00::2.
    pub fn pair(cfg: NetConfig) -> FakeNet {
        FakeNet::pair_with(cfg, |_| {})
    }

    /// As [`pair`](Self::pair), letting the test adjust both configs.
    pub fn pair_with(cfg: NetConfig, tweak: impl Fn(&mut StackConfig)) -> FakeNet {
        let mut a = stack_config(vec![A4, A6], cfg.seed.wrapping_add(100));
        let mut b = stack_config(vec![B4, B6], cfg.seed.wrapping_add(200));
        tweak(&mut a);
        tweak(&mut b);
        FakeNet::new(vec![Arc::new(Stack::new(a)), Arc::new(Stack::new(b))], cfg)
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    pub fn a(&self) -> &Stack {
        &self.stacks[0]
    }

    pub fn b(&self) -> &Stack {
        &self.stacks[1]
    }

    /// Puts a frame on the wire (subject to loss, duplication and delay).
    pub fn send(&mut self, frame: Vec<u8>) {
        self.sent += 1;
        if let Some(f) = self.filter.as_mut()
            && !f(&frame)
        {
            self.lost += 1;
            return;
        }
        if self.rng.chance(self.cfg.loss_per_mille) {
            self.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.cfg.dup_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_ns = self.rng.below(self.cfg.jitter.as_nanos() as u64);
            let at = self.now() + self.cfg.delay + Duration::from_nanos(jitter_ns);
            self.order += 1;
            self.flights.push(Flight {
                at,
                order: self.order,
                bytes: frame.clone(),
            });
        }
    }

    /// Delivers a frame now, bypassing the wire.
    pub fn inject(&mut self, frame: &[u8]) {
        self.deliver(frame);
    }

    fn deliver(&mut self, frame: &[u8]) {
        let now = self.now();
        let target = dst_of(frame).and_then(|dst| {
            self.stacks
                .iter()
                .find(|s| s.config().addresses.contains(&dst))
                .cloned()
        });
        match target {
            Some(stack) => stack.worker(0).handle_frame(now, frame),
            None => {
                if self.keep_stray {
                    self.stray.push(frame.to_vec());
                }
            }
        }
    }

    /// Every frame every worker wants to send, onto the wire.
    pub fn drain(&mut self) {
        let now = self.now();
        let mut out = Vec::new();
        for stack in &self.stacks {
            for w in 0..stack.config().workers {
                let worker = stack.worker(w);
                // Bounded: a stack never has more than its queues' worth.
                for _ in 0..100_000 {
                    match worker.poll_transmit(now, &mut self.buf) {
                        Some(n) => out.push(self.buf[..n].to_vec()),
                        None => break,
                    }
                }
            }
        }
        for frame in out {
            self.send(frame);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timers = self
            .stacks
            .iter()
            .flat_map(|s| (0..s.config().workers).filter_map(|w| s.worker(w).poll_timeout()));
        self.flights.iter().map(|f| f.at).chain(timers).min()
    }

    /// One step: drain output, jump to the next event, deliver and fire what
    /// is due. False when nothing at all is pending (the network is idle).
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.clock.advance_to(next);
        let now = self.now();
        self.flights.sort_by_key(|f| (f.at, f.order));
        let due = self.flights.iter().take_while(|f| f.at <= now).count();
        let arriving: Vec<Flight> = self.flights.drain(..due).collect();
        for f in arriving {
            self.deliver(&f.bytes);
        }
        for stack in self.stacks.clone() {
            for w in 0..stack.config().workers {
                let worker = stack.worker(w);
                if worker.poll_timeout().is_some_and(|t| t <= now) {
                    worker.handle_timeout(now);
                }
            }
        }
        self.drain();
        true
    }

    /// Steps until `done` holds (checked before each step) or `max_steps`
    /// pass; returns whether `done` held.
    pub fn run_until(
        &mut self,
        max_steps: usize,
        mut done: impl FnMut(&mut FakeNet) -> bool,
    ) -> bool {
        for _ in 0..max_steps {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    /// Steps while anything is in flight for at most `d` of fake time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now() + d;
        for _ in 0..1_000_000 {
            self.drain();
            match self.next_deadline() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.clock.advance_to(end);
    }
}
