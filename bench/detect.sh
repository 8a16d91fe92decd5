#!/usr/bin/env bash
# Detection throughput and memory over N flows with N distinct pairs (the
# worst case for per-pair state), side by side in one run:
#   - cordon ingest alone (the baseline)
#   - cordon ingest --detect (detectors on the stream)
#   - cordon detect over the stored flows (batch), with its peak memory
# Usage: bench/detect.sh [RECORDS]   (default 10000000)
# Data goes to $BENCH_DIR (default /tmp/cordon-bench), reused between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
dir=${BENCH_DIR:-/tmp/cordon-bench}
mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"

log="$dir/pairs-$n.log"
if [ ! -s "$log" ]; then
  echo "generating $n AWS records, each its own (source, destination) pair..." >&2
  awk -v n="$n" 'BEGIN { srand(5); for (i = 0; i < n; i++) {
    s = i; d = int(rand() * 16777216);
    printf "2 123456789012 eni-0a1b2c3d 10.%d.%d.%d 52.%d.%d.%d %d %d 6 %d %d %d %d ACCEPT OK\n",
      int(s / 65536) % 256, int(s / 256) % 256, s % 256, int(d / 65536), int(d / 256) % 256, d % 256,
      30000 + int(rand() * 30000), (rand() < 0.5) ? 443 : 22, 1 + int(rand() * 50), 60 + int(rand() * 100000),
      1700000000 + int(i / 2000), 1700000060 + int(i / 2000) } }' > "$log"
fi

measure() { # name, command... ; prints seconds and peak RSS in MB
  local name=$1; shift
  local t
  t=$( { /usr/bin/time -f '%e %M' "$@" > /dev/null 2> "$dir/err"; } 2>&1; tail -1 "$dir/err")
  set -- $t
  printf '%-40s %8.2f s %10.0f flows/s %8.0f MB peak\n' "$name" "$1" "$(echo "$n / $1" | bc -l)" "$(echo "$2 / 1024" | bc -l)"
}

rm -rf "$dir"/detect-store-*
echo "step ($n flows, $n distinct pairs)"
measure "cordon ingest" "$cordon" ingest --store "$dir/detect-store-a" "$log"
measure "cordon ingest --detect" "$cordon" ingest --store "$dir/detect-store-b" --detect "$log"
measure "cordon detect (batch over the store)" "$cordon" detect --store "$dir/detect-store-a" --json
"$cordon" detect --store "$dir/detect-store-a" --json | python3 -c '
import sys, collections
c = collections.Counter(__import__("json").loads(l)["kind"] for l in sys.stdin)
print("findings:", dict(c))'
