//! `smrnetd`: parses the configuration and hands it to `smrnetd::run`.
//! A bad flag or value is one line on stderr and exit status 2.

use smrnetd::config::{Args, EXIT_USAGE, LoadError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cfg = match Args::load(std::env::args_os()) {
        Ok(cfg) => cfg,
        Err(LoadError::Usage(e)) => smrnetd::usage::exit("smrnetd", e),
        Err(LoadError::Config(e)) => {
            eprintln!("smrnetd: {e}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    match smrnetd::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smrnetd: {e}");
            ExitCode::FAILURE
        }
    }
}
