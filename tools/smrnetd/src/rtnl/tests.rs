use super::*;
use proptest::prelude::*;

fn parsed(buf: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    parse(buf, &mut out).expect("well-formed");
    out
}

#[test]
fn address_request_decodes_as_the_address_it_adds() {
    let v6: IpAddr = "fd00:5eed::1".parse().unwrap();
    let v4: IpAddr = "198.18.0.1".parse().unwrap();
    let mut both = add_address_request(7, v6, 64, 1);
    both.extend(add_address_request(7, v4, 24, 2));
    assert_eq!(
        parsed(&both),
        vec![
            Msg::Addr {
                deleted: false,
                index: 7,
                addr: v6,
                prefix: 64
            },
            Msg::Addr {
                deleted: false,
                index: 7,
                addr: v4,
                prefix: 24
            },
        ]
    );
}

#[test]
fn mtu_request_decodes_as_a_link_with_that_mtu() {
    let m = parsed(&set_mtu_request(3, 1400, 9));
    assert_eq!(
        m,
        vec![Msg::Link {
            deleted: false,
            index: 3,
            flags: 0,
            name: None,
            mtu: Some(1400)
        }]
    );
}

#[test]
fn error_message_carries_the_positive_errno_and_seq() {
    let mut b = Vec::new();
    header(&mut b, NLMSG_ERROR, 0, 42);
    b.extend_from_slice(&(-17i32).to_ne_bytes());
    let b = finish(b);
    assert_eq!(parsed(&b), vec![Msg::Ack { seq: 42, errno: 17 }]);
}

#[test]
fn link_name_stops_at_the_nul() {
    let mut b = Vec::new();
    header(&mut b, RTM_DELLINK, 0, 0);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&5u32.to_ne_bytes());
    b.extend_from_slice(&IFF_UP.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    attribute(&mut b, IFLA_IFNAME, b"smr0\0");
    let b = finish(b);
    assert_eq!(
        parsed(&b),
        vec![Msg::Link {
            deleted: true,
            index: 5,
            flags: IFF_UP,
            name: Some("smr0".into()),
            mtu: None
        }]
    );
}

#[test]
fn message_longer_than_the_datagram_is_malformed() {
    let mut b = set_mtu_request(3, 1400, 9);
    b.truncate(b.len() - 4);
    assert_eq!(parse(&b, &mut Vec::new()), Err(Malformed));
}

#[test]
fn attribute_longer_than_its_message_is_malformed() {
    let mut b = add_address_request(1, "10.0.0.1".parse().unwrap(), 8, 1);
    // The first attribute's length field, right after the ifaddrmsg.
    let at = NLMSG_HDRLEN + IFADDRMSG_LEN;
    b[at..at + 2].copy_from_slice(&200u16.to_ne_bytes());
    assert_eq!(parse(&b, &mut Vec::new()), Err(Malformed));
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut out = Vec::new();
        let _ = parse(&bytes, &mut out);
        prop_assert!(out.len() <= bytes.len() / NLMSG_HDRLEN);
    }

    #[test]
    fn corrupted_requests_never_panic(
        index in any::<u32>(), at in 0usize..64, byte in any::<u8>()
    ) {
        let mut b = add_address_request(index, "fd00::1".parse().unwrap(), 64, 1);
        if at < b.len() {
            b[at] = byte;
        }
        let _ = parse(&b, &mut Vec::new());
    }
}
