//! The one way the `cordon` binary writes data: whole lines to standard
//! output, through one buffer; progress and diagnostics go to standard
//! error. A reader that closes the pipe early (`cordon flows query | head`)
//! ends the command quietly with exit 0, like any Unix tool.
//!
//! Lines are flushed one by one (daemons report as they go), unless a
//! command that lists many asks for [`bulk`] output, which flushes whole
//! lines when the buffer fills and at the end.

use std::fmt::Write as _;
use std::io::{BufWriter, Stdout, Write};
use std::sync::{Mutex, MutexGuard, OnceLock};

struct Out {
    writer: BufWriter<Stdout>,
    bulk: bool,
    line: String,
}

fn out() -> MutexGuard<'static, Out> {
    static OUT: OnceLock<Mutex<Out>> = OnceLock::new();
    let cell = OUT.get_or_init(|| {
        Mutex::new(Out {
            writer: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            bulk: false,
            line: String::new(),
        })
    });
    // A panic while printing leaves nothing worth protecting.
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write `args` (and a newline when `newline`) to standard output.
///
/// # Errors
/// The write failed; a closed pipe is told apart by [`is_closed_pipe`].
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) -> std::io::Result<()> {
    let mut o = out();
    let Out { writer, bulk, line } = &mut *o;
    line.clear();
    // Writing into a String cannot fail.
    let _ = line.write_fmt(args);
    if newline {
        line.push('\n');
    }
    // One write per line: the buffer only ever holds whole lines.
    writer.write_all(line.as_bytes())?;
    if !*bulk && newline {
        writer.flush()?;
    }
    Ok(())
}

/// Buffer lines until the buffer fills or the command ends (listings).
pub fn bulk() {
    out().bulk = true;
}

/// Write out what is buffered.
///
/// # Errors
/// The write failed.
pub fn flush() -> std::io::Result<()> {
    out().writer.flush()
}

/// Whether `error` is standard output's reader having gone away.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` through the output layer; returns early with the error.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!(""), true)? };
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), true)? };
}

/// `print!` through the output layer; returns early with the error.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*), false)? };
}
