#!/usr/bin/env bash
# The browser test: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
# opens the web client twice, as alice and bob, and checks a call with video both ways, chat,
# hang-up and decline, against the server under test.
#   tests/browser/run.sh SERVER-BINARY WEB-ROOT
# Everything runs in a network namespace of its own (made here, gone when the script exits,
# also on failure): ICE must never see the machine's real interfaces. It holds lo and a veth
# pair (10.77.0.1/24, 10.77.0.2/24), since Chromium gathers no loopback candidates.
# Exits 77 (skip) when Chromium, Node.js or playwright-core (tools/install-deps.sh --test) is
# missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ $# -ne 2 ]; then
  echo "usage: $0 SERVER-BINARY WEB-ROOT" >&2
  exit 2
fi

skip() {
  echo "SKIP: $*" >&2
  exit 77
}

if [ "${WCC_BROWSER_IN_NETNS:-}" != 1 ]; then
  [ -x /usr/bin/chromium ] || skip "/usr/bin/chromium is missing (apt-get install chromium)"
  command -v node >/dev/null || skip "node is missing (apt-get install nodejs)"
  [ -d "$here/node_modules/playwright-core" ] ||
    skip "playwright-core is missing (tools/install-deps.sh --test, or npm ci in tests/browser)"
  [ -x "$1" ] || { echo "FAIL: server binary $1 not found or not executable" >&2; exit 1; }
  [ -f "$2/index.html" ] || { echo "FAIL: $2/index.html not found" >&2; exit 1; }
  export WCC_BROWSER_IN_NETNS=1
  server=$(realpath "$1")
  web_root=$(realpath "$2")
  if [ "$(id -u)" -eq 0 ]; then
    exec unshare --net -- bash "$here/run.sh" "$server" "$web_root"
  fi
  exec unshare --map-root-user --net -- bash "$here/run.sh" "$server" "$web_root"
fi

# ---- inside the namespace ----
server=$1
web_root=$2

ip link set lo up
ip link add wcc0 type veth peer name wcc1
ip addr add 10.77.0.1/24 dev wcc0
ip addr add 10.77.0.2/24 dev wcc1
ip link set wcc0 up
ip link set wcc1 up

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wcc-browser.XXXXXX")
server_pid=""
node_pid=""
status=1
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  for pid in $node_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
    echo "---- server log (stderr) ----" >&2
    tail -n 200 "$tmp/server.log" >&2
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$server" --address 127.0.0.1 --port 0 --web-root "$web_root" \
  >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!

url=""
for _ in $(seq 100); do
  url=$(sed -n 's|^Listening on \(http://[^ ]*\)$|\1|p' "$tmp/server.out" | head -n 1)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL: the server exited before listening" >&2
    cat "$tmp/server.out" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "FAIL: the server printed no 'Listening on http://...' line within 10 s" >&2
  cat "$tmp/server.out" >&2
  exit 1
fi
echo "server listening on $url"

# In the background, so that a TERM (meson's timeout) is handled at once, not after node.
node "$here/call.test.mjs" "$url" &
node_pid=$!
set +e
wait "$node_pid"
status=$?
set -e
node_pid=""
if [ "$status" -eq 0 ] && ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL: the server died during the test" >&2
  status=1
fi
exit "$status"
