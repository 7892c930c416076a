//! The pool's cap under a stalled reader: while one thread holds an SMR read
//! section open, the connection blocks that closed connections retire cannot
//! be reused, so churn reaches the cap and new handshakes are refused and
//! counted (never an unbounded wait, never a crash); once the reader leaves,
//! the next handshakes get blocks again, within a bounded time.

mod support;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use netstack::State;
use support::{B4, B6, FakeNet, NetConfig};

/// Small enough that a short churn reaches it.
const CAP: usize = 64;

/// Opens one connection to `server`, accepts it, and closes it from the
/// client first (the server's block is then retired, the client's waits in
/// TIME-WAIT on the other stack). Whether the handshake completed.
fn one_connection(net: &mut FakeNet, listener: &netstack::ListenerHandle) -> bool {
    let server = listener.local();
    let c = net.a().connect(net.now(), 0, None, server).unwrap();
    let mut accepted = None;
    let done = net.run_until(2_000, |n| {
        if accepted.is_none() {
            accepted = n.b().accept(listener);
        }
        accepted.is_some() && n.a().state_of(&c) == Some(State::Established)
    });
    let Some(s) = accepted.filter(|_| done) else {
        let _ = net.a().abort(&c);
        net.run_for(Duration::from_millis(10));
        drain_events(net.b());
        return false;
    };
    net.a().close(&c).unwrap();
    assert!(net.run_until(2_000, |n| n.b().state_of(&s) == Some(State::CloseWait)));
    net.b().close(&s).unwrap();
    assert!(net.run_until(2_000, |n| n.b().state_of(&s).is_none()));
    drain_events(net.b());
    true
}

/// Takes every event the server queued, as an application would: an event
/// entry pins its connection's block until it is taken, and this test is
/// about blocks held back by the reader, not by untaken events.
fn drain_events(stack: &netstack::Stack) {
    for w in 0..stack.config().workers {
        while stack.poll_events(w).is_some() {}
    }
}

#[test]
fn pool_cap_reached_under_a_stalled_reader_clears_when_the_reader_leaves() {
    let mut net = FakeNet::pair(NetConfig::default());
    let mut small = support::stack_config(vec![B4, B6], 7);
    small.pool_cap = CAP;
    net.stacks[1] = std::sync::Arc::new(netstack::Stack::new(small));
    let listener = net.b().listen(SocketAddr::new(B4, 80)).unwrap();
    // The stalled reader: a thread inside a read section of the server's
    // domain until told to leave.
    let domain = std::sync::Arc::clone(net.b().smr_domain());
    let (leave, told) = mpsc::channel::<()>();
    let (entered, is_in) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let _section = domain.enter();
        entered.send(()).unwrap();
        // Bounded: the test tells it to leave, or 30 s pass.
        let _ = told.recv_timeout(Duration::from_secs(30));
    });
    is_in.recv().unwrap();

    // Churn: every closed connection retires a block that cannot be reused
    // while the reader stays, so at most CAP handshakes succeed.
    let mut ok = 0;
    let mut refused_in_a_row = 0;
    for _ in 0..3 * CAP {
        if one_connection(&mut net, &listener) {
            ok += 1;
            refused_in_a_row = 0;
        } else {
            refused_in_a_row += 1;
            if refused_in_a_row == 3 {
                break;
            }
        }
    }
    assert!(ok <= CAP, "{ok} connections from a pool of {CAP}");
    assert_eq!(refused_in_a_row, 3, "the cap was never reached");
    let at_cap = net.b().pool_stats();
    assert!(at_cap.exhausted > 0, "the refusals are counted by the pool");
    assert!(net.b().mib().pool_exhausted > 0, "and by the TCP MIB");
    assert!(at_cap.pending > 0, "retired blocks wait for the reader");
    let open = net.b().oldest_read_section();
    assert!(
        open.is_some(),
        "the stalled reader shows as an open section"
    );

    // The reader leaves: within a bounded number of attempts (each bounded
    // in simulated and real time), handshakes succeed again.
    leave.send(()).unwrap();
    reader.join().unwrap();
    assert_eq!(net.b().oldest_read_section(), None);
    let started = std::time::Instant::now();
    let mut after = 0;
    for _ in 0..10 {
        if one_connection(&mut net, &listener) {
            after += 1;
        }
        if after == 3 {
            break;
        }
    }
    assert_eq!(after, 3, "no handshake succeeded after the reader left");
    assert!(started.elapsed() < Duration::from_secs(5));
    // And churn continues past the cap: the blocks are being reused.
    let more = (0..2 * CAP)
        .filter(|_| one_connection(&mut net, &listener))
        .count();
    assert_eq!(more, 2 * CAP, "churn after the reader left");
}
