#!/usr/bin/env bash
# bench/fanout: builds the program if needed and runs it (it runs itself inside
# tests/netns-pair-run.sh: a sender namespace 10.77.1.1 and a viewers' namespace 10.77.1.2,
# both gone when it ends). Prints a table; not a test. See bench/README.md, "fanout".
#   bench/fanout/run.sh [BUILDDIR=build] [--steps 1,10,25,...] [--epv-steps 1,2,4,...]
#                       [--only shared|per-viewer] [--window 10] [--verbose] ...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILDDIR:-$root/build}
meson compile -C "$build" -j2 fanout webrtc-call-server gstwebrtccall >&2
exec "$build/bench/fanout/fanout" "$@"
