#!/usr/bin/env bash
# What the element's statistics cost the sender: its CPU with N viewers (one wcc-viewer
# process, --no-decode, in the viewers' namespace of tests/netns-pair-run.sh) at
# stats-interval 0 (off), 1000 (the default) and 100 ms (ten times as many get-stats, to see
# the cost above the noise). Prints one line per interval and the CPU per get-stats.
#   bench/stats-cost/run.sh [BUILDDIR] [VIEWERS]     (root: ip netns)
# Not a test: it prints figures. Each run is bounded (about 45 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
viewers=${2:-20}
if [ "${WCC_IN_NETNS_PAIR:-}" != 1 ]; then
  exec "$root/tests/netns-pair-run.sh" "$0" "$build" "$viewers"
fi
export GST_PLUGIN_PATH=$build/gst-plugin GST_REGISTRY=$build/bench/stats-cost-registry.bin
port=18543
tick=$(getconf CLK_TCK)
declare -A cpu
for interval in 0 1000 100; do
  "$build/signaling/webrtc-call-server" --address 10.77.1.1 --port $port \
    --max-connections-per-address 1000 --max-rate 1000 --max-burst 1000 >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  gst-launch-1.0 -q webrtccall name=c username=sender signaling-server=ws://10.77.1.1:$port/ws \
    max-calls=$((viewers + 5)) ice-addresses='<"10.77.1.1">' stats-interval=$interval \
    videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! c.video_0 >/dev/null 2>&1 &
  sender=$!
  sleep 1
  $WCC_VIEWERS_EXEC "$build/tests/viewer/wcc-viewer" --server ws://10.77.1.1:$port/ws \
    --name v --count "$viewers" --call sender --ice-address 10.77.1.2 --no-decode \
    --duration 40 >/dev/null 2>&1 &
  viewer=$!
  sleep 15  # all joined and playing
  a=$(awk '{print $14 + $15}' /proc/$sender/stat)
  sleep 20
  b=$(awk '{print $14 + $15}' /proc/$sender/stat)
  threads=$(ls /proc/$sender/task | wc -l)
  cpu[$interval]=$((b - a))
  echo "stats-interval=$interval ms, $viewers viewers: sender CPU $(( (b - a) * 1000 / 20 / tick ))‰ of a core (threads $threads)"
  kill $viewer $sender $server 2>/dev/null || true
  wait $viewer $sender $server 2>/dev/null || true
done
# get-stats per second: viewers / interval.
extra=$(( cpu[100] - cpu[0] ))
calls=$(( viewers * 10 * 20 ))  # at 100 ms, over 20 s
echo "per get-stats of one call: $(awk -v t=$extra -v k=$tick -v n=$calls 'BEGIN { printf "%.3f", t / k * 1000 / n }') ms of CPU" \
  "(150 calls at 1000 ms: $(awk -v t=$extra -v k=$tick -v n=$calls 'BEGIN { printf "%.1f", t / k * 1000 / n * 150 / 10 }') % of a core)"
