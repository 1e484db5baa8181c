// When to try again after a failed or lost connection: capped exponential backoff with jitter.
//
// Pure (no clock, no randomness of its own), so the element, the tests and the benchmarks use
// the same policy. The n-th delay (n = 0, 1, ...) is drawn from [d/2, d] with
// d = min(initial * 2^n, max): "equal jitter". The lower half keeps a client from hammering a
// server that is down; the upper half spreads clients that lost the same server at the same
// moment over time, so a restarted server is not hit by all of them at once.
#pragma once

#include <algorithm>
#include <cstdint>

namespace signaling {

class Backoff {
 public:
  // Delays in milliseconds. `max_ms` below `initial_ms` is raised to it.
  Backoff(std::uint32_t initial_ms, std::uint32_t max_ms)
      : initial_ms_(std::max<std::uint32_t>(initial_ms, 1)),
        max_ms_(std::max(max_ms, initial_ms_)) {}

  // The delay before the next attempt; `random` is any uniformly random 32-bit value.
  std::uint32_t next_delay_ms(std::uint32_t random) {
    std::uint64_t d = initial_ms_;
    for (unsigned i = 0; i < attempts_ && d < max_ms_; ++i) d *= 2;
    d = std::min<std::uint64_t>(d, max_ms_);
    ++attempts_;
    std::uint64_t half = d / 2;
    return static_cast<std::uint32_t>(d - half + random % (half + 1));
  }

  // A connection succeeded: the next failure starts again from the initial delay.
  void reset() { attempts_ = 0; }
  // Attempts since the last reset.
  unsigned attempts() const { return attempts_; }
  void set_max_ms(std::uint32_t max_ms) { max_ms_ = std::max(max_ms, initial_ms_); }
  std::uint32_t max_ms() const { return max_ms_; }

 private:
  std::uint32_t initial_ms_;
  std::uint32_t max_ms_;
  unsigned attempts_ = 0;
};

}  // namespace signaling
