#!/usr/bin/env bash
# Runs a command inside a network namespace of its own, so WebRTC peers (ICE) never see or
# use the machine's real interfaces. The namespace has lo and a veth pair with 10.77.0.1/24
# and 10.77.0.2/24 (libnice and Chromium gather no loopback candidates). It vanishes with the
# command, also when the command fails or is killed: nothing to clean up.
#   tests/netns-run.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${WCC_IN_NETNS:-}" != 1 ]; then
  export WCC_IN_NETNS=1
  if [ "$(id -u)" -eq 0 ]; then
    exec unshare --net -- "$0" "$@"
  fi
  exec unshare --map-root-user --net -- "$0" "$@"
fi
ip link set lo up
ip link add wcc0 type veth peer name wcc1
ip addr add 10.77.0.1/24 dev wcc0
ip addr add 10.77.0.2/24 dev wcc1
ip link set wcc0 up
ip link set wcc1 up
exec "$@"
