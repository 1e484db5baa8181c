// Statistics of the calls: what webrtcbin's get-stats says of each stream a call sends (one
// sample per stats-interval) turned into what a user reads: the bitrate over the last
// interval, packets sent and lost, RTT, jitter, NACKs, PLIs and FIRs, and totals over all
// calls (min/median/max of RTT and loss). Pure: no GStreamer; the element fills the samples
// from get-stats (stats-collector.cpp) and posts the results on the bus.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace webrtccall {

// One outbound RTP stream at one instant (webrtcbin 1.22 field names in comments).
struct OutboundSample {
  std::uint32_t ssrc = 0;          // outbound-rtp "ssrc"
  std::string kind;                // "video" or "audio" (outbound-rtp "kind")
  std::string codec;               // "VP8", "H264", "OPUS"... (codec "mime-type" after '/')
  std::uint64_t bytes_sent = 0;    // outbound-rtp "bytes-sent" (RTP payload and headers)
  std::uint64_t packets_sent = 0;  // outbound-rtp "packets-sent"
  std::uint64_t nacks = 0;         // outbound-rtp "nack-count" (received from the remote)
  std::uint64_t plis = 0;          // outbound-rtp "pli-count"
  std::uint64_t firs = 0;          // outbound-rtp "fir-count"
  // From the remote's receiver reports (remote-inbound-rtp); absent before the first one.
  bool has_report = false;
  // "packets-lost", cumulative; may be negative (duplicates; webrtcbin 1.22 says -1 on a
  // clean link), counted as 0.
  std::int64_t packets_lost = 0;
  double fraction_lost = 0;     // "fraction-lost", 0..1 over the last report's interval
  double jitter_s = 0;          // "jitter", seconds
  std::optional<double> rtt_s;  // "round-trip-time", seconds (needs an SR the RR answers)
  // The report's extended highest sequence number ("rb-exthighestseq"): a new report when it
  // changed since the last sample.
  std::uint32_t report_seq = 0;
};

// Everything one call sends, at one instant.
struct CallSample {
  std::int64_t time_us = 0;  // monotonic
  std::vector<OutboundSample> streams;
  std::uint64_t dropped_buffers = 0;  // buffers the call's queues dropped (leaky), cumulative
};

// What a user reads of one call, over the interval since the previous sample.
struct CallStats {
  std::string peer;
  double bitrate_kbps = 0;         // all streams
  double video_bitrate_kbps = 0;   // video streams only
  std::uint64_t packets_sent = 0;  // cumulative, all streams
  std::int64_t packets_lost = 0;   // cumulative, as the remote reported
  // The worst stream's fraction lost in the remote's last report (0..1); what the bitrate
  // policy reads.
  double loss = 0;
  std::optional<double> rtt_ms;                 // the worst stream's
  double jitter_ms = 0;                         // the worst stream's
  std::uint64_t nacks = 0, plis = 0, firs = 0;  // cumulative, received from the remote
  std::uint64_t dropped_buffers = 0;            // cumulative
  bool has_report = false;                      // a receiver report arrived for some stream
  // Some stream's report is new since the previous sample (the bitrate policy takes each
  // report once: the remote sends one every second or so, we may sample more often).
  bool new_report = false;
  std::string video_codec;  // the codec of its video stream, or empty
};

// `previous` is the call's sample of the last interval (null for the first one: the rate is
// then 0). Counters that went backwards (webrtcbin replaced a stream) count from zero.
CallStats derive_call_stats(const std::string& peer, const CallSample* previous,
                            const CallSample& now);

// Min, median and max of a set of values (the median of an even count: the mean of the two
// middle values); all zero and `count` 0 for an empty set.
struct Spread {
  unsigned count = 0;
  double min = 0, median = 0, max = 0;
};
Spread spread_of(std::vector<double> values);

struct TotalStats {
  unsigned calls = 0;  // the viewers
  double bitrate_kbps = 0;
  std::uint64_t packets_sent = 0;
  std::int64_t packets_lost = 0;
  std::uint64_t nacks = 0, plis = 0, firs = 0, dropped_buffers = 0;
  Spread rtt_ms;  // over the calls that have an RTT
  Spread loss;    // over the calls with a receiver report
};
TotalStats total_stats(const std::vector<CallStats>& calls);

}  // namespace webrtccall
