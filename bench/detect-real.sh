#!/usr/bin/env bash
# Detection quality on real labelled captures (../shared/real, kept out of
# the source tree for their licences): every dataset is ingested as it is
# (Zeek TSV and JSON, gzip, rotated logs), detected, and scored against the
# labels its LABELS.md gives:
#   - each labelled attack: found or missed (a finding whose source and
#     destination are the label's, the port too when the label names one);
#   - false findings of medium or worse on traffic the labels call benign
#     (a whole unlabelled network counts as benign), per dataset and per
#     100,000 flows.
# Datasets that are only pcaps are listed as not readable until Cordon
# reads captures.
# Usage: bench/detect-real.sh [REAL_DIR]   (default ../shared/real; needs python3)
# CORDON_BIN=path/to/cordon scores another build (a before/after table).
set -euo pipefail
cd "$(dirname "$0")/.."
real=${1:-../shared/real}
dir=${BENCH_DIR:-/tmp/cordon-real}
rm -rf "$dir"; mkdir -p "$dir"
. bench/cordon-bin.sh

for d in "$real"/*/; do
  name=$(basename "$d")
  "$cordon" ingest --store "$dir/$name" --json "$d" > "$dir/$name.ingest.json" 2>/dev/null || true
  "$cordon" detect --store "$dir/$name" --json > "$dir/$name.findings.jsonl" 2>/dev/null || true
done

python3 - "$dir" <<'PY'
import ipaddress, json, os, sys

out = sys.argv[1]

def net(s):
    return ipaddress.ip_network(s, strict=False)

# The labels of each dataset's LABELS.md, as (name, sources, destinations,
# port or None). A finding matches when its source is in `sources` and its
# destination in `destinations` (a finding about many hosts matches on its
# source), and the port when one is named.
LABELS = {
    "rita-proxy-beacon": [
        ("beacon via proxy to www.honestimnotevil.com", ["10.136.0.18/32"], ["10.136.0.16/32"], 3128),
    ],
    "rita-missing-host": [
        ("HTTP beacon, blank Host", ["73.54.23.243/32"], ["64.225.56.201/32"], 80),
        ("SSH session open 3 days", ["73.54.23.243/32"], ["64.225.56.201/32"], 22),
    ],
    "zeek-traces": [
        ("FTP brute force", ["192.168.56.1/32"], ["0.0.0.0/0"], 21),
        ("SSH password guessing", ["192.168.56.1/32"], ["192.168.56.103/32"], 22),
        ("VNC scanner probe", ["192.168.0.11/32"], ["10.0.0.149/32"], 5900),
        ("Merlin C2 over QUIC", ["10.0.0.4/32"], ["24.199.110.233/32"], 443),
    ],
    "corelight-caldera": [
        ("Caldera C2 beacons (Ragdoll, Sandcat)", ["172.18.0.3/32"], ["172.18.0.2/32"], 8888),
    ],
    "otrf-apt29": [
        ("day 1 Meterpreter HTTPS C2", ["10.0.1.6/32"], ["192.168.0.4/32"], 8443),
        ("day 1 exfiltration to attacker share", ["10.0.1.4/32"], ["192.168.0.4/32"], None),
        ("day 1 WinRM/SMB lateral movement", ["10.0.1.4/32"], ["10.0.1.6/32"], None),
        ("day 2 PoshC2 HTTPS C2", ["10.0.1.5/32"], ["192.168.0.4/32"], 443),
        ("day 2 WinRM lateral movement", ["10.0.1.5/32"], ["10.0.0.4/32", "10.0.1.4/32"], 5985),
        ("day 2 exfiltration to OneDrive", ["10.0.1.5/32"],
         ["13.107.42.12/32", "40.90.137.116/32", "40.90.137.124/32", "52.114.6.47/32"], 443),
    ],
}

# What each dataset documents as benign: a finding of medium or worse about
# it is false. `all` = the whole (unlabelled, presumed benign) network.
def benign(name, f, src, dst):
    if name == "rita-home-proxy-rolling":
        return True
    if name == "rita-proxy-beacon":
        return f.get("dst") == "www.google.com" or (src is not None and src.version == 6)
    if name == "otrf-apt29":
        # Domain background: DNS, Kerberos, LDAP, SMB, RPC to the domain
        # controller 10.0.0.4 (the WinRM sessions to it are labelled),
        # NetBIOS, NTP.
        if dst == ipaddress.ip_address("10.0.0.4") and f.get("port") != 5985:
            return True
        return f.get("port") in (123, 137, 138)
    if name == "zeek-traces":
        # The home multicast, mDNS, NTP, DHCP and websocket traces.
        attack_hosts = {"192.168.56.1", "192.168.56.103", "192.168.0.11", "10.0.0.149",
                        "10.0.0.4", "24.199.110.233"}
        return str(src) not in attack_hosts and str(dst) not in attack_hosts
    if name == "corelight-caldera":
        return str(src) != "172.18.0.3"
    if name == "rita-missing-host":
        # The VM's own DNS and NTP; the Internet scanners are observed, not
        # labelled, so findings about them count neither way.
        return src == ipaddress.ip_address("64.225.56.201") and f.get("port") in (53, 123)
    return False

SEVERE = {"medium", "high", "critical"}
rows = []
for name in sorted(os.listdir(out)):
    if not name.endswith(".ingest.json"):
        continue
    name = name[: -len(".ingest.json")]
    try:
        ingest = json.load(open(os.path.join(out, name + ".ingest.json")))
    except ValueError:
        ingest = {"flows": 0, "files": []}
    flows = ingest.get("flows", 0)
    findings = [json.loads(l) for l in open(os.path.join(out, name + ".findings.jsonl")) if l.strip()]
    labels = LABELS.get(name, [])
    found = 0
    missed = []
    def addr(e):
        try:
            return ipaddress.ip_address(e.get("ip")) if e.get("ip") else None
        except ValueError:
            return None
    for (what, srcs, dsts, port) in labels:
        hit = False
        for f in findings:
            if f["kind"] == "policy-violation":
                continue
            s, d = addr(f["src_entity"]), addr(f["dst_entity"])
            if s is None or not any(s in net(x) for x in srcs):
                continue
            if d is not None and not any(d in net(x) for x in dsts):
                continue
            if port is not None and f.get("port") not in (port, None):
                continue
            hit = True
            break
        found += hit
        if not hit:
            missed.append(what)
    false = [f for f in findings if f["severity"] in SEVERE
             and benign(name, f, addr(f["src_entity"]), addr(f["dst_entity"]))]
    kinds = {}
    for f in false:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    readable = flows > 0
    rows.append((name, flows, len(findings), found, len(labels), missed, false, kinds, readable))

print()
print(f"{'dataset':<26} {'flows':>8} {'findings':>8} {'attacks found':>14} {'false med+':>10} {'per 100k':>9}  false kinds / missed")
for (name, flows, n, found, total, missed, false, kinds, readable) in rows:
    if not readable:
        print(f"{name:<26} {'-':>8} {'-':>8} {'-':>14} {'-':>10} {'-':>9}  no flows read (pcaps, or inputs this build does not read)")
        continue
    per = len(false) / flows * 1e5 if flows else 0.0
    notes = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    if missed:
        notes += ("; " if notes else "") + "missed: " + "; ".join(missed)
    print(f"{name:<26} {flows:>8} {n:>8} {found:>7} of {total:<4} {len(false):>10} {per:>9.2f}  {notes}")
PY
