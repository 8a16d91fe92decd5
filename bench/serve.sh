#!/usr/bin/env bash
# The server under load of data: with the demo's store plus N synthetic
# flows (AWS VPC Flow Logs in the demo's time range, ingested with the
# example policy), the latency of the console's pages and of the API
# routes behind them (p50/p95/p99 over REPEAT sequential requests on one
# keep-alive connection), and each page's weight.
#   overview, topology over 24 h, a filtered page of flows
#   (group:notifier port:443), findings.
# Usage: bench/serve.sh [N] [REPEAT]   (default 10000000 and 30)
# Data goes to $BENCH_DIR (default /tmp/cordon-bench-serve), reused.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
repeat=${2:-30}
dir=${BENCH_DIR:-/tmp/cordon-bench-serve}
mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"

store="$dir/demo-$n/store"
if [ ! -s "$store/flows.sqlite" ] || [ ! -e "$dir/demo-$n/.complete" ]; then
  rm -rf "$dir/demo-$n"
  echo "demo store..." >&2
  "$cordon" demo --out "$dir/demo-$n" > /dev/null
  aws="$dir/aws-serve-$n.log"
  if [ ! -s "$aws" ]; then
    echo "generating $n AWS records in the demo's two days..." >&2
    awk -v n="$n" 'BEGIN { srand(7); span = 172800; for (i = 0; i < n; i++) {
      s = int(rand() * 4000); d = int(rand() * 200) + 1; t = 1770076800 + int(i * span / n);
      printf "2 123456789012 eni-0a1b2c3d 10.0.%d.%d 10.0.2.%d %d %d 6 %d %d %d %d %s OK\n",
        int(s / 250), s % 250 + 1, d, 30000 + int(rand() * 30000), (rand() < 0.2) ? 443 : 5432,
        1 + int(rand() * 50), 60 + int(rand() * 100000), t, t + 60,
        (rand() < 0.05) ? "REJECT" : "ACCEPT" } }' > "$aws"
  fi
  echo "ingesting $n flows..." >&2
  "$cordon" ingest --store "$store" --policy "$dir/demo-$n/acme-prod.yaml" "$aws" > /dev/null
  touch "$dir/demo-$n/.complete"
fi

token=bench-admin-token-0123456789
printf '%s admin bench\n' "$token" > "$dir/tokens.txt"
port=$((20000 + RANDOM % 20000))
"$cordon" serve --store "$store" --policy "$dir/demo-$n/acme-prod.yaml" --tokens "$dir/tokens.txt" \
  --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q console "$dir/serve.log" 2>/dev/null && break; sleep 0.1; done

python3 - "$port" "$token" "$repeat" "$store" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse
port, token, repeat = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
auth = {"Authorization": "Bearer " + token}
def get(path):
    t = time.perf_counter()
    conn.request("GET", path, headers=auth)
    r = conn.getresponse()
    body = r.read()
    return time.perf_counter() - t, r.status, len(body), body
overview = json.loads(get("/api/v1/overview")[3])
last = overview["last_ms"]
since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000 - 86400))
until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000 + 60))
q = urllib.parse.quote("group:notifier port:443")
rng = f"since={since}&until={until}"
cases = [
    ("overview", "/", "/api/v1/overview"),
    ("topology 24 h", f"/topology?{rng}", f"/api/v1/topology?{rng}"),
    ("flows group:notifier port:443", f"/flows?q={q}", f"/api/v1/flows?q={q}&limit=100"),
    ("findings", "/findings", "/api/v1/findings"),
]
print(f"store: {overview['flows']} flows, {overview['findings']} findings, {overview['incidents']} incidents")
print(f"{'page':<32} {'what':<8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'bytes':>9}")
for name, page, api in cases:
    for what, path in (("console", page), ("api", api)):
        times, size = [], 0
        for _ in range(repeat):
            dt, status, n, _ = get(path)
            assert status == 200, (path, status)
            times.append(dt * 1000); size = n
        times.sort()
        pct = lambda p: times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))]
        print(f"{name:<32} {what:<8} {pct(50):>8.1f} {pct(95):>8.1f} {pct(99):>8.1f} {size:>9}")
PY
