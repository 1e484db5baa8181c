#!/bin/sh
# Calls USER with a test pattern and a tone; shows nothing, sends everything.
#   examples/pipelines/call.sh ws://localhost:8443/ws MYNAME USER
# The element calls USER as soon as it is online, and again (with backoff) if the call fails.
SERVER=${1:?signaling server URI}; NAME=${2:?your name}; PEER=${3:?user to call}
exec gst-launch-1.0 -e \
  webrtccall name=call signaling-server="$SERVER" username="$NAME" peer="$PEER" \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 \
    ! call.video_0 \
  audiotestsrc is-live=true wave=ticks ! call.audio_0
