#include "bitrate-policy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace webrtccall {

BitratePolicy::BitratePolicy(BitratePolicyConfig config)
    : config_(config), target_kbps_(config.max_kbps) {}

void BitratePolicy::set_config(const BitratePolicyConfig& config) {
  config_ = config;
  if (config_.min_kbps > config_.max_kbps) config_.min_kbps = config_.max_kbps;
  for (auto& [viewer, kbps] : estimates_) kbps = clamp(kbps);
}

double BitratePolicy::clamp(double kbps) const {
  return std::clamp(kbps, static_cast<double>(config_.min_kbps),
                    static_cast<double>(config_.max_kbps));
}

void BitratePolicy::report(const std::string& viewer, double loss) {
  auto [it, fresh] = estimates_.try_emplace(viewer, clamp(target_kbps_));
  double& kbps = it->second;
  if (loss > config_.backoff_loss) {
    kbps *= 1 - std::min(loss, 1.0) / 2;
  } else if (loss < config_.grow_loss) {
    kbps *= config_.grow_factor;
  }
  kbps = clamp(kbps);
}

void BitratePolicy::remove(const std::string& viewer) {
  estimates_.erase(viewer);
}

std::optional<double> BitratePolicy::estimate(const std::string& viewer) const {
  auto it = estimates_.find(viewer);
  if (it == estimates_.end()) return std::nullopt;
  return it->second;
}

unsigned BitratePolicy::wanted_kbps() const {
  if (estimates_.empty()) return config_.max_kbps;
  std::vector<double> sorted;
  sorted.reserve(estimates_.size());
  for (const auto& [viewer, kbps] : estimates_) sorted.push_back(kbps);
  std::sort(sorted.begin(), sorted.end());
  std::size_t ignored = 0;
  if (sorted.size() >= config_.few_viewers) {
    ignored = std::max<std::size_t>(
        1, static_cast<std::size_t>(
               std::floor(static_cast<double>(sorted.size()) * config_.ignore_worst)));
  }
  return static_cast<unsigned>(std::lround(clamp(sorted[std::min(ignored, sorted.size() - 1)])));
}

std::optional<unsigned> BitratePolicy::update(std::int64_t now_us) {
  unsigned wanted = wanted_kbps();
  if (wanted == target_kbps_) return std::nullopt;
  if (changed_once_ && now_us - changed_us_ < config_.min_change_interval_us) return std::nullopt;
  bool at_bound = wanted == config_.min_kbps || wanted == config_.max_kbps;
  double change = std::abs(static_cast<double>(wanted) - target_kbps_) / target_kbps_;
  if (!at_bound && change < config_.min_change) return std::nullopt;
  target_kbps_ = wanted;
  changed_us_ = now_us;
  changed_once_ = true;
  return wanted;
}

}  // namespace webrtccall
