// What a call's send branch does with the frames leaving its queue, and when a branch counts
// as stalled: pure C++, no GStreamer (call.cpp applies it in probes on the queue's pads).
//
// Video keyframe gate (one per video branch, run on the queue's streaming thread):
//   call not connected yet              every frame: kSkip (webrtcbin 1.22 would hold it, and
//                                       the remote could not decode what follows anyway)
//   connected, no keyframe passed yet   delta: kSkip; keyframe: kPass, the gate is open
//   open                                frames: kPass
//   open, a delta frame marked DISCONT  the queue leaked the frames before it (it marks the
//                                       next one DISCONT): kDropAndRequest (ask for a
//                                       keyframe), then deltas kDrop until a keyframe passes
// Audio has no gate.
#pragma once

#include <cstdint>
#include <string>

namespace webrtccall {

class KeyframeGate {
 public:
  enum class Verdict {
    kPass,
    kSkip,            // before the call's first keyframe (not a drop: nothing was lost yet)
    kDrop,            // after a leak, until the next keyframe (counted as dropped)
    kDropAndRequest,  // the first frame after a leak: dropped, and a keyframe is asked for
  };
  Verdict frame(bool connected, bool keyframe, bool discont);
  bool started() const { return started_; }

 private:
  bool wait_ = true;      // dropping until a keyframe
  bool started_ = false;  // a keyframe passed
};

// A connected call's branch is stalled when it forwarded nothing for `timeout_us` (counted from
// its last buffer out, and at the earliest from when it was linked and the call connected)
// while its input flows (a buffer in within the last second). timeout_us 0: never.
struct BranchTimes {
  std::int64_t last_in_us = 0, last_out_us = 0, linked_us = 0, connected_us = 0;
};
// Seconds the branch has forwarded nothing if it is stalled, else -1.
std::int64_t stalled_for_s(const BranchTimes& t, std::int64_t now_us, std::int64_t timeout_us);

}  // namespace webrtccall
