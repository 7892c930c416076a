//! Helpers for the end-to-end tests in `tests/e2e/`: a lab per test (the
//! daemon in a private network namespace, removed on drop), the daemon binary
//! built on demand, a Prometheus text parser, raw-socket ping and frame
//! injection, and a tiny runner that counts skipped tests as skipped.
//!
//! Every helper that talks to the daemon's addresses must run inside the
//! lab's namespace (`Lab::in_netns`); every loop here is bounded in count and
//! in time.

mod metrics;
mod raw;
mod runner;

pub use metrics::Metrics;
pub use raw::{internet_checksum, ping, send_raw_ipv4};
pub use runner::{Outcome, Test, run_main};
pub use tools::lab::{
    DAEMON_V4, DAEMON_V6, DISCARD_PORT, ECHO_PORT, HTTP_PORT, Lab, LabConfig, LabError,
};

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Why the suite cannot run here (not root, no /dev/net/tun, no `ip`), or
/// `None` when it can.
pub fn missing_prerequisite() -> Option<String> {
    tools::lab::preflight().err().map(|e| e.to_string())
}

/// The `smrnetd` binary of this build, built on first use with the same
/// profile and target directory as this test (`$SMRNETD` overrides it).
///
/// `cargo test` builds another package's binaries only as test harnesses,
/// so the suite asks cargo for the real one; cargo has released its build
/// lock by the time tests run, and the build is a no-op when it is fresh.
pub fn daemon_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SMRNETD") {
            return PathBuf::from(p);
        }
        build_tools_binaries().join("smrnetd")
    })
    .clone()
}

/// The `smrnet` binary of this build (for the CLI test).
pub fn smrnet_binary() -> PathBuf {
    daemon_binary()
        .parent()
        .expect("a binary lives in a directory")
        .join("smrnet")
}

/// `cargo build -p tools -p smrnetd --bins` into this test's target
/// directory; returns the directory holding the binaries.
fn build_tools_binaries() -> PathBuf {
    // The test binary is <target>/<profile>/deps/e2e-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary under <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => "release".to_string(),
    };
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    eprintln!("e2e: building smrnetd and smrnet ({profile} profile)");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "tools",
            "-p",
            "smrnetd",
            "--bins",
            "--profile",
            &profile,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo to build smrnetd");
    assert!(status.success(), "building smrnetd failed: {status}");
    profile_dir.to_path_buf()
}

/// A lab for one test, with `extra` daemon flags; panics (failing the test)
/// with the lab's own error when it cannot start.
pub fn lab_with(workers: usize, extra: &[&str]) -> Lab {
    let mut cfg = LabConfig::new(daemon_binary());
    cfg.workers = Some(workers);
    cfg.extra_args = extra.iter().map(OsString::from).collect();
    match Lab::up(&cfg) {
        Ok(lab) => lab,
        Err(e) => panic!("lab up: {e}"),
    }
}

/// A lab with the default services and two workers.
pub fn lab() -> Lab {
    lab_with(2, &[])
}

/// Scrape the lab's metrics and parse them.
pub fn scrape(lab: &Lab) -> Metrics {
    let text = lab.scrape().unwrap_or_else(|e| panic!("scrape: {e}"));
    Metrics::parse(&text)
}

/// Whether `program` can be run (found on PATH).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Whether missing prerequisites must fail the suite instead of skipping it
/// (`SMRNET_E2E_REQUIRE=1`, set by CI, which runs as root).
pub fn prerequisites_required() -> bool {
    std::env::var_os("SMRNET_E2E_REQUIRE").is_some_and(|v| v == "1")
}

/// A lab whose listeners come from the TOML file `config` alone (the lab's
/// own `--listen` flags would win over the file, on start and on SIGHUP).
pub fn lab_with_config_file(config: &std::path::Path) -> Lab {
    let mut cfg = LabConfig::new(daemon_binary());
    cfg.workers = Some(2);
    cfg.listen_flags = false;
    cfg.extra_args = vec!["--config".into(), config.as_os_str().to_owned()];
    match Lab::up(&cfg) {
        Ok(lab) => lab,
        Err(e) => panic!("lab up: {e}"),
    }
}
