#!/usr/bin/env bash
# The host agent at scale and on the packet path (root, nftables):
#   - compile time (cordon agent --print) and atomic apply time (nft -f) of a
#     policy with RULES rules over CIDRS CIDRs, all applying to the host;
#   - the same apply again over the loaded table (a reload);
#   - TCP connection rate and throughput between two lab namespaces with no
#     ruleset and with that ruleset loaded, side by side in one run.
# Usage: bench/agent.sh [RULES] [CIDRS]   (default 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
rules=${1:-10000}
cidrs=${2:-100000}
dir=${BENCH_DIR:-/tmp/cordon-bench}/agent
mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"

python3 - "$rules" "$cidrs" "$dir/policy.yaml" <<'PY'
import sys, random
rules, cidrs, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(3)
groups = max(1, rules // 10)
per = max(1, cidrs // groups)
with open(path, "w") as f:
    f.write("apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: big}\nspec:\n  default: deny\n")
    f.write("  inventory:\n    - {name: db, ips: [10.0.2.10], labels: {app: db}}\n    - {name: client, ips: [10.0.3.10], labels: {app: client}}\n")
    f.write("  groups:\n    db: {labels: {app: db}}\n    client: {labels: {app: client}}\n")
    n = 0
    for g in range(groups):
        nets = []
        for _ in range(per):
            # Every other /24: neighbours cannot merge, so every CIDR is
            # one interval of its set.
            m = 2 * n
            a = 11 + m // 65536 % 200
            nets.append(f"{a}.{m // 256 % 256}.{m % 256}.0/24")
            n += 1
        f.write(f"    g{g}: {{cidrs: [{', '.join(nets)}]}}\n")
    f.write("  rules:\n    - {name: client-to-db, from: [client], to: [db], ports: [tcp/5001-5002], action: allow}\n")
    for r in range(rules - 1):
        f.write(f"    - {{name: r{r}, from: [g{r % groups}], to: [db], ports: [tcp/{10000 + r % 50000}], action: allow}}\n")
PY

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }

"$cordon" lab down >/dev/null 2>&1 || true
"$cordon" lab up >/dev/null
trap '"$cordon" lab down >/dev/null 2>&1 || true' EXIT
ns=cordon-user-db-1

t=$(now); "$cordon" agent --policy "$dir/policy.yaml" --self-ip 10.0.2.10 --print > "$dir/ruleset.nft" 2>/dev/null; compile=$(since "$t")
t=$(now); ip netns exec "$ns" nft -f "$dir/ruleset.nft"; apply=$(since "$t")
t=$(now); ip netns exec "$ns" nft -f "$dir/ruleset.nft"; reload=$(since "$t")
# An update of 1,000 elements: 1,000 CIDRs of the policy change;
# the agent recompiles and replaces its table in one transaction (interval
# sets make per-element deletes far slower than a replacement).
python3 - "$dir/policy.yaml" "$dir/policy-1000.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
n = 0
out = []
for line in text.splitlines(keepends=True):
    while n < 1000 and ".0/24" in line and line.lstrip().startswith("g"):
        head, _, rest = line.partition("[")
        nets = rest.rstrip().rstrip("}").rstrip().rstrip("]").split(", ")
        changed = []
        for net in nets:
            if n < 1000:
                # The upper half of the /24: neighbours cannot merge, so
                # 1,000 set elements really change.
                changed.append(net.replace(".0/24", ".128/25"))
                n += 1
            else:
                changed.append(net)
        line = head + "[" + ", ".join(changed) + "]}\n"
        break
    out.append(line)
open(sys.argv[2], "w").write("".join(out))
PY
t=$(now)
"$cordon" agent --policy "$dir/policy-1000.yaml" --self-ip 10.0.2.10 --print > "$dir/ruleset-1000.nft" 2>/dev/null
ip netns exec "$ns" nft -f "$dir/ruleset-1000.nft"
update=$(since "$t")
changed=$(diff <(tr ',' '\n' < "$dir/ruleset.nft" | sort) <(tr ',' '\n' < "$dir/ruleset-1000.nft" | sort) | grep -c '^>' || true)
ip netns exec "$ns" nft delete table inet cordon

# Packet path: a server in user-db-1, a client in api-1 (10.0.3.10 is not
# in the policy, so add it: the client group covers it via --self-ip below).
cat > "$dir/server.py" <<'PY'
import socket, threading
def conns():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 5001)); s.listen(512)
    while True:
        c, _ = s.accept(); c.close()
def sink():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 5002)); s.listen(8)
    while True:
        c, _ = s.accept()
        while c.recv(1 << 20): pass
        c.close()
threading.Thread(target=conns, daemon=True).start(); sink()
PY
cat > "$dir/client.py" <<'PY'
import socket, struct, sys, time
n, size = int(sys.argv[1]), int(sys.argv[2])
t = time.time()
# Closed with a reset: no TIME_WAIT, so rounds do not run out of ports.
linger = struct.pack("ii", 1, 0)
for _ in range(n):
    s = socket.create_connection(("10.0.2.10", 5001))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger); s.close()
rate = n / (time.time() - t)
buf = b"x" * (1 << 20)
s = socket.create_connection(("10.0.2.10", 5002))
t = time.time(); sent = 0
while sent < size:
    s.sendall(buf); sent += len(buf)
s.close()
print(f"{rate:.0f} {sent / (time.time() - t) / 1e6:.0f}")
PY
ip netns exec "$ns" python3 "$dir/server.py" & server=$!
sleep 0.5
# Five rounds, alternating without and with the ruleset; medians (this
# machine is shared: one short run of each is mostly noise).
base_rates=(); base_mbs=(); rule_rates=(); rule_mbs=()
for round in 1 2 3 4 5; do
  read -r r m < <(ip netns exec cordon-api-1 python3 "$dir/client.py" 5000 1000000000)
  base_rates+=("$r"); base_mbs+=("$m")
  ip netns exec "$ns" nft -f "$dir/ruleset.nft"
  read -r r m < <(ip netns exec cordon-api-1 python3 "$dir/client.py" 5000 1000000000)
  rule_rates+=("$r"); rule_mbs+=("$m")
  ip netns exec "$ns" nft delete table inet cordon
done
kill "$server" 2>/dev/null || true
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
base_rate=$(median "${base_rates[@]}"); base_mb=$(median "${base_mbs[@]}")
rule_rate=$(median "${rule_rates[@]}"); rule_mb=$(median "${rule_mbs[@]}")

printf '\nagent at scale: %d rules, %d CIDRs (ruleset %s bytes)\n' "$rules" "$cidrs" "$(wc -c < "$dir/ruleset.nft")"
printf '%-44s %8.2f s\n' "compile (cordon agent --print)" "$compile"
printf '%-44s %8.2f s\n' "first atomic apply (nft -f)" "$apply"
printf '%-44s %8.2f s\n' "reload over the loaded table (nft -f)" "$reload"
printf '%-44s %8.2f s   (%s elements differ)\n' "update 1,000 CIDRs: recompile + replace" "$update" "$changed"
printf '\npacket path, api-1 -> user-db-1 (median of 5 alternating rounds)\n%-38s %12s %12s\n' "" "no ruleset" "ruleset"
printf '%-38s %12s %12s   %s\n' "TCP connections/s" "$base_rate" "$rule_rate" "$(echo "$rule_rate / $base_rate * 100" | bc -l | cut -c1-5)%"
printf '%-38s %12s %12s   %s\n' "throughput MB/s" "$base_mb" "$rule_mb" "$(echo "$rule_mb / $base_mb * 100" | bc -l | cut -c1-5)%"
