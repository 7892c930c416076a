//! A detached lab's record: one JSON file per lab in the run directory, so
//! `lab exec` and `lab down` (later, from another shell) find the namespace
//! and the daemon's pid.

use super::LabError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub id: String,
    pub netns: String,
    pub device: String,
    pub pid: u32,
    pub daemon_addrs: Vec<IpAddr>,
    pub metrics: SocketAddr,
    pub log: PathBuf,
    /// The lab's Prometheus server (`lab up --prometheus`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<super::PrometheusState>,
}

/// `$SMRNET_RUN_DIR`, else `/run/smrnet`, else `$XDG_RUNTIME_DIR/smrnet`.
pub fn run_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SMRNET_RUN_DIR") {
        return PathBuf::from(dir);
    }
    let run = PathBuf::from("/run/smrnet");
    if std::fs::create_dir_all(&run).is_ok() {
        return run;
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(xdg) => PathBuf::from(xdg).join("smrnet"),
        None => run,
    }
}

fn path(id: &str) -> PathBuf {
    run_dir().join(format!("lab-{id}.json"))
}

impl LabState {
    pub fn save(&self) -> Result<PathBuf, LabError> {
        let dir = run_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let p = path(&self.id);
        let json = serde_json::to_string_pretty(self).expect("LabState serialises");
        std::fs::write(&p, json).map_err(|e| LabError::io(format!("write {}", p.display()), e))?;
        Ok(p)
    }

    pub fn remove(&self) -> Result<(), LabError> {
        let p = path(&self.id);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LabError::io(format!("remove {}", p.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// Every recorded lab, oldest file name first.
    pub fn list() -> Result<Vec<LabState>, LabError> {
        let dir = run_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LabError::io(format!("read {}", dir.display()), e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("lab-") && n.ends_with(".json"))
            })
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| LabError::io(format!("read {}", p.display()), e))?;
                serde_json::from_str(&text)
                    .map_err(|e| LabError::State(format!("{}: {e}", p.display())))
            })
            .collect()
    }

    /// The lab named `id`, or the only lab there is.
    pub fn find(id: Option<&str>) -> Result<LabState, LabError> {
        let labs = LabState::list()?;
        match id {
            Some(id) => {
                let id = id.strip_prefix(super::NETNS_PREFIX).unwrap_or(id);
                labs.into_iter().find(|l| l.id == id).ok_or_else(|| {
                    LabError::State(format!("no lab {id} recorded in {}", run_dir().display()))
                })
            }
            None => match labs.len() {
                0 => Err(LabError::State(format!(
                    "no lab is running (nothing recorded in {}); start one with `smrnet lab up`",
                    run_dir().display()
                ))),
                1 => Ok(labs.into_iter().next().expect("one lab")),
                _ => Err(LabError::State(format!(
                    "{} labs are running ({}); choose one with --lab ID",
                    labs.len(),
                    labs.iter()
                        .map(|l| l.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            },
        }
    }
}
