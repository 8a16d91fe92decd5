#!/usr/bin/env bash
# Flow ingest throughput, side by side in one run:
#   - the limit: reading the file (cat > /dev/null)
#   - a peer: DuckDB's read_csv of the same AWS file into a table
#   - Cordon: parse + enrich + verdict + store (cordon ingest), with and
#     without a policy, for AWS VPC Flow Logs, Zeek conn.log and a file of
#     IPFIX messages
#   - a packet capture of RECORDS/10 TCP connections (9 packets each, 96
#     bytes captured of each): Cordon assembling and storing its flows,
#     beside tshark's TCP conversation table and argus writing its flow
#     records from the same file, when they are installed
#   - the topology query for one hour over everything stored
#   - cloud audit events: RECORDS/5 CloudTrail events (one per line, as
#     EventBridge and CloudTrail Lake exports write them; a mix of S3 data
#     events, role sessions, sign-ins and management calls) read by Cordon
#     into its store beside DuckDB's read_json of the same file into a
#     table: checked and stored (the store keeps each record and normalises
#     it on reading), and normalised whole through the detectors (--detect)
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
pcap_flows=$((n / 10))
pcap="$dir/capture-$pcap_flows.pcap"
audit_events=$((n / 5))
audit="$dir/cloudtrail-$audit_events.jsonl"
bash bench/gen-aws.sh "$n" "$aws"
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

if [ ! -s "$pcap" ]; then
  echo "generating a capture of $pcap_flows TCP connections..." >&2
  python3 - "$pcap_flows" "$pcap" <<'PY'
import random, struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
random.seed(17)
SNAP = 96
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
with open(path, "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAP, 1))
    t = 1700000000.0
    for i in range(n):
        c = random.randrange(4000)
        cli = bytes([10, 0, c // 250, c % 250 + 1])
        srv = bytes([10, 0, 2, random.randrange(1, 201)])
        cport, sport = 30000 + random.randrange(30000), 443 if random.random() < 0.2 else 5432
        up, down = random.randrange(100, 1400), random.randrange(100, 1400)
        seq = [(0, 0x02, 0), (1, 0x12, 0), (0, 0x10, 0), (0, 0x18, up), (1, 0x18, down),
               (1, 0x18, down), (0, 0x11, 0), (1, 0x11, 0), (0, 0x10, 0)]
        for k, (back, flags, size) in enumerate(seq):
            s, d, sp, dp = (srv, cli, sport, cport) if back else (cli, srv, cport, sport)
            tcp = struct.pack("!HHIIBBHHH", sp, dp, 1000 + k, 2000 + k, 5 << 4, flags, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 20 + size, i & 0xFFFF, 0, 64, 6, 0, s, d)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            frame = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + ip + tcp + bytes(size)
            ts = t + k * 0.001
            out.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), min(len(frame), SNAP), len(frame)))
            out.write(frame[:SNAP])
        t += 0.0005
PY
fi

if [ ! -s "$audit" ]; then
  echo "generating $audit_events CloudTrail events..." >&2
  python3 - "$audit_events" "$audit" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
random.seed(5)
roles = [f"arn:aws:sts::111122223333:assumed-role/app-{i}/i-0{i:015x}" for i in range(40)]
with open(path, "w") as out:
    for i in range(n):
        t = 1700000000 + i // 20
        when = f"2023-11-14T{(t // 3600) % 24:02}:{(t // 60) % 60:02}:{t % 60:02}Z"
        role = random.choice(roles)
        e = {
            "eventVersion": "1.09", "eventTime": when, "awsRegion": "eu-west-1",
            "sourceIPAddress": f"10.0.{random.randrange(4)}.{random.randrange(1, 250)}",
            "userAgent": "aws-sdk-java/2.20.0 Linux/5.10",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:" + role[-19:], "arn": role,
                             "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLE%08d" % (i % 1000),
                             "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role.rsplit("/", 1)[0].replace("sts", "iam").replace("assumed-role", "role"), "accountId": "111122223333"},
                                                "attributes": {"creationDate": when, "mfaAuthenticated": "false"}}},
            "requestID": "%016X" % random.getrandbits(64), "eventID": "%032x" % random.getrandbits(128),
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": False,
            "recipientAccountId": "111122223333", "eventCategory": "Data",
        }
        r = random.random()
        if r < 0.7:
            e.update({"eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                      "requestParameters": {"bucketName": "app-data", "key": f"objects/{random.randrange(10**6)}.json", "Host": "app-data.s3.eu-west-1.amazonaws.com"},
                      "additionalEventData": {"bytesTransferredIn": 0, "bytesTransferredOut": random.randrange(100, 200000), "x-amz-id-2": "x" * 60},
                      "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::app-data/objects/x.json"}, {"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::app-data"}]})
        elif r < 0.85:
            e.update({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "managementEvent": True, "eventCategory": "Management",
                      "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/app-1", "roleSessionName": "s%d" % i, "durationSeconds": 3600},
                      "responseElements": {"credentials": {"accessKeyId": "ASIAEXAMPLE", "expiration": when, "sessionToken": "t" * 80}}})
        else:
            e.update({"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "managementEvent": True, "eventCategory": "Management",
                      "requestParameters": {"instancesSet": {}, "filterSet": {}}, "responseElements": None})
        out.write(json.dumps(e, separators=(",", ":")) + "\n")
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
run "cordon ingest pcap --policy ($pcap_flows conns)" "$cordon" ingest --store "$dir/store-e" --policy examples/acme-prod.yaml "$pcap"
if command -v tshark > /dev/null; then
  run "tshark -z conv,tcp (same capture)" tshark -n -q -r "$pcap" -z conv,tcp
