#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine: installs what it needs, builds, and starts the
# signaling server with the web client on http://localhost:8443 (Ctrl-C stops it).
# Open the URL in two browser tabs, log in with two names and call one from the other.
# Extra arguments go to webrtc-call-server (see --help), e.g. --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
builddir=${BUILDDIR:-build}
[ -f "$builddir/build.ninja" ] || meson setup "$builddir"
meson compile -C "$builddir" webrtc-call-server >/dev/null
exec "$builddir/signaling/webrtc-call-server" --port 8443 "$@"
