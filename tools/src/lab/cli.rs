//! The `smrnet lab` subcommands.

use super::{
    DAEMON_V4, DAEMON_V6, DEFAULT_METRICS, HTTP_PORT, Lab, LabConfig, LabError, LabState,
    down_detached, interrupt, prometheus, run_dir,
};
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `smrnet lab`: a network namespace with `smrnetd` on a TUN device inside.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Create a namespace, start smrnetd in it, wait until it answers, print
    /// how to reach it. Needs root (namespaces and TUN need CAP_NET_ADMIN).
    Up(UpArgs),
    /// Run a command inside a lab's namespace, where the daemon's addresses
    /// (198.18.0.2, fd00:5eed::2) are reachable.
    Exec(ExecArgs),
    /// Stop a lab's daemon and remove its namespace and files.
    Down(DownArgs),
    /// List the labs recorded on this machine.
    List,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The smrnetd binary [default: next to this smrnet, else from PATH].
    #[arg(long, value_name = "PATH")]
    pub daemon: Option<PathBuf>,
    /// Packet worker threads for the daemon [default: the daemon's, one per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Metrics listener [default: 127.0.0.1:9464, or a free port if that is taken].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Seconds to wait for the daemon to answer before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub timeout: u64,
    /// Stay in the foreground and remove the lab on Ctrl-C or SIGTERM,
    /// instead of leaving it running for `smrnet lab down`.
    #[arg(long)]
    pub foreground: bool,
    /// Also start Debian's `prometheus` beside the lab (on 127.0.0.1:9090,
    /// or a free port if that is taken), scraping the daemon every 5 s and
    /// evaluating the alerting rules of ops/alerts.yml.
    #[arg(long)]
    pub prometheus: bool,
    /// More flags for smrnetd, after `--` (e.g. `-- --user nobody`).
    #[arg(last = true, value_name = "DAEMON_ARGS")]
    pub daemon_args: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The lab's id (or namespace name) [default: the only running lab].
    #[arg(long, value_name = "ID")]
    pub lab: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The lab's id (or namespace name) [default: the only running lab].
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    pub lab: Option<String>,
    /// Remove every recorded lab.
    #[arg(long)]
    pub all: bool,
}

impl LabCommand {
    pub fn run(&self) -> io::Result<()> {
        let result = match self {
            LabCommand::Up(args) => up(args),
            LabCommand::Exec(args) => exec(args),
            LabCommand::Down(args) => down(args),
            LabCommand::List => list(),
        };
        result.map_err(io::Error::other)
    }
}

fn up(args: &UpArgs) -> Result<(), LabError> {
    interrupt::install().map_err(|e| LabError::io("install signal handlers", e))?;
    let daemon = match &args.daemon {
        Some(p) => p.clone(),
        None => default_daemon(),
    };
    let mut cfg = LabConfig::new(daemon);
    cfg.workers = args.workers;
    cfg.extra_args = args.daemon_args.clone();
    cfg.ready_timeout = Duration::from_secs(args.timeout);
    cfg.log_dir = run_dir();
    std::fs::create_dir_all(&cfg.log_dir)
        .map_err(|e| LabError::io(format!("create {}", cfg.log_dir.display()), e))?;
    cfg.metrics = match args.metrics {
        Some(addr) => addr,
        None if std::net::TcpListener::bind(DEFAULT_METRICS).is_ok() => DEFAULT_METRICS,
        None => {
            let mut any = DEFAULT_METRICS;
            any.set_port(0);
            any
        }
    };
    let mut lab = Lab::up(&cfg)?;
    let prometheus = if args.prometheus {
        let preferred: SocketAddr = prometheus::DEFAULT_LISTEN.parse().expect("an address");
        let listen = if std::net::TcpListener::bind(preferred).is_ok() {
            preferred
        } else {
            super::free_port(preferred.ip())?
        };
        Some(lab.start_prometheus(listen, cfg.ready_timeout)?.listen())
    } else {
        None
    };
    let ns = lab.netns().name().to_string();
    let id = lab.id().to_string();
    let mut banner = format!(
        "lab {id} is up\n  namespace   {ns}\n  daemon      {DAEMON_V4} and {DAEMON_V6} (pid {})\n  \
         services    echo :7, discard :9, http :{HTTP_PORT}\n  metrics     {}\n  log         {}\n  \
         reach it    smrnet lab exec --lab {id} -- curl http://{DAEMON_V4}/\n",
        lab.pid(),
        lab.metrics_url(),
        lab.log().display()
    );
    if let Some(p) = prometheus {
        banner.push_str(&format!(
            "  prometheus  http://{p}/ (alerts: http://{p}/alerts)\n  \
             check it    promtool query instant http://{p} 'ALERTS'\n"
        ));
    }
    if args.foreground {
        banner.push_str("  stop it     Ctrl-C\n");
        say(&banner);
        while !interrupt::interrupted() {
            // Stop as well when the daemon dies by itself.
            if let Err(e) = lab.daemon_mut().check_running() {
                eprintln!("smrnet lab: {e}");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        lab.down()?;
        say(&format!("lab {id} removed\n"));
    } else {
        banner.push_str(&format!("  stop it     smrnet lab down --lab {id}\n"));
        // Detach first: a closed stdout (`smrnet lab up | head -1`) must not
        // take the new lab down with it; `smrnet lab list` still finds it.
        lab.detach()?;
        say(&banner);
    }
    Ok(())
}

/// Print to stdout; a reader that went away is not the lab's failure.
fn say(text: &str) {
    let _ = io::Write::write_all(&mut io::stdout().lock(), text.as_bytes());
}

/// `smrnetd` beside the running `smrnet` (a cargo target directory or an
/// install prefix), else whatever PATH finds.
pub fn default_daemon() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("smrnetd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("smrnetd"))
}

fn exec(args: &ExecArgs) -> Result<(), LabError> {
    let state = LabState::find(args.lab.as_deref())?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| LabError::State("no command given after --".into()))?;
    // Replaces this process, so the command's exit status is ours.
    let err = Command::new("ip")
        .args(["netns", "exec", &state.netns])
        .arg(program)
        .args(rest)
        .exec();
    Err(LabError::io(format!("ip netns exec {}", state.netns), err))
}

fn down(args: &DownArgs) -> Result<(), LabError> {
    let labs = if args.all {
        LabState::list()?
    } else {
        vec![LabState::find(args.lab.as_deref())?]
    };
    for state in &labs {
        down_detached(state)?;
        println!("lab {} removed (namespace {})", state.id, state.netns);
    }
    Ok(())
}

fn list() -> Result<(), LabError> {
    for s in LabState::list()? {
        println!(
            "{}  namespace {}  pid {}  metrics http://{}/metrics",
            s.id, s.netns, s.pid, s.metrics
        );
    }
    Ok(())
}
