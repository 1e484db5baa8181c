#include "stats-collector.h"

#include <gst/webrtc/webrtc.h>

#include <cmath>

#include "call.h"
#include "engine.h"
#include "gref.h"
#include "webrtccall-private.h"

GST_DEBUG_CATEGORY_EXTERN(webrtccall_debug);
#define GST_CAT_DEFAULT webrtccall_debug

namespace webrtccall {

namespace {

// A numeric field of any integer or floating type (webrtcbin mixes them), or `fallback`.
double number(const GstStructure* s, const char* field, double fallback = 0) {
  const GValue* v = gst_structure_get_value(s, field);
  if (!v) return fallback;
  GValue d = G_VALUE_INIT;
  g_value_init(&d, G_TYPE_DOUBLE);
  double out = fallback;
  if (g_value_type_transformable(G_VALUE_TYPE(v), G_TYPE_DOUBLE) && g_value_transform(v, &d)) {
    out = g_value_get_double(&d);
  }
  g_value_unset(&d);
  return out;
}

std::uint64_t counter(const GstStructure* s, const char* field) {
  double n = number(s, field);
  return n > 0 ? static_cast<std::uint64_t>(n) : 0;
}

const GstStructure* stats_entry(const GstStructure* reply, const char* id) {
  if (!id) return nullptr;
  const GValue* v = gst_structure_get_value(reply, id);
  return v && G_VALUE_HOLDS(v, GST_TYPE_STRUCTURE) ? gst_value_get_structure(v) : nullptr;
}

GstWebRTCStatsType stats_type(const GstStructure* s) {
  GstWebRTCStatsType type = static_cast<GstWebRTCStatsType>(0);
  gst_structure_get(s, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, nullptr);
  return type;
}

// webrtcbin's get-stats reply -> what call-stats.h takes. In webrtcbin 1.22 an outbound-rtp
// entry has no remote-id: its remote-inbound-rtp entry (from the remote's receiver reports)
// points back to it with local-id, and gives no jitter but the report block's (rb-jitter, in
// RTP clock units, inside its gst-rtpsource-stats). In a call that also receives, its
// outbound-rtp entries name a receive pad's codec (`codec-id` codec-stats-src_N, no
// mime-type) and may say kind=video for the audio: the codec of an outbound stream is the
// "encode" codec entry with its SSRC (codec-stats-sink_N), and its kind that codec's.
CallSample sample_of(const GstStructure* reply, gint64 now_us) {
  struct Ctx {
    const GstStructure* reply;
    std::map<std::string, OutboundSample> outbound;  // by stats id
    std::map<std::string, int> clock_rates;          // by outbound stats id
    std::vector<const GstStructure*> remote;
    std::map<std::uint32_t, const GstStructure*> encode_codecs;  // by SSRC
  } ctx{reply, {}, {}, {}, {}};
  gst_structure_foreach(
      reply,
      [](GQuark, const GValue* value, gpointer data) -> gboolean {
        auto* c = static_cast<Ctx*>(data);
        if (!G_VALUE_HOLDS(value, GST_TYPE_STRUCTURE)) return TRUE;
        const GstStructure* s = gst_value_get_structure(value);
        GstWebRTCStatsType type = stats_type(s);
        if (type == GST_WEBRTC_STATS_REMOTE_INBOUND_RTP) c->remote.push_back(s);
        if (type == GST_WEBRTC_STATS_CODEC && gst_structure_has_field(s, "ssrc") &&
            g_strcmp0(gst_structure_get_string(s, "codec-type"), "encode") == 0) {
          c->encode_codecs[static_cast<std::uint32_t>(counter(s, "ssrc"))] = s;
        }
        const char* id = gst_structure_get_string(s, "id");
        if (type != GST_WEBRTC_STATS_OUTBOUND_RTP || !id) return TRUE;
        OutboundSample out;
        out.ssrc = static_cast<std::uint32_t>(counter(s, "ssrc"));
        out.bytes_sent = counter(s, "bytes-sent");
        out.packets_sent = counter(s, "packets-sent");
        out.nacks = counter(s, "nack-count");
        out.plis = counter(s, "pli-count");
        out.firs = counter(s, "fir-count");
        if (const char* kind = gst_structure_get_string(s, "kind")) out.kind = kind;
        c->outbound[id] = std::move(out);
        c->clock_rates[id] = 0;
        return TRUE;
      },
      &ctx);
  for (auto& [id, out] : ctx.outbound) {
    auto encode = ctx.encode_codecs.find(out.ssrc);
    const GstStructure* s = stats_entry(reply, id.c_str());
    const GstStructure* codec =
        encode != ctx.encode_codecs.end()
            ? encode->second
            : stats_entry(reply, s ? gst_structure_get_string(s, "codec-id") : nullptr);
    if (!codec) continue;
    // "video/VP8": the kind and the encoding name.
    if (const char* mime = gst_structure_get_string(codec, "mime-type")) {
      std::string m = mime;
      auto slash = m.find('/');
      if (slash != std::string::npos) {
        out.kind = m.substr(0, slash);
        out.codec = m.substr(slash + 1);
      }
    }
    ctx.clock_rates[id] = static_cast<int>(number(codec, "clock-rate"));
  }
  for (const GstStructure* remote : ctx.remote) {
    const char* local = gst_structure_get_string(remote, "local-id");
    auto it = local ? ctx.outbound.find(local) : ctx.outbound.end();
    if (it == ctx.outbound.end()) continue;
    OutboundSample& out = it->second;
    out.has_report = true;
    out.packets_lost = static_cast<std::int64_t>(number(remote, "packets-lost"));
    out.fraction_lost = number(remote, "fraction-lost");
    double rtt = number(remote, "round-trip-time", -1);
    if (rtt > 0 && std::isfinite(rtt)) out.rtt_s = rtt;
    const GstStructure* rb = nullptr;
    if (const GValue* v = gst_structure_get_value(remote, "gst-rtpsource-stats");
        v && G_VALUE_HOLDS(v, GST_TYPE_STRUCTURE)) {
      rb = gst_value_get_structure(v);
    }
    int clock_rate = ctx.clock_rates[local];
    if (rb) {
      out.report_seq = static_cast<std::uint32_t>(counter(rb, "rb-exthighestseq"));
      if (clock_rate > 0) out.jitter_s = number(rb, "rb-jitter") / clock_rate;
    }
    if (gst_structure_has_field(remote, "jitter")) out.jitter_s = number(remote, "jitter");
  }
  CallSample sample;
  sample.time_us = now_us;
  for (auto& [id, out] : ctx.outbound) sample.streams.push_back(std::move(out));
  return sample;
}

GstStructure* call_structure(const CallStats& c) {
  GstStructure* s = gst_structure_new(
      "webrtccall-stats", "peer", G_TYPE_STRING, c.peer.c_str(), "bitrate", G_TYPE_DOUBLE,
      c.bitrate_kbps, "video-bitrate", G_TYPE_DOUBLE, c.video_bitrate_kbps, "packets-sent",
      G_TYPE_UINT64, static_cast<guint64>(c.packets_sent), "packets-lost", G_TYPE_INT64,
      static_cast<gint64>(c.packets_lost), "loss", G_TYPE_DOUBLE, c.loss, "rtt", G_TYPE_DOUBLE,
      c.rtt_ms.value_or(-1), "jitter", G_TYPE_DOUBLE, c.jitter_ms, "nack-count", G_TYPE_UINT64,
      static_cast<guint64>(c.nacks), "pli-count", G_TYPE_UINT64, static_cast<guint64>(c.plis),
      "fir-count", G_TYPE_UINT64, static_cast<guint64>(c.firs), "dropped-buffers", G_TYPE_UINT64,
      static_cast<guint64>(c.dropped_buffers), "video-codec", G_TYPE_STRING, c.video_codec.c_str(),
      nullptr);
  return s;
}

GstStructure* total_structure(const TotalStats& t, const std::map<std::string, BitratePolicy>& p) {
  GstStructure* targets = gst_structure_new_empty("bitrates");
  for (const auto& [codec, policy] : p) {
    gst_structure_set(targets, codec.c_str(), G_TYPE_UINT, policy.target_kbps(), nullptr);
  }
  GstStructure* s = gst_structure_new(
      "webrtccall-stats-total", "calls", G_TYPE_UINT, t.calls, "bitrate", G_TYPE_DOUBLE,
      t.bitrate_kbps, "packets-sent", G_TYPE_UINT64, static_cast<guint64>(t.packets_sent),
      "packets-lost", G_TYPE_INT64, static_cast<gint64>(t.packets_lost), "nack-count",
      G_TYPE_UINT64, static_cast<guint64>(t.nacks), "pli-count", G_TYPE_UINT64,
      static_cast<guint64>(t.plis), "fir-count", G_TYPE_UINT64, static_cast<guint64>(t.firs),
      "dropped-buffers", G_TYPE_UINT64, static_cast<guint64>(t.dropped_buffers), "rtt-min",
      G_TYPE_DOUBLE, t.rtt_ms.min, "rtt-median", G_TYPE_DOUBLE, t.rtt_ms.median, "rtt-max",
      G_TYPE_DOUBLE, t.rtt_ms.max, "loss-min", G_TYPE_DOUBLE, t.loss.min, "loss-median",
      G_TYPE_DOUBLE, t.loss.median, "loss-max", G_TYPE_DOUBLE, t.loss.max, "target-bitrates",
      GST_TYPE_STRUCTURE, targets, nullptr);
  gst_structure_free(targets);
  return s;
}

}  // namespace

StatsCollector::StatsCollector(Engine& engine) : engine_(engine) {}

StatsCollector::~StatsCollector() {
  if (snapshot_) gst_structure_free(snapshot_);
}

void StatsCollector::start() {
  schedule(engine_.settings().stats_interval_ms);
}

void StatsCollector::stop() {
  gwc::clear_source(timer_);
  waiting_.clear();
  idle_ = true;
  previous_.clear();
  latest_.clear();
  policies_.clear();
  applied_.clear();
  viewer_codec_.clear();
  std::lock_guard lock(snapshot_mutex_);
  if (snapshot_) gst_structure_free(std::exchange(snapshot_, nullptr));
}

void StatsCollector::schedule(unsigned interval_ms) {
  gwc::clear_source(timer_);
  interval_ms_ = interval_ms;
  // Off (0): the property is looked at again every second.
  timer_ = gwc::add_timeout(
      interval_ms ? interval_ms : 1000,
      [](gpointer data) -> gboolean {
        static_cast<StatsCollector*>(data)->tick();
        return G_SOURCE_CONTINUE;
      },
      this);
}

void StatsCollector::forget(const std::string& peer) {
  previous_.erase(peer);
  latest_.erase(peer);
  auto it = viewer_codec_.find(peer);
  if (it == viewer_codec_.end()) return;
  auto policy = policies_.find(it->second);
  if (policy != policies_.end()) {
    policy->second.remove(peer);
    if (policy->second.viewers() == 0) {
      applied_.erase(policy->first);
      policies_.erase(policy);
    }
  }
  viewer_codec_.erase(it);
}

void StatsCollector::tick() {
  unsigned interval = engine_.settings().stats_interval_ms;
  if (interval != interval_ms_) {
    schedule(interval);  // replaces this source: the next tick comes at the new interval
    if (!interval) {
      // Off: no policy either, the encoders go back to video-bitrate.
      unsigned max = engine_.settings().video_bitrate_kbps;
      for (auto& [codec, policy] : policies_) engine_.set_video_bitrate(codec, max);
      policies_.clear();
      applied_.clear();
      viewer_codec_.clear();
      previous_.clear();
      latest_.clear();
      waiting_.clear();
      return;
    }
  }
  if (!interval) return;
  if (!waiting_.empty()) finish_round();  // some call did not answer in time
  ++round_;
  latest_.clear();
  for (auto& [peer, call] : engine_.calls_) {
    if (!call->connected() || !call->webrtc_) continue;
    unsigned id = call->id();
    unsigned round = round_;
    waiting_.insert(id);
    GstPromise* promise = call->promise_then(
        [this, round](Call& c, const GstStructure* reply) { on_stats(c, reply, round); });
    g_signal_emit_by_name(call->webrtc_, "get-stats", nullptr, promise);
    gst_promise_unref(promise);
  }
  if (waiting_.empty()) finish_round();
}

void StatsCollector::on_stats(Call& call, const GstStructure* reply, unsigned round) {
  if (round != round_ || !waiting_.erase(call.id())) return;  // late: the round is over
  if (reply) {
    if (gst_debug_category_get_threshold(webrtccall_debug) >= GST_LEVEL_LOG) {
      gwc::GCharPtr text(gst_structure_to_string(reply));
      GST_LOG("stats of %s: %s", call.peer().c_str(), text.get());
    }
    CallSample sample = sample_of(reply, g_get_monotonic_time());
    sample.dropped_buffers = call.dropped_buffers();
    auto prev = previous_.find(call.peer());
    CallStats stats =
        derive_call_stats(call.peer(), prev == previous_.end() ? nullptr : &prev->second, sample);
    previous_[call.peer()] = std::move(sample);
    engine_.post(call_structure(stats));
    latest_[call.peer()] = std::move(stats);
  }
  if (waiting_.empty()) finish_round();
}

void StatsCollector::finish_round() {
  waiting_.clear();
  gint64 now = g_get_monotonic_time();
  apply_policy(now);
  // Without calls, one total with calls=0 says so; then nothing until a call connects.
  if (latest_.empty() && std::exchange(idle_, true)) return;
  if (!latest_.empty()) idle_ = false;
  std::vector<CallStats> calls;
  for (const auto& [peer, stats] : latest_) calls.push_back(stats);
  TotalStats total = total_stats(calls);
  GstStructure* total_s = total_structure(total, policies_);
  GstStructure* all = gst_structure_new_empty("webrtccall-stats-all");
  GValue array = G_VALUE_INIT;
  gst_value_array_init(&array, static_cast<guint>(calls.size()));
  for (const CallStats& c : calls) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&v, call_structure(c));
    gst_value_array_append_and_take_value(&array, &v);
  }
  gst_structure_take_value(all, "calls", &array);
  gst_structure_set(all, "total", GST_TYPE_STRUCTURE, total_s, nullptr);
  {
    std::lock_guard lock(snapshot_mutex_);
    if (snapshot_) gst_structure_free(snapshot_);
    snapshot_ = all;
  }
  engine_.post(total_s);
}

