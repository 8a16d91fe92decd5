//! The `cordon` binary: parse arguments, run, exit with the right code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match cordon_cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cordon_cli::EXIT_FAILURE)
        }
    }
}
