#!/usr/bin/env bash
# Installs what gst-webrtc-call needs on Debian 12, and nothing that is already there.
# Idempotent: run it as often as you like. Debian packages only, plus playwright-core and
# puppeteer-core from npm for the browser tests (they drive Debian's /usr/bin/chromium and
# /usr/bin/firefox-esr; no browser is ever downloaded).
#   tools/install-deps.sh          build and run (the demo)
#   tools/install-deps.sh --test   also everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

build_pkgs=(
  g++ meson ninja-build pkg-config
  libglib2.0-dev libsoup-3.0-dev libjson-glib-dev glib-networking liburing-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev libnice-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-nice
  python3-gi gir1.2-gstreamer-1.0  # the demo's pipeline user (examples/pipelines/demo-user.py)
)
test_pkgs=(
  libgtest-dev libgmock-dev
  chromium firefox-esr nodejs npm iproute2 curl openssl procps coturn nftables
  python3-matplotlib  # bench/soak plots (bench/results/*.png)
  # The libFuzzer build (clang's libFuzzer and sanitizer runtimes) and symbolized stacks.
  clang libclang-rt-14-dev llvm
)

pkgs=("${build_pkgs[@]}")
[ "$want_tests" = 1 ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  # A Node.js from elsewhere (e.g. nodesource) is fine: only install Debian's when there is none.
  if { [ "$p" = nodejs ] && command -v node >/dev/null; } || { [ "$p" = npm ] && command -v npm >/dev/null; }; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$want_tests" = 1 ]; then
  # The versions pinned in package.json against those in node_modules.
  stale=0
  for module in playwright-core puppeteer-core; do
    want=$(sed -n "s/.*\"$module\": \"\([0-9.]*\)\".*/\1/p" tests/browser/package.json)
    have=$(sed -n 's/^  "version": "\(.*\)",/\1/p' "tests/browser/node_modules/$module/package.json" 2>/dev/null || true)
    [ "$want" = "$have" ] || stale=1
  done
  if [ "$stale" = 1 ]; then
    echo "Installing playwright-core and puppeteer-core (pinned in tests/browser/package-lock.json)"
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
      npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