void StatsCollector::apply_policy(gint64 now_us) {
  Settings s = engine_.settings();
  BitratePolicyConfig config;
  config.max_kbps = s.video_bitrate_kbps;
  config.min_kbps = std::min(s.min_video_bitrate_kbps, s.video_bitrate_kbps);
  for (const auto& [peer, stats] : latest_) {
    if (stats.video_codec.empty() || !stats.new_report) continue;
    auto [it, fresh] = policies_.try_emplace(stats.video_codec, config);
    std::string& codec = viewer_codec_[peer];
    if (!codec.empty() && codec != stats.video_codec) {
      // Renegotiated to another codec: it leaves the other encoder's viewers.
      if (auto old = policies_.find(codec); old != policies_.end()) old->second.remove(peer);
    }
    codec = stats.video_codec;
    it->second.report(peer, stats.loss);
  }
  bool dirty = encoders_dirty_.exchange(false);
  for (auto& [codec, policy] : policies_) {
    policy.set_config(config);
    std::optional<unsigned> changed = policy.update(now_us);
    // Also when the policy did not change but an encoder started since (it begins at
    // video-bitrate). Only then: setting or reading vpxenc's bitrate waits for the frame it
    // is encoding.
    auto applied = applied_.find(codec);
    if (dirty || applied == applied_.end() || applied->second != policy.target_kbps()) {
      engine_.set_video_bitrate(codec, policy.target_kbps());
      applied_[codec] = policy.target_kbps();
    }
    if (changed) {
      GST_INFO_OBJECT(engine_.element(), "%s encoder: %u kbit/s for %zu viewers", codec.c_str(),
                      *changed, policy.viewers());
      engine_.post(gst_structure_new("webrtccall-bitrate", "codec", G_TYPE_STRING, codec.c_str(),
                                     "bitrate", G_TYPE_UINT, *changed, "viewers", G_TYPE_UINT,
                                     static_cast<guint>(policy.viewers()), nullptr));
    }
  }
}

GstStructure* StatsCollector::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_ ? gst_structure_copy(snapshot_) : nullptr;
}

}  // namespace webrtccall
