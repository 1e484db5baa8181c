// The keyframe pacer (gst-plugin/keyframe-pacer.h): a test per row of its table, then a flood.
#include "keyframe-pacer.h"

#include <gtest/gtest.h>

using webrtccall::KeyframePacer;
using Action = KeyframePacer::Action;

namespace {

constexpr std::int64_t kMs = 1000;
constexpr std::int64_t kS = 1000 * kMs;

}  // namespace

TEST(KeyframePacer, FirstRequestIsSentAtOnce) {
  KeyframePacer p(1 * kS);
  EXPECT_EQ(p.request(5 * kS).action, Action::kSendNow);
  EXPECT_FALSE(p.pending());
  EXPECT_EQ(p.counts().requested, 1u);
  EXPECT_EQ(p.counts().sent, 1u);
}

TEST(KeyframePacer, RequestInsideTheWindowWaitsForItsEnd) {
  KeyframePacer p(1 * kS);
  ASSERT_EQ(p.request(10 * kS).action, Action::kSendNow);
  KeyframePacer::Step s = p.request(10 * kS + 300 * kMs);
  EXPECT_EQ(s.action, Action::kWait);
  EXPECT_EQ(s.wake_us, 11 * kS);
  EXPECT_TRUE(p.pending());
  EXPECT_EQ(p.counts().sent, 1u);
}

TEST(KeyframePacer, RequestsOfOneWindowBecomeOneKeyframeAtItsEnd) {
  KeyframePacer p(1 * kS);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  for (int i = 1; i <= 50; ++i) {
    KeyframePacer::Step s = p.request(i * 10 * kMs);
    EXPECT_EQ(s.action, Action::kWait);
    EXPECT_EQ(s.wake_us, 1 * kS);  // one timer, the same end for all
  }
  EXPECT_EQ(p.tick(1 * kS).action, Action::kSendNow);
  EXPECT_FALSE(p.pending());
  EXPECT_EQ(p.counts().requested, 51u);
  EXPECT_EQ(p.counts().sent, 2u);
  EXPECT_EQ(p.counts().coalesced, 49u);  // the first of the window is the pending one
}

TEST(KeyframePacer, EarlyTimerWaitsAgainLateOneSends) {
  KeyframePacer p(1 * kS);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  ASSERT_EQ(p.request(200 * kMs).action, Action::kWait);
  KeyframePacer::Step early = p.tick(999 * kMs);
  EXPECT_EQ(early.action, Action::kWait);
  EXPECT_EQ(early.wake_us, 1 * kS);
  EXPECT_EQ(p.tick(1 * kS + 40 * kMs).action, Action::kSendNow);  // a late timer sends too
}

TEST(KeyframePacer, TimerWithNothingPendingDoesNothing) {
  KeyframePacer p(1 * kS);
  EXPECT_EQ(p.tick(0).action, Action::kNone);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  EXPECT_EQ(p.tick(2 * kS).action, Action::kNone);
  EXPECT_EQ(p.counts().sent, 1u);
}

TEST(KeyframePacer, RequestAfterTheWindowIsSentAtOnce) {
  KeyframePacer p(1 * kS);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  EXPECT_EQ(p.request(1 * kS).action, Action::kSendNow);  // exactly at the window's end
  EXPECT_EQ(p.request(3 * kS).action, Action::kSendNow);
  EXPECT_EQ(p.counts().sent, 3u);
}

TEST(KeyframePacer, KeyframeOutOfTheEncoderServesThePendingRequest) {
  KeyframePacer p(1 * kS);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  ASSERT_EQ(p.request(10 * kMs).action, Action::kWait);
  // The encoder's own keyframe (keyframe-max-dist) leaves after the request: it serves it.
  EXPECT_EQ(p.keyframe_out(600 * kMs).action, Action::kNone);
  EXPECT_FALSE(p.pending());
  EXPECT_EQ(p.tick(1 * kS).action, Action::kNone);  // the timer finds nothing to do
  EXPECT_EQ(p.counts().sent, 1u);
  EXPECT_EQ(p.counts().produced, 1u);
  EXPECT_EQ(p.counts().coalesced, 1u);
}

