//! Hold many connections open (in progress).

use super::cli::HoldArgs;
use std::io;

/// `smrnet load hold`.
pub fn run_cli(_args: &HoldArgs) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "smrnet load hold is not built yet",
    ))
}
