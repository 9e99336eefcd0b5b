//! `unseen`: private machine-learning inference on encrypted data. The command-line tool as a
//! library, so that other front ends (the Python package's `python -m unseen`) run the very
//! same commands.

mod bench;
mod cli;
mod cnn_cmd;
mod demo;
mod encrypted;
mod image_cmd;
mod load;
mod paillier_cmd;
mod samples;

use clap::Parser;

/// A clap usage error as one line: its first line, and when that line introduces a list (the
/// missing arguments), the list's items after it.
fn usage_line(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .trim_end();
    if !first.ends_with(':') {
        return first.to_string();
    }
    let items: Vec<&str> = lines
        .take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    format!("{first} {}", items.join(", "))
}

/// Runs the command line `args` (the program name first, as in `std::env::args_os`); returns
/// the exit status: 0 on success, 1 when the command failed (one line on stderr), 2 for a usage
/// error.
pub fn run_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match cli::Cli::try_parse_from(args) {
        Ok(a) => a,
        // Help and version go to stdout as clap prints them; a usage error is one line.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{} (see --help)", usage_line(&e.to_string()));
            return 2;
        }
    };
    let filter = if args.verbose { "info" } else { "warn" };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr);
    // (a second run in the same process keeps the first one's logger)
    let _ = if args.log_format == "json" {
        logs.json().try_init()
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    if let Some(ca) = &args.ca {
        // read by the client's HTTPS agent; set before any thread starts
        std::env::set_var(unseen_client::CA_ENV, ca);
    }
    match cli::run(args) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            1
        }
    }
}
