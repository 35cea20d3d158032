//! `haechi`: the one binary. Subcommands parse their arguments here and hand off to the
//! library crates; errors become messages and exit codes only at this edge.

mod cli;
mod config;
mod demo;
mod etl;
mod guard;
mod server;
mod sweep;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
