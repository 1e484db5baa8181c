#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what it needs, builds with
# warnings as errors and runs every suite (unit, server, element, browser, fuzz).
# Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
builddir=${BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --werror
else
  meson configure "$builddir" -Dwerror=true >/dev/null
fi
meson compile -C "$builddir"
meson test -C "$builddir" --print-errorlogs "$@"
