#include "peer-list.h"

#include <algorithm>

namespace webrtccall {

std::vector<std::string> parse_peer_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.empty()) continue;
    std::string name(item);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

void PeerDialer::set_peers(std::vector<std::string> peers) {
  peers_ = std::move(peers);
  std::erase_if(state_, [&](const auto& entry) { return !listed(entry.first); });
}

bool PeerDialer::listed(const std::string& user) const {
  return std::find(peers_.begin(), peers_.end(), user) != peers_.end();
}

std::vector<std::string> PeerDialer::due(
    std::int64_t now_us, const std::function<bool(const std::string&)>& callable) const {
  std::vector<std::string> out;
  for (const std::string& p : peers_) {
    auto it = state_.find(p);
    if (it != state_.end() && it->second.retry_at_us > now_us) continue;
    if (callable(p)) out.push_back(p);
  }
  return out;
}

std::int64_t PeerDialer::schedule_retry(const std::string& user, std::int64_t now_us) {
  State& s = state_[user];
  if (s.retry_at_us > now_us) return s.retry_at_us;
  // 1 s, 2 s, 4 s ... up to 30 s between attempts.
  std::int64_t delay_s = std::min<std::int64_t>(kMaxDelayS, 1 << std::min(s.attempts, 5u));
  s.attempts++;
  s.retry_at_us = now_us + delay_s * 1000000;
  return s.retry_at_us;
}

void PeerDialer::reset(const std::string& user) {
  state_.erase(user);
}

std::optional<std::int64_t> PeerDialer::next_retry_us(std::int64_t now_us) const {
  std::optional<std::int64_t> next;
  for (const auto& [user, s] : state_) {
    if (s.retry_at_us > now_us && (!next || s.retry_at_us < *next)) next = s.retry_at_us;
  }
  return next;
}

unsigned PeerDialer::attempts(const std::string& user) const {
  auto it = state_.find(user);
  return it == state_.end() ? 0 : it->second.attempts;
}

}  // namespace webrtccall
