use super::*;

fn flags(args: &[&str]) -> Result<Config, ConfigError> {
    let argv = std::iter::once("smrnetd").chain(args.iter().copied());
    Args::try_parse_from(argv)
        .expect("clap accepts these")
        .resolve()
}

fn field_of(r: Result<Config, ConfigError>) -> String {
    r.expect_err("should be rejected").field
}

#[test]
fn defaults_work_without_any_flag() {
    let c = flags(&[]).unwrap();
    assert_eq!(c.device, "smrnet0");
    assert_eq!(c.tun_ipv4.unwrap().addr, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(c.tun_ipv6.unwrap().prefix, 64);
    assert_eq!(
        c.addresses,
        vec![
            "198.18.0.2".parse::<IpAddr>().unwrap(),
            "fd00:5eed::2".parse().unwrap()
        ]
    );
    assert_eq!(c.mtu, 1500);
    assert!(c.workers >= 1);
    let services: Vec<_> = c
        .listeners
        .iter()
        .map(|l| (l.addr.port(), l.service))
        .collect();
    assert_eq!(
        services,
        vec![
            (7, Service::Echo),
            (9, Service::Discard),
            (80, Service::Http)
        ]
    );
    assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(c.smr_mode, smr::Mode::Default);
    assert!(!c.attach);
}

#[test]
fn flags_set_every_kind_of_value() {
    let c = flags(&[
        "--workers",
        "3",
        "--listen",
        "198.18.0.2:8080=http",
        "--listen",
        "[::]:7=echo",
        "--smr-mode",
        "lazy",
        "--metrics",
        "off",
        "--attach",
        "--tun-ipv6",
        "none",
        "--address",
        "198.18.0.2",
    ])
    .unwrap();
    assert_eq!(c.workers, 3);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].service, Service::Http);
    assert_eq!(c.smr_mode, smr::Mode::Lazy);
    assert_eq!(c.metrics, None);
    assert!(c.attach);
    assert_eq!(c.tun_ipv6, None);
}

#[test]
fn toml_file_is_read_and_flags_win() {
    let file = Args::from_toml(
        "workers = 2\nmtu = 9000\nlisten = [\"0.0.0.0:7=echo\"]\nsmr-mode = \"deferred\"\n",
    )
    .unwrap();
    let cli = Args::try_parse_from(["smrnetd", "--workers", "4"]).unwrap();
    let c = cli.over(file).resolve().unwrap();
    assert_eq!(c.workers, 4, "the flag wins");
    assert_eq!(c.mtu, 9000, "the file fills in");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.smr_mode, smr::Mode::Deferred);
}

#[test]
fn toml_errors_name_the_key() {
    let e = Args::from_toml("workers = \"many\"\n").unwrap_err();
    assert_eq!(e.field, "workers", "{e}");
    let e = Args::from_toml("no-such-thing = 1\n").unwrap_err();
    assert!(e.to_string().contains("no-such-thing"), "{e}");
    let e = Args::from_toml("mtu = 1500\nsmr-mode = \"slow\"\n")
        .unwrap()
        .resolve()
        .unwrap_err();
    assert_eq!(e.field, "smr-mode");
    assert!(!e.to_string().contains('\n'), "one line: {e}");
}

#[test]
fn each_bad_value_names_its_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--workers", "0"], "workers"),
        (&["--workers", "100000"], "workers"),
        (&["--mtu", "100"], "mtu"),
        (&["--tun-ipv4", "198.18.0.1"], "tun-ipv4"),
        (&["--tun-ipv4", "198.18.0.1/40"], "tun-ipv4"),
        (&["--tun-ipv6", "fd00::1/0"], "tun-ipv6"),
        (&["--address", "nonsense"], "address"),
        (&["--address", "0.0.0.0"], "address"),
        (&["--listen", "0.0.0.0:7"], "listen"),
        (&["--listen", "0.0.0.0:7=telnet"], "listen"),
        (&["--listen", "0.0.0.0:0=echo"], "listen"),
        (&["--listen", "10.0.0.1:7=echo"], "listen"),
        (
            &["--listen", "0.0.0.0:7=echo", "--listen", "[::]:7=discard"],
            "listen",
        ),
        (&["--http-body-bytes", "999999999"], "http-body-bytes"),
        (&["--table-size", "0"], "table-size"),
        (&["--pool-cap", "0"], "pool-cap"),
        (&["--syncache-limit", "0"], "syncache-limit"),
        (&["--syncache-per-listener", "0"], "syncache-per-listener"),
        (&["--accept-queue", "0"], "accept-queue"),
        (&["--smr-mode", "eager"], "smr-mode"),
        (&["--pcb-backend", "btree"], "pcb-backend"),
        (&["--pcb-backend", "SMR"], "pcb-backend"),
        (&["--steering", "rss"], "steering"),
        (&["--metrics", "localhost"], "metrics"),
        (&["--device", "a/b"], "device"),
        (&["--device", "a-name-far-too-long"], "device"),
        (&["--netns", "../x"], "netns"),
        (&["--pcap-max-bytes", "3"], "pcap-max-bytes"),
        (&["--tun-ipv4", "none", "--tun-ipv6", "none"], "address"),
    ];
    for (args, field) in cases {
        assert_eq!(&field_of(flags(args)), field, "{args:?}");
    }
}

#[test]
fn offload_is_on_unless_turned_off() {
    use super::OffloadMode;
    assert_eq!(flags(&[]).unwrap().offload, OffloadMode::On);
    assert_eq!(
        flags(&["--offload", "off"]).unwrap().offload,
        OffloadMode::Off
    );
    assert_eq!(
        flags(&["--offload", "force-fallback"]).unwrap().offload,
        OffloadMode::ForceFallback
    );
    assert!(flags(&["--offload", "maybe"]).is_err());
}

