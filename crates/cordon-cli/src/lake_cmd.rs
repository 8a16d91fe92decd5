//! `cordon lake ...`

use std::io::IsTerminal as _;
use std::process::ExitCode;

use cordon_lake::{ExportOptions, export_flows};
use serde_json::json;

use crate::args::{LakeCommand, LakeExportArgs};
use crate::common::{existing_store, range, usage};
use crate::{EXIT_CONFIG, outln};

/// `cordon lake`
pub fn run(cmd: LakeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LakeCommand::Export(args) => export(&args),
    }
}

fn export(args: &LakeExportArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let store = existing_store(&args.store)?;
    let options = ExportOptions {
        out: args.out.clone(),
        region: args.region.clone(),
        account: args.account.clone(),
        since_ms,
        until_ms,
    };
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |rows: u64| {
        if terminal {
            eprint!("\r{rows} flows written");
        }
    };
    let summary = match export_flows(&store, &options, &mut progress) {
        Ok(s) => s,
        Err(cordon_lake::LakeError::Options(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
        Err(e) => return Err(e.into()),
    };
    if terminal {
        eprintln!();
    }
    let took = started.elapsed().as_secs_f64();
    if args.json {
        outln!(
            "{}",
            json!({"rows": summary.rows, "bytes": summary.bytes, "seconds": took, "files": summary.files})
        );
    } else {
        outln!(
            "{} flows in {} files ({} bytes) under {} in {:.1} s ({:.0} flows/s)",
            summary.rows,
            summary.files.len(),
            summary.bytes,
            args.out.display(),
            took,
            summary.rows as f64 / took.max(1e-9)
        );
        for f in &summary.files {
            outln!("  {} ({} rows, {} bytes)", f.path, f.rows, f.bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}
