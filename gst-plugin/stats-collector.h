// The element's statistics: every `stats-interval` ms, on the signaling thread, asks each
// connected call's webrtcbin for its stats (get-stats), turns them into CallStats
// (call-stats.h), posts `webrtccall-stats` per call and `webrtccall-stats-total` once all
// calls answered, keeps the latest for the `stats` property, and feeds the bitrate policy of
// each shared video encoder (bitrate-policy.h), whose target it sets on the encoder.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "bitrate-policy.h"
#include "call-stats.h"

namespace webrtccall {

class Engine;
class Call;

class StatsCollector {
 public:
  explicit StatsCollector(Engine& engine);
  ~StatsCollector();

  // Signaling thread: start with the engine, stop before its calls go.
  void start();
  void stop();
  // A call ended (signaling thread): it leaves the statistics and its encoder's policy.
  void forget(const std::string& peer);
  // An encoder started or stopped (any thread): the targets are set again next round.
  void encoders_changed() { encoders_dirty_ = true; }
  // The latest statistics (the `stats` property): a structure `webrtccall-stats-all` with
  // `calls` (array of webrtccall-stats) and `total` (webrtccall-stats-total). Any thread.
  GstStructure* snapshot() const;

 private:
  void tick();
  void schedule(unsigned interval_ms);
  void on_stats(Call& call, const GstStructure* reply, unsigned round);
  void finish_round();
  void apply_policy(gint64 now_us);

  Engine& engine_;
  GSource* timer_ = nullptr;
  unsigned interval_ms_ = 0;
  unsigned round_ = 0;
  std::set<unsigned> waiting_;  // calls of this round whose stats have not come back
  bool idle_ = true;            // the last total posted had no calls (or none was posted yet)
  std::map<std::string, CallSample> previous_;       // per peer
  std::map<std::string, CallStats> latest_;          // per peer, this round's
  std::map<std::string, BitratePolicy> policies_;    // per video codec ("VP8") of an encoder
  std::map<std::string, std::string> viewer_codec_;  // peer -> the policy it feeds
  std::map<std::string, unsigned> applied_;          // codec -> the bitrate set on its encoders
  std::atomic<bool> encoders_dirty_{false};

  mutable std::mutex snapshot_mutex_;
  GstStructure* snapshot_ = nullptr;
};

}  // namespace webrtccall
