# Shared by the element shell tests (sourced). Gives: $work (a temporary folder), `track PID`
# (killed on exit, also on failure), `wait_for SECONDS COMMAND...` (polls every 0.2 s) and
# `start_server` (webrtc-call-server on 127.0.0.1, its WebSocket URL in $url).
set -euo pipefail
work=$(mktemp -d)
pids=()
track() { pids+=("$1"); }
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

start_server() {
  "$WEBRTC_CALL_SERVER" --address 127.0.0.1 --port 0 >"$work/server.out" 2>"$work/server.log" &
  track $!
  wait_for 5 grep -q Listening "$work/server.out" ||
    { echo "server did not start"; cat "$work/server.log"; exit 1; }
  url=$(sed -n 's#Listening on http://\(.*\)/#ws://\1/ws#p' "$work/server.out")
}
