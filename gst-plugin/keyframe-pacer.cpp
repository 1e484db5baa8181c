#include "keyframe-pacer.h"

namespace webrtccall {

KeyframePacer::Step KeyframePacer::send(std::int64_t now_us) {
  pending_ = false;
  have_last_ = true;
  last_us_ = now_us;
  ++counts_.sent;
  return {Action::kSendNow, 0};
}

KeyframePacer::Step KeyframePacer::request(std::int64_t now_us) {
  ++counts_.requested;
  if (pending_) {
    ++counts_.coalesced;
    return {Action::kWait, last_us_ + interval_};
  }
  if (window_open(now_us)) return send(now_us);
  pending_ = true;
  return {Action::kWait, last_us_ + interval_};
}

KeyframePacer::Step KeyframePacer::tick(std::int64_t now_us) {
  if (!pending_) return {};
  if (window_open(now_us)) return send(now_us);
  return {Action::kWait, last_us_ + interval_};  // early: wait again
}

KeyframePacer::Step KeyframePacer::keyframe_out(std::int64_t now_us) {
  (void)now_us;
  ++counts_.produced;
  if (pending_) {
    // Whoever asked gets this one: it left the encoder after their request.
    pending_ = false;
    ++counts_.coalesced;
  }
  return {};
}

KeyframePacer::Step KeyframePacer::set_min_interval(std::int64_t min_interval_us,
                                                    std::int64_t now_us) {
  interval_ = min_interval_us;
  if (!pending_) return {};
  return tick(now_us);
}

}  // namespace webrtccall
