#!/usr/bin/env bash
# Benchmarks, printed as figures (not pass/fail):
#  - the charm's dispatch under JujuLocal with a real pod (real Pebble, Synapse, NGINX):
#    wall time, peak memory and hook-tool calls for update-status and config-changed;
#  - the stripped binary's size;
#  - the Pebble client's per-call latency against a real Pebble.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${SYNAPSE_CHARM_TOOLS:-/opt/synapse-charm}"
N="${BENCH_RUNS:-30}"
J="$PWD/target/release/jujulocal"
export JUJULOCAL_HOME; JUJULOCAL_HOME=$(mktemp -d /tmp/synapse-bench.XXXXXX)
cleanup() { "$J" destroy >/dev/null 2>&1 || true; rm -rf "$JUJULOCAL_HOME"; }
trap cleanup EXIT

echo "== charm binary"
size=$(stat -c %s target/release/synapse-k8s-charm)
python3 -c "print(f'stripped binary: {$size/1e6:.2f} MB (target < 10 MB)')"

echo "== dispatch under JujuLocal (real pod, $N runs each)"
"$J" bootstrap --name bench >/dev/null
"$J" deploy build/charm synapse --config server_name=bench.example.com --pods --netns --pebble "$TOOLS/bin/pebble" \
  --mount "synapse:/opt/synapse=$TOOLS/synapse-venv" \
  --mount "synapse:/usr/local/bin/synapse-stats-exporter=$PWD/target/release/synapse-stats-exporter" \
  --mount "synapse-nginx:/etc/nginx=$PWD/nginx_rock/etc/nginx" \
  --mount "synapse-nginx:/var/lib/nginx=tmpfs" --mount "synapse-nginx:/var/log/nginx=tmpfs" >/dev/null
for _ in $(seq 1 60); do
  "$J" update-status >/dev/null
  "$J" status | grep -q '^synapse/0\*  *active' && break
  sleep 2
done
"$J" status | grep '^synapse/0'
# A fresh Synapse runs background updates for a while; let it settle so the figures
# measure the charm, not a busy CPU (2 cores).
sleep "${BENCH_SETTLE:-30}"
for _ in 1 2 3; do "$J" fire synapse/0 update-status >/dev/null; done
for hook in update-status config-changed; do
  for _ in $(seq 1 "$N"); do "$J" fire synapse/0 "$hook" >/dev/null; done
  "$J" hooks --last "$N" | python3 -c '
import re, statistics, sys
hook = sys.argv[1]
rows = [l for l in sys.stdin if f" {hook} " in l]
ms = [float(re.search(r"([0-9.]+)ms", l).group(1)) for l in rows]
rss = [int(re.search(r"rss=([0-9]+)KiB", l).group(1)) for l in rows]
calls = [len(re.search(r"calls=(\S*)", l).group(1).split(",")) for l in rows]
tools = re.search(r"calls=(\S*)", rows[-1]).group(1)
inside = [float(re.search(r"tools=([0-9.]+)ms", l).group(1)) for l in rows]
ms.sort()
print(f"{hook}: wall median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms)*0.95)-1]:.2f} ms (target < 10 ms); "
      f"peak RSS {max(rss)/1024:.1f} MiB (target < 10 MiB); hook-tool calls {calls[-1]} ({tools}), "
      f"time inside the stand-in tools {statistics.median(inside):.2f} ms")
' "$hook"
done
echo "(wall time: from spawning the charm to its exit, as the unit agent sees it; RSS: the charm"
echo " process, including its hook-tool children)"

echo "== Pebble client latency (real Pebble)"
PEBBLE_BIN="$TOOLS/bin/pebble" cargo run -q --release -p pebble --example pebble_latency -- 200

echo "== Synapse Stats Exporter (real PostgreSQL)"
cargo run -q --release -p synapse-stats-exporter --example scrape_latency
