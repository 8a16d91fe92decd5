#!/usr/bin/env bash
# Detection quality against the simulator's ground truth.
#   - precision and recall per detector over SEEDS runs of the
#     third-party-compromise scenario (48 h each, formats rotating through
#     aws, zeek, gcp, azure, ipfix), ingested with the example policy and
#     the resolver's dns.log, detected on the stream;
#   - the same without policy or DNS (a bare capture);
#   - findings per 100,000 flows on SEEDS/4 runs of the benign scenario;
#   - incidents: per attack run, whether exactly one incident holds a
#     finding of every step; incidents in benign runs; findings per
#     incident.
# A finding is a true positive when its source is a step's source and its
# destination is the step's (or the step sweeps many), within an hour of
# the step. Recall counts a step as found by a detector when a finding of
# the step's main kind matches it.
# Usage: bench/detect-quality.sh [SEEDS]   (default 20; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-20}
dir=${BENCH_DIR:-/tmp/cordon-quality}
rm -rf "$dir"; mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"
formats=(aws zeek gcp azure ipfix)

run() { # scenario seed format mode(policy|bare) -> dir/run-...
  local scenario=$1 seed=$2 format=$3 mode=$4
  local d="$dir/$scenario-$seed-$format-$mode"
  "$cordon" simulate --scenario "$scenario" --seed "$seed" --format "$format" --hours 48 --out "$d/flows" --json > "$d.sim.json" 2>/dev/null || { mkdir -p "$d"; "$cordon" simulate --scenario "$scenario" --seed "$seed" --format "$format" --hours 48 --out "$d/flows" --json > "$d.sim.json"; }
  mapfile -t files < <(python3 -c 'import json,sys; [print(f) for f in json.load(open(sys.argv[1]))["files"] if not f.endswith(("dns.log","truth.json"))]' "$d.sim.json")
  local extra=()
  if [ "$mode" = policy ]; then extra=(--policy examples/acme-prod.yaml --dns "$d/flows/dns.log"); fi
  "$cordon" ingest --store "$d/store" --detect --json "${extra[@]}" "${files[@]}" > "$d.ingest.json" 2>/dev/null
  echo "$d"
}

runs=()
for ((s = 1; s <= seeds; s++)); do
  f=${formats[$(( (s - 1) % ${#formats[@]} ))]}
  runs+=("$(run third-party-compromise "$s" "$f" policy)")
  runs+=("$(run third-party-compromise "$s" "$f" bare)")
  printf '.' >&2
done
for ((s = 1; s <= (seeds + 3) / 4; s++)); do
  f=${formats[$(( (s - 1) % ${#formats[@]} ))]}
  runs+=("$(run benign "$((1000 + s))" "$f" policy)")
  runs+=("$(run benign "$((1000 + s))" "$f" bare)")
done
echo >&2

python3 - "${runs[@]}" <<'PY'
import json, sys
from collections import defaultdict

family = {"cloud-exfiltration": "exfiltration"}
def fam(k): return family.get(k, k)

def matches(f, s):
    src = f["src_entity"].get("ip") in s["src"]
    d = f["dst_entity"]
    dst = (not s["dst"]) or d.get("ip") in s["dst"] or d.get("hostname") in s.get("dst_names", []) \
        or (d.get("ip") is None and d.get("hostname") is None)
    near = f["first_ms"] <= s["end_ms"] + 3600_000 and f["last_ms"] >= s["start_ms"] - 3600_000
    return src and dst and near

for mode in ("policy", "bare"):
    tp = defaultdict(int); fp = defaultdict(int)
    hit = defaultdict(int); total = defaultdict(int)
    benign_findings = 0; benign_flows = 0; benign_kinds = defaultdict(int)
    attack_runs = 0
    one_incident = 0; incidents_attack = 0; findings_attack = 0; incidents_benign = 0
    for d in sys.argv[1:]:
        if not d.endswith(mode): continue
        ingest = json.load(open(d + ".ingest.json"))
        truth = json.load(open(d + "/flows/truth.json"))
        findings = ingest["findings"]
        incidents = ingest.get("incidents") or []
        if truth["scenario"] == "benign":
            incidents_benign += len(incidents)
            benign_flows += ingest["flows"]
            benign_findings += len(findings)
            for f in findings: benign_kinds[f["kind"]] += 1
            continue
        attack_runs += 1
        incidents_attack += len(incidents); findings_attack += len(findings)
        by_id = {f["id"]: f for f in findings}
        if len(incidents) == 1:
            held = [by_id[i] for i in incidents[0]["findings"] if i in by_id]
            if all(any(matches(f, s) and fam(f["kind"]) in [fam(k) for k in s["kinds"]] for f in held) for s in truth["steps"]):
                one_incident += 1
        for f in findings:
            k = fam(f["kind"])
            if any(matches(f, s) for s in truth["steps"]): tp[k] += 1
            else: fp[k] += 1
        for s in truth["steps"]:
            main = fam(s["kinds"][0])
            total[main] += 1
            if any(fam(f["kind"]) == main and matches(f, s) for f in findings): hit[main] += 1
    print(f"\n== {mode}: {attack_runs} attack runs" + (" (example policy + dns.log)" if mode == "policy" else " (no policy, no inventory, no DNS)"))
    print(f"{'detector':<20} {'precision':>10} {'recall':>8} {'TP':>5} {'FP':>5} {'steps':>6}")
    for k in sorted(set(tp) | set(fp) | set(total)):
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else float('nan')
        r = hit[k] / total[k] if total[k] else float('nan')
        print(f"{k:<20} {p:>10.3f} {r:>8.3f} {tp[k]:>5} {fp[k]:>5} {total[k]:>6}")
    allp = sum(tp.values()) / max(1, sum(tp.values()) + sum(fp.values()))
    allr = sum(hit.values()) / max(1, sum(total.values()))
    print(f"{'all':<20} {allp:>10.3f} {allr:>8.3f}")
    print(f"incidents: {one_incident} of {attack_runs} attack runs give exactly one incident holding every step; "
          f"{incidents_attack} incidents for {findings_attack} findings ({findings_attack / max(1, incidents_attack):.1f} findings per incident); "
          f"{incidents_benign} incidents in benign runs")
    if benign_flows:
        print(f"benign: {benign_findings} findings over {benign_flows} flows = {benign_findings / benign_flows * 1e5:.2f} per 100,000 flows {dict(benign_kinds)}")
PY