fi
if command -v argus > /dev/null; then
  rm -f "$dir/capture.argus"
  run "argus -r capture -w records (same capture)" argus -r "$pcap" -w "$dir/capture.argus"
fi
run "cordon flows topology, one hour of $n flows" "$cordon" flows topology --store "$dir/store-b" --since 1700000000 --until 1700003600 --json
run "audit: cat cloudtrail > /dev/null (the limit)" cat "$audit"
run "audit: duckdb read_json cloudtrail into a table" python3 -c "
import duckdb
con = duckdb.connect('$dir/duck.db')
con.sql('DROP TABLE IF EXISTS events')
con.sql(\"CREATE TABLE events AS SELECT * FROM read_json('$audit', format='newline_delimited', maximum_object_size=1048576)\")
print(con.execute('SELECT count(*) FROM events').fetchall()[0][0])
"
run "audit: cordon ingest --detect (normalise + detect + store)" "$cordon" ingest --detect --store "$dir/store-g" "$audit"
run "audit: cordon ingest cloudtrail (check + store)" "$cordon" ingest --store "$dir/store-f" "$audit"
rm -f "$dir/duck.db"

echo
printf '%-44s %10s %14s %10s\n' "step ($n records)" seconds records/s "vs cat"
for i in "${!names[@]}"; do
  case "${names[$i]}" in *pcap*|*capture*|audit:*) continue ;; esac
  rate=$(echo "$n / ${secs[$i]}" | bc -l)
  ratio=$(echo "${secs[$i]} / ${secs[0]}" | bc -l)
  printf '%-44s %10.2f %14.0f %9.1fx\n' "${names[$i]}" "${secs[$i]}" "$rate" "$ratio"
done
echo
packets=$((pcap_flows * 9))
mb=$(echo "$(stat -c %s "$pcap") / 1048576" | bc -l)
printf '%-44s %10s %12s %10s %10s %12s\n' "capture ($pcap_flows conns, $packets packets)" seconds packets/s MB/s conns/s "vs cordon"
for i in "${!names[@]}"; do
  case "${names[$i]}" in *pcap*|*capture*) ;; *) continue ;; esac
  [ -z "${pcap_row:-}" ] && pcap_row=$i
  printf '%-44s %10.2f %12.0f %10.1f %10.0f %11.2fx\n' "${names[$i]}" "${secs[$i]}" \
    "$(echo "$packets / ${secs[$i]}" | bc -l)" "$(echo "$mb / ${secs[$i]}" | bc -l)" \
    "$(echo "$pcap_flows / ${secs[$i]}" | bc -l)" "$(echo "${secs[$i]} / ${secs[$pcap_row]}" | bc -l)"
done
echo
mb=$(echo "$(stat -c %s "$audit") / 1048576" | bc -l)
printf '%-52s %10s %12s %10s %10s\n' "cloud audit ($audit_events CloudTrail events)" seconds events/s MB/s "vs cordon"
for i in "${!names[@]}"; do
  case "${names[$i]}" in audit:*) ;; *) continue ;; esac
  [[ "${names[$i]}" == *cordon* ]] && audit_row=$i
done
for i in "${!names[@]}"; do
  case "${names[$i]}" in audit:*) ;; *) continue ;; esac
  printf '%-52s %10.2f %12.0f %10.1f %9.2fx\n' "${names[$i]#audit: }" "${secs[$i]}" \
    "$(echo "$audit_events / ${secs[$i]}" | bc -l)" "$(echo "$mb / ${secs[$i]}" | bc -l)" \
    "$(echo "${secs[$i]} / ${secs[$audit_row]}" | bc -l)"
done
