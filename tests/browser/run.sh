#!/usr/bin/env bash
# The browser tests: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
# runs the web client against the server under test.
#   tests/browser/run.sh SERVER-BINARY WEB-ROOT [TEST]
# (TEST reconnect.test.mjs: the server dies under a call and comes back; the pages reconnect.)
# (TEST glare.test.mjs: a page and a pipeline call each other at once; needs what
# element.test.mjs needs. TEST demo.test.mjs: runs examples/demo.sh, which starts a server of
# its own, and calls its pipeline user; needs Debian's python3-gi too. TEST outcomes.test.mjs:
# why calls end, as the page tells it; needs what element.test.mjs needs. TEST spoof.test.mjs: a third user's hang-ups, answers, candidates and
# offer do not disturb a call between two pages.)
# (TEST mdn.test.mjs, late-track.test.mjs, seed.test.mjs: pages of foreign browser apps,
# tests/browser/apps, against pipelines and each other, through servers the test starts; need
# what element.test.mjs needs. mdn-web.test.mjs: the mdn-like page and the web client.)
# (TEST firefox.test.mjs: Debian's firefox-esr, driven by puppeteer-core, with Chromium and
# pipelines; needs what element.test.mjs needs.)
# (TEST watch.test.mjs: the watch page (?watch=NAME) in Chromium and Firefox, viewers of a
# pipeline. It runs in two namespaces (tests/netns-pair-run.sh): the server (on 10.77.1.1) and
# the pipelines in the sender's, node and its browsers in the viewers' (10.77.1.2); node starts
# the pipelines in the sender's namespace with nsenter (WCC_PIPELINE_EXEC, pipeline.mjs). Needs
# what firefox.test.mjs needs, and root.)
# TEST is call.test.mjs (the default: two pages call each other, chat, hang up, decline, ...)
# or element.test.mjs (pages and gst-launch-1.0 pipelines with the webrtccall element call
# each other; needs gst-launch-1.0 and GST_PLUGIN_PATH with the built plugin).
# Everything runs in a network namespace of its own (made here, gone when the script exits,
# also on failure): ICE must never see the machine's real interfaces. It holds lo and a veth
# pair (10.77.0.1/24, 10.77.0.2/24), since Chromium gathers no loopback candidates.
# Exits 77 (skip) when Chromium, Node.js or playwright-core (tools/install-deps.sh --test) is
# missing, or gst-launch-1.0 for element.test.mjs, or firefox-esr or puppeteer-core for
# firefox.test.mjs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 SERVER-BINARY WEB-ROOT [call.test.mjs|element.test.mjs]" >&2
  exit 2
fi
test_script=${3:-call.test.mjs}
case $test_script in
  call.test.mjs | element.test.mjs | reconnect.test.mjs | glare.test.mjs | spoof.test.mjs | \
    demo.test.mjs | outcomes.test.mjs | firefox.test.mjs | watch.test.mjs) ;;
  mdn.test.mjs | late-track.test.mjs | seed.test.mjs | mdn-web.test.mjs) ;;
  *) echo "$0: unknown test $test_script" >&2; exit 2 ;;
esac

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
  if [ "$test_script" = demo.test.mjs ]; then
    /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0")' 2>/dev/null ||
      skip "the demo's pipeline user needs Debian's python3-gi and gir1.2-gstreamer-1.0"
  fi
  if [ "$test_script" = firefox.test.mjs ] || [ "$test_script" = watch.test.mjs ]; then
    [ -x /usr/bin/firefox-esr ] || skip "/usr/bin/firefox-esr is missing (apt-get install firefox-esr)"
    [ -d "$here/node_modules/puppeteer-core" ] ||
      skip "puppeteer-core is missing (tools/install-deps.sh --test, or npm ci in tests/browser)"
  fi
  case $test_script in
    element.test.mjs | glare.test.mjs | demo.test.mjs | outcomes.test.mjs | mdn.test.mjs | \
      late-track.test.mjs | seed.test.mjs | firefox.test.mjs | watch.test.mjs)
      needs_element=1 ;;
    *) needs_element=0 ;;
  esac
  if [ "$needs_element" = 1 ]; then
    command -v gst-launch-1.0 >/dev/null ||
      skip "gst-launch-1.0 is missing (apt-get install gstreamer1.0-tools)"
    gst-inspect-1.0 webrtccall >/dev/null 2>&1 || {
      echo "FAIL: gst-inspect-1.0 finds no webrtccall element (GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-})" >&2
      exit 1
    }
  fi
  export WCC_BROWSER_IN_NETNS=1
  server=$(realpath "$1")
  web_root=$(realpath "$2")
  if [ "$test_script" = watch.test.mjs ]; then
    exec "$here/../netns-pair-run.sh" bash "$here/run.sh" "$server" "$web_root" "$test_script"
  fi
  exec "$here/../netns-run.sh" bash "$here/run.sh" "$server" "$web_root" "$test_script"
fi

# ---- inside the namespace (tests/netns-run.sh made it: lo, wcc0/wcc1) ----
# (or the sender's of tests/netns-pair-run.sh, for watch.test.mjs: node runs in the viewers')
server=$1
web_root=$2
listen_address=127.0.0.1
node_exec=()
if [ -n "${WCC_VIEWERS_EXEC:-}" ]; then
  listen_address=$WCC_SENDER_ADDRESS
  read -r -a node_exec <<<"$WCC_VIEWERS_EXEC"
  export WCC_PIPELINE_EXEC="nsenter --net=/proc/$$/ns/net"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wcc-browser.XXXXXX")
server_pid=""
node_pid=""
node_group=""
status=1
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  for pid in $node_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  # Whatever node started (Chromium, gst-launch-1.0) and left behind, e.g. when node was killed.
  if [ -n "$node_group" ]; then kill -KILL -- "-$node_group" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
    echo "---- server log (stderr) ----" >&2
    tail -n 200 "$tmp/server.log" >&2
    echo "---- end of server log ----" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The files exist before the loop below reads them: the background shell that opens them may
# not have run yet (sed then failed, and set -e ended the test with status 2).
: >"$tmp/server.out"
: >"$tmp/server.log"
"$server" --address "$listen_address" --port 0 --web-root "$web_root" \
  >>"$tmp/server.out" 2>>"$tmp/server.log" &
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

# In the background, so that a TERM (meson's timeout) is handled at once, not after node; in
# a process group of its own, so that cleanup can end whatever node started.
# reconnect.test.mjs starts and kills servers of its own. The browsers' profiles go into $tmp
# (TMPDIR), so that they are removed even when node is killed.
TMPDIR=$tmp WCC_SERVER_BIN=$server setsid --wait "${node_exec[@]}" node "$here/$test_script" "$url" &
node_pid=$!
node_group=$node_pid
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
