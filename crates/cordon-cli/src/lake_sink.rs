//! `--lake` on `ingest` and `collect`: the continuous lake sink on a thread
//! of its own, with its own connection to the store, flushing what the
//! store committed every `--lake-flush` seconds and once more at the end.
//! Ingest never waits for it; a flush that fails (S3 unreachable) is
//! logged and tried again at the next one, and the last one's failure is
//! the command's.

use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cordon_store::SqliteStore;

use crate::EXIT_CONFIG;
use crate::args::{LakeSinkArgs, StoreArgs};

/// What the sink wrote over a run.
#[derive(Debug, Default)]
struct Totals {
    flushes: u64,
    rows: u64,
    files: u64,
}

/// A running sink.
pub struct LakeSink {
    lake: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<anyhow::Result<Totals>>,
}

impl LakeSink {
    /// Start the sink `args` ask for (`None` without `--lake`); a bad
    /// `--lake` is an exit code.
    pub fn start(args: &LakeSinkArgs, store: &StoreArgs) -> Result<Option<LakeSink>, ExitCode> {
        let Some(lake) = &args.lake else {
            return Ok(None);
        };
        let location = match crate::lake_cmd::location(lake, &args.s3, &args.partition.region) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --lake: {e}");
                return Err(ExitCode::from(EXIT_CONFIG));
            }
        };
        let options = crate::lake_cmd::writer_options(&location, &args.partition, "sink");
        let store_path = store.path();
        let every = Duration::from_secs(args.lake_flush.max(1));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::clone(&stop);
        let lake_name = lake.clone();
        let thread = std::thread::Builder::new()
            .name("lake-sink".to_string())
            .spawn(move || -> anyhow::Result<Totals> {
                let store = SqliteStore::open(&store_path)?;
                let mut totals = Totals::default();
                let (lock, wake) = &*stopped;
                loop {
                    let done = {
                        let guard = lock.lock().map_err(|_| anyhow::anyhow!("sink lock"))?;
                        let (guard, _) = wake
                            .wait_timeout_while(guard, every, |stop| !*stop)
                            .map_err(|_| anyhow::anyhow!("sink lock"))?;
                        *guard
                    };
                    match crate::lake_cmd::flush(&store, &location, &options) {
                        Ok(f) => {
                            totals.flushes += 1;
                            totals.rows += f.rows;
                            totals.files += f.files.len() as u64;
                            if f.rows > 0 {
                                tracing::info!(
                                    lake = %lake_name,
                                    flows = f.rows,
                                    files = f.files.len(),
                                    through_block = f.through,
                                    "lake flush"
                                );
                            }
                        }
                        // The last flush's failure is the command's.
                        Err(e) if done => return Err(e.into()),
                        Err(e) => {
                            tracing::warn!(lake = %lake_name, error = %e, "lake flush failed; trying again at the next");
                        }
                    }
                    if done {
                        return Ok(totals);
                    }
                }
            })
            .map_err(|e| {
                eprintln!("error: cannot start the lake sink: {e}");
                ExitCode::from(EXIT_CONFIG)
            })?;
        Ok(Some(LakeSink {
            lake: lake.clone(),
            stop,
            thread,
        }))
    }

    /// Flush once more and stop; the command's exit code becomes a failure
    /// when that flush fails.
    pub fn finish(self, code: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
        {
            let (lock, wake) = &*self.stop;
            if let Ok(mut stop) = lock.lock() {
                *stop = true;
            }
            wake.notify_all();
        }
        let result = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the lake sink thread failed"))
            .and_then(|r| r);
        match result {
            Ok(t) => {
                eprintln!(
                    "lake: {} flows in {} files written to {} ({} flushes)",
                    t.rows, t.files, self.lake, t.flushes
                );
                code
            }
            Err(e) => {
                eprintln!("error: lake `{}`: {e:#}", self.lake);
                match code {
                    Ok(c) if c == ExitCode::SUCCESS => Ok(ExitCode::FAILURE),
                    other => other,
                }
            }
        }
    }
}

/// Run `command` with the sink `args` ask for beside it.
pub fn beside(
    args: &LakeSinkArgs,
    store: &StoreArgs,
    command: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    match LakeSink::start(args, store) {
        Err(code) => Ok(code),
        Ok(None) => command(),
        Ok(Some(sink)) => sink.finish(command()),
    }
}
