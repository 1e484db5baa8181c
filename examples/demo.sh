#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine: installs what it needs, builds, and starts
#  - the signaling server with the web client on http://localhost:8443, and
#  - a pipeline user named "gstreamer" (examples/pipelines/demo-user.py, the webrtccall
#    element) that answers calls with a moving test pattern and a tone, and sends each
#    caller's own video back picture-in-picture.
# Open the URL, log in with any name and call "gstreamer" (or another tab). Ctrl-C stops all
# of it (the server and the pipeline), and so does SIGTERM (a script that starts this in the
# background must use SIGTERM: bash ignores SIGINT in background jobs of scripts).
#   examples/demo.sh [--port N] [--name NAME] [--user-uri URI] [--no-build] [SERVER FLAGS...]
# --no-build: use what BUILDDIR (default build) has, install and build nothing. Other
# arguments go to webrtc-call-server (see --help), e.g. --tls-cert cert.pem --tls-key key.pem.
# The pipeline user connects to ws://127.0.0.1:PORT/ws, or with TLS (the server then takes
# wss only) to wss://localhost:PORT/ws trusting the --tls-cert file (a self-signed
# certificate for localhost, as printed below); --user-uri names another server URI for it
# (e.g. wss://DOMAIN:PORT/ws for a certificate of DOMAIN).
set -euo pipefail
cwd=$PWD
cd "$(dirname "$0")/.."
# A file named on the command line, relative to where the script was started.
here_path() { case $1 in /*) echo "$1" ;; *) echo "$cwd/$1" ;; esac; }

port=8443
name=gstreamer
build=1
user_uri=""
tls_cert=""
server_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    --name) name=${2:?--name needs a name}; shift 2 ;;
    --name=*) name=${1#--name=}; shift ;;
    --user-uri) user_uri=${2:?--user-uri needs a URI}; shift 2 ;;
    --user-uri=*) user_uri=${1#--user-uri=}; shift ;;
    --tls-cert | --tls-key)
      f=$(here_path "${2:?$1 needs a file}")
      [ "$1" = --tls-cert ] && tls_cert=$f
      server_args+=("$1" "$f"); shift 2 ;;
    --tls-cert=* | --tls-key=*)
      f=$(here_path "${1#*=}")
      [ "${1%%=*}" = --tls-cert ] && tls_cert=$f
      server_args+=("${1%%=*}" "$f"); shift ;;
    --no-build) build=0; shift ;;
    *) server_args+=("$1"); shift ;;
  esac
done

builddir=${BUILDDIR:-build}
if [ "$build" = 1 ]; then
  tools/install-deps.sh
  [ -f "$builddir/build.ninja" ] || meson setup "$builddir"
  meson compile -C "$builddir" webrtc-call-server gstwebrtccall >/dev/null
fi
server_bin=$builddir/signaling/webrtc-call-server
[ -x "$server_bin" ] || { echo "demo: $server_bin is missing (run without --no-build)" >&2; exit 1; }
export GST_PLUGIN_PATH="$builddir/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
# Debian's Python, which has the GStreamer bindings (python3-gi), not one earlier in PATH.
python=${DEMO_PYTHON:-/usr/bin/python3}

logdir=$(mktemp -d "${TMPDIR:-/tmp}/webrtc-call-demo.XXXXXX")
server_pid=""
user_pid=""
# shellcheck disable=SC2317  # run by the traps
stop() {
  trap - INT TERM EXIT
  local pids="$user_pid $server_pid"
  # The pipeline first: it hangs up on its calls while the server still relays that.
  [ -n "$user_pid" ] && kill -TERM "$user_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$user_pid" 2>/dev/null || break; sleep 0.1; done
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$logdir"
}
trap stop EXIT
trap 'echo; echo "demo: stopping"; stop; exit 0' INT TERM

: >"$logdir/server.out"
"$server_bin" --port "$port" "${server_args[@]}" >"$logdir/server.out" 2>"$logdir/server.log" &
server_pid=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's|^Listening on \(https\?://[^ ]*\)$|\1|p' "$logdir/server.out" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "demo: the server did not start:" >&2
  cat "$logdir/server.out" "$logdir/server.log" >&2
  exit 1
fi
port=$(echo "$url" | sed -n 's|.*:\([0-9]*\)/$|\1|p')

scheme=${url%%://*}
ca_file=()
if [ -z "$user_uri" ] && [ "$scheme" = https ]; then
  user_uri="wss://localhost:$port/ws"
  ca_file=("$tls_cert")
fi
user_uri=${user_uri:-ws://127.0.0.1:$port/ws}
"$python" examples/pipelines/demo-user.py "$user_uri" "$name" "${ca_file[@]}" &
user_pid=$!

cat <<EOF

  Open $url in a browser on this machine, log in with any name, and call "$name".
  It answers with a test pattern and a tone, and shows your camera back in a corner.

  From another machine the browser needs https (camera access): stop this (Ctrl-C), make a
  certificate and start again with it (README, TLS):
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \\
      -subj "/CN=\$(hostname)" -addext "subjectAltName=DNS:\$(hostname),DNS:localhost" \\
      -keyout key.pem -out cert.pem
    examples/demo.sh --tls-cert cert.pem --tls-key key.pem
  then open https://$(hostname):$port on the other machine (accept the warning once).
EOF
[ "$scheme" = https ] && echo "  (TLS is on: https://$(hostname):$port works from other machines now.)"
cat <<EOF

  The pipeline user "$name" connects to $user_uri.
  Server log: $logdir/server.log. Ctrl-C stops the server and the pipeline.

EOF

# Until Ctrl-C (the trap), or until one of them exits by itself (then the other is stopped).
set +e
wait -n "$server_pid" "$user_pid"
status=$?
set -e
echo "demo: $( kill -0 "$server_pid" 2>/dev/null && echo "the pipeline user" || echo "the server") exited ($status)" >&2
[ -s "$logdir/server.log" ] && tail -n 5 "$logdir/server.log" >&2
exit 1
