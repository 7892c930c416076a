use super::*;

fn http(body: usize) -> Session {
    Session::new(Service::Http, body).unwrap()
}

fn feed(s: &mut Session, input: &[u8]) -> (String, Next) {
    let mut out = Vec::new();
    let next = s.on_data(input, &mut out);
    (String::from_utf8_lossy(&out).into_owned(), next)
}

#[test]
fn echo_returns_every_byte_and_discard_none() {
    let mut out = Vec::new();
    assert_eq!(
        Session::new(Service::Echo, 0)
            .unwrap()
            .on_data(b"abc\0\xff", &mut out),
        Next::Continue
    );
    assert_eq!(out, b"abc\0\xff");
    out.clear();
    assert_eq!(
        Session::new(Service::Discard, 0)
            .unwrap()
            .on_data(b"abc", &mut out),
        Next::Continue
    );
    assert!(out.is_empty());
}

#[test]
fn http_get_gets_the_body_with_content_length_and_keep_alive() {
    let mut s = http(10);
    let (out, next) = feed(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(next, Next::Continue);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Length: 10\r\n"));
    assert!(out.contains("Connection: keep-alive\r\n"));
    assert!(out.ends_with("\r\n\r\nsmrnet\nsmr"), "{out:?}");
    assert_eq!(http_body(10), b"smrnet\nsmr");
}

#[test]
fn http_request_split_anywhere_is_answered_once() {
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    for cut in 0..req.len() {
        let mut s = http(3);
        let (a, _) = feed(&mut s, &req[..cut]);
        assert!(a.is_empty(), "cut {cut}");
        let (b, next) = feed(&mut s, &req[cut..]);
        assert_eq!(b.matches("200 OK").count(), 1, "cut {cut}");
        assert_eq!(next, Next::Continue);
    }
}

#[test]
fn http_pipelined_requests_and_bodies_are_answered_in_order() {
    let mut s = http(0);
    let (out, next) = feed(
        &mut s,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n",
    );
    // POST is refused, and the connection closes after the refusal.
    assert!(out.starts_with("HTTP/1.1 501"), "{out}");
    assert_eq!(next, Next::Close);
    let mut s = http(4);
    let (out, next) = feed(
        &mut s,
        b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET / HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(out.matches("200 OK").count(), 3, "{out}");
    assert_eq!(
        out.matches("\r\n\r\nsmrn").count(),
        2,
        "HEAD has no body: {out}"
    );
    assert_eq!(next, Next::Continue);
}

#[test]
fn http_close_and_http10_end_the_connection() {
    let (out, next) = feed(&mut http(1), b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(out.contains("Connection: close"));
    assert_eq!(next, Next::Close);
    let (_, next) = feed(&mut http(1), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(next, Next::Close);
    let (_, next) = feed(
        &mut http(1),
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(next, Next::Continue);
}

#[test]
fn http_hostile_requests_get_one_error_and_close() {
    let cases: &[(&[u8], &str)] = &[
        (b"GARBAGE\r\n\r\n", "400"),
        (b"GET /\r\n\r\n", "400"),
        (b"GET / HTTP/1.1 extra\r\n\r\n", "400"),
        (b"GET / HTTP/2.0\r\n\r\n", "505"),
        (b"get / HTTP/1.1\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", "400"),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "400",
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "400",
        ),
        (b"GET / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "413"),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "501",
        ),
        (b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", "400"),
    ];
    for (req, status) in cases {
        let (out, next) = feed(&mut http(1), req);
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?}: {out}"
        );
        assert_eq!(out.matches("HTTP/1.1").count(), 1, "{req:?}");
        assert_eq!(next, Next::Close, "{req:?}");
    }
}

#[test]
fn http_request_head_is_bounded() {
    let mut s = http(1);
    let chunk = vec![b'a'; 1000];
    let mut last = (String::new(), Next::Continue);
    for _ in 0..20 {
        last = feed(&mut s, &chunk);
        if last.1 == Next::Close {
            break;
        }
    }
    assert!(last.0.starts_with("HTTP/1.1 431"), "{}", last.0);
    assert_eq!(last.1, Next::Close);
    if let Session::Http(h) = &s {
        assert!(h.head.len() <= MAX_REQUEST_HEAD + 4);
    }
}

#[test]
fn http_never_panics_on_arbitrary_bytes() {
    // A small deterministic generator: every byte value, CRLFs and colons.
    let mut x: u64 = 0x5eed;
    for _ in 0..2000 {
        let mut s = http(2);
        let mut out = Vec::new();
        for _ in 0..8 {
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 8 {
                        0 => b'\r',
                        1 => b'\n',
                        2 => b':',
                        3 => b' ',
                        _ => (x >> 8) as u8,
                    }
                })
                .collect();
            if s.on_data(&bytes, &mut out) == Next::Close {
                break;
            }
        }
    }
}

#[test]
fn http_pipelining_is_held_back_at_the_output_high_water_mark() {
    let mut s = http(100 * 1024);
    let reqs: Vec<u8> = b"GET / HTTP/1.1\r\n\r\n".repeat(20);
    let mut out = Vec::new();
    assert_eq!(s.on_data(&reqs, &mut out), Next::Continue);
    assert!(out.len() < OUTPUT_HIGH_WATER + 200 * 1024, "{}", out.len());
    assert!(s.has_backlog());
    let mut answered = out.windows(6).filter(|w| w == b"200 OK").count();
    while s.has_backlog() {
        out.clear();
        s.resume(&mut out);
        answered += out.windows(6).filter(|w| w == b"200 OK").count();
    }
    assert_eq!(answered, 20);
}
