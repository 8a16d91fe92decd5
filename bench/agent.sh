#!/usr/bin/env bash
# The host agent at scale and on the packet path (root, nftables):
#   - compile and load time of a policy with RULES rules over CIDRS CIDRs,
#     all applying to the host, loaded by the agent over netlink and, side by
#     side, as the printed script by `nft -f`; the update of 1,000 CIDRs in
#     place by the running agent, against nft replacing the table;
#   - the same load again over the loaded table (a replacement);
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
# An update of 1,000 elements: 1,000 CIDRs of the policy change.
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

agent() { ip netns exec "$ns" "$cordon" agent --self-ip 10.0.2.10 "$@" 2>/dev/null; }
# "(compile X ms, apply Y ms)" from the agent's line.
times() { sed -n 's/.*(compile \([0-9]*\) ms, apply \([0-9]*\) ms).*/\1 \2/p' | head -1; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
"$cordon" agent --policy "$dir/policy.yaml" --self-ip 10.0.2.10 --print > "$dir/ruleset.nft" 2>/dev/null
"$cordon" agent --policy "$dir/policy-1000.yaml" --self-ip 10.0.2.10 --print > "$dir/ruleset-1000.nft" 2>/dev/null
changed=$(diff <(tr ',' '\n' < "$dir/ruleset.nft" | sort) <(tr ',' '\n' < "$dir/ruleset-1000.nft" | sort) | grep -c '^>' || true)

# Three alternating rounds; medians. The agent's process time (`--once`:
# read, compile, load over netlink, verify, exit) against `cordon agent
# --print` followed by `nft -f` of the script.
a_total=(); a_compile=(); a_apply=(); a_reload=(); n_compile=(); n_apply=(); n_reload=(); n_total=()
a_upd=(); a_upd_compile=(); n_upd=()
for round in 1 2 3; do
  ip netns exec "$ns" "$cordon" agent --cleanup >/dev/null
  t=$(now); agent --policy "$dir/policy.yaml" --once > "$dir/once.log"; a_total+=("$(since "$t")")
  read -r c a < <(times < "$dir/once.log"); a_compile+=("$c"); a_apply+=("$a")
  agent --policy "$dir/policy.yaml" --once > "$dir/once.log"
  read -r c a < <(times < "$dir/once.log"); a_reload+=("$a")
  # In place: the running agent sees the policy file change.
  cp "$dir/policy.yaml" "$dir/live.yaml"
  # `ip netns exec` becomes the agent: $! is the agent's pid.
  ip netns exec "$ns" "$cordon" agent --self-ip 10.0.2.10 --policy "$dir/live.yaml" > "$dir/live.log" 2>/dev/null & live=$!
  for _ in $(seq 100); do grep -qa applied "$dir/live.log" && break; sleep 0.1; done
  cp "$dir/policy-1000.yaml" "$dir/live.yaml"
  for _ in $(seq 100); do grep -qa reloaded "$dir/live.log" && break; sleep 0.1; done
  read -r c a < <(grep -a reloaded "$dir/live.log" | times); a_upd+=("$a"); a_upd_compile+=("$c")
  grep -qa "changed in place" "$dir/live.log" || echo "warning: the update was not in place: $(grep -a reloaded "$dir/live.log")" >&2
  kill "$live"; wait "$live" 2>/dev/null || true
  ip netns exec "$ns" "$cordon" agent --cleanup >/dev/null

  t=$(now); "$cordon" agent --policy "$dir/policy.yaml" --self-ip 10.0.2.10 --print > "$dir/ruleset.nft" 2>/dev/null; c=$(since "$t")
  n_compile+=("$c")
  t=$(now); ip netns exec "$ns" nft -f "$dir/ruleset.nft"; a=$(since "$t"); n_apply+=("$a")
  n_total+=("$(echo "$c + $a" | bc -l)")
  t=$(now); ip netns exec "$ns" nft -f "$dir/ruleset.nft"; n_reload+=("$(since "$t")")
  t=$(now); ip netns exec "$ns" nft -f "$dir/ruleset-1000.nft"; n_upd+=("$(since "$t")")
  ip netns exec "$ns" nft delete table inet cordon
done
ms_to_s() { echo "$1 / 1000" | bc -l; }
total=$(median3 "${a_total[@]}"); compile=$(ms_to_s "$(median3 "${a_compile[@]}")"); apply=$(ms_to_s "$(median3 "${a_apply[@]}")")
reload=$(ms_to_s "$(median3 "${a_reload[@]}")"); update=$(ms_to_s "$(median3 "${a_upd[@]}")"); update_compile=$(ms_to_s "$(median3 "${a_upd_compile[@]}")")
nft_total=$(median3 "${n_total[@]}"); nft_compile=$(median3 "${n_compile[@]}"); nft_apply=$(median3 "${n_apply[@]}")
nft_reload=$(median3 "${n_reload[@]}"); nft_update=$(median3 "${n_upd[@]}")

# Packet path: servers in user-db-1 (which gets the ruleset) and in
# notifier-1 (which never has one); a client in api-1 alternates between
# them connection by connection and chunk by chunk, so the machine's noise
# (large here: rounds of one setting alone swing by 40%) falls on both alike.
# A first phase with no ruleset anywhere shows the method's own floor.
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
n, size, a, b = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
# Closed with a reset: no TIME_WAIT, so rounds do not run out of ports.
linger = struct.pack("ii", 1, 0)
spent = {a: 0.0, b: 0.0}
for _ in range(n):
    for host in (a, b):
        t = time.perf_counter()
        s = socket.create_connection((host, 5001))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger); s.close()
        spent[host] += time.perf_counter() - t
