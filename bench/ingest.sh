#!/usr/bin/env bash
# Flow ingest throughput, side by side in one run:
#   - the limit: reading the file (cat > /dev/null)
#   - a peer: DuckDB's read_csv of the same AWS file into a table
#   - Cordon: parse + enrich + verdict + store (cordon ingest), with and
#     without a policy, for AWS VPC Flow Logs, Zeek conn.log and a file of
#     IPFIX messages
#   - the topology query for one hour over everything stored
# Usage: bench/ingest.sh [RECORDS]   (default 10000000; needs python3, pip)
# Prints a table of records/s and ratios. Data goes to $BENCH_DIR
# (default /tmp/cordon-bench), reused between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
dir=${BENCH_DIR:-/tmp/cordon-bench}
mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"
python3 -c 'import duckdb' 2>/dev/null || pip install -q duckdb

aws="$dir/aws-$n.log"
zeek="$dir/zeek-$n.log"
ipfix="$dir/ipfix-$n.bin"
if [ ! -s "$aws" ]; then
  echo "generating $n AWS VPC flow log records..." >&2
  awk -v n="$n" 'BEGIN { srand(7); for (i = 0; i < n; i++) {
    s = int(rand() * 4000); d = int(rand() * 200) + 1;
    printf "2 123456789012 eni-0a1b2c3d 10.0.%d.%d 10.0.2.%d %d %d 6 %d %d %d %d %s OK\n",
      int(s / 250), s % 250 + 1, d, 30000 + int(rand() * 30000), (rand() < 0.2) ? 443 : 5432,
      1 + int(rand() * 50), 60 + int(rand() * 100000), 1700000000 + int(i / 1000), 1700000060 + int(i / 1000),
      (rand() < 0.05) ? "REJECT" : "ACCEPT" } }' > "$aws"
fi
if [ ! -s "$zeek" ]; then
  echo "generating $n Zeek conn.log records..." >&2
  { printf '#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n'
    awk -v n="$n" 'BEGIN { srand(11); for (i = 0; i < n; i++) {
      s = int(rand() * 4000);
      printf "%.6f\tC%d\t10.0.%d.%d\t%d\t10.0.2.%d\t%d\ttcp\t-\t%.3f\t%d\t%d\tSF\tT\tT\t0\tShADadFf\t%d\t%d\t%d\t%d\t(empty)\n",
        1700000000 + i / 1000, i, int(s / 250), s % 250 + 1, 30000 + int(rand() * 30000), int(rand() * 200) + 1,
        (rand() < 0.2) ? 443 : 5432, rand() * 5, int(rand() * 5000), int(rand() * 50000),
        5 + int(rand() * 20), 500 + int(rand() * 6000), 5 + int(rand() * 20), 500 + int(rand() * 60000) } }'
  } > "$zeek"
fi

if [ ! -s "$ipfix" ]; then
  echo "generating $n IPFIX records (RFC 5655 file, 30 records a message)..." >&2
  python3 - "$n" "$ipfix" <<'PY'
import random, struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
random.seed(13)
fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (152, 8), (153, 8), (6, 1)]
tpl = struct.pack("!HH", 256, len(fields)) + b"".join(struct.pack("!HH", f, l) for f, l in fields)
def message(body, seq):
    return struct.pack("!HHIII", 10, 16 + len(body), 1700000000, seq, 1) + body
def set_(sid, body):
    return struct.pack("!HH", sid, 4 + len(body)) + body
rec = struct.Struct("!4s4sHHBIIQQB")
with open(path, "wb") as out:
    out.write(message(set_(2, tpl), 0))
    i = 0
    seq = 1
    while i < n:
        k = min(30, n - i)
        recs = bytearray()
        for j in range(k):
            s = random.randrange(4000)
            start = 1700000000000 + (i + j) // 1000 * 1000
            recs += rec.pack(bytes([10, 0, s // 250, s % 250 + 1]), bytes([10, 0, 2, random.randrange(1, 201)]),
                             30000 + random.randrange(30000), 443 if random.random() < 0.2 else 5432, 6,
                             1 + random.randrange(50), 60 + random.randrange(100000), start, start + 60000, 0x1b)
        out.write(message(set_(256, bytes(recs)), seq))
        seq += 1
        i += k
PY
fi

now() { date +%s.%N; }
declare -a names secs
run() { # name, command...
  local name=$1; shift
  local t0 t1
  t0=$(now); "$@" > /dev/null; t1=$(now)
  names+=("$name"); secs+=("$(echo "$t1 - $t0" | bc -l)")
  printf '%-44s %8.2f s\n' "$name" "${secs[-1]}" >&2
}

rm -rf "$dir"/store-*
run "cat aws > /dev/null (the limit)" cat "$aws"
run "duckdb read_csv aws into a table" python3 -c "
import duckdb, sys
con = duckdb.connect('$dir/duck.db')
con.sql('DROP TABLE IF EXISTS flows')
con.sql(\"CREATE TABLE flows AS SELECT * FROM read_csv('$aws', delim=' ', header=false)\")
print(con.execute('SELECT count(*) FROM flows').fetchall()[0][0])
"
run "cordon ingest aws (no policy)" "$cordon" ingest --store "$dir/store-a" "$aws"
run "cordon ingest aws --policy (enrich + verdict)" "$cordon" ingest --store "$dir/store-b" --policy examples/acme-prod.yaml "$aws"
run "cordon ingest zeek --policy" "$cordon" ingest --store "$dir/store-c" --policy examples/acme-prod.yaml "$zeek"
run "cordon ingest ipfix file --policy" "$cordon" ingest --store "$dir/store-d" --policy examples/acme-prod.yaml "$ipfix"
run "cordon flows topology, one hour of $n flows" "$cordon" flows topology --store "$dir/store-b" --since 1700000000 --until 1700003600 --json
rm -f "$dir/duck.db"

echo
printf '%-44s %10s %14s %10s\n' "step ($n records)" seconds records/s "vs cat"
for i in "${!names[@]}"; do
  rate=$(echo "$n / ${secs[$i]}" | bc -l)
  ratio=$(echo "${secs[$i]} / ${secs[0]}" | bc -l)
  printf '%-44s %10.2f %14.0f %9.1fx\n' "${names[$i]}" "${secs[$i]}" "$rate" "$ratio"
done
