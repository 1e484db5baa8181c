// A send branch's keyframe gate and stall rule (gst-plugin/branch-flow.h): a test per row.
#include "branch-flow.h"

#include <gtest/gtest.h>

using webrtccall::BranchTimes;
using webrtccall::KeyframeGate;
using webrtccall::stalled_for_s;
using Verdict = KeyframeGate::Verdict;

TEST(KeyframeGate, NothingPassesBeforeTheCallIsConnected) {
  KeyframeGate g;
  EXPECT_EQ(g.frame(false, true, false), Verdict::kSkip);  // not even a keyframe
  EXPECT_EQ(g.frame(false, false, false), Verdict::kSkip);
  EXPECT_FALSE(g.started());
}

TEST(KeyframeGate, ConnectedItWaitsForAKeyframe) {
  KeyframeGate g;
  EXPECT_EQ(g.frame(true, false, false), Verdict::kSkip);
  EXPECT_EQ(g.frame(true, false, true), Verdict::kSkip);  // a DISCONT delta before: still a skip
  EXPECT_EQ(g.frame(true, true, false), Verdict::kPass);
  EXPECT_TRUE(g.started());
  EXPECT_EQ(g.frame(true, false, false), Verdict::kPass);
  EXPECT_EQ(g.frame(true, true, false), Verdict::kPass);
}

TEST(KeyframeGate, AfterALeakDeltasAreDroppedUntilTheNextKeyframe) {
  KeyframeGate g;
  ASSERT_EQ(g.frame(true, true, false), Verdict::kPass);
  EXPECT_EQ(g.frame(true, false, true), Verdict::kDropAndRequest);  // asks once
  EXPECT_EQ(g.frame(true, false, false), Verdict::kDrop);
  EXPECT_EQ(g.frame(true, false, true), Verdict::kDrop);  // another leak meanwhile: no new ask
  EXPECT_EQ(g.frame(true, true, true), Verdict::kPass);   // a keyframe after a leak is fine
  EXPECT_EQ(g.frame(true, false, false), Verdict::kPass);
}

TEST(KeyframeGate, AKeyframeMarkedDiscontPassesAtOnce) {
  KeyframeGate g;
  ASSERT_EQ(g.frame(true, true, false), Verdict::kPass);
  EXPECT_EQ(g.frame(true, true, true), Verdict::kPass);
  EXPECT_EQ(g.frame(true, false, false), Verdict::kPass);
}

namespace {
constexpr std::int64_t kS = 1000000;
BranchTimes flowing(std::int64_t now, std::int64_t last_out) {
  BranchTimes t;
  t.linked_us = 1 * kS;
  t.connected_us = 2 * kS;
  t.last_in_us = now - 30000;  // a frame in 30 ms ago
  t.last_out_us = last_out;
  return t;
}
}  // namespace

TEST(Stall, ABranchForwardingNothingWhileItsInputFlowsIsStalledAfterTheTimeout) {
  std::int64_t now = 100 * kS;
  EXPECT_EQ(stalled_for_s(flowing(now, now - 5 * kS), now, 5 * kS), -1);  // exactly: not yet
  EXPECT_EQ(stalled_for_s(flowing(now, now - 6 * kS), now, 5 * kS), 6);
  EXPECT_EQ(stalled_for_s(flowing(now, now - 40000), now, 5 * kS), -1);  // flowing
}

TEST(Stall, NoInputIsNoStall) {
  std::int64_t now = 100 * kS;
  BranchTimes t = flowing(now, now - 60 * kS);
  t.last_in_us = now - 2 * kS;  // the input paused (EOS, a source that stopped)
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), -1);
  t.last_in_us = 0;  // never had any
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), -1);
}

TEST(Stall, CountsFromTheConnectionAndTheLinkAtTheEarliest) {
  std::int64_t now = 100 * kS;
  BranchTimes t = flowing(now, 0);  // nothing out ever
  t.connected_us = now - 3 * kS;    // connected 3 s ago: the blocked time before does not count
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), -1);
  t.connected_us = now - 10 * kS;
  t.linked_us = now - 2 * kS;  // a branch added by a renegotiation 2 s ago
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), -1);
  t.linked_us = now - 7 * kS;
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), 7);
}

TEST(Stall, NotConnectedOrTimeoutZeroIsNever) {
  std::int64_t now = 100 * kS;
  BranchTimes t = flowing(now, now - 60 * kS);
  EXPECT_EQ(stalled_for_s(t, now, 0), -1);
  t.connected_us = 0;
  EXPECT_EQ(stalled_for_s(t, now, 5 * kS), -1);
}
