//! Arguments of `cordon lake`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{RangeArgs, StoreArgs};

/// `cordon lake ...`
#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Write stored flows as OCSF Network Activity (4001) Parquet in Amazon
    /// Security Lake's custom-source layout.
    #[command(after_help = "Each UTC day becomes one file,
  DIR/ext/cordon-network-activity/region=R/accountId=A/eventDay=YYYYMMDD/cordon-4001-YYYYMMDD.zstd.parquet
with nested OCSF structs (src_endpoint.ip, traffic.bytes_out, unmapped.cordon.src_group),
rows sorted by time, zstd. --since/--until choose the days; each chosen day is written
whole and replaces its earlier file, so exporting again never duplicates. DIR/manifest.json
lists every file with its rows, bytes and SHA-256.

EXAMPLES:
  cordon lake export --out /data/lake
  cordon lake export --out /data/lake --since 7d --region eu-west-1 --account 111122223333
  duckdb -c \"SELECT unmapped.cordon.src_group, count(*) FROM read_parquet('/data/lake/ext/*/*/*/*/*.parquet', hive_partitioning=true) GROUP BY 1\"")]
    Export(LakeExportArgs),
}

/// `cordon lake export`
#[derive(Debug, Args)]
pub struct LakeExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// The lake's root folder (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The `region=` partition.
    #[arg(long, default_value = "local")]
    pub region: String,
    /// The `accountId=` partition.
    #[arg(long, default_value = "000000000000")]
    pub account: String,
    /// Print the files written as JSON.
    #[arg(long)]
    pub json: bool,
}
