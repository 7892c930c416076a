//! `smrnet`'s command line as a user meets it: the real binary, and only
//! cases that fail before anything is created or sent.

use std::process::Command;

fn smrnet(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smrnet"))
        .args(args)
        .output()
        .expect("run smrnet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_usage_error_names_its_cause_on_the_first_line_and_exits_2() {
    for (args, cause) in [
        (
            &["lab", "up", "--bogus"][..],
            "smrnet: unexpected argument '--bogus'",
        ),
        (
            &["lab", "up", "--workers", "x"][..],
            "smrnet: invalid value 'x' for '--workers",
        ),
        (&["labx"][..], "smrnet: unrecognized subcommand 'labx'"),
        (
            &[][..],
            "smrnet: a subcommand is missing: one of bench, lab, load, demo",
        ),
        (
            &["lab"][..],
            "smrnet: a subcommand is missing: one of up, exec, down, list",
        ),
        (
            &["lab", "exec"][..],
            "smrnet: the following required arguments were not provided: <CMD>",
        ),
        // Refused by the command after parsing, before sending anything.
        (
            &[
                "load",
                "churn",
                "--target",
                "127.0.0.1:9",
                "--concurrency",
                "0",
            ][..],
            "smrnet: concurrency must be 1..=",
        ),
    ] {
        let (code, stdout, stderr) = smrnet(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.first().is_some_and(|l| l.starts_with(cause)),
            "{args:?}: {stderr}"
        );
        assert!(lines.len() <= 2, "{args:?}: more than two lines:\n{stderr}");
    }
}

#[test]
fn help_and_version_go_to_stdout_with_status_0() {
    for args in [
        &["--help"][..],
        &["lab", "up", "--help"][..],
        &["--version"][..],
    ] {
        let (code, stdout, stderr) = smrnet(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(stdout.contains("smrnet"), "{args:?}: {stdout}");
    }
    let (_, help, _) = smrnet(&["lab", "up", "--help"]);
    assert!(help.contains("--prometheus"), "{help}");
}
