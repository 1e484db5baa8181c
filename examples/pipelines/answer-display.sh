#!/bin/sh
# Answers calls and shows (and plays) what the caller sends.
#   examples/pipelines/answer-display.sh ws://localhost:8443/ws MYNAME
# gst-launch links the source pads of the first call only; an application links each call's
# pads as they appear (pad-added; the pad's "peer" property says whose they are).
# VIDEO_SINK / AUDIO_SINK override the sinks (e.g. fakesink for a headless run).
SERVER=${1:?signaling server URI}; NAME=${2:?your name}
exec gst-launch-1.0 \
  webrtccall name=call signaling-server="$SERVER" username="$NAME" \
  call.video_src_0 ! queue ! videoconvert ! ${VIDEO_SINK:-autovideosink} \
  call.audio_src_0 ! queue ! audioconvert ! audioresample ! ${AUDIO_SINK:-autoaudiosink}
