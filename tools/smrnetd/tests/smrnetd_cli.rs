//! `smrnetd`'s command line as a user meets it: the real binary, no device
//! (every case here fails or exits before opening one).

use std::process::Command;

fn smrnetd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnetd"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run smrnetd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_exits_0_and_explains_the_flags() {
    let (code, stdout, _) = smrnetd(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--netns",
        "--user",
        "--listen",
        "--pcb-backend",
        "--metrics",
        "--pcap",
        "=forward:",
    ] {
        assert!(stdout.contains(flag), "{flag}");
    }
    for backend in ["smr", "dashmap", "rwlock", "papaya"] {
        assert!(
            stdout.contains(backend),
            "--help does not name backend {backend}"
        );
    }
}

#[test]
fn a_bad_value_is_one_line_naming_the_field_and_exit_2() {
    for (args, field) in [
        (&["--workers", "0"][..], "`workers`"),
        (&["--smr-mode", "eager"][..], "`smr-mode`"),
        (&["--listen", "0.0.0.0:7=gopher"][..], "`listen`"),
        // forward's upstream: off loopback, a name, no port.
        (
            &["--listen", "0.0.0.0:80=forward:8.8.8.8:80"][..],
            "`listen`",
        ),
        (
            &["--listen", "0.0.0.0:80=forward:localhost:80"][..],
            "`listen`",
        ),
        (
            &["--listen", "0.0.0.0:80=forward:127.0.0.1"][..],
            "`listen`",
        ),
        (&["--pcb-backend", "btree"][..], "`pcb-backend`"),
    ] {
        let (code, _, stderr) = smrnetd(args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(field), "{args:?}: {stderr}");
    }
}

#[test]
fn a_bad_flag_exits_2() {
    let (code, _, stderr) = smrnetd(&["--workers", "two"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--workers"), "{stderr}");
}

#[test]
fn a_bad_config_file_value_names_the_key_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("smrnetd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "workers = 2\nmtu = \"big\"\n").unwrap();
    let (code, _, stderr) = smrnetd(&["--config", path.to_str().unwrap()]);
    std::fs::write(&path, "pool-cap = 0\n").unwrap();
    let (code2, _, stderr2) = smrnetd(&["--config", path.to_str().unwrap()]);
    let (code3, _, stderr3) = smrnetd(&["--config", dir.join("missing.toml").to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains("`mtu`"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(code2, 2);
    assert!(stderr2.contains("`pool-cap`"), "{stderr2}");
    assert_eq!(code3, 2);
    assert!(stderr3.contains("`config`"), "{stderr3}");
}

#[test]
fn a_missing_namespace_is_a_clear_failure() {
    let (code, _, stderr) = smrnetd(&["--netns", "smrnetd-cli-no-such-ns", "--metrics", "off"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("ip netns add"), "{stderr}");
}

#[test]
fn a_usage_error_names_the_cause_on_the_first_line_and_exits_2() {
    for (args, cause) in [
        (
            &["--workers", "two"][..],
            "smrnetd: invalid value 'two' for '--workers",
        ),
        (
            &["--no-such-flag"][..],
            "smrnetd: unexpected argument '--no-such-flag'",
        ),
    ] {
        let (code, stdout, stderr) = smrnetd(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines[0].starts_with(cause), "{args:?}: {stderr}");
        assert!(lines.len() <= 2, "{args:?}: more than two lines:\n{stderr}");
    }
}
