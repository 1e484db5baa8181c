#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time (meson test --suite fuzz in a -Dfuzzing=enabled
# build). The corpus grows in a fresh WORKDIR; the seed corpus and the regression inputs are
# read, never written. Fails on any crash, sanitizer report, leak, timeout (-timeout) or
# memory over -rss_limit_mb, and says where the input that did it was saved.
#   run-libfuzzer.sh TARGET WORKDIR [-flag=value...] [SEED_DIR...]
set -euo pipefail
target=$1 work=$2
shift 2
flags=() dirs=()
for a in "$@"; do
  case $a in
    -*) flags+=("$a") ;;
    *) [ -d "$a" ] && dirs+=("$a") ;;  # a target may have no corpus or regressions yet
  esac
done
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
# Leaks are checked at exit and after each input that grew the heap (-detect_leaks=1, the
# default with ASan). UBSan halts on its first report (the build has -fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
"$target" -artifact_prefix="$work/artifacts/" -print_final_stats=1 "${flags[@]}" \
  "$work/corpus" "${dirs[@]}" || status=$?
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
  name=$(basename "$target" _fuzz)
  echo "FAILED (exit $status). The inputs that did it:" >&2
  ls -l "$work/artifacts" >&2
  echo "Reproduce with: $target FILE; keep it as tests/fuzz/regressions/$name/<what-it-shows>" >&2
  exit 1
fi
echo "$(ls "$work/corpus" | wc -l) new corpus inputs in $work/corpus"
