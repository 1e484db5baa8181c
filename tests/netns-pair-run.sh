#!/usr/bin/env bash
# Runs a command with two network namespaces of its own: the command's ("sender") and a
# second one ("viewers") joined to it by a veth pair, sender 10.77.1.1/24, viewers
# 10.77.1.2/24. Broadcast tests and benchmarks run the sender where the command runs and
# each viewer with `$WCC_VIEWERS_EXEC cmd...` (ip netns exec into the viewers' namespace),
# so their traffic crosses a link as it would between two machines, and neither side ever
# sees the machine's real interfaces. The signaling server listens on 10.77.1.1.
# Both namespaces go when the command ends, also when it fails or is killed by a signal:
# every process still in either of them is killed (a server or a viewer the command left
# behind would otherwise keep its namespace alive), the sender's namespace is anonymous
# (unshare) and goes with its last process, the viewers' is deleted by the trap below (and a
# stale one left by a SIGKILLed run is deleted by the next run).
#   tests/netns-pair-run.sh COMMAND [ARGS...]
# Needs root (CI runs as root): ip netns add cannot run in a user namespace.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: $0 needs root (ip netns add)"
  exit 77
fi
if [ "${WCC_IN_NETNS_PAIR:-}" != 1 ]; then
  export WCC_IN_NETNS_PAIR=1
  exec unshare --net -- "$0" "$@"
fi
# Stale viewer namespaces of runs that were SIGKILLed (their pid is gone).
for ns in $(ip netns list 2>/dev/null | awk '/^wcc-viewers-[0-9]+/ {print $1}'); do
  pid=${ns#wcc-viewers-}
  kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
done
ns="wcc-viewers-$$"
cleanup() {
  # Processes still in the viewers' namespace, then the namespace itself; then whatever the
  # command left running in the sender's (ours: same network namespace as this shell).
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  ip netns delete "$ns" 2>/dev/null || true
  local me p
  me=$(readlink /proc/$$/ns/net)
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$me" ] && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  return 0
}
trap cleanup EXIT
trap 'exit 143' TERM INT
ip netns add "$ns"
ip link set lo up
ip link add wccs0 type veth peer name wccv0
ip link set wccv0 netns "$ns"
ip addr add 10.77.1.1/24 dev wccs0
ip link set wccs0 up
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 10.77.1.2/24 dev wccv0
ip netns exec "$ns" ip link set wccv0 up
export WCC_VIEWERS_NETNS="$ns"
export WCC_VIEWERS_EXEC="ip netns exec $ns"
export WCC_SENDER_ADDRESS=10.77.1.1 WCC_VIEWERS_ADDRESS=10.77.1.2
# Not exec: the trap must run after the command.
"$@"
