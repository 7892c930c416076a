//! Load generators.

pub mod syn;

/// `smrnet load`.
#[derive(Debug, clap::Subcommand)]
pub enum LoadCommand {
    /// A SYN flood with spoofed sources into a lab, with a legitimate client
    /// measured without and during the flood (needs root: raw socket).
    Syn(syn::SynArgs),
}

impl LoadCommand {
    pub fn run(&self) -> std::io::Result<()> {
        match self {
            LoadCommand::Syn(args) => args.run(),
        }
    }
}
