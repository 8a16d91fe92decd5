//! `cordon lake ...`

use std::io::IsTerminal as _;
use std::process::ExitCode;

use cordon_lake::{ExportOptions, export_flows};

use serde_json::json;

use crate::args::{LakeCommand, LakeExportArgs, PartitionArgs, S3Args};
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
    let location = match location(&args.out, &args.s3, &args.partition.region) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let store = existing_store(&args.store)?;
    let options = ExportOptions {
        since_ms,
        until_ms,
        ..writer_options(&location, &args.partition, "export")
    };
    let out = options.out.clone();
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |rows: u64| {
        if terminal {
            eprint!("\r{rows} flows written");
        }
    };
    // A sink flushing into the same folder waits for the export to end.
    let lock = cordon_lake::manifest::lock(&out)?;
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
    // Findings and incidents are few: every export writes them whole.
    let (findings, incidents) = documents(&store)?;
    let mut summary = summary;
    let documents_written = cordon_lake::export_findings(&options, findings, incidents)?;
    summary.bytes += documents_written.iter().map(|f| f.bytes).sum::<u64>();
    summary.files.extend(documents_written);
    let published = cordon_lake::manifest::publish(&location, &out, &summary.edit());
    drop(lock);
    done_writing(&location, &options);
    published?;
    let took = started.elapsed().as_secs_f64();
    if args.json {
        outln!(
            "{}",
            json!({"rows": summary.rows, "bytes": summary.bytes, "seconds": took, "files": summary.files})
        );
    } else {
        outln!(
            "{} flows, findings and incidents in {} files ({} bytes) under {} in {:.1} s ({:.0} flows/s)",
            summary.rows,
            summary.files.len(),
            summary.bytes,
            args.out,
            took,
            summary.rows as f64 / took.max(1e-9)
        );
        for f in &summary.files {
            outln!("  {} ({} rows, {} bytes)", f.path, f.rows, f.bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The options of a writer (`what`: `export`, `sink`, `prune`) of the lake
/// at `location`: its files go to the lake's folder, or, for S3, to a
/// staging folder of the writer's own, put from there and then removed
/// ([`done_writing`]).
pub fn writer_options(
    location: &cordon_lake::Location,
    partition: &PartitionArgs,
    what: &str,
) -> ExportOptions {
    let out = match location {
        cordon_lake::Location::Dir(dir) => dir.clone(),
        cordon_lake::Location::S3(_) => {
            std::env::temp_dir().join(format!("cordon-lake-{what}-{}", std::process::id()))
        }
    };
    ExportOptions {
        region: partition.region.clone(),
        account: partition.account.clone(),
        ..ExportOptions::new(out)
    }
}

/// Remove an S3 writer's staging folder once its files are put.
pub fn done_writing(location: &cordon_lake::Location, options: &ExportOptions) {
    if matches!(location, cordon_lake::Location::S3(_)) {
        let _ = std::fs::remove_dir_all(&options.out);
    }
}

/// One flush of the continuous sink into `location`, staging removed.
///
/// # Errors
/// As [`cordon_lake::sink::flush`].
pub fn flush(
    store: &cordon_store::SqliteStore,
    location: &cordon_lake::Location,
    options: &ExportOptions,
) -> Result<cordon_lake::sink::Flushed, cordon_lake::LakeError> {
    let flushed = cordon_lake::sink::flush(store, location, options);
    done_writing(location, options);
    flushed
}

/// The lake `text` names: `s3://BUCKET/PREFIX` (reached as `s3` says,
/// signing for `region` when nothing else names a region) or a folder.
pub fn location(text: &str, s3: &S3Args, region: &str) -> Result<cordon_lake::Location, String> {
    let Some(parsed) = cordon_lake::s3::parse_s3_url(text) else {
        return Ok(cordon_lake::Location::Dir(text.into()));
    };
    let (bucket, prefix) = parsed?;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoint = s3
        .s3_endpoint
        .clone()
        .or_else(|| var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .map(|e| url::Url::parse(&e).map_err(|err| format!("--s3-endpoint `{e}`: {err}")))
        .transpose()?;
    let region = s3
        .s3_region
        .clone()
        .or_else(|| var("AWS_REGION"))
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| (region != "local").then(|| region.to_string()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let credentials = cordon_lake::s3::Credentials::from_environment(s3.profile.as_deref())?;
    Ok(cordon_lake::Location::S3(Box::new(
        cordon_lake::s3::S3Target {
            bucket,
            prefix,
            region,
            endpoint,
            credentials,
        },
    )))
}

/// The stored findings and incidents as OCSF documents (2004, 2005).
fn documents(
    store: &cordon_store::SqliteStore,
) -> anyhow::Result<(Vec<serde_json::Value>, Vec<serde_json::Value>)> {
    use cordon_store::prelude::*;
    let kb = cordon_detect::kb::Kb::embedded()?;
    let findings = store.findings(None)?;
    let incidents = store.incidents(None)?;
    let finding_docs = findings
        .iter()
        .map(|f| cordon_detect::ocsf::detection_finding(f, &kb))
        .collect();
    let incident_docs = incidents
        .iter()
        .map(|i| {
            let own: Vec<cordon_detect::Finding> = findings
                .iter()
                .filter(|f| i.holds(&f.id))
                .cloned()
                .collect();
            cordon_incident::export::incident_finding(i, &own, &kb)
        })
        .collect();
    Ok((finding_docs, incident_docs))
}
