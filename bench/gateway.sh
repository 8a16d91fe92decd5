#!/usr/bin/env bash
# The egress gateway beside two real forward proxies, tinyproxy and Squid,
# measured side by side in one run on loopback (ratios matter: this machine
# is shared and absolute numbers drift):
#   - tunnels/s: connect, CONNECT, one exchange through the tunnel, close;
#   - requests/s: absolute-form GETs over keep-alive connections;
#   - bulk throughput through CONNECT tunnels;
#   - memory per idle tunnel (RSS of the proxy's processes);
#   - the proxy's CPU time per tunnel and per request (user + system), which
#     the driver's own CPU use does not blur.
# Every proxy reaches the same upstream by IP literal (no DNS in the path);
# Cordon decides each tunnel and request by policy and runs its SSRF guard.
# Usage: bench/gateway.sh [SECONDS] [CLIENTS] [IDLE]   (default 5 32 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
clients=${2:-32}
idle=${3:-2000}
dir=${BENCH_DIR:-/tmp/cordon-bench}/gateway
rm -rf "$dir"; mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/cordon/target}
cargo build --release -q --bin cordon
cordon="$CARGO_TARGET_DIR/release/cordon"
need=()
command -v tinyproxy >/dev/null || need+=(tinyproxy)
command -v squid >/dev/null || need+=(squid)
if [ "${#need[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cat > "$dir/policy.yaml" <<'YAML'
apiVersion: cordon/v1
kind: Policy
metadata: {name: bench}
spec:
  default: deny
  groups:
    clients: {cidrs: [127.0.0.1/32]}
    upstream: {cidrs: [127.0.0.2/32]}
  rules:
    - {name: clients-to-upstream, from: [clients], to: [upstream], action: allow}
YAML
cat > "$dir/tinyproxy.conf" <<CONF
Port 3129
Listen 127.0.0.1
Timeout 600
MaxClients 4096
Allow 127.0.0.0/8
DisableViaHeader Yes
LogLevel Critical
LogFile "$dir/tinyproxy.log"
PidFile "$dir/tinyproxy.pid"
CONF
cat > "$dir/squid.conf" <<CONF
http_port 127.0.0.1:3130
acl localnet src 127.0.0.0/8
acl CONNECT method CONNECT
http_access allow localnet
http_access deny all
cache deny all
access_log none
cache_log $dir/squid-cache.log
pid_filename $dir/squid.pid
coredump_dir $dir
max_filedescriptors 16384
shutdown_lifetime 1 seconds
CONF

"$cordon" gateway --policy "$dir/policy.yaml" --listen 127.0.0.1:3128 --max-per-client 20000 2> "$dir/cordon.log" &
cordon_pid=$!
tinyproxy -d -c "$dir/tinyproxy.conf" 2> "$dir/tinyproxy.err" &
tiny_pid=$!
squid -N -f "$dir/squid.conf" 2> "$dir/squid.err" &
squid_pid=$!
trap 'kill $cordon_pid $tiny_pid $squid_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
sleep 2

python3 - "$secs" "$clients" "$idle" "$cordon_pid" "$tiny_pid" "$squid_pid" <<'PY'
import asyncio, os, socket, subprocess, sys, time

secs, clients, idle = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
pids = {"cordon": int(sys.argv[4]), "tinyproxy": int(sys.argv[5]), "squid": int(sys.argv[6])}
proxies = {"cordon": 3128, "tinyproxy": 3129, "squid": 3130}
UP = "127.0.0.2"

async def tcp_upstream(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if data.startswith(b"ping"):
                writer.write(b"pong\n")
                await writer.drain()
    except Exception:
        pass
    writer.close()

async def http_upstream(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except Exception:
        pass
    writer.close()

async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1])

async def one_tunnel(port, tport):
    if port:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"CONNECT {UP}:{tport} HTTP/1.1\r\nHost: {UP}:{tport}\r\n\r\n".encode())
        if await read_head(r) != 200:
            raise RuntimeError("refused")
    else:
        r, w = await asyncio.open_connection(UP, tport)
    w.write(b"ping\n")
    await r.readline()
    w.close()

