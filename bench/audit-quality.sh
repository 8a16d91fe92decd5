#!/usr/bin/env bash
# Detection quality on labelled cloud audit logs (../shared/cloud-audit,
# kept out of the source tree for their licences). Each labelled case is
# ingested on its own (a store per case, detection on), as the sources
# label them one by one:
#   - stratus-detonation-logs: every file is one attack technique's real
#     detonation (all events malicious): found when any finding comes out;
#   - panther-*-tests: each unit test's event, labelled must-alert (true)
#     or must-not (false) by its rule: a true one is found when any finding
#     comes out, a false one is a false finding when one of medium or worse
#     does; tests whose label depends on mocked context are left out; a
#     rule with a threshold alerts once that many matching events come
#     within its period, so its test event (must-alert or must-not alike)
#     is ingested that many times, a second apart, as the rule needs to
#     see it (the event unchanged but for its time and ids);
#   - gcp-csa-fixtures: one positive sample per use case (audit entries
#     only; load-balancer and flow samples are not audit events);
#   - otrf-aws-s3-honeybucket: a CSV export of S3 data events, written
#     back as the CloudTrail records it came from; labelled as a whole,
#     so the file is one case;
#   - the simulator: the CloudTrail of `cordon simulate` (48 h, the example
#     policy naming the email vendor's identities): each cloud step of the
#     third-party compromise is found when a finding of its kind comes from
#     its source; the benign runs' findings of medium or worse are false.
#     SIM_SEEDS (default 3) seeds of each.
# Events the reader refuses are counted apart (a case that could not be
# read is neither found nor missed). Panther's negatives are negative for
# their own rule: one whose call (event name and parameters) is another
# rule's must-alert case is listed apart, not counted as benign.
# Usage: bench/audit-quality.sh [AUDIT_DIR]   (default ../shared/cloud-audit; needs python3)
# CORDON_BIN=path/to/cordon scores another build.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/cloud-audit}
dir=${BENCH_DIR:-/tmp/cordon-audit-quality}
rm -rf "$dir"; mkdir -p "$dir"
. bench/cordon-bin.sh

python3 - "$cordon" "$data" "$dir" <<'PY'
import json, os, subprocess, sys

cordon, data, out = sys.argv[1:4]
SEVERE = {"medium", "high", "critical"}
n = 0

def run(events, tag):
    """Ingest `events` (a list of JSON objects) alone with detection on."""
    global n
    n += 1
    case = os.path.join(out, f"case-{n}")
    os.makedirs(case)
    path = os.path.join(case, "events.json")
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    p = subprocess.run([cordon, "ingest", "--store", os.path.join(case, "store"), "--detect", "--json", path],
                       capture_output=True, text=True)
    try:
        report = json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"read": 0, "findings": [], "error": p.stderr.strip()[:200]}
    read = report.get("events", 0)
    return {"read": read, "findings": report.get("findings") or [], "error": None}

rows = []
misses = []
falses = []

def positive(r, label):
    """Score one must-alert case: (found, unread)."""
    if r["read"] == 0:
        misses.append(f"{label}: not read ({r['error']})")
        return 0, 1
    if r["findings"]:
        return 1, 0
    misses.append(label)
    return 0, 0

# Stratus: a file per technique.
d = os.path.join(data, "stratus-detonation-logs")
if os.path.isdir(d):
    found = total = unread = 0
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json"):
            continue
        events = json.load(open(os.path.join(d, name)))
        total += 1
        hit, lost = positive(run(events, name), f"stratus {name[:-5]}")
        found, unread = found + hit, unread + lost
    rows.append(("stratus-detonation-logs (techniques)", total, found, unread, 0, 0))

def call(log):
    name = log.get("eventName") or log.get("operationName")
    params = log.get("requestParameters") or log.get("properties")
    return (json.dumps(name), json.dumps(params, sort_keys=True), json.dumps(log.get("errorCode")))

