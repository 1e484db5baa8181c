#!/usr/bin/env bash
# N viewers joining one sender at once (issue 10, join pacing): how long until every viewer
# gets frames, and how many are still without any at the end. Not a test: it prints figures.
#   bench/joins/run.sh [BUILD-DIR] [N] ['sender properties']   e.g.
#   bench/joins/run.sh build 50 'max-connecting=0'     # no pacing
#   bench/joins/run.sh build 50 'max-connecting=8'     # paced
# The sender (gst-launch, videotestsrc 640x480@30 ball, VP8) runs in a network namespace of
# its own, the viewers (one wcc-viewer --count N --no-decode, each calling the sender) in a
# second one (tests/netns-pair-run.sh). Needs root. WCC_JOINS_DURATION: seconds the viewers
# run (default 40).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(realpath "${1:-$root/build}")
n=${2:-50}
props=${3:-}
duration=${WCC_JOINS_DURATION:-40}
if [ -z "${WCC_VIEWERS_EXEC:-}" ]; then
  exec "$root/tests/netns-pair-run.sh" "$0" "$build" "$n" "$props"
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/wcc-joins.XXXXXX")
export GST_PLUGIN_PATH=$build/gst-plugin GST_REGISTRY=$out/registry.bin
port=8443
# The sender sends an answer and a few candidates per viewer through one connection: at the
# server's default --max-rate 50/s, --max-burst 100, 60 viewers joining at once had some of
# those dropped (rate-limited) and 7 calls failed ICE. WCC_JOINS_SERVER_FLAGS replaces these.
# shellcheck disable=SC2086
"$build/signaling/webrtc-call-server" --address 10.77.1.1 --port $port \
  --max-connections-per-address 100000 ${WCC_JOINS_SERVER_FLAGS:---max-rate 1000 --max-burst 2000} \
  >"$out/server.out" 2>"$out/server.err" &
server=$!
gst_pid=
cleanup() {
  [ -n "$gst_pid" ] && kill "$gst_pid" 2>/dev/null && wait "$gst_pid" 2>/dev/null
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  true
}
trap cleanup EXIT
for _ in $(seq 50); do grep -q Listening "$out/server.out" && break; sleep 0.1; done
url=ws://10.77.1.1:$port/ws
# shellcheck disable=SC2086
gst-launch-1.0 -m videotestsrc is-live=true pattern=ball \
  ! video/x-raw,width=640,height=480,framerate=30/1 \
  ! webrtccall username=cam signaling-server=$url max-calls=$((n + 10)) \
    ice-addresses='<"10.77.1.1">' $props >"$out/sender.out" 2>&1 &
gst_pid=$!
for _ in $(seq 100); do grep -q webrtccall-registered "$out/sender.out" && break; sleep 0.1; done
$WCC_VIEWERS_EXEC "$build/tests/viewer/wcc-viewer" --server "$url" --name v --count "$n" \
  --call cam --no-decode --ice-address 10.77.1.2 --duration "$duration" >"$out/viewers.jsonl" \
  2>"$out/viewers.err" || true
python3 - "$out/viewers.jsonl" "$n" "$props" <<'PY'
import json, sys
path, n, props = sys.argv[1], int(sys.argv[2]), sys.argv[3]
registered, first, ended, last_tick = {}, {}, {}, {}
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    v, ev, t = e["viewer"], e["event"], e["t_ms"]
    if ev == "registered":
        registered.setdefault(v, t)
    elif ev == "first-frame":
        first.setdefault(v, t)
    elif ev == "ended":
        ended[v] = ended.get(v, 0) + 1
    elif ev == "tick":
        last_tick.setdefault(v, []).append(e["fps"])
start = min(registered.values()) if registered else 0
times = sorted(t - start for t in first.values())
def pct(p):
    return times[min(len(times) - 1, int(p * len(times)))] / 1000 if times else float("nan")
# Held frame rate: the mean of the last 5 whole seconds (the very last tick may be short).
def held(fps):
    tail = fps[-6:-1] or fps
    return sum(tail) / len(tail)
playing = sum(1 for fps in last_tick.values() if held(fps) >= 25)
print(f"joins: {n} viewers at once, sender '{props or 'defaults'}'")
print(f"  got frames: {len(first)}/{n}; without any at the end: {n - len(first)}")
if times:
    print(f"  first frame after the first registration: median {pct(0.5):.1f} s, "
          f"90% {pct(0.9):.1f} s, all that got one {times[-1] / 1000:.1f} s")
print(f"  calls ended and redialed: {sum(ended.values())} (viewers: {len(ended)})")
print(f"  at >= 25 fps over the last 5 s: {playing}/{n}")
PY
echo "  messages of the sender the server refused (rate-limited): $(grep -c 'conn=1 .*rate-limited' "$out/server.err" || true)"
echo "(raw output in $out)"
