//! `smrnetd`: parses the configuration and hands it to `tools::daemon::run`.
//! A bad flag or value is one line on stderr and exit status 2.

use std::process::ExitCode;
use tools::daemon::config::{Args, EXIT_USAGE, LoadError};

fn main() -> ExitCode {
    let cfg = match Args::load(std::env::args_os()) {
        Ok(cfg) => cfg,
        Err(LoadError::Usage(e)) => tools::usage::exit("smrnetd", e),
        Err(LoadError::Config(e)) => {
            eprintln!("smrnetd: {e}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    match tools::daemon::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smrnetd: {e}");
            ExitCode::FAILURE
        }
    }
}
