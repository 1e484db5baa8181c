// The bitrate policy of a shared encoder (gst-plugin/bitrate-policy.h).
#include "bitrate-policy.h"

#include <gtest/gtest.h>

#include <string>

using webrtccall::BitratePolicy;
using webrtccall::BitratePolicyConfig;

namespace {

constexpr std::int64_t kSecond = 1'000'000;

BitratePolicyConfig config() {
  BitratePolicyConfig c;
  c.min_kbps = 200;
  c.max_kbps = 2000;
  return c;
}

std::string viewer(int i) {
  return "viewer" + std::to_string(i);
}

// `rounds` reports of every viewer (`bad` of them at `bad_loss`, the others clean), one per
// second, the policy updated after each; returns the last time.
std::int64_t run(BitratePolicy& p, int viewers, int bad, double bad_loss, int rounds,
                 std::int64_t start_us = 0) {
  std::int64_t now = start_us;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < viewers; ++i) p.report(viewer(i), i < bad ? bad_loss : 0.0);
    now += kSecond;
    p.update(now);
  }
  return now;
}

}  // namespace

TEST(BitratePolicy, StartsAtMaxAndStaysThereOnCleanLinks) {
  BitratePolicy p(config());
  EXPECT_EQ(p.target_kbps(), 2000u);
  run(p, 3, 0, 0, 20);
  EXPECT_EQ(p.target_kbps(), 2000u);
  EXPECT_EQ(*p.estimate(viewer(0)), 2000.0);
}

TEST(BitratePolicy, OneViewerLosingBacksOffToTheFloor) {
  BitratePolicy p(config());
  run(p, 1, 1, 0.20, 30);
  // 20 % loss: x0.9 a second, 2000 -> 200 within 22 reports; changes every 3 s.
  EXPECT_EQ(p.target_kbps(), 200u);
}

TEST(BitratePolicy, BacksOffByHalfTheLossPerReport) {
  BitratePolicy p(config());
  p.report("a", 0.30);
  EXPECT_DOUBLE_EQ(*p.estimate("a"), 2000 * 0.85);
  p.report("a", 0.05);  // between 2 % and 10 %: kept
  EXPECT_DOUBLE_EQ(*p.estimate("a"), 2000 * 0.85);
  p.report("a", 0.10);  // 10 % is not over 10 %
  EXPECT_DOUBLE_EQ(*p.estimate("a"), 2000 * 0.85);
  p.report("a", 0.01);  // under 2 %: +5 %
  EXPECT_DOUBLE_EQ(*p.estimate("a"), 2000 * 0.85 * 1.05);
}

TEST(BitratePolicy, FewViewersFollowTheWeakest) {
  for (int viewers : {2, 3, 4}) {
    BitratePolicy p(config());
    run(p, viewers, 1, 0.20, 30);
    EXPECT_EQ(p.target_kbps(), 200u) << viewers << " viewers";
  }
}

TEST(BitratePolicy, FiveViewersIgnoreOneBadOne) {
  BitratePolicy p(config());
  run(p, 5, 1, 0.20, 30);
  EXPECT_EQ(p.target_kbps(), 2000u);
  EXPECT_EQ(*p.estimate(viewer(0)), 200.0);  // its own estimate did fall
}

TEST(BitratePolicy, TwoBadOfFiveDegrade) {
  BitratePolicy p(config());
  run(p, 5, 2, 0.20, 30);
  EXPECT_EQ(p.target_kbps(), 200u);
}

TEST(BitratePolicy, TenPercentOfManyViewersAreIgnored) {
  BitratePolicy p(config());
  run(p, 30, 3, 0.50, 30);  // 3 of 30: ignored
  EXPECT_EQ(p.target_kbps(), 2000u);
  BitratePolicy q(config());
  run(q, 30, 4, 0.50, 30);  // 4 of 30: the 4th worst is followed
  EXPECT_EQ(q.target_kbps(), 200u);
}

TEST(BitratePolicy, RecoversSlowlyWhenLossStops) {
  BitratePolicy p(config());
  std::int64_t now = run(p, 1, 1, 0.20, 30);
  ASSERT_EQ(p.target_kbps(), 200u);
  now = run(p, 1, 0, 0, 10, now);
  // +5 % per clean report: 200 * 1.05^10 = 326.
  EXPECT_GT(p.target_kbps(), 250u);
  EXPECT_LT(p.target_kbps(), 340u);
  run(p, 1, 0, 0, 60, now);
  EXPECT_EQ(p.target_kbps(), 2000u);
}

TEST(BitratePolicy, ChangesAtMostEveryThreeSeconds) {
  BitratePolicy p(config());
  p.report("a", 0.5);
  auto first = p.update(10 * kSecond);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 1500u);
  p.report("a", 0.5);
  EXPECT_FALSE(p.update(11 * kSecond));
  EXPECT_FALSE(p.update(12 * kSecond));
  auto second = p.update(13 * kSecond);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 1125u);
}

TEST(BitratePolicy, SmallChangesWait) {
  BitratePolicy p(config());
  run(p, 1, 1, 0.20, 30);
  ASSERT_EQ(p.target_kbps(), 200u);
  // One clean report: 210 wanted, 5 % of 200 is 10: taken. A change under 5 % is not.
  p.report(viewer(0), 0.0);
  EXPECT_EQ(p.wanted_kbps(), 210u);
  BitratePolicyConfig c = config();
  c.grow_factor = 1.02;
  BitratePolicy q(c);
  run(q, 1, 1, 0.20, 30);
  ASSERT_EQ(q.target_kbps(), 200u);
  q.report(viewer(0), 0.0);
  EXPECT_EQ(q.wanted_kbps(), 204u);
  EXPECT_FALSE(q.update(1000 * kSecond));
}

TEST(BitratePolicy, AViewerThatLeavesNoLongerCounts) {
  BitratePolicy p(config());
  std::int64_t now = run(p, 2, 1, 0.20, 30);
  ASSERT_EQ(p.target_kbps(), 200u);
  p.remove(viewer(0));
  EXPECT_EQ(p.viewers(), 1u);
  EXPECT_EQ(p.wanted_kbps(), 2000u);
  EXPECT_EQ(p.update(now + 10 * kSecond), 2000u);
}

TEST(BitratePolicy, ANewViewerStartsAtTheCurrentTarget) {
  BitratePolicy p(config());
  run(p, 1, 1, 0.20, 30);
  ASSERT_EQ(p.target_kbps(), 200u);
  p.report("newcomer", 0.05);  // kept
  EXPECT_EQ(*p.estimate("newcomer"), 200.0);
}

TEST(BitratePolicy, BoundsChangedWhilePlayingClampTheEstimates) {
  BitratePolicy p(config());
  run(p, 1, 0, 0, 3);
  BitratePolicyConfig c = config();
  c.max_kbps = 800;
  p.set_config(c);
  EXPECT_EQ(*p.estimate(viewer(0)), 800.0);
  EXPECT_EQ(p.update(100 * kSecond), 800u);
  // min over max: a fixed bitrate.
  c.min_kbps = 5000;
  p.set_config(c);
  p.report(viewer(0), 0.9);
  EXPECT_EQ(p.wanted_kbps(), 800u);
}

TEST(BitratePolicy, NoViewersWantsTheMax) {
  BitratePolicy p(config());
  EXPECT_EQ(p.wanted_kbps(), 2000u);
  EXPECT_FALSE(p.update(kSecond));
}
