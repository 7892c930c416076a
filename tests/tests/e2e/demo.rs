//! `smrnet demo --quick`: runs to the end, leaves its folder, removes its lab.

use crate::names as metric;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use tests::{Outcome, smrnet_binary};

pub fn demo_quick_writes_its_folder_and_leaves_no_namespace() -> Outcome {
    let out = std::env::temp_dir().join(format!("smrnet-e2e-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let t0 = Instant::now();
    let run = Command::new(smrnet_binary())
        .args(["demo", "--quick", "--out"])
        .arg(&out)
        .output()
        .expect("run smrnet demo");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "smrnet demo --quick: {}\n{stdout}{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        t0.elapsed().as_secs() < 60,
        "--quick took {:?}",
        t0.elapsed()
    );
    for file in ["report.md", "report.json", "metrics.prom", "daemon.log"] {
        let p: PathBuf = out.join(file);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len();
        assert!(len > 0, "{} is empty", p.display());
    }
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for section in [
        "## Connection churn",
        "## Hold",
        "## SYN flood",
        "## Safe memory",
    ] {
        assert!(md.contains(section), "report.md lacks {section}:\n{md}");
    }
    assert_eq!(
        stdout.lines().next(),
        md.lines().next(),
        "prints the report"
    );
    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    assert!(json.contains("\"under_flood\"") && json.contains("\"rss_per_conn_bytes\""));
    let prom = std::fs::read_to_string(out.join("metrics.prom")).expect("metrics.prom");
    assert!(prom.contains(metric::SYNCOOKIES_SENT));
    // The lab it named is gone.
    let id = md
        .lines()
        .next()
        .and_then(|l| l.split("(lab ").nth(1))
        .map(|s| s.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("report.md names no lab:\n{md}"));
    let netns = format!("smrnet-lab-{id}");
    assert!(
        !PathBuf::from("/run/netns").join(&netns).exists(),
        "{netns} was left behind"
    );
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&netns),
        "`ip netns list` still shows {netns}"
    );
    let _ = std::fs::remove_dir_all(&out);
    Outcome::Passed
}
