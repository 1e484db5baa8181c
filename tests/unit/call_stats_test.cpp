// Call statistics from get-stats samples (gst-plugin/call-stats.h).
#include "call-stats.h"

#include <gtest/gtest.h>

using webrtccall::CallSample;
using webrtccall::CallStats;
using webrtccall::derive_call_stats;
using webrtccall::OutboundSample;
using webrtccall::spread_of;
using webrtccall::total_stats;

namespace {

OutboundSample video(std::uint64_t bytes, std::uint64_t packets) {
  OutboundSample s;
  s.ssrc = 1111;
  s.kind = "video";
  s.codec = "VP8";
  s.bytes_sent = bytes;
  s.packets_sent = packets;
  return s;
}

OutboundSample audio(std::uint64_t bytes, std::uint64_t packets) {
  OutboundSample s;
  s.ssrc = 2222;
  s.kind = "audio";
  s.codec = "OPUS";
  s.bytes_sent = bytes;
  s.packets_sent = packets;
  return s;
}

CallSample at(std::int64_t time_us, std::vector<OutboundSample> streams) {
  CallSample c;
  c.time_us = time_us;
  c.streams = std::move(streams);
  return c;
}

}  // namespace

TEST(CallStats, FirstSampleHasCountersButNoRate) {
  CallSample s = at(1'000'000, {video(50'000, 60)});
  CallStats c = derive_call_stats("bob", nullptr, s);
  EXPECT_EQ(c.peer, "bob");
  EXPECT_EQ(c.bitrate_kbps, 0);
  EXPECT_EQ(c.packets_sent, 60u);
  EXPECT_EQ(c.video_codec, "VP8");
  EXPECT_FALSE(c.has_report);
  EXPECT_FALSE(c.rtt_ms);
}

TEST(CallStats, BitrateOverTheInterval) {
  CallSample a = at(1'000'000, {video(100'000, 100), audio(8'000, 50)});
  // 2 s later: +250,000 video bytes (1000 kbit/s), +16,000 audio bytes (64 kbit/s).
  CallSample b = at(3'000'000, {video(350'000, 330), audio(24'000, 150)});
  CallStats c = derive_call_stats("bob", &a, b);
  EXPECT_DOUBLE_EQ(c.video_bitrate_kbps, 1000);
  EXPECT_DOUBLE_EQ(c.bitrate_kbps, 1064);
  EXPECT_EQ(c.packets_sent, 480u);
}

TEST(CallStats, AStreamNewSinceTheLastSampleCountsFromZero) {
  CallSample a = at(0, {video(100'000, 100)});
  CallSample b = at(1'000'000, {video(225'000, 200), audio(8'000, 50)});
  CallStats c = derive_call_stats("bob", &a, b);
  EXPECT_DOUBLE_EQ(c.video_bitrate_kbps, 1000);
  EXPECT_DOUBLE_EQ(c.bitrate_kbps, 1064);
}

TEST(CallStats, ACounterThatWentBackwardsCountsFromZero) {
  CallSample a = at(0, {video(900'000, 900)});
  CallSample b = at(1'000'000, {video(125'000, 100)});
  CallStats c = derive_call_stats("bob", &a, b);
  EXPECT_DOUBLE_EQ(c.video_bitrate_kbps, 1000);
}

TEST(CallStats, ReceiverReportsGiveLossRttAndJitterOfTheWorstStream) {
  OutboundSample v = video(100'000, 1000);
  v.has_report = true;
  v.packets_lost = 200;
  v.fraction_lost = 0.2;
  v.jitter_s = 0.004;
  v.rtt_s = 0.0021;
  OutboundSample a = audio(8'000, 500);
  a.has_report = true;
  a.packets_lost = 3;
  a.fraction_lost = 0.01;
  a.jitter_s = 0.010;
  a.rtt_s = 0.0019;
  CallStats c = derive_call_stats("bob", nullptr, at(0, {v, a}));
  EXPECT_TRUE(c.has_report);
  EXPECT_EQ(c.packets_lost, 203);
  EXPECT_DOUBLE_EQ(c.loss, 0.2);
  EXPECT_DOUBLE_EQ(c.jitter_ms, 10);
  ASSERT_TRUE(c.rtt_ms);
  EXPECT_DOUBLE_EQ(*c.rtt_ms, 2.1);
}

TEST(CallStats, NacksPlisAndFirsAddUp) {
  OutboundSample v = video(1, 1);
  v.nacks = 7;
  v.plis = 2;
  v.firs = 1;
  OutboundSample a = audio(1, 1);
  a.nacks = 1;
  CallStats c = derive_call_stats("bob", nullptr, at(0, {v, a}));
  EXPECT_EQ(c.nacks, 8u);
  EXPECT_EQ(c.plis, 2u);
  EXPECT_EQ(c.firs, 1u);
}

TEST(CallStats, FractionLostIsClamped) {
  OutboundSample v = video(1, 1);
  v.has_report = true;
  v.fraction_lost = 1.5;
  EXPECT_DOUBLE_EQ(derive_call_stats("bob", nullptr, at(0, {v})).loss, 1.0);
}

TEST(CallStats, Spread) {
  auto s = spread_of({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.median, 0);
  s = spread_of({3, 1, 2});
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.median, 2);
  EXPECT_EQ(s.max, 3);
  s = spread_of({4, 1, 2, 3});
  EXPECT_EQ(s.median, 2.5);
}

TEST(CallStats, TotalsSumAndSpreadOverCallsWithReports) {
  CallStats a, b, c;
  a.bitrate_kbps = 1000;
  a.packets_sent = 10;
  a.packets_lost = 1;
  a.nacks = 4;
  a.has_report = true;
  a.loss = 0.0;
  a.rtt_ms = 2;
  b.bitrate_kbps = 900;
  b.packets_sent = 20;
  b.packets_lost = 5;
  b.plis = 1;
  b.has_report = true;
  b.loss = 0.2;
  b.rtt_ms = 8;
  c.bitrate_kbps = 100;  // no report yet: in the sums, not in the spreads
  auto t = total_stats({a, b, c});
  EXPECT_EQ(t.calls, 3u);
  EXPECT_DOUBLE_EQ(t.bitrate_kbps, 2000);
  EXPECT_EQ(t.packets_sent, 30u);
  EXPECT_EQ(t.packets_lost, 6);
  EXPECT_EQ(t.nacks, 4u);
  EXPECT_EQ(t.plis, 1u);
  EXPECT_EQ(t.rtt_ms.count, 2u);
  EXPECT_DOUBLE_EQ(t.rtt_ms.median, 5);
  EXPECT_EQ(t.loss.count, 2u);
  EXPECT_DOUBLE_EQ(t.loss.max, 0.2);
  EXPECT_DOUBLE_EQ(t.loss.min, 0.0);
}

TEST(CallStats, NegativePacketsLostCountsAsZero) {
  // webrtcbin 1.22 reports packets-lost=-1 for a clean link (captured, element-stats).
  OutboundSample v = video(1, 1);
  v.has_report = true;
  v.packets_lost = -1;
  EXPECT_EQ(derive_call_stats("bob", nullptr, at(0, {v})).packets_lost, 0);
}

TEST(CallStats, EachReceiverReportIsNewOnce) {
  OutboundSample v = video(1000, 10);
  CallSample none = at(0, {v});
  v.has_report = true;
  v.report_seq = 423;
  CallSample first = at(500'000, {v});
  CallSample same = at(1'000'000, {v});
  v.report_seq = 460;
  CallSample next = at(1'500'000, {v});
  EXPECT_FALSE(derive_call_stats("bob", nullptr, none).new_report);
  EXPECT_TRUE(derive_call_stats("bob", &none, first).new_report);
  EXPECT_TRUE(derive_call_stats("bob", nullptr, first).new_report);
  EXPECT_FALSE(derive_call_stats("bob", &first, same).new_report);
  EXPECT_TRUE(derive_call_stats("bob", &same, next).new_report);
}

// Two samples of one call as webrtcbin 1.22 gave them (element-stats, 500 ms apart, the viewer
// behind 20 % loss): outbound-rtp bytes-sent/packets-sent, remote-inbound-rtp packets-lost,
// fraction-lost (rb-fractionlost 38 / 256), round-trip-time, rb-jitter 25 at 90 kHz.
TEST(CallStats, CapturedFromWebrtcbin) {
  OutboundSample a = video(212'612, 479);
  a.ssrc = 1603862678;
  a.has_report = true;
  a.packets_lost = 24;
  a.fraction_lost = 0.125;
  a.rtt_s = 0.0008544921875;
  a.report_seq = 380;
  OutboundSample b = video(219'043, 494);
  b.ssrc = 1603862678;
  b.has_report = true;
  b.packets_lost = 31;
  b.fraction_lost = 0.1484375;
  b.rtt_s = 0.0008392333984375;
  b.jitter_s = 25.0 / 90000;
  b.report_seq = 423;
  CallSample sa = at(22'740'262'269, {a});
  CallSample sb = at(22'740'762'269, {b});
  CallStats c = derive_call_stats("lossy", &sa, sb);
  EXPECT_NEAR(c.video_bitrate_kbps, 102.9, 0.1);  // 6431 bytes in 0.5 s
  EXPECT_EQ(c.packets_sent, 494u);
  EXPECT_EQ(c.packets_lost, 31);
  EXPECT_DOUBLE_EQ(c.loss, 0.1484375);
  EXPECT_NEAR(*c.rtt_ms, 0.839, 0.001);
  EXPECT_NEAR(c.jitter_ms, 0.278, 0.001);
  EXPECT_TRUE(c.new_report);
}
