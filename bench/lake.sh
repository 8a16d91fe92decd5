#!/usr/bin/env bash
# The flow lake, side by side in one run over the same store:
#   - Cordon: `cordon lake export` (store scan → OCSF 4001 Parquet, zstd,
#     Security Lake layout): flows/s and bytes
#   - the same flows as OCSF JSON lines (`cordon flows query --output
#     ocsf`, counted, not kept): flows/s and bytes
#   - the SQLite store's own size
#   - DuckDB reading the lake back (count and byte sum), when installed
#   - DuckDB, pyarrow and pyspark (those installed) each checked to count
#     the same flows and bytes per group pair as `cordon flows topology`
#     on the store, and to find flows by src_endpoint.ip
# Usage: bench/lake.sh [RECORDS]   (default 10000000; the store is made
# once with `cordon ingest --policy examples/acme-prod.yaml` of synthetic
# AWS VPC Flow Logs and reused). Data goes to $BENCH_DIR (default
# /tmp/cordon-bench). Targets: at least 500,000 flows/s and at least 10×
# smaller than JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
dir=${BENCH_DIR:-/tmp/cordon-bench}
mkdir -p "$dir"
source bench/cordon-bin.sh
aws="$dir/aws-$n.log"
store="$dir/lake-store-$n"
lake="$dir/lake-$n"
bash bench/gen-aws.sh "$n" "$aws"
if [ ! -s "$store/flows.sqlite" ]; then
  echo "storing $n flows..." >&2
  "$cordon" ingest --store "$store" --policy examples/acme-prod.yaml "$aws" > /dev/null
fi
rm -rf "$lake"

secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
now() { date +%s.%N; }

t0=$(now)
"$cordon" lake export --store "$store" --out "$lake" --json > "$dir/lake-export.json"
t1=$(now)
rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$dir/lake-export.json")
parquet_bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$dir/lake-export.json")

t2=$(now)
json_bytes=$("$cordon" flows query --store "$store" --output ocsf --limit "$n" | wc -c)
t3=$(now)
store_bytes=$(du -sb "$store" | cut -f1)

duck=""
if python3 -c 'import duckdb' 2>/dev/null; then
  t4=$(now)
  duck=$(python3 - "$lake" <<'PY'
import duckdb, sys
scan = f"read_parquet('{sys.argv[1]}/ext/*/*/*/*/*.parquet', hive_partitioning=true)"
print(duckdb.sql(f"SELECT count(*), sum(traffic.bytes_out) FROM {scan}").fetchall()[0])
PY
)
  t5=$(now)
fi

python3 - "$rows" "$t0" "$t1" "$t2" "$t3" "$parquet_bytes" "$json_bytes" "$store_bytes" "${t4:-0}" "${t5:-0}" "$duck" <<'PY'
import sys
rows, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:6])
parquet, json_bytes, store = map(int, sys.argv[6:9])
t4, t5, duck = float(sys.argv[9]), float(sys.argv[10]), sys.argv[11]
export_rate = rows / (t1 - t0)
json_rate = rows / (t3 - t2)
print(f"| step ({rows:,} flows) | flows/s | bytes | bytes/flow |")
print("|---|---|---|---|")
print(f"| cordon lake export (OCSF 4001 Parquet, zstd) | {export_rate:,.0f} | {parquet:,} | {parquet / rows:.1f} |")
print(f"| cordon flows query --output ocsf (JSON lines) | {json_rate:,.0f} | {json_bytes:,} | {json_bytes / rows:.1f} |")
print(f"| the SQLite store (flows, rollups, indexes) | – | {store:,} | {store / rows:.1f} |")
if duck:
    print(f"| duckdb read_parquet count + sum over the lake | {rows / (t5 - t4):,.0f} | {duck} | |")
print()
print(f"export {export_rate / json_rate:.1f}× the JSON rate; Parquet {json_bytes / parquet:.1f}× smaller than JSON lines, {store / parquet:.1f}× smaller than the store")
print(f"targets: ≥500,000 flows/s: {'met' if export_rate >= 500_000 else 'NOT met'}; ≥10× smaller than JSON: {'met' if json_bytes >= 10 * parquet else 'NOT met'}")
PY

"$cordon" flows topology --store "$store" --output json > "$dir/lake-topology.json"
for engine in duckdb pyarrow pyspark; do
  if python3 -c "import $engine" 2>/dev/null; then
    python3 crates/cordon-cli/tests/lake/check.py "$engine" "$lake" "$dir/lake-topology.json" 10.0.0.1 \
      || echo "$engine: MISMATCH"
  fi
done
