// The bitrate of an encoder shared by many viewers. One encoder feeds every call of its codec,
// so its bitrate cannot suit each viewer: this policy keeps one loss-based estimate per viewer
// and gives the encoder one target between `min-video-bitrate` and `video-bitrate`.
//
// Per viewer (each receiver report's fraction lost, once per stats-interval):
//   loss > 10 %       estimate *= 1 - loss / 2          (back off, as GCC's loss controller)
//   loss < 2 %        estimate *= 1.05                   (grow slowly: +5 % per report)
//   otherwise         estimate kept
// clamped to [min, max]; a new viewer starts at the encoder's current target.
//
// The encoder follows the weakest viewer while there are few (fewer than `few_viewers`, 5);
// with more it ignores the worst `ignore_worst` share (10 %, at least one viewer) and follows
// the weakest of the rest, so that one bad link does not degrade everyone. The target changes
// at most once every `min_change_interval_us` (3 s) and only by 5 % or more (or to a bound).
// Pure: no GStreamer; the element feeds it from its statistics (stats-collector.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace webrtccall {

struct BitratePolicyConfig {
  unsigned min_kbps = 150;
  unsigned max_kbps = 1000;
  double backoff_loss = 0.10;
  double grow_loss = 0.02;
  double grow_factor = 1.05;
  unsigned few_viewers = 5;
  double ignore_worst = 0.10;
  std::int64_t min_change_interval_us = 3'000'000;
  double min_change = 0.05;
};

class BitratePolicy {
 public:
  explicit BitratePolicy(BitratePolicyConfig config = {});

  // Bounds changed (properties set while playing): estimates are clamped to them.
  void set_config(const BitratePolicyConfig& config);
  const BitratePolicyConfig& config() const { return config_; }

  // A receiver report of `viewer`: `loss` is its fraction lost (0..1).
  void report(const std::string& viewer, double loss);
  void remove(const std::string& viewer);
  std::size_t viewers() const { return estimates_.size(); }
  std::optional<double> estimate(const std::string& viewer) const;

  // What the encoder should follow now (kbit/s), whether or not it may change yet.
  unsigned wanted_kbps() const;
  // The encoder's target: returns a new one when it should change at `now_us`, else nothing.
  std::optional<unsigned> update(std::int64_t now_us);
  unsigned target_kbps() const { return target_kbps_; }

 private:
  double clamp(double kbps) const;

  BitratePolicyConfig config_;
  std::map<std::string, double> estimates_;
  unsigned target_kbps_;
  std::int64_t changed_us_ = 0;
  bool changed_once_ = false;
};

}  // namespace webrtccall
