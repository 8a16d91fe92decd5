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
#   - query back: the same three queries (an address nobody talked to, one
#     source over everything, a ten-minute window) answered by the store
#     and by `flows query --lake` alone, with how much of the lake each read
#   - the continuous sink: `ingest --lake` against a plain `ingest` of the
#     same records into fresh stores
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

# Query back: the store against the lake alone (no store), same queries.
echo
echo "| query (${n} flows) | store s | lake s | flows | lake row groups read | lake rows decoded |"
echo "|---|---|---|---|---|---|"
first=$(python3 -c 'import json,sys; print(min(f["first_ms"] for f in json.load(open(sys.argv[1]))["files"] if f["class_uid"] == 4001) // 1000)' "$dir/lake-export.json")
for q in "--addr 203.0.113.66" "--src 10.0.3.7" "--since $((first + 3600)) --until $((first + 4200))"; do
  # shellcheck disable=SC2086
  t6=$(now); a=$("$cordon" flows query --store "$store" $q --limit "$n" --json | wc -l); t7=$(now)
  # shellcheck disable=SC2086
  b=$("$cordon" flows query --store "$dir/no-store" --lake "$lake" $q --limit "$n" --json --log-format json 2> "$dir/lake-read.log" | wc -l); t8=$(now)
  python3 - "$q" "$t6" "$t7" "$t8" "$a" "$b" "$dir/lake-read.log" <<'PY'
import json, sys
q, t6, t7, t8, a, b, log = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
read = next(json.loads(l)["fields"] for l in open(log) if '"read the lake"' in l)
same = "" if a == b else f" MISMATCH (store {a})"
print(f"| `{q}` | {t7 - t6:.2f} | {t8 - t7:.2f} | {b:,}{same} | {read['row_groups_read']}/{read['row_groups']} | {read['rows_read']:,} |")
PY
done

# The continuous sink's cost: the same records into two fresh stores, one
# with --lake beside it.
rm -rf "$dir/sink-store-a" "$dir/sink-store-b" "$dir/sink-lake"
t9=$(now)
"$cordon" ingest --store "$dir/sink-store-a" --policy examples/acme-prod.yaml "$aws" > /dev/null
t10=$(now)
"$cordon" ingest --store "$dir/sink-store-b" --policy examples/acme-prod.yaml --lake "$dir/sink-lake" "$aws" > /dev/null 2>&1
t11=$(now)
python3 - "$n" "$t9" "$t10" "$t11" "$dir/sink-lake/manifest.json" <<'PY'
import json, sys
n, t9, t10, t11 = int(sys.argv[1]), *map(float, sys.argv[2:5])
m = json.load(open(sys.argv[5]))
rows = sum(f["rows"] for f in m["files"] if f["class_uid"] == 4001)
print()
print(f"ingest {n:,} records: {t10 - t9:.1f} s; with --lake {t11 - t10:.1f} s ({(t11 - t10) / (t10 - t9):.2f}×), {rows:,} flows in the lake{'' if rows == n else ' MISMATCH'}")
PY
rm -rf "$dir/sink-store-a" "$dir/sink-store-b" "$dir/sink-lake"
