//! The `cordon` binary: parse arguments, run, exit with the right code.

use std::process::ExitCode;

// Flow ingest allocates many small strings; mimalloc handles that load
// markedly faster than the system allocator (see bench/ingest.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cordon_cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cordon_cli::EXIT_FAILURE)
        }
    }
}
