#!/usr/bin/env bash
# TAXII 2.1 servers side by side: Cordon (`cordon serve`, release build)
# and medallion (the OASIS reference server, memory backend), fed the same
# N indicators by the same client (Python http.client, one kept-alive
# connection each) in one run:
#   accepted: objects/s added, in envelopes of 500 objects (POST);
#   served:   objects/s read back, paging with limit=100 and `next` (GET).
# Each figure is the median of ROUNDS rounds, each round on fresh servers;
# the ratio is Cordon's rate over medallion's.
# Usage: bench/taxii.sh [N] [ROUNDS]   (default 5000 and 3; needs medallion:
# pip install medallion)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
rounds=${2:-3}
dir=${BENCH_DIR:-/tmp/cordon-bench-taxii}
rm -rf "$dir"
mkdir -p "$dir"
python3 -c 'import medallion' 2>/dev/null || { echo "needs medallion: pip install medallion" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"
token=bench-responder-token-0123456789
printf '%s responder bench\n' "$token" > "$dir/tokens.txt"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_port() {
  for _ in $(seq 300); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

for round in $(seq "$rounds"); do
  cport=$((20000 + RANDOM % 10000))
  mport=$((30000 + RANDOM % 10000))
  rm -rf "$dir/store" "$dir/medallion"
  mkdir -p "$dir/medallion"
  "$cordon" serve --store "$dir/store" --tokens "$dir/tokens.txt" --listen "127.0.0.1:$cport" \
    > "$dir/serve.log" 2>&1 &
  pids+=($!)
  python3 crates/cordon-cli/tests/taxii/medallion_server.py "$dir/medallion" "$mport" \
    --indicators 0 --page-size 100 > "$dir/medallion.log" 2>&1 &
  pids+=($!)
  wait_port "$cport"
  wait_port "$mport"
  python3 - "$n" "$cport" "$mport" "$token" <<'PY' >> "$dir/rounds.jsonl"
import base64, http.client, json, sys, time, urllib.parse, uuid

n, cport, mport, token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
TAXII = "application/taxii+json;version=2.1"

def objects():
    out = []
    for i in range(n):
        ts = "2026-12-01T10:%02d:%02d.000Z" % (i // 60 % 60, i % 60)
        out.append({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--%s" % uuid.uuid5(uuid.NAMESPACE_URL, "bench-%d" % i),
            "created": ts, "modified": ts, "name": "bench indicator %d" % i,
            "pattern": "[ipv4-addr:value = '10.%d.%d.%d']" % (i >> 16 & 255, i >> 8 & 255, i & 255),
            "pattern_type": "stix", "valid_from": ts,
        })
    return out

def run(port, root, collection, auth):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Accept": TAXII, "Authorization": auth}
    objs = objects()
    url = "%scollections/%s/objects/" % (root, collection)
    started = time.perf_counter()
    for i in range(0, n, 500):
        body = json.dumps({"objects": objs[i:i + 500]}).encode()
        conn.request("POST", url, body=body, headers=dict(headers, **{"Content-Type": TAXII}))
        r = conn.getresponse()
        status = json.loads(r.read())
        assert r.status == 202 and status["success_count"] == len(objs[i:i + 500]), status
    added = time.perf_counter() - started
    started = time.perf_counter()
    seen, nxt = 0, None
    while True:
        q = {"limit": "100"}
        if nxt:
            q["next"] = nxt
        conn.request("GET", url + "?" + urllib.parse.urlencode(q), headers=headers)
        r = conn.getresponse()
        page = json.loads(r.read())
        assert r.status == 200, page
        seen += len(page.get("objects", []))
        if not page.get("more"):
            break
        nxt = page["next"]
    served = time.perf_counter() - started
    assert seen == n, (seen, n)
    return {"accepted_per_s": n / added, "served_per_s": n / served}

basic = "Basic " + base64.b64encode(b"cordon:medallion-pass").decode()
print(json.dumps({
    "cordon": run(cport, "/taxii2/cordon/", "intel", "Bearer " + token),
    "medallion": run(mport, "/api1/", "inbox", basic),
}))
PY
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  pids=()
  echo "round $round of $rounds done" >&2
done

python3 - "$dir/rounds.jsonl" "$n" <<'PY'
import json, statistics, sys
rounds = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
print(f"TAXII 2.1, {n} indicators, {len(rounds)} rounds (medians); POST in envelopes of 500, GET pages of 100")
print(f"{'':<10} {'accepted/s':>12} {'served/s':>12}")
med = {}
for who in ("cordon", "medallion"):
    med[who] = {k: statistics.median(r[who][k] for r in rounds) for k in ("accepted_per_s", "served_per_s")}
    print(f"{who:<10} {med[who]['accepted_per_s']:>12.0f} {med[who]['served_per_s']:>12.0f}")
print(f"{'ratio':<10} {med['cordon']['accepted_per_s'] / med['medallion']['accepted_per_s']:>11.1f}x "
      f"{med['cordon']['served_per_s'] / med['medallion']['served_per_s']:>11.1f}x")
PY