#[test]
fn steering_is_ebpf_unless_turned_off() {
    assert!(flags(&[]).unwrap().steering_ebpf);
    assert!(flags(&["--steering", "ebpf"]).unwrap().steering_ebpf);
    assert!(!flags(&["--steering", "off"]).unwrap().steering_ebpf);
    assert!(!flags(&[]).unwrap().steering_force_fallback);
    let forced = flags(&["--steering", "force-fallback"]).unwrap();
    assert!(forced.steering_ebpf && forced.steering_force_fallback);
    assert!(flags(&["--steering", "maybe"]).is_err());
}

#[test]
fn every_pcb_backend_name_parses_and_smr_is_the_default() {
    assert_eq!(flags(&[]).unwrap().pcb_backend, pcb::Backend::Smr);
    for backend in pcb::Backend::ALL {
        let c = flags(&["--pcb-backend", backend.name()]).unwrap();
        assert_eq!(c.pcb_backend, backend);
    }
}

#[test]
fn an_unknown_pcb_backend_is_a_one_line_error_naming_the_flag() {
    let e = flags(&["--pcb-backend", "btree"]).unwrap_err();
    assert_eq!(e.field, "pcb-backend");
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains("pcb-backend") && line.contains("btree"),
        "{line}"
    );
    for name in ["smr", "dashmap", "rwlock", "papaya"] {
        assert!(line.contains(name), "{line} does not list {name}");
    }
}

#[test]
fn bad_flag_syntax_is_a_usage_error_with_status_2() {
    let e = Args::try_parse_from(["smrnetd", "--workers", "two"]).unwrap_err();
    assert_eq!(e.exit_code(), EXIT_USAGE);
    let e = Args::try_parse_from(["smrnetd", "--frobnicate"]).unwrap_err();
    assert_eq!(e.exit_code(), EXIT_USAGE);
}

#[test]
fn help_mentions_every_flag() {
    use clap::CommandFactory;
    let help = Args::command().render_long_help().to_string();
    for flag in [
        "--config",
        "--device",
        "--attach",
        "--tun-ipv4",
        "--tun-ipv6",
        "--address",
        "--mtu",
        "--netns",
        "--user",
        "--workers",
        "--listen",
        "--http-body-bytes",
        "--table-size",
        "--pool-cap",
        "--syncache-limit",
        "--syncache-per-listener",
        "--accept-queue",
        "--smr-mode",
        "--pcb-backend",
        "--metrics",
        "--log",
        "--pcap",
        "--pcap-max-bytes",
        "--insecure-deterministic-seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("CAP_NET_ADMIN"));
}

#[test]
fn a_plain_seed_is_refused_naming_the_field_from_flags_and_toml() {
    let err = flags(&["--seed", "7"]).unwrap_err();
    assert_eq!(err.field, "seed");
    assert!(err.message.contains("insecure-deterministic-seed"), "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
    let file = Args::from_toml("seed = 7").unwrap();
    assert_eq!(field_of(file.resolve()), "seed");
}

#[test]
fn the_insecure_seed_is_accepted_by_its_name_and_warned_about() {
    let c = flags(&["--insecure-deterministic-seed", "7"]).unwrap();
    assert_eq!(c.insecure_deterministic_seed, Some(7));
    let warning = insecure_seed_warning(&c).expect("a warning");
    assert!(warning.starts_with("INSECURE"), "{warning}");
    assert!(
        warning.contains("insecure-deterministic-seed = 7"),
        "{warning}"
    );
    let file = Args::from_toml("insecure-deterministic-seed = 7").unwrap();
    assert_eq!(file.resolve().unwrap().insecure_deterministic_seed, Some(7));
}

#[test]
fn random_keys_are_the_default_and_draw_no_warning() {
    let c = flags(&[]).unwrap();
    assert_eq!(c.insecure_deterministic_seed, None);
    assert_eq!(insecure_seed_warning(&c), None);
}

#[test]
fn help_does_not_offer_the_refused_seed_flag() {
    use clap::CommandFactory;
    let help = Args::command().render_long_help().to_string();
    assert!(!help.contains("--seed "), "{help}");
    assert!(help.contains("INSECURE"));
}

#[test]
fn forward_takes_a_loopback_upstream_from_flags_and_toml() {
    let c = flags(&["--listen", "0.0.0.0:80=forward:127.0.0.1:8080"]).unwrap();
    assert_eq!(
        c.listeners[0].service,
        Service::Forward("127.0.0.1:8080".parse().unwrap())
    );
    assert_eq!(c.listeners[0].service.name(), "forward");
    let file = Args::from_toml("listen = [\"[::]:81=forward:[::1]:9000\"]\n").unwrap();
    let c = file.resolve().unwrap();
    assert_eq!(
        c.listeners[0].service,
        Service::Forward("[::1]:9000".parse().unwrap())
    );
}

#[test]
fn a_bad_forward_upstream_is_a_one_line_error_naming_listen() {
    for bad in [
        "0.0.0.0:80=forward:8.8.8.8:80",
        "0.0.0.0:80=forward:localhost:80",
        "0.0.0.0:80=forward:127.0.0.1",
        "0.0.0.0:80=forward:127.0.0.1:0",
        "0.0.0.0:80=forward:",
    ] {
        let e = flags(&["--listen", bad]).unwrap_err();
        assert_eq!(e.field, "listen", "{bad}: {e}");
        let line = e.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains("forward"), "{bad}: {line}");
    }
}
