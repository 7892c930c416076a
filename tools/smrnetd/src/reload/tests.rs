use super::*;
use crate::config::{Args, parse_listen};

fn config(listen: &[&str]) -> Config {
    let mut a = Args {
        workers: Some(2),
        ..Args::default()
    };
    a.listeners = listen.iter().map(|s| s.to_string()).collect();
    a.resolve().expect("valid")
}

/// The SYN cache's allocation the plans are checked against.
const CAPACITY: usize = 16384;

fn spec(s: &str) -> ListenSpec {
    parse_listen(s).unwrap()
}

#[test]
fn listeners_added_removed_and_swapped_are_planned_by_address() {
    let old = config(&["0.0.0.0:7=echo", "0.0.0.0:9=discard", "0.0.0.0:80=http"]);
    let new = config(&["0.0.0.0:7=echo", "0.0.0.0:9=echo", "0.0.0.0:8080=http"]);
    let p = plan(&old, &new, CAPACITY).unwrap();
    assert_eq!(p.add, [spec("0.0.0.0:8080=http")]);
    assert_eq!(p.remove, ["0.0.0.0:80".parse::<SocketAddr>().unwrap()]);
    assert_eq!(p.swap, [spec("0.0.0.0:9=echo")]);
    assert_eq!(p.log, None);
}

#[test]
fn fixed_fields_refuse_naming_each_one() {
    let old = config(&["0.0.0.0:7=echo"]);
    let mut new = config(&["0.0.0.0:8=echo"]);
    new.workers = 3;
    new.device = "other0".into();
    new.table_size *= 2;
    let e = plan(&old, &new, CAPACITY).unwrap_err();
    for field in ["`device`", "`workers`", "`table-size`"] {
        assert!(e.contains(field), "{e}");
    }
    assert!(!e.contains("`listen"), "listeners may change: {e}");
}

#[test]
fn same_file_plans_nothing() {
    let c = config(&["0.0.0.0:7=echo"]);
    assert!(plan(&c, &c.clone(), CAPACITY).unwrap().is_empty());
}

#[test]
fn log_filter_change_is_live() {
    let old = config(&[]);
    let mut new = old.clone();
    new.log = Some("debug".into());
    assert_eq!(
        plan(&old, &new, CAPACITY).unwrap().log,
        Some(Some("debug".into()))
    );
}

#[test]
fn limits_are_live_and_planned_together() {
    let old = config(&["0.0.0.0:7=echo"]);
    let mut new = old.clone();
    new.syncache_limit = 100;
    new.accept_queue = 3;
    let p = plan(&old, &new, CAPACITY).unwrap();
    assert_eq!(
        p.limits,
        Some(Limits {
            syncache_limit: 100,
            syncache_per_listener: old.syncache_per_listener,
            accept_queue: 3,
        })
    );
    assert!(p.add.is_empty() && p.remove.is_empty());
}

#[test]
fn a_syncache_limit_above_its_allocation_refuses_naming_the_field() {
    let old = config(&["0.0.0.0:7=echo"]);
    let mut new = old.clone();
    new.syncache_limit = CAPACITY + 1;
    new.accept_queue = 3;
    let e = plan(&old, &new, CAPACITY).unwrap_err();
    assert!(
        e.contains("`syncache-limit`") && e.contains("restart"),
        "{e}"
    );
    // Raising back up to the allocation is live.
    let mut lowered = old.clone();
    lowered.syncache_limit = 10;
    let p = plan(&lowered, &old, CAPACITY).unwrap();
    assert_eq!(p.limits.map(|l| l.syncache_limit), Some(old.syncache_limit));
}

fn stack() -> Stack {
    let mut cfg = netstack::StackConfig::new(vec!["198.18.0.2".parse().unwrap()]);
    cfg.workers = 1;
    cfg.insecure_deterministic_seed = Some(1);
    cfg.table_capacity = 64;
    cfg.pool_cap = 256;
    Stack::new(cfg)
}

#[test]
fn apply_publishes_a_new_generation_and_closes_removed_listeners() {
    let stack = stack();
    let seven = spec("0.0.0.0:7=echo");
    let h = stack.listen(seven.addr).unwrap();
    let services = Services::new(ServiceSet {
        listeners: vec![(h, seven)],
    });
    let mut seen = 0;
    assert!(services.changed(&mut seen).is_none());
    let p = Plan {
        add: vec![spec("0.0.0.0:9=discard")],
        remove: vec![seven.addr],
        ..Plan::default()
    };
    apply(&stack, &services, &p).unwrap();
    let now = services.changed(&mut seen).expect("a new generation");
    assert_eq!(now.specs(), [spec("0.0.0.0:9=discard")]);
    assert!(services.changed(&mut seen).is_none(), "seen once");
    // Port 7 is free again: the old listener was closed.
    let again = stack.listen(seven.addr).expect("port 7 released");
    stack.close_listener(again);
}

#[test]
fn failed_listen_changes_nothing() {
    let stack = stack();
    let seven = spec("0.0.0.0:7=echo");
    let h = stack.listen(seven.addr).unwrap();
    let services = Services::new(ServiceSet {
        listeners: vec![(h, seven)],
    });
    // 10.9.9.9 is not an address of the stack.
    let p = Plan {
        add: vec![spec("0.0.0.0:9=discard"), spec("10.9.9.9:80=http")],
        remove: vec![seven.addr],
        ..Plan::default()
    };
    let e = apply(&stack, &services, &p).unwrap_err();
    assert!(e.contains("10.9.9.9:80"), "{e}");
    let mut seen = 0;
    assert!(services.changed(&mut seen).is_none(), "no new generation");
    assert!(stack.listen(seven.addr).is_err(), "port 7 still listened");
    let nine = stack
        .listen(spec("0.0.0.0:9=discard").addr)
        .expect("the half-done open of port 9 was undone");
    stack.close_listener(nine);
}

#[test]
fn apply_moves_the_limits_on_the_stack() {
    let stack = stack();
    let services = Services::new(ServiceSet::default());
    let p = Plan {
        limits: Some(Limits {
            syncache_limit: 50,
            syncache_per_listener: 20,
            accept_queue: 4,
        }),
        ..Plan::default()
    };
    apply(&stack, &services, &p).unwrap();
    assert_eq!(stack.syncache_limits(), (50, 20));
    assert_eq!(stack.accept_queue_limit(), 4);
}
