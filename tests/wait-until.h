// Shared by the test helpers that wait on their own mutex and condition variable
// (tests/element/peer.cpp, tests/viewer/viewer-process.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace test {

// With `lock` held on entry: true once `pred` (called unlocked) holds, false after
// `timeout_ms`. `pred` is checked again on each notify of `cond` and at least every `poll_ms`.
inline bool wait_until_locked(std::unique_lock<std::mutex>& lock, std::condition_variable& cond,
                              const std::function<bool()>& pred, int timeout_ms, int poll_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    lock.unlock();
    bool ok = pred();
    lock.lock();
    if (ok) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    cond.wait_for(lock, std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace test
