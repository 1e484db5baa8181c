#include "call-stats.h"

#include <algorithm>

namespace webrtccall {

namespace {

// What a counter grew by; a counter that went backwards (a new stream under the same SSRC)
// counts from zero.
std::uint64_t grew(std::uint64_t before, std::uint64_t now) {
  return now >= before ? now - before : now;
}

const OutboundSample* find_stream(const CallSample& sample, std::uint32_t ssrc) {
  for (const OutboundSample& s : sample.streams) {
    if (s.ssrc == ssrc) return &s;
  }
  return nullptr;
}

}  // namespace

CallStats derive_call_stats(const std::string& peer, const CallSample* previous,
                            const CallSample& now) {
  CallStats out;
  out.peer = peer;
  out.dropped_buffers = now.dropped_buffers;
  double seconds = previous ? static_cast<double>(now.time_us - previous->time_us) / 1e6 : 0;
  for (const OutboundSample& s : now.streams) {
    out.packets_sent += s.packets_sent;
    out.nacks += s.nacks;
    out.plis += s.plis;
    out.firs += s.firs;
    if (s.kind == "video" && out.video_codec.empty()) out.video_codec = s.codec;
    if (seconds > 0) {
      const OutboundSample* before = find_stream(*previous, s.ssrc);
      double kbps = static_cast<double>(grew(before ? before->bytes_sent : 0, s.bytes_sent)) * 8 /
                    seconds / 1000;
      out.bitrate_kbps += kbps;
      if (s.kind == "video") out.video_bitrate_kbps += kbps;
    }
    if (!s.has_report) continue;
    out.has_report = true;
    const OutboundSample* before = previous ? find_stream(*previous, s.ssrc) : nullptr;
    if (!before || !before->has_report || before->report_seq != s.report_seq) {
      out.new_report = true;
    }
    out.packets_lost += std::max<std::int64_t>(0, s.packets_lost);
    out.loss = std::max(out.loss, std::clamp(s.fraction_lost, 0.0, 1.0));
    out.jitter_ms = std::max(out.jitter_ms, s.jitter_s * 1000);
    if (s.rtt_s) out.rtt_ms = std::max(out.rtt_ms.value_or(0), *s.rtt_s * 1000);
  }
  return out;
}

Spread spread_of(std::vector<double> values) {
  Spread out;
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  out.count = static_cast<unsigned>(values.size());
  out.min = values.front();
  out.max = values.back();
  std::size_t mid = values.size() / 2;
  out.median = values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  return out;
}

TotalStats total_stats(const std::vector<CallStats>& calls) {
  TotalStats out;
  std::vector<double> rtts, losses;
  for (const CallStats& c : calls) {
    out.calls++;
    out.bitrate_kbps += c.bitrate_kbps;
    out.packets_sent += c.packets_sent;
    out.packets_lost += c.packets_lost;
    out.nacks += c.nacks;
    out.plis += c.plis;
    out.firs += c.firs;
    out.dropped_buffers += c.dropped_buffers;
    if (c.rtt_ms) rtts.push_back(*c.rtt_ms);
    if (c.has_report) losses.push_back(c.loss);
  }
  out.rtt_ms = spread_of(std::move(rtts));
  out.loss = spread_of(std::move(losses));
  return out;
}

}  // namespace webrtccall
