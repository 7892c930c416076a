//! Command-line errors as a person reads them: the first line names the
//! cause (`smrnet: invalid value 'x' for '--workers <N>'`), a second line at
//! most gives the usage and clap's tip, and the exit status is 2. Clap's own
//! rendering puts an `error:` label first and spreads the rest over up to
//! six lines; this keeps its words and changes only their layout.

/// The exit status of every command-line error (as clap and getopt use).
pub const EXIT_USAGE: u8 = 2;

/// Whether `e` is a request for help or the version (clap prints those
/// itself, to stdout, with status 0) rather than an error.
pub fn is_help(e: &clap::Error) -> bool {
    matches!(
        e.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    )
}

/// `e` as at most two lines, each without a trailing newline: the cause,
/// then the usage (with clap's tip, if any) when clap gave one.
pub fn describe(program: &str, e: &clap::Error) -> Vec<String> {
    let text = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // Clap rendered the whole help: name what is missing and the
        // choices instead.
        let commands: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.ends_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        let mut lines = vec![format!(
            "{program}: a subcommand is missing: one of {}",
            commands.join(", ")
        )];
        if let Some(usage) = text.lines().find_map(|l| l.strip_prefix("Usage: ")) {
            lines.push(format!("usage: {usage}; more with --help"));
        }
        return lines;
    }
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut cause = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let mut tips = Vec::new();
    let mut usage = None;
    for l in lines {
        let t = l.trim();
        if let Some(tip) = t.strip_prefix("tip: ") {
            tips.push(tip.to_owned());
        } else if let Some(u) = t.strip_prefix("Usage: ") {
            usage = Some(u.to_owned());
        } else if t.is_empty() || t.starts_with("For more information") {
        } else if l.starts_with("  ") {
            // The continuation of the cause ("were not provided:\n  <CMD>").
            cause.push_str(if cause.ends_with(':') { " " } else { ", " });
            cause.push_str(t);
        }
    }
    let mut out = vec![format!("{program}: {cause}")];
    let mut second: Vec<String> = usage.map(|u| format!("usage: {u}")).into_iter().collect();
    second.extend(tips.into_iter().map(|t| format!("tip: {t}")));
    second.push("more with --help".to_owned());
    out.push(second.join("; "));
    out
}

/// Print `e` as [`describe`] does, or clap's help/version, and exit: 0 for
/// help and version, [`EXIT_USAGE`] otherwise.
pub fn exit(program: &str, e: clap::Error) -> ! {
    if is_help(&e) {
        e.exit();
    }
    for line in describe(program, &e) {
        eprintln!("{line}");
    }
    std::process::exit(i32::from(EXIT_USAGE));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(name = "demo")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        /// Start it.
        Up {
            #[arg(long)]
            workers: Option<usize>,
        },
        /// Run something.
        Exec {
            #[arg(last = true, required = true)]
            cmd: Vec<String>,
        },
    }

    fn lines(args: &[&str]) -> Vec<String> {
        let e = Cli::try_parse_from(args).expect_err("a usage error");
        describe("demo", &e)
    }

    #[test]
    fn a_bad_value_names_the_flag_first_and_usage_second() {
        let l = lines(&["demo", "up", "--workers", "two"]);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(
            l[0].starts_with("demo: invalid value 'two' for '--workers"),
            "{l:?}"
        );
        assert!(l[1].contains("more with --help"), "{l:?}");
    }

    #[test]
    fn an_unknown_flag_keeps_clap_s_tip_on_the_second_line() {
        let l = lines(&["demo", "exec", "--bogus"]);
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0], "demo: unexpected argument '--bogus' found");
        assert!(
            l[1].starts_with("usage: demo exec") && l[1].contains("tip: "),
            "{l:?}"
        );
    }

    #[test]
    fn a_missing_argument_is_named_on_the_first_line() {
        let l = lines(&["demo", "exec"]);
        assert!(
            l[0].starts_with("demo: the following required arguments were not provided: <CMD>"),
            "{l:?}"
        );
        assert!(l.len() <= 2, "{l:?}");
    }

    #[test]
    fn a_missing_subcommand_lists_the_choices_on_one_line() {
        let l = lines(&["demo"]);
        assert_eq!(l[0], "demo: a subcommand is missing: one of up, exec");
        assert!(l.len() <= 2, "{l:?}");
    }

    #[test]
    fn help_is_not_an_error() {
        let e = Cli::try_parse_from(["demo", "--help"]).unwrap_err();
        assert!(is_help(&e));
    }
}