import re
from datetime import datetime, timedelta, timezone

def threshold(folder, rule_file):
    """The rule's Threshold (events within its period before it alerts)."""
    try:
        text = open(os.path.join(data, folder, rule_file)).read()
    except OSError:
        return 1
    m = re.search(r"^Threshold:\s*(\d+)", text, re.M)
    return max(1, int(m.group(1))) if m else 1

def replay(log, times):
    """`log` `times` times, a second apart, with their own ids."""
    if times <= 1:
        return [log]
    out = []
    for i in range(times):
        e = json.loads(json.dumps(log))
        for key in ("eventTime", "time", "timestamp"):
            if isinstance(e.get(key), str):
                try:
                    t = datetime.fromisoformat(e[key].replace("Z", "+00:00"))
                except ValueError:
                    continue
                if t.tzinfo is None:
                    t = t.replace(tzinfo=timezone.utc)
                e[key] = (t + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for key in ("eventID", "requestID", "correlationId", "insertId"):
            if isinstance(e.get(key), str):
                e[key] = f"{e[key]}-{i}"
        out.append(e)
    return out

others = []
# Panther unit tests: AWS CloudTrail and Azure.
for folder in ("panther-aws-cloudtrail-tests", "panther-azure-tests"):
    path = os.path.join(data, folder, "tests.jsonl")
    if not os.path.exists(path):
        continue
    tests = [json.loads(line) for line in open(path)]
    alerts = {call(t["log"]) for t in tests if t.get("expected_result") and isinstance(t.get("log"), dict)}
    pos = found = unread = neg = false = 0
    for t in tests:
        if t.get("has_mocks") or not isinstance(t.get("log"), dict):
            continue
        if not t["expected_result"] and call(t["log"]) in alerts:
            others.append(f"{folder.split('-')[1]} {t['rule_id']}: {t['test_name']}")
            continue
        r = run(replay(t["log"], threshold(folder, t.get("rule_file", ""))), t["rule_id"])
        name = f"{folder.split('-')[1]} {t['rule_id']}: {t['test_name']}"
        if t["expected_result"]:
            pos += 1
            if r["read"] == 0:
                unread += 1
            elif r["findings"]:
                found += 1
            else:
                misses.append(name)
        else:
            neg += 1
            bad = [f for f in r["findings"] if f["severity"] in SEVERE]
            if bad:
                false += 1
                falses.append(f"{name} -> {bad[0]['kind']} {bad[0]['severity']}")
    rows.append((f"{folder} (must alert / must not)", pos, found, unread, neg, false))

# GCP fixtures: audit entries are positives.
d = os.path.join(data, "gcp-csa-fixtures", "fixtures")
if os.path.isdir(d):
    pos = found = unread = 0
    for name in sorted(os.listdir(d)):
        loaded = json.load(open(os.path.join(d, name)))
        entries = loaded if isinstance(loaded, list) else [loaded]
        if not any("AuditLog" in str(e.get("protoPayload", {}).get("@type", "")) for e in entries):
            continue
        pos += 1
        hit, lost = positive(run(entries, name), f"gcp {name[:-5]}")
        found, unread = found + hit, unread + lost
    rows.append(("gcp-csa-fixtures (audit samples)", pos, found, unread, 0, 0))

# The simulator's CloudTrail, ingested with the example policy.
seeds = int(os.environ.get("SIM_SEEDS", "3"))
policy = os.path.join(os.getcwd(), "examples", "acme-prod.yaml")
pos = found = neg = false = 0
for scenario in ("third-party-compromise", "benign"):
    for seed in range(1, seeds + 1):
        n += 1
        case = os.path.join(out, f"sim-{scenario}-{seed}")
        subprocess.run([cordon, "simulate", "--scenario", scenario, "--seed", str(seed), "--format", "aws",
                        "--hours", "48", "--out", case, "--json"], check=True, capture_output=True)
        p = subprocess.run([cordon, "ingest", "--store", os.path.join(case, "store"), "--detect", "--json",
                            "--policy", policy, os.path.join(case, "cloudtrail.json")],
                           capture_output=True, text=True)
        report = json.loads(p.stdout)
        findings = [f for f in report.get("findings") or [] if f["kind"].startswith("cloud-")]
        truth = json.load(open(os.path.join(case, "truth.json")))
        steps = [s for s in truth["steps"] if s["id"].startswith("cloud-")]
        def of_step(f, s):
            return f["kind"] in s["kinds"] and f.get("src_entity", {}).get("ip") in s["src"]
        for s in steps:
            pos += 1
            if any(of_step(f, s) for f in findings):
                found += 1
            else:
                misses.append(f"sim {scenario} seed {seed}: {s['id']}")
        for f in findings:
            if f["severity"] in SEVERE and not any(of_step(f, s) for s in steps):
                false += 1
                falses.append(f"sim {scenario} seed {seed}: {f['kind']} {f['severity']}: {f['evidence']['summary'][:160]}")
        neg += report.get("events", 0) - sum(s["flows"] for s in steps)
rows.append((f"simulator cloudtrail ({seeds}+{seeds} runs; benign = events)", pos, found, 0, neg, false))

# The honey bucket: a CSV of CloudTrail's S3 data events (its columns
# are CloudTrail's fields, two of them Python dict literals), labelled as a
# whole (scanners on a public bucket, T1580). Each row is written back as
# the CloudTrail record it was exported from, as often as its `Repeated
# Attempts` says; the file is one case. The export has no recipient
# account, so none is written.
import ast, csv
d = os.path.join(data, "otrf-aws-s3-honeybucket")
path = os.path.join(d, "AWS_S3_HoneyBucketLogs.csv")
if os.path.exists(path):
    events = []
    for row in csv.DictReader(open(path, newline="", encoding="utf-8-sig")):
        params = ast.literal_eval(row["Request Parameters"] or "{}")
        host = params.get("Host", "")
        m = re.match(r"[^.]+\.s3[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.", host)
        record = {
            "eventVersion": "1.08",
            "eventType": row["Event Type"],
            "eventCategory": "Data",
            "eventSource": "s3.amazonaws.com",
            "eventName": row["Event Name"],
            "eventTime": row["Event DateTime"],
            "awsRegion": m.group(1) if m else "us-east-1",
            "requestID": row["Request ID"],
            "eventID": row["Event ID"],
            "sourceIPAddress": row["Source IP"],
            "userAgent": row["Request User Agent"],
            "userIdentity": ast.literal_eval(row["User ID"] or "{}"),
            "requestParameters": params,
            "resources": [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{params.get('bucketName', '')}"}],
        }
        events.extend(replay(record, int(row["Repeated Attempts"] or 1)))
    r = run(events, "honeybucket")
    hit, lost = positive(r, "otrf honey bucket")
    kinds = sorted({f"{f['kind']} {f['severity']}" for f in r["findings"]})
    rows.append((f"otrf-aws-s3-honeybucket ({len(events)} events, one case)", 1, hit, lost, 0, 0))
    honey = f"honey bucket: {len(r['findings'])} findings ({', '.join(kinds)})"
else:
    honey = None

print(f"{'dataset':<48} {'labelled':>8} {'found':>6} {'unread':>6} {'benign':>6} {'false med+':>10}")
for name, pos, found, unread, neg, false in rows:
    print(f"{name:<48} {pos:>8} {found:>6} {unread:>6} {neg:>6} {false:>10}")
print()
if honey:
    print(honey)
print(f"missed ({len(misses)}):")
for m in misses:
    print("  " + m)
print(f"false findings of medium or worse ({len(falses)}):")
for m in falses:
    print("  " + m)
print(f"negatives left out, the same call being another rule's must-alert case ({len(others)}):")
for m in others:
    print("  " + m)
PY
