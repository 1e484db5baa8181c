#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what it needs, then
#  1. build/: builds with warnings as errors and runs every suite (unit, server, element,
#     browser, fuzz);
#  2. build-asan/: the same with AddressSanitizer and UBSan (-Db_sanitize=address,undefined):
#     every suite again, and any sanitizer report (or leak) fails its test
#     (tests/sanitizers/);
#  3. build-fuzz/: the libFuzzer build (clang, -Dfuzzing=enabled): each fuzz target runs
#     coverage-guided for -Dfuzz-seconds (40) with ASan and UBSan.
# Extra arguments go to `meson test` in 1 and 2 (e.g. --suite unit); 3 runs when there are
# none or they name the fuzz suite. STEPS="normal asan fuzz" picks steps (e.g. STEPS=normal
# for a quick local run); BUILDDIR, ASAN_BUILDDIR and FUZZ_BUILDDIR name the build dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
steps=" ${STEPS:-normal asan fuzz} "
times=()
# How long each step took, printed at the end (also when one fails).
trap 'printf "%s\n" "${times[@]}"' EXIT

# configure DIR MESON_SETUP_ARGS...: set up DIR once, then keep --werror on.
configure() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@"
  else
    meson configure "$dir" -Dwerror=true >/dev/null
  fi
}

# timed LABEL COMMAND...: runs it, and keeps how long it took for the summary.
timed() {
  local label=$1 start=$SECONDS status=0
  shift
  "$@" || status=$?
  times+=("$label: $((SECONDS - start)) s$([ $status -eq 0 ] || echo " (failed)")")
  return $status
}

if [[ $steps == *" normal "* ]]; then
  builddir=${BUILDDIR:-build}
  configure "$builddir"
  timed "build (normal)" meson compile -C "$builddir"
  timed "tests (normal)" meson test -C "$builddir" --print-errorlogs "$@"
fi

if [[ $steps == *" asan "* ]]; then
  asandir=${ASAN_BUILDDIR:-build-asan}
  # b_lundef=false: the plugin is a shared library whose sanitizer symbols come from the
  # runtime of the program that loads it.
  configure "$asandir" -Db_sanitize=address,undefined -Db_lundef=false
  timed "build (ASan+UBSan)" meson compile -C "$asandir"
  timed "tests (ASan+UBSan)" meson test -C "$asandir" --print-errorlogs "$@"
fi

if [[ $steps == *" fuzz "* ]] && { [ $# -eq 0 ] || [[ " $* " == *fuzz* ]]; }; then
  fuzzdir=${FUZZ_BUILDDIR:-build-fuzz}
  if [ ! -f "$fuzzdir/build.ninja" ]; then
    # b_lundef=false: shared modules (the plugin) get their sanitizer symbols from the program.
    CC=clang CXX=clang++ meson setup "$fuzzdir" --werror -Dfuzzing=enabled -Db_lundef=false
  fi
  # meson test builds only what the fuzz tests need (the targets and the code they link).
  timed "libFuzzer (build and run)" meson test -C "$fuzzdir" --print-errorlogs --suite fuzz
fi

