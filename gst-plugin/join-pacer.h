// Join pacing (pure C++, no GStreamer): at most `max-connecting` calls between their offer
// and connected at once. Further incoming offers are held in arrival order and answered when
// a slot frees, or refused after `hold` (the caller redials); outgoing calls of the `peer`
// list start only when a slot is free and no incoming offer is waiting. The engine counts the
// calls that are connecting (its calls not connected yet); the pacer keeps the queue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace webrtccall {

class JoinPacer {
 public:
  // max_connecting 0: no limit (nothing is ever held). hold_us: how long an offer may wait.
  void set_limits(unsigned max_connecting, std::int64_t hold_us);

  // An incoming offer from `peer` while `connecting` calls are connecting: false = start it
  // now; true = held (queued behind the others; a held peer's new offer keeps its place).
  bool hold(const std::string& peer, std::int64_t now_us, unsigned connecting);
  // Held offers that may start now, in arrival order (removed from the queue).
  std::vector<std::string> release(unsigned connecting);
  // Held offers waiting longer than `hold` (removed): to be refused.
  std::vector<std::string> expire(std::int64_t now_us);
  // An outgoing call may start: a slot is free and no incoming offer is waiting.
  bool may_start_outgoing(unsigned connecting) const;
  // The held offer of `peer` goes (the caller hung up, the pipeline stops).
  void remove(const std::string& peer);

  bool held(const std::string& peer) const;
  std::size_t size() const { return queue_.size(); }
  std::optional<std::int64_t> next_expiry_us() const;
  unsigned max_connecting() const { return max_connecting_; }

 private:
  bool slot_free(unsigned connecting) const {
    return max_connecting_ == 0 || connecting < max_connecting_;
  }
  struct Held {
    std::string peer;
    std::int64_t since_us;
  };
  unsigned max_connecting_ = 0;
  std::int64_t hold_us_ = 10000000;
  std::vector<Held> queue_;
};

}  // namespace webrtccall