buf = b"x" * (1 << 20)
sinks = {h: socket.create_connection((h, 5002)) for h in (a, b)}
moved = {a: 0.0, b: 0.0}
sent = 0
while sent < size:
    for host in (a, b):
        t = time.perf_counter()
        for _ in range(16):
            sinks[host].sendall(buf)
        moved[host] += time.perf_counter() - t
    sent += 16 << 20
for s in sinks.values(): s.close()
print(f"{n / spent[a]:.0f} {sent / moved[a] / 1e6:.0f} {n / spent[b]:.0f} {sent / moved[b] / 1e6:.0f}")
PY
ip netns exec "$ns" python3 "$dir/server.py" & server=$!
ip netns exec cordon-notifier-1 python3 "$dir/server.py" & other=$!
sleep 0.5
rounds=${ROUNDS:-5}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p"; }
pct() { echo "$1 / $2 * 100" | bc -l | cut -c1-5; }
phase() {
  local rates=() mbs=()
  for round in $(seq "$rounds"); do
    read -r ra ma rb mb < <(ip netns exec cordon-api-1 python3 "$dir/client.py" 3000 500000000 10.0.2.10 10.0.4.10)
    rates+=("$(pct "$ra" "$rb")"); mbs+=("$(pct "$ma" "$mb")")
    printf '  %s round %d: user-db-1 %6s conn/s %5s MB/s; notifier-1 %6s conn/s %5s MB/s\n' "$1" "$round" "$ra" "$ma" "$rb" "$mb" >&2
  done
  echo "$(median "${rates[@]}") $(median "${mbs[@]}")"
}
read -r floor_rate floor_mb < <(phase "no ruleset")
ip netns exec "$ns" nft -f "$dir/ruleset.nft"; sleep 1
read -r rule_rate rule_mb < <(phase "ruleset")
# A ruleset that matches `ct state` turns connection tracking on in its
# namespace; without one it is off. The third phase gives notifier-1 a
# table with nothing but that match, to show what the rules cost on top.
cat > "$dir/conntrack-only.nft" <<'NFT'
table inet cordon {
  chain input { type filter hook input priority filter; policy accept; ct state established,related accept; }
  chain output { type filter hook output priority filter; policy accept; ct state established,related accept; }
}
NFT
ip netns exec cordon-notifier-1 nft -f "$dir/conntrack-only.nft"; sleep 1
read -r ct_rate ct_mb < <(phase "ruleset vs conntrack only")
ip netns exec cordon-notifier-1 nft delete table inet cordon
ip netns exec "$ns" nft delete table inet cordon
kill "$server" "$other" 2>/dev/null || true

printf '\nagent at scale: %d rules, %d CIDRs (ruleset %s bytes); medians of 3 rounds\n' "$rules" "$cidrs" "$(wc -c < "$dir/ruleset.nft")"
printf '%-46s %10s %10s %8s\n' "" "netlink" "nft -f" "ratio"
row() { printf '%-46s %9.3fs %9.3fs %7.2fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
row "first load, whole process (compile + apply)" "$total" "$nft_total"
row "  compile" "$compile" "$nft_compile"
row "  apply" "$apply" "$nft_apply"
row "replace over the loaded table (apply)" "$reload" "$nft_reload"
row "update 1,000 CIDRs in place (apply)" "$update" "$nft_update"
printf '%-46s %9.3fs   (%s elements differ; nft replaces the table)\n' "update 1,000 CIDRs: recompile" "$update_compile" "$changed"
printf '\npacket path: api-1 to user-db-1 as a %% of api-1 to notifier-1 in the same run (median of %d rounds)\n' "$rounds"
printf '%-20s %22s %22s %26s\n' "" "neither has a ruleset" "user-db-1 has it" "notifier-1 tracks conns"
printf '%-20s %21s%% %21s%% %25s%%\n' "TCP connections/s" "$floor_rate" "$rule_rate" "$ct_rate"
printf '%-20s %21s%% %21s%% %25s%%\n' "throughput MB/s" "$floor_mb" "$rule_mb" "$ct_mb"
