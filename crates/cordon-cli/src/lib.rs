//! The `cordon` command line: arguments, output and exit codes, with the
//! work done by Cordon's libraries. One module per command; what several
//! commands share is in `common`, and every byte of data goes through
//! `output`.
//!
//! Exit codes (DESIGN §5): 0 ok; 1 findings when asked to fail on them; 2
//! usage errors; 64 invalid configuration or policy; 70 internal errors.

mod agent_cmd;
mod args;
mod audit_cmd;
mod bundle_cmd;
mod collect_cmd;
mod common;
mod demo;
mod detect_cmd;
mod flows_cmd;
mod gateway_cmd;
mod incidents_cmd;
mod ingest_cmd;
mod ingest_follow;
mod intel_cmd;
mod lab_cmd;
mod lake_cmd;
mod lake_sink;
pub mod output;
mod policy_cmd;
mod report_cmd;
mod respond_cmd;
mod serve_cmd;
mod simulate_cmd;
mod vendors_cmd;

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

/// Send the libraries' `tracing` events to standard error, filtered by
/// `CORDON_LOG` (default `info`), as human lines or JSON objects.
fn logs(format: args::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CORDON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (tests calling `run` twice) is not an error.
    let _ = match format {
        args::LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .with_target(false)
            .try_init(),
        args::LogFormat::Json => builder.json().try_init(),
    };
}

/// Parse the command line and run it.
///
/// # Errors
/// Anything that stopped the command; the caller prints it (or, for a
/// closed standard output, ends quietly: see [`output::is_closed_pipe`]).
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    logs(cli.log_format);
    let code = match cli.command {
        args::Command::Policy(cmd) => policy_cmd::run(cmd),
        args::Command::Demo(cmd) => demo::run(&cmd),
        args::Command::Ingest(cmd) => {
            lake_sink::beside(&cmd.lake, &cmd.store, || ingest_cmd::run(&cmd))
        }
        args::Command::Collect(cmd) => {
            lake_sink::beside(&cmd.lake, &cmd.store, || collect_cmd::run(&cmd))
        }
        args::Command::Flows(cmd) => flows_cmd::run(cmd),
        args::Command::Audit(cmd) => audit_cmd::run(cmd),
        args::Command::Detect(cmd) => detect_cmd::run(&cmd),
        args::Command::Agent(cmd) => agent_cmd::run(&cmd),
        args::Command::Gateway(cmd) => gateway_cmd::gateway(&cmd),
        args::Command::Lab(cmd) => lab_cmd::run(&cmd),
        args::Command::Simulate(cmd) => simulate_cmd::run(&cmd),
        args::Command::Incidents(cmd) => incidents_cmd::run(cmd),
        args::Command::Report(cmd) => report_cmd::run(&cmd),
        args::Command::Vendors(cmd) => vendors_cmd::run(&cmd),
        args::Command::Serve(cmd) => serve_cmd::run(&cmd),
        args::Command::Respond(cmd) => respond_cmd::run(cmd),
        args::Command::Intel(cmd) => intel_cmd::run(cmd),
        args::Command::Lake(cmd) => lake_cmd::run(cmd),
    }?;
    output::flush()?;
    Ok(code)
}