// The encoder's first keyframe comes out when it starts, before any call is connected (its
// branches drop it): the first viewer's request must not wait a window for it.
TEST(KeyframePacer, KeyframeOutOfTheEncoderLeavesTheWindowOpen) {
  KeyframePacer p(1 * kS);
  p.keyframe_out(5 * kS);  // the encoder's own, no request
  EXPECT_EQ(p.request(5 * kS + 100 * kMs).action, Action::kSendNow);
  ASSERT_EQ(p.request(5 * kS + 200 * kMs).action, Action::kWait);
  p.keyframe_out(5 * kS + 300 * kMs);                              // serves it
  EXPECT_EQ(p.request(5 * kS + 400 * kMs).action, Action::kWait);  // the window still runs
  EXPECT_EQ(p.tick(6 * kS + 100 * kMs).action, Action::kSendNow);
  EXPECT_EQ(p.counts().sent, 2u);
}

TEST(KeyframePacer, ZeroIntervalSendsEveryRequest) {
  KeyframePacer p(0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p.request(i * kMs).action, Action::kSendNow);
  p.keyframe_out(10 * kMs);
  EXPECT_EQ(p.request(10 * kMs).action, Action::kSendNow);
  EXPECT_EQ(p.counts().sent, 11u);
}

TEST(KeyframePacer, ChangingTheIntervalAppliesToThePendingRequest) {
  KeyframePacer p(5 * kS);
  ASSERT_EQ(p.request(0).action, Action::kSendNow);
  ASSERT_EQ(p.request(1 * kS).action, Action::kWait);
  // Shorter: due at once if the new window is over already.
  EXPECT_EQ(p.set_min_interval(500 * kMs, 2 * kS).action, Action::kSendNow);
  ASSERT_EQ(p.request(2 * kS + 100 * kMs).action, Action::kWait);
  KeyframePacer::Step longer = p.set_min_interval(3 * kS, 2 * kS + 200 * kMs);
  EXPECT_EQ(longer.action, Action::kWait);
  EXPECT_EQ(longer.wake_us, 5 * kS);
  EXPECT_EQ(p.set_min_interval(0, 2 * kS + 300 * kMs).action, Action::kSendNow);
  EXPECT_EQ(p.set_min_interval(1 * kS, 3 * kS).action, Action::kNone);  // nothing pending
}

// 100 viewers, each sending a PLI every 100 ms for 10 s (10,000 requests), the timer run as
// the engine runs it: at most one keyframe per second plus the first, and no request waits
// longer than the interval for the keyframe that serves it.
TEST(KeyframePacer, FloodOfRequestsFromManyViewersIsOneKeyframePerInterval) {
  KeyframePacer p(1 * kS);
  std::int64_t timer = -1;  // when the pending timer fires, -1: none
  std::int64_t oldest_unserved = -1, longest_wait = 0;
  auto sent = [&](std::int64_t now) {
    if (oldest_unserved >= 0) longest_wait = std::max(longest_wait, now - oldest_unserved);
    oldest_unserved = -1;
  };
  for (std::int64_t now = 0; now <= 10 * kS; now += 1 * kMs) {
    if (timer >= 0 && now >= timer) {
      timer = -1;
      KeyframePacer::Step s = p.tick(now);
      if (s.action == Action::kSendNow) sent(now);
      if (s.action == Action::kWait) timer = s.wake_us;
    }
    if (now % (100 * kMs) != 0) continue;
    for (int viewer = 0; viewer < 100; ++viewer) {
      KeyframePacer::Step s = p.request(now);
      if (s.action == Action::kSendNow) {
        sent(now);
      } else if (s.action == Action::kWait) {
        if (oldest_unserved < 0) oldest_unserved = now;
        if (timer < 0) timer = s.wake_us;
      }
    }
  }
  EXPECT_EQ(p.counts().requested, 10100u);
  EXPECT_LE(p.counts().sent, 11u);
  EXPECT_GE(p.counts().sent, 10u);
  EXPECT_LE(longest_wait, 1 * kS);
}
