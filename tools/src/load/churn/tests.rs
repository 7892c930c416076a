use super::*;

fn target() -> SocketAddr {
    "198.18.0.2:7".parse().unwrap()
}

#[test]
fn defaults_are_valid_and_bad_options_name_the_field() {
    ChurnOpts::new(target()).validate().unwrap();
    let err = |f: &dyn Fn(&mut ChurnOpts)| {
        let mut o = ChurnOpts::new(target());
        f(&mut o);
        o.validate().unwrap_err().to_string()
    };
    assert!(err(&|o| o.concurrency = 0).contains("concurrency"));
    assert!(err(&|o| o.rate = Some(0.0)).contains("rate"));
    assert!(err(&|o| o.rate = Some(f64::NAN)).contains("rate"));
    assert!(err(&|o| o.duration = Duration::ZERO).contains("duration"));
    assert!(err(&|o| o.request_bytes = MAX_REQUEST_BYTES + 1).contains("request bytes"));
    assert!(err(&|o| o.connect_timeout = Duration::ZERO).contains("connect timeout"));
    assert!(err(&|o| o.target = "8.8.8.8:7".parse().unwrap()).contains("refusing target"));
    assert!(
        err(&|o| o.source_addrs = vec!["10.0.0.1".parse().unwrap()])
            .contains("refusing source address 10.0.0.1")
    );
    assert!(
        err(&|o| o.source_addrs = vec!["fd00:5eed::1".parse().unwrap()]).contains("address family")
    );
}

#[test]
fn patterns_differ_per_ticket_and_repeat_per_ticket() {
    let (mut a, mut b, mut c) = ([0u8; 61], [0u8; 61], [0u8; 61]);
    fill_pattern(&mut a, 1);
    fill_pattern(&mut b, 2);
    fill_pattern(&mut c, 1);
    assert_ne!(a, b);
    assert_eq!(a, c);
    assert!(a.iter().any(|&x| x != a[0]), "pattern is not constant");
}

#[test]
fn daemon_side_agreement_is_bounded_by_ok_and_attempted() {
    let d = |p, ok, att| DaemonSide::check(String::new(), p, ok, att);
    assert!(d(100, 100, 100).agrees);
    assert!(d(100, 100, 100).verdict.contains("both sides counted 100"));
    assert!(d(103, 100, 105).agrees);
    assert!(!d(99, 100, 100).agrees);
    assert!(!d(101, 100, 100).agrees);
    assert!(d(101, 100, 100).verdict.contains("someone else"));
}

#[test]
fn failures_are_classified_by_io_error_kind() {
    let f = |k| Failure::of(&io::Error::from(k));
    assert_eq!(f(io::ErrorKind::ConnectionRefused), Failure::Refused);
    assert_eq!(f(io::ErrorKind::ConnectionReset), Failure::Reset);
    assert_eq!(f(io::ErrorKind::UnexpectedEof), Failure::ShortRead);
    assert_eq!(f(io::ErrorKind::AddrNotAvailable), Failure::NoLocalPort);
    assert_eq!(f(io::ErrorKind::PermissionDenied), Failure::Other);
    let mut e = ErrorCounts::default();
    Failure::Mismatch.count(&mut e);
    Failure::Refused.count(&mut e);
    assert_eq!((e.mismatch, e.refused, e.total()), (1, 1, 2));
}