async def tunnels_per_second(port, tport):
    done, end = 0, time.perf_counter() + secs
    async def worker():
        nonlocal done
        while time.perf_counter() < end:
            await one_tunnel(port, tport)
            done += 1
    t = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(clients)])
    return done / (time.perf_counter() - t), done

async def requests_per_second(port, hport):
    done, end = 0, time.perf_counter() + secs
    async def worker():
        nonlocal done
        if port:
            req = f"GET http://{UP}:{hport}/ HTTP/1.1\r\nHost: {UP}:{hport}\r\n\r\n".encode()
        else:
            req = f"GET / HTTP/1.1\r\nHost: {UP}:{hport}\r\n\r\n".encode()
        r = w = None
        while time.perf_counter() < end:
            if w is None:
                # A proxy that closes after each response (tinyproxy) pays
                # for a new connection per request.
                r, w = await asyncio.open_connection("127.0.0.1" if port else UP, port or hport)
            w.write(req)
            try:
                await r.readuntil(b"\r\n\r\n")
                await r.readexactly(2)
                done += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                w.close()
                r = w = None
        if w:
            w.close()
    t = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(clients)])
    return done / (time.perf_counter() - t), done

async def throughput(port, tport, total=512 << 20, streams=4):
    chunk = b"x" * (256 << 10)
    async def one():
        if port:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"CONNECT {UP}:{tport} HTTP/1.1\r\nHost: {UP}:{tport}\r\n\r\n".encode())
            await read_head(r)
        else:
            r, w = await asyncio.open_connection(UP, tport)
        sent = 0
        while sent < total // streams:
            w.write(chunk)
            await w.drain()
            sent += len(chunk)
        w.close()
        await w.wait_closed()
    t = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(streams)])
    return total / (time.perf_counter() - t) / 1e6

def cpu_ms(pid):
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for p in [pid] + [int(k) for k in kids]:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total * 1000 / os.sysconf("SC_CLK_TCK")

def rss_kib(pid):
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split())

async def idle_memory(name, port, tport):
    before = rss_kib(pids[name])
    held = []
    for _ in range(idle):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"CONNECT {UP}:{tport} HTTP/1.1\r\nHost: {UP}:{tport}\r\n\r\n".encode())
        await read_head(r)
        held.append(w)
    await asyncio.sleep(1)
    after = rss_kib(pids[name])
    for w in held:
        w.close()
    await asyncio.sleep(1)
    return (after - before) / idle

async def main():
    tcp = await asyncio.start_server(tcp_upstream, UP, 0, backlog=4096)
    http = await asyncio.start_server(http_upstream, UP, 0, backlog=4096)
    tport, hport = tcp.sockets[0].getsockname()[1], http.sockets[0].getsockname()[1]
    rows = {}
    names = ["direct"] + list(proxies)
    for name in names:
        port = proxies.get(name)
        pid = pids.get(name)
        row = {}
        c = cpu_ms(pid) if pid else 0
        row["tunnels/s"], n = await tunnels_per_second(port, tport)
        row["us CPU/tunnel"] = (cpu_ms(pid) - c) * 1000 / n if pid else float("nan")
        c = cpu_ms(pid) if pid else 0
        row["requests/s"], n = await requests_per_second(port, hport)
        row["us CPU/request"] = (cpu_ms(pid) - c) * 1000 / n if pid else float("nan")
        row["MB/s"] = await throughput(port, tport)
        row["KiB/idle"] = await idle_memory(name, port, tport) if port else float("nan")
        rows[name] = row
    cols = ["tunnels/s", "us CPU/tunnel", "requests/s", "us CPU/request", "MB/s", "KiB/idle"]
    print(f"{'':10}" + "".join(f"{c:>15}" for c in cols) + f"{'tunnels/s ratio':>17}{'requests/s ratio':>17}")
    for name in names:
        r = rows[name]
        rt = r["tunnels/s"] / rows["cordon"]["tunnels/s"]
        rr = r["requests/s"] / rows["cordon"]["requests/s"]
        print(f"{name:10}" + "".join(f"{r[c]:15.1f}" for c in cols) + f"{rt:17.2f}{rr:17.2f}")
    print("ratios are each row over cordon's; CPU is the proxy's own user + system time")

asyncio.run(main())
PY
