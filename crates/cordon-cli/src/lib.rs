//! The `cordon` command line: argument parsing and output, with the work done
//! by Cordon's libraries.
//!
//! Exit codes (DESIGN §5): 0 ok; 1 findings when asked to fail on them; 2
//! usage errors; 64 invalid configuration or policy; 70 internal errors.

mod agent_cmd;
mod args;
mod demo;
mod detect_cmd;
mod flows_cmd;
mod gateway_cmd;
mod ingest_cmd;
mod policy_cmd;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Exit code for findings when `--fail-on` asked for it.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for usage errors (also what clap uses).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for invalid configuration or policy.
pub const EXIT_CONFIG: u8 = 64;
/// Exit code for anything else that went wrong.
pub const EXIT_FAILURE: u8 = 70;

/// Parse the command line and run it.
///
/// # Errors
/// Anything that stopped the command; the caller prints it.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        args::Command::Policy(cmd) => policy_cmd::run(cmd),
        args::Command::Demo(cmd) => demo::run(&cmd),
        args::Command::Ingest(cmd) => ingest_cmd::ingest(&cmd),
        args::Command::Collect(cmd) => ingest_cmd::collect(&cmd),
        args::Command::Flows(cmd) => flows_cmd::run(cmd),
        args::Command::Detect(cmd) => detect_cmd::detect(&cmd),
        args::Command::Agent(cmd) => agent_cmd::agent(&cmd),
        args::Command::Gateway(cmd) => gateway_cmd::gateway(&cmd),
        args::Command::Lab(cmd) => agent_cmd::lab(&cmd),
        args::Command::Simulate(cmd) => detect_cmd::simulate(&cmd),
    }
}
