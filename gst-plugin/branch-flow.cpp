#include "branch-flow.h"

#include <algorithm>

namespace webrtccall {

KeyframeGate::Verdict KeyframeGate::frame(bool connected, bool keyframe, bool discont) {
  if (!connected) return Verdict::kSkip;
  if (wait_) {
    if (keyframe) {
      wait_ = false;
      started_ = true;
      return Verdict::kPass;
    }
    return started_ ? Verdict::kDrop : Verdict::kSkip;
  }
  if (!keyframe && discont) {
    wait_ = true;
    return Verdict::kDropAndRequest;
  }
  return Verdict::kPass;
}

std::int64_t stalled_for_s(const BranchTimes& t, std::int64_t now_us, std::int64_t timeout_us) {
  if (timeout_us <= 0 || t.connected_us == 0) return -1;
  std::int64_t since = std::max({t.last_out_us, t.linked_us, t.connected_us});
  bool input_flows = t.last_in_us > 0 && now_us - t.last_in_us < 1000000;
  if (!input_flows || now_us - since <= timeout_us) return -1;
  return (now_us - since) / 1000000;
}

}  // namespace webrtccall
