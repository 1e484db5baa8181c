#!/usr/bin/env bash
# Runs the three soaks one after the other and plots them into bench/results/:
#   bench/soak/run.sh [BUILD-DIR]     (default: build; takes about 10 minutes)
# Their output is printed and kept beside the CSVs in a temporary folder that is printed too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(realpath "${1:-$root/build}")
out=$(mktemp -d "${TMPDIR:-/tmp}/wcc-soak.XXXXXX")
results=$root/bench/results
mkdir -p "$results"
echo "soak output in $out"

run() {  # name, program and arguments
  local name=$1
  shift
  echo "==== $name: $*"
  "$@" --csv "$out/$name.csv" 2>&1 | tee "$out/$name.txt"
}
run signaling-soak "$build/bench/soak/signaling-soak" --cycles 10000 --every 100
run call-soak-element "$build/bench/soak/call-soak" --remote element --cycles 500 --every 10
run call-soak-browser "$build/bench/soak/call-soak" --remote browser --cycles 100 --every 2

"$here/plot.py" "$results/soak-signaling.png" \
  "webrtc-call-server: 10,000 connect/register/disconnect cycles" "$out/signaling-soak.csv"
"$here/plot.py" "$results/soak-call-element.png" \
  "webrtccall: 500 call/hang-up cycles with an element peer (both pipelines)" \
  "$out/call-soak-element.csv"
"$here/plot.py" "$results/soak-call-browser.png" \
  "webrtccall: 100 call/hang-up cycles with headless Chromium (the pipeline)" \
  "$out/call-soak-browser.csv"
