// When an encoder (or an encoded source) is asked for a keyframe: pure C++, no GStreamer.
//
// Every call of one encoder shares its output, so one keyframe serves every viewer. Requests
// (a call connected or renegotiated, a PLI/FIR from any viewer) arrive from all of them: with
// 100 viewers, 100 keyframes a second would be all the encoder sends. The pacer lets at most
// one requested keyframe through per `min_interval` (keyframe-interval-min), counted from the
// last one it let through. A request inside the window is never lost: all requests of a window
// become one keyframe at its end, unless a keyframe leaves the encoder before (the one asked
// for, or one of its own every keyframe-max-dist frames), which serves them all. The
// encoder's own keyframes do not close the window: its first one, put out when it starts
// before any call is connected, would make the first viewer wait a whole window.
//
//   event                      window open (no keyframe for min_interval)   window closed
//   request                    kSendNow (the window closes now)             pending: kWait
//                                                                          until the window's
//                                                                          end (one timer)
//   timer at the window's end  (nothing pending: kNone)                     pending: kSendNow
//   keyframe out of encoder    a pending request is served by it (kNone: the timer then has
//                              nothing to do); the window stays as it is
//   min_interval 0             every request is kSendNow
#pragma once

#include <cstdint>

namespace webrtccall {

class KeyframePacer {
 public:
  enum class Action {
    kNone,     // nothing to do
    kSendNow,  // ask the encoder for a keyframe now
    kWait,     // a keyframe is pending: call tick() at wake_us
  };
  struct Step {
    Action action = Action::kNone;
    std::int64_t wake_us = 0;  // kWait: when the window ends
  };
  struct Counts {
    std::uint64_t requested = 0;  // requests taken
    std::uint64_t sent = 0;       // keyframes asked of the encoder (kSendNow)
    std::uint64_t coalesced = 0;  // requests that joined a pending one or were served by a
                                  // keyframe already on its way
    std::uint64_t produced = 0;   // keyframes that left the encoder (forced or not)
  };

  explicit KeyframePacer(std::int64_t min_interval_us = 1000000) : interval_(min_interval_us) {}

  // A keyframe is wanted (any viewer).
  Step request(std::int64_t now_us);
  // The timer set by a kWait fired (it may fire early or late: it checks).
  Step tick(std::int64_t now_us);
  // A keyframe left the encoder (the one we asked for or one of its own).
  Step keyframe_out(std::int64_t now_us);
  // keyframe-interval-min changed; a pending request is then due at the new window's end.
  Step set_min_interval(std::int64_t min_interval_us, std::int64_t now_us);

  bool pending() const { return pending_; }
  std::int64_t min_interval_us() const { return interval_; }
  const Counts& counts() const { return counts_; }

 private:
  bool window_open(std::int64_t now_us) const {
    return !have_last_ || interval_ <= 0 || now_us - last_us_ >= interval_;
  }
  Step send(std::int64_t now_us);

  std::int64_t interval_;
  bool have_last_ = false;
  std::int64_t last_us_ = 0;  // the last keyframe asked for
  bool pending_ = false;
  Counts counts_;
};

}  // namespace webrtccall
