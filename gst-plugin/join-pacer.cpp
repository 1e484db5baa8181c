#include "join-pacer.h"

#include <algorithm>

namespace webrtccall {

void JoinPacer::set_limits(unsigned max_connecting, std::int64_t hold_us) {
  max_connecting_ = max_connecting;
  hold_us_ = hold_us;
}

bool JoinPacer::hold(const std::string& peer, std::int64_t now_us, unsigned connecting) {
  if (held(peer)) return true;
  if (queue_.empty() && slot_free(connecting)) return false;
  queue_.push_back({peer, now_us});
  return true;
}

std::vector<std::string> JoinPacer::release(unsigned connecting) {
  std::vector<std::string> out;
  while (!queue_.empty() && slot_free(connecting + static_cast<unsigned>(out.size()))) {
    out.push_back(queue_.front().peer);
    queue_.erase(queue_.begin());
  }
  return out;
}

std::vector<std::string> JoinPacer::expire(std::int64_t now_us) {
  std::vector<std::string> out;
  std::erase_if(queue_, [&](const Held& h) {
    if (now_us - h.since_us < hold_us_) return false;
    out.push_back(h.peer);
    return true;
  });
  return out;
}

bool JoinPacer::may_start_outgoing(unsigned connecting) const {
  return queue_.empty() && slot_free(connecting);
}

void JoinPacer::remove(const std::string& peer) {
  std::erase_if(queue_, [&](const Held& h) { return h.peer == peer; });
}

bool JoinPacer::held(const std::string& peer) const {
  return std::any_of(queue_.begin(), queue_.end(), [&](const Held& h) { return h.peer == peer; });
}

std::optional<std::int64_t> JoinPacer::next_expiry_us() const {
  std::optional<std::int64_t> next;
  for (const Held& h : queue_) {
    if (!next || h.since_us + hold_us_ < *next) next = h.since_us + hold_us_;
  }
  return next;
}

}  // namespace webrtccall
