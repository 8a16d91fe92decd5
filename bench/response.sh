#!/usr/bin/env bash
# How fast a response is enforced, in the lab (root: network namespaces):
#   agent:   from `cordon respond quarantine` returning to the element being
#            in the agent's set (nft lists it) and to the attacker's open
#            connection going silent;
#   gateway: from `cordon respond block` returning to the open CONNECT
#            tunnel to the blocked name being closed;
#   nft:     `nft add element` of one address to the same set, alone.
# Each ROUNDS times (default 20); medians and worst, and the ratios to nft.
# Usage: sudo bench/response.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
export CORDON="$CARGO_TARGET_DIR/release/cordon"
dir=$(mktemp -d /tmp/cordon-bench-response.XXXXXX)
export BENCH_DIR="$dir" ROUNDS="$rounds"
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${gateway:-}" ] && kill "$gateway" 2>/dev/null || true
  for p in ${servers:-}; do kill "$p" 2>/dev/null || true; done
  "$CORDON" lab down > /dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$CORDON" lab up > /dev/null
# The example policy, with the attacker's address let in to the database
# (so it holds a connection for a response to cut) and a name to block.
sed -e 's/^  groups:$/  groups:\n    partner:\n      cidrs: [203.0.113.66\/32]\n    lookalike:\n      external: true\n      fqdns: [files.attacker.test]\n      cidrs: [203.0.113.66\/32]/' \
    -e 's/^  rules:$/  rules:\n    - {name: partner-db, from: [partner], to: [user-db], ports: [tcp\/5432], action: allow}\n    - {name: notifier-files, from: [notifier], to: [lookalike], ports: [tcp\/8443], action: allow}/' \
    examples/acme-prod.yaml > "$dir/policy.yaml"
cp examples/acme-inventory.yaml "$dir/"
echo "203.0.113.66 files.attacker.test" > "$dir/hosts"
serve='import socket,threading,sys,time
def echo(c):
    while True:
        d=c.recv(65536)
        if not d: break
        c.sendall(d)
def tcp(p):
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0",p)); s.listen(64)
    while True:
        c,_=s.accept(); threading.Thread(target=echo,args=(c,),daemon=True).start()
for p in sys.argv[1:]: threading.Thread(target=tcp,args=(int(p),),daemon=True).start()
time.sleep(3600)'
ip netns exec cordon-user-db-1 python3 -c "$serve" 5432 > /dev/null 2>&1 &
servers="$!"
ip netns exec cordon-attacker python3 -c "$serve" 8443 > /dev/null 2>&1 &
servers="$servers $!"
ip netns exec cordon-user-db-1 "$CORDON" agent --policy "$dir/policy.yaml" --workload user-db-1 \
  --responses "$dir/agent-responses.yaml" > "$dir/agent.log" 2>&1 &
agent=$!
ip netns exec cordon-api-1 "$CORDON" gateway --policy "$dir/policy.yaml" --hosts "$dir/hosts" \
  --responses "$dir/gateway-responses.yaml" --listen 10.0.3.10:3128 > "$dir/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 100); do
  grep -q "applied:" "$dir/agent.log" && grep -q "listening" "$dir/gateway.log" && break
  sleep 0.2
done
grep -q "applied:" "$dir/agent.log" || { cat "$dir/agent.log" >&2; exit 1; }
python3 - <<'PY'
import os, subprocess, time, statistics, socket, threading

cordon, d, rounds = os.environ["CORDON"], os.environ["BENCH_DIR"], int(os.environ["ROUNDS"])

def ns(host, *args, **kw):
    return subprocess.run(["ip", "netns", "exec", f"cordon-{host}", *args], **kw)

def pinger(host, script):
    return subprocess.Popen(["ip", "netns", "exec", f"cordon-{host}", "python3", "-c", script],
                            stdout=subprocess.PIPE, text=True)

def in_set(addr):
    out = ns("user-db-1", "nft", "list", "set", "inet", "cordon", "resp_peer_v4",
             capture_output=True, text=True).stdout
    return addr in out

def wait(pred, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return time.time()
        time.sleep(0.005)
    return None

def respond(*args):
    out = subprocess.run([cordon, "respond", *args], capture_output=True, text=True, check=True).stdout
    return out.split()[0], time.time()

ping = """import socket,time,sys
s=socket.create_connection(('10.0.2.10',5432),timeout=2); s.settimeout(0.05)
print('ready',flush=True)
while True:
    try:
        s.sendall(b'x')
        if not s.recv(8): break
        print(time.time(),flush=True)
    except socket.timeout: continue
    except Exception: break
    time.sleep(0.005)
"""
agent_enforced, agent_cut = [], []
for _ in range(rounds):
    p = pinger("attacker", ping)
    assert p.stdout.readline().strip() == "ready"
    last = [0.0]
    def read():
        for line in p.stdout:
            try: last[0] = float(line)
            except ValueError: pass
    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.2)
    rid, t0 = respond("quarantine", "--ip", "203.0.113.66", "--ttl", "10m", "--reason", "bench",
                      "--responses", f"{d}/agent-responses.yaml")
    t1 = wait(lambda: in_set("203.0.113.66"))
    time.sleep(1.0)
    agent_enforced.append(t1 - t0)
    agent_cut.append(max(0.0, last[0] - t0))
    p.kill()
    respond("undo", rid, "--responses", f"{d}/agent-responses.yaml")
    wait(lambda: not in_set("203.0.113.66"))

tunnel = """import socket,time
s=socket.create_connection(('10.0.3.10',3128),timeout=2)
s.sendall(b'CONNECT files.attacker.test:8443 HTTP/1.1\\r\\nHost: files.attacker.test:8443\\r\\n\\r\\n')
h=b''
while not h.endswith(b'\\r\\n\\r\\n'): h+=s.recv(1)
assert b' 200' in h.split(b'\\r\\n')[0], h
print('ready',flush=True)
s.settimeout(None)
while s.recv(4096): pass
print(time.time(),flush=True)
"""
gateway_closed = []
for _ in range(rounds):
    p = pinger("notifier-1", tunnel)
    assert p.stdout.readline().strip() == "ready"
    rid, t0 = respond("block", "--to", "files.attacker.test", "--ttl", "10m", "--reason", "bench",
                      "--responses", f"{d}/gateway-responses.yaml")
    closed = float(p.stdout.readline())
    gateway_closed.append(max(0.0, closed - t0))
    p.wait()
    respond("undo", rid, "--responses", f"{d}/gateway-responses.yaml")
    time.sleep(0.6)

nft_alone = []
for i in range(rounds):
    t0 = time.time()
    ns("user-db-1", "nft", "add", "element", "inet", "cordon", "resp_peer_v4", "{ 192.0.2.%d }" % (i + 1), check=True)
    nft_alone.append(time.time() - t0)
    ns("user-db-1", "nft", "delete", "element", "inet", "cordon", "resp_peer_v4", "{ 192.0.2.%d }" % (i + 1), check=True)

def row(name, xs, base):
    med = statistics.median(xs)
    print(f"{name:<48} {med*1000:8.1f} {max(xs)*1000:8.1f} {med/base:8.1f}x")

base = statistics.median(nft_alone)
print(f"{'(milliseconds, ' + str(rounds) + ' rounds)':<48} {'median':>8} {'worst':>8} {'vs nft':>9}")
row("nft add element alone", nft_alone, base)
row("agent: respond returned -> element in the set", agent_enforced, base)
row("agent: respond returned -> connection silent", agent_cut, base)
row("gateway: respond returned -> tunnel closed", gateway_closed, base)
PY
