#!/usr/bin/env bash
# Runs the pipelines of examples/pipelines/ against each other through the real server:
# call.sh calls answer-display.sh (frames must reach its video sink), then call.sh calls
# record.sh (the file must hold playable VP8 and Opus of the call's length).
# Run inside tests/netns-run.sh. Needs WEBRTC_CALL_SERVER and GST_PLUGIN_PATH.
source "$(dirname "$0")/lib.sh"
examples=$(cd "$(dirname "$0")/../../examples/pipelines" && pwd)
start_server
echo "server: $url"

frames() { ls "$work/frames" 2>/dev/null | wc -l; }
enough_frames() { [ "$(frames)" -ge 30 ]; }

# 1. answer-display.sh shows the call: decoded frames reach its video sink.
mkdir "$work/frames"
VIDEO_SINK="pngenc ! multifilesink location=$work/frames/%05d.png" AUDIO_SINK=fakesink \
  "$examples/answer-display.sh" "$url" viewer >"$work/viewer.log" 2>&1 &
viewer=$!; track $viewer
"$examples/call.sh" "$url" caller viewer >"$work/caller.log" 2>&1 &
caller=$!; track $caller
if ! wait_for 20 enough_frames; then
  echo "FAIL: answer-display.sh showed $(frames) frames"; tail -n 20 "$work/viewer.log" "$work/caller.log"; exit 1
fi
echo "answer-display.sh: $(frames) frames displayed"
kill -INT "$caller" 2>/dev/null || true; wait "$caller" || true
# The caller hanging up ended the viewer's streams with EOS: it may have exited already.
kill -INT "$viewer" 2>/dev/null || true; wait "$viewer" || true

# 2. record.sh records the call without transcoding; the caller hanging up finishes the file.
"$examples/record.sh" "$url" recorder "$work/call.mkv" >"$work/recorder.log" 2>&1 &
recorder=$!; track $recorder
wait_for 10 grep -q "event=registered .*detail=recorder" "$work/server.log"
"$examples/call.sh" "$url" caller2 recorder >"$work/caller2.log" 2>&1 &
caller=$!; track $caller
if ! wait_for 20 test -s "$work/call.mkv"; then
  echo "FAIL: nothing recorded"; tail -n 20 "$work/recorder.log" "$work/caller2.log"; exit 1
fi
sleep 4  # not an assertion: the length of the recorded call
kill -INT "$caller" 2>/dev/null || true; wait "$caller" || true
# The hang-up ends the recorder's streams with EOS: it finishes the file and exits by itself.
if ! wait_for 15 sh -c "! kill -0 $recorder 2>/dev/null"; then
  echo "FAIL: record.sh did not finish after the caller hung up"; tail -n 20 "$work/recorder.log"; exit 1
fi
wait "$recorder" && status=0 || status=$?
[ "$status" -eq 0 ] || { echo "FAIL: record.sh exited $status"; tail -n 20 "$work/recorder.log"; exit 1; }

count() {  # count CAPS-FILTER-AND-DECODER: buffers decoded from the recording
  gst-launch-1.0 -v filesrc location="$work/call.mkv" ! matroskademux ! "$@" \
    ! fakesink silent=false 2>/dev/null | grep -c "chain" || true
}
video=$(count video/x-vp8 ! vp8dec)
audio=$(count audio/x-opus ! opusdec)
echo "record.sh: $video VP8 frames and $audio Opus packets decoded from $(stat -c %s "$work/call.mkv") bytes"
[ "$video" -ge 30 ] || { echo "FAIL: only $video video frames in the recording"; exit 1; }
[ "$audio" -ge 100 ] || { echo "FAIL: only $audio audio packets in the recording"; exit 1; }
echo "PASS"
