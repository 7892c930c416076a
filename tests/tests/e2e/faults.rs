//! What happens around the daemon: its device flapped, its addresses
//! deleted, the device itself deleted, its configuration reloaded, its
//! capture disk full. Every wait here is bounded.

use crate::clients::http_get_once;
use crate::names::{DEVICE_EVENTS, DEVICE_LINK_UP, PCAP_STOPPED};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};
use tests::{DAEMON_V4, DAEMON_V6, HTTP_PORT, Lab, Outcome, lab, scrape};

/// `ip -n <lab> ARGS...`, which must succeed.
fn ip(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", lab.netns().name()])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 50 ms until it holds or `within` passes.
fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn device_events(lab: &Lab, kind: &str) -> f64 {
    scrape(lab).sum_where(DEVICE_EVENTS, &format!("kind=\"{kind}\""))
}

/// An HTTP GET to the daemon over both families, from inside the lab.
fn both_families_serve(lab: &Lab) -> Result<(), String> {
    lab.in_netns(|| {
        for ip in [IpAddr::V4(DAEMON_V4), IpAddr::V6(DAEMON_V6)] {
            http_get_once(SocketAddr::new(ip, HTTP_PORT)).map_err(|e| format!("GET {ip}: {e}"))?;
        }
        Ok(())
    })
    .expect("enter the lab")
}

pub fn link_flap_keeps_v4_and_v6_serving() -> Outcome {
    let lab = lab();
    both_families_serve(&lab).expect("before the flap");
    ip(&lab, &["link", "set", "smr0", "down"]);
    std::thread::sleep(Duration::from_millis(200));
    ip(&lab, &["link", "set", "smr0", "up"]);
    // The kernel dropped fd00:5eed::1/64 on link down; the daemon puts it back.
    let mut last = String::new();
    wait_for(
        Duration::from_secs(5),
        "both families to serve again",
        || both_families_serve(&lab).map_err(|e| last = e).is_ok(),
    );
    let m = scrape(&lab);
    assert_eq!(m.sum(DEVICE_LINK_UP), 1.0, "link gauge after up");
    for kind in [
        "link_down",
        "link_up",
        "address_removed",
        "address_restored",
    ] {
        assert!(
            m.sum_where(DEVICE_EVENTS, &format!("kind=\"{kind}\"")) >= 1.0,
            "no {kind} counted (last error before serving again: {last})"
        );
    }
    assert!(ip(&lab, &["-6", "addr", "show", "dev", "smr0"]).contains("fd00:5eed::1/64"));
    Outcome::Passed
}

pub fn address_deleted_under_the_daemon_is_restored() -> Outcome {
    let lab = lab();
    for (family, addr) in [("-4", "198.18.0.1/15"), ("-6", "fd00:5eed::1/64")] {
        let before = device_events(&lab, "address_restored");
        ip(&lab, &[family, "addr", "del", addr, "dev", "smr0"]);
        wait_for(Duration::from_secs(3), "the address to come back", || {
            ip(&lab, &[family, "addr", "show", "dev", "smr0"]).contains(addr)
        });
        wait_for(Duration::from_secs(3), "address_restored to count", || {
            device_events(&lab, "address_restored") > before
        });
    }
    assert!(device_events(&lab, "address_removed") >= 2.0);
    both_families_serve(&lab).expect("after the restore");
    Outcome::Passed
}

pub fn deleted_device_stops_the_daemon_with_its_reason() -> Outcome {
    let mut lab = lab();
    ip(&lab, &["link", "del", "smr0"]);
    let status = lab
        .daemon_mut()
        .wait_timeout(Duration::from_secs(3))
        .expect("wait for the daemon")
        .expect("the daemon still runs 3 s after its device was deleted");
    assert!(!status.success(), "exit status {status}");
    let log = std::fs::read_to_string(lab.log()).expect("read the log");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("smr0") && last.contains("deleted"),
        "last log line should give the reason: {last:?}"
    );
    lab.down().expect("lab down");
    Outcome::Passed
}

/// A small tmpfs on a fresh temp directory, unmounted and removed on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("smrnet-e2e-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the mount point");
        // The guard exists before the mount, so a failed mount still
        // removes the directory.
        let fs = Tmpfs(dir);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&fs.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs: {status}");
        fs
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pcap_on_a_full_disk_stops_capturing_and_serves_on() -> Outcome {
    let fs = Tmpfs::mount("32k");
    let file = fs.0.join("capture.pcap");
    let lab = tests::lab_with(2, &["--pcap", file.to_str().expect("utf-8 path")]);
    let v4 = SocketAddr::new(IpAddr::V4(DAEMON_V4), HTTP_PORT);
    // Each GET is a handful of packets and a 1 KiB body: well over 32 KiB
    // within 200 of them.
    let mut stopped = false;
    for round in 0..10 {
        lab.in_netns(|| {
            for i in 0..20 {
                http_get_once(v4).unwrap_or_else(|e| panic!("GET {round}/{i}: {e}"));
            }
        })
        .expect("enter the lab");
        if scrape(&lab).sum(PCAP_STOPPED) == 1.0 {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the capture never reported the full disk");
    both_families_serve(&lab).expect("serving on after the capture stopped");
    let log = std::fs::read_to_string(lab.log()).expect("read the log");
    let warnings = log
        .lines()
        .filter(|l| l.contains("pcap write failed"))
        .count();
    assert_eq!(warnings, 1, "one warning, not one per packet");
    let size = std::fs::metadata(&file).expect("the capture file").len();
    assert!(size <= 32 << 10, "{size} bytes on a 32 KiB disk");
    drop(lab);
    drop(fs);
    Outcome::Passed
}

pub fn deleted_namespace_stops_the_daemon_with_its_reason() -> Outcome {
    let mut lab = lab();
    let ns = lab.netns().name().to_owned();
    let out = Command::new("ip")
        .args(["netns", "del", &ns])
        .status()
        .expect("run ip");
    assert!(out.success(), "ip netns del {ns}: {out}");
    let status = lab
        .daemon_mut()
        .wait_timeout(Duration::from_secs(3))
        .expect("wait for the daemon")
        .expect("the daemon still runs 3 s after its namespace was deleted");
    assert!(!status.success(), "exit status {status}");
    let log = std::fs::read_to_string(lab.log()).expect("read the log");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains(&ns) && last.contains("deleted"),
        "last log line should give the reason: {last:?}"
    );
    lab.down().expect("lab down");
    Outcome::Passed
}

pub fn mtu_changed_under_the_daemon_is_set_back() -> Outcome {
    let lab = lab();
    ip(&lab, &["link", "set", "smr0", "mtu", "1400"]);
    wait_for(Duration::from_secs(3), "the MTU to be set back", || {
        ip(&lab, &["link", "show", "dev", "smr0"]).contains("mtu 1500 ")
    });
    wait_for(Duration::from_secs(3), "mtu_restored to count", || {
        device_events(&lab, "mtu_restored") >= 1.0
    });
    assert!(device_events(&lab, "mtu_changed") >= 1.0);
    both_families_serve(&lab).expect("after the MTU change");
    Outcome::Passed
}
