#!/usr/bin/env bash
# bench/click-to-frame: click (or the element's call) to first remote frame on each end, for
# Chromium, Firefox and webrtccall pipelines through one webrtc-call-server (see
# click-to-frame.mjs and bench/README.md). Prints a table; not a test.
#   bench/click-to-frame/run.sh SERVER-BINARY PLUGIN-DIR [--calls 30] [--warmup 1]
#                               [--browsers chromium,firefox] [--codec vp8|h264|vp9]
# or: meson compile -C build bench-click-to-frame
# Everything runs inside a network namespace of its own (tests/netns-run.sh: lo and a veth pair
# 10.77.0.1/.2), gone when the script exits; the server and whatever node started are stopped
# on every path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ $# -lt 2 ]; then
  echo "usage: $0 SERVER-BINARY PLUGIN-DIR [--calls 30] [--warmup 1] [--browsers chromium,firefox]" >&2
  exit 2
fi

if [ "${WCC_IN_NETNS:-}" != 1 ]; then
  for need in /usr/bin/chromium /usr/bin/firefox-esr; do
    [ -x "$need" ] || { echo "$0: $need is missing (tools/install-deps.sh --test)" >&2; exit 1; }
  done
  for module in playwright-core puppeteer-core; do
    [ -d "$root/tests/browser/node_modules/$module" ] ||
      { echo "$0: $module is missing (tools/install-deps.sh --test)" >&2; exit 1; }
  done
  server=$(realpath "$1")
  plugin_dir=$(realpath "$2")
  shift 2
  exec "$root/tests/netns-run.sh" bash "$here/run.sh" "$server" "$plugin_dir" "$@"
fi

# ---- inside the namespace ----
server=$1
export GST_PLUGIN_PATH=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wcc-click-to-frame.XXXXXX")
export GST_REGISTRY=$tmp/registry.bin
server_pid=""
node_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$node_pid" ]; then kill -KILL -- "-$node_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: >"$tmp/server.out"
"$server" --address 127.0.0.1 --port 0 --web-root "$root/examples/web" \
  >>"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's|^Listening on \(http://[^ ]*\)$|\1|p' "$tmp/server.out" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "$0: the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "$0: the server printed no URL within 10 s" >&2; exit 1; }

# A process group of its own (the browsers, gst-launch-1.0), ended by cleanup; profiles in $tmp.
TMPDIR=$tmp setsid --wait node "$here/click-to-frame.mjs" "$url" "$@" &
node_pid=$!
set +e
wait "$node_pid"
status=$?
set -e
node_pid=""
exit "$status"
