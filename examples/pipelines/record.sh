#!/bin/sh
# Answers a call and records it as received, without transcoding (VP8 + Opus in Matroska).
#   examples/pipelines/record.sh ws://localhost:8443/ws MYNAME call.mkv
# The file is finished when the caller hangs up (the element ends the call's streams with
# EOS) or on Ctrl-C (-e sends EOS).
SERVER=${1:?signaling server URI}; NAME=${2:?your name}; FILE=${3:-call.mkv}
exec gst-launch-1.0 -e \
  webrtccall name=call signaling-server="$SERVER" username="$NAME" output-encoded=true \
  matroskamux name=mux ! filesink location="$FILE" \
  call.video_src_0 ! queue ! mux. \
  call.audio_src_0 ! queue ! opusparse ! mux.
