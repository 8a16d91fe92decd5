//! Arguments of `cordon lake`.

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
  cordon lake export --out s3://acme-security-lake/cordon --region eu-west-1 --account 111122223333
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
    /// The lake's root: a folder (created) or `s3://BUCKET/PREFIX`
    /// (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
    /// ~/.aws/credentials).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub out: String,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub partition: PartitionArgs,
    /// Print the files written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to reach a lake on S3.
#[derive(Debug, Args, Clone, Default)]
pub struct S3Args {
    /// An S3-compatible endpoint (MinIO, moto, a VPC endpoint), addressed
    /// path-style [default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 signing region [default: $AWS_REGION, $AWS_DEFAULT_REGION,
    /// else --region unless it is `local`, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// The profile of ~/.aws/credentials to use.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// The partition a lake's files are written under.
#[derive(Debug, Args, Clone)]
pub struct PartitionArgs {
    /// The `region=` partition.
    #[arg(long, default_value = "local")]
    pub region: String,
    /// The `accountId=` partition.
    #[arg(long, default_value = "000000000000")]
    pub account: String,
}

/// A continuous lake sink on `ingest` and `collect`.
#[derive(Debug, Args, Clone)]
pub struct LakeSinkArgs {
    /// Also write every stored flow to this lake (a folder or
    /// `s3://BUCKET/PREFIX`) as OCSF 4001 Parquet, a file per day and
    /// flush; `cordon lake export` later compacts a day into one file.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub lake: Option<String>,
    /// Seconds between the sink's flushes while collecting.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "lake")]
    pub lake_flush: u64,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub partition: PartitionArgs,
}
