// The `peer` property as a list of users to call (pure C++, no GStreamer): which users are
// listed, which to dial now, and each one's redial backoff (1 s, 2 s, 4 s ... up to 30 s),
// kept per user so that one user failing never delays the others.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace webrtccall {

// "alice, bob,,carol" -> {alice, bob, carol}: comma separated, blanks trimmed, empty names
// and repeats dropped, order kept. One name is a list of one.
std::vector<std::string> parse_peer_list(std::string_view text);

class PeerDialer {
 public:
  // The listed users; those still listed keep their backoff, the others are forgotten.
  void set_peers(std::vector<std::string> peers);
  const std::vector<std::string>& peers() const { return peers_; }
  bool listed(const std::string& user) const;

  // Listed users to call at `now_us`, in list order: `callable(user)` (online, not in a call,
  // not hung up on us) and no redial pending for later.
  std::vector<std::string> due(std::int64_t now_us,
                               const std::function<bool(const std::string&)>& callable) const;
  // A call with a listed user ended (or could not start): it is due again after its next
  // backoff step, unless a redial is already pending. Returns that redial's time.
  std::int64_t schedule_retry(const std::string& user, std::int64_t now_us);
  // The call connected, or the user went offline: the next failure redials after 1 s again.
  void reset(const std::string& user);
  // The earliest redial after `now_us`, if any (when to look at due() again).
  std::optional<std::int64_t> next_retry_us(std::int64_t now_us) const;
  unsigned attempts(const std::string& user) const;

  static constexpr unsigned kMaxDelayS = 30;

 private:
  struct State {
    unsigned attempts = 0;
    std::int64_t retry_at_us = 0;  // 0: none
  };
  std::vector<std::string> peers_;
  std::map<std::string, State> state_;
};

}  // namespace webrtccall
