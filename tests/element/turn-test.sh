#!/usr/bin/env bash
# TURN: two elements whose direct path is blocked (nftables) can only call through a TURN
# relay. Without turn-servers the call fails with "ICE failed"; with Debian's coturn in this
# namespace it connects and video flows. Run inside tests/netns-run.sh; needs turnserver
# (coturn) and nft, WEBRTC_CALL_SERVER and GST_PLUGIN_PATH.
source "$(dirname "$0")/lib.sh"
command -v turnserver >/dev/null || { echo "SKIP: turnserver (coturn) is missing"; exit 77; }
command -v nft >/dev/null || { echo "SKIP: nft (nftables) is missing"; exit 77; }
# Both peers use 10.77.0.2 only; their packets to each other are dropped. The TURN server
# listens and relays on 10.77.0.1, which they can reach.
nft add table inet wcc
nft add chain inet wcc out '{ type filter hook output priority 0; }'
nft add rule inet wcc out ip saddr 10.77.0.2 ip daddr 10.77.0.2 drop
turnserver -n --listening-ip=10.77.0.1 --relay-ip=10.77.0.1 --listening-port=3478 \
  --min-port=49160 --max-port=49300 --lt-cred-mech --user=test:secret --realm=wcc.test \
  --no-tls --no-dtls --no-cli --userdb="$work/turndb" --pidfile="$work/turn.pid" \
  --log-file=stdout --simple-log >"$work/turn.log" 2>&1 &
track $!
start_server

# call NAME-SUFFIX EXTRA-PROPERTY: bob answers, alice calls; prints bob's log path
call() {
  local tag=$1 extra=$2
  gst-launch-1.0 -m -v webrtccall name=c "username=bob$tag" signaling-server="$url" \
    'ice-addresses=<"10.77.0.2">' "$extra" c.video_src_0 ! fakesink silent=false \
    >"$work/bob$tag.log" 2>&1 &
  track $!
  gst-launch-1.0 webrtccall name=c "username=alice$tag" "peer=bob$tag" signaling-server="$url" \
    'ice-addresses=<"10.77.0.2">' "$extra" \
    videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! c.video_0 \
    >"$work/alice$tag.log" 2>&1 &
  track $!
}
frames() { grep -c "last-message = chain" "$1" || true; }
has_frames() { [ "$(frames "$1")" -ge 30 ]; }

# 1. The block works: STUN alone finds no path.
call 1 'stun-server=stun://10.77.0.1:3478'
# (whichever side sees the failure first hangs up with reason "failed")
if ! wait_for 40 grep -q 'webrtccall-call-ended.*failed' "$work/bob1.log"; then
  echo "FAIL: without TURN the call should fail ICE (is the direct path really blocked?)"
  grep "webrtccall-" "$work/bob1.log" | tail -n 5; exit 1
fi
if grep -q "webrtccall-call-connected" "$work/bob1.log"; then
  echo "FAIL: without TURN the call connected: the direct path is not blocked"; exit 1
fi
echo "without TURN: ICE failed, as it must ($(frames "$work/bob1.log") frames)"

# 2. Through the relay.
call 2 'turn-servers=<"turn://test:secret@10.77.0.1:3478">'
if ! wait_for 30 has_frames "$work/bob2.log"; then
  echo "FAIL: no video through TURN"; grep "webrtccall-" "$work/bob2.log" | tail -n 5
  tail -n 20 "$work/turn.log"; exit 1
fi
grep -q "webrtccall-call-connected" "$work/bob2.log"
echo "with TURN: connected, $(frames "$work/bob2.log") frames received through the relay"
echo "PASS"
