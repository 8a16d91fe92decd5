//! The `cordon` binary: parse arguments, run, exit with the right code.

use std::process::ExitCode;

// Flow ingest allocates many small strings; mimalloc handles that load
// markedly faster than the system allocator (see bench/ingest.sh). It is
// built without transparent huge pages (`no_thp`): with them, a fresh 2 MiB
// page is zeroed at the first touch of a sparse arena, and the agent's
// compile of a large policy took 0.5-0.6 s in one run out of three instead
// of 0.25 s; ingest is no slower without them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cordon_cli::run() {
        Ok(code) => code,
        // The reader of standard output went away (`| head`): done.
        Err(error) if cordon_cli::output::is_closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cordon_cli::EXIT_FAILURE)
        }
    }
}
