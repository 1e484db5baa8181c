// Join pacing (gst-plugin/join-pacer.h): how many calls connect at once, who waits, in which
// order, and for how long.
#include "join-pacer.h"

#include <gtest/gtest.h>

using webrtccall::JoinPacer;

namespace {
constexpr std::int64_t kS = 1000000;
using Names = std::vector<std::string>;
}  // namespace

TEST(JoinPacer, NoLimitHoldsNothing) {
  JoinPacer p;
  p.set_limits(0, 10 * kS);
  for (unsigned connecting = 0; connecting < 500; ++connecting) {
    EXPECT_FALSE(p.hold("v" + std::to_string(connecting), 0, connecting));
  }
  EXPECT_TRUE(p.may_start_outgoing(1000));
}

TEST(JoinPacer, HoldsBeyondTheLimitAndReleasesInOrder) {
  JoinPacer p;
  p.set_limits(2, 10 * kS);
  EXPECT_FALSE(p.hold("a", 0, 0));
  EXPECT_FALSE(p.hold("b", 0, 1));
  EXPECT_TRUE(p.hold("c", 0, 2));
  EXPECT_TRUE(p.hold("d", 1, 2));
  EXPECT_TRUE(p.hold("e", 2, 2));
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(p.release(2), Names{});     // nothing connected yet
  EXPECT_EQ(p.release(1), Names{"c"});  // one connected
  EXPECT_EQ(p.release(0), (Names{"d", "e"}));
  EXPECT_EQ(p.size(), 0u);
}

TEST(JoinPacer, ANewcomerWaitsBehindTheHeldEvenWithASlotFree) {
  JoinPacer p;
  p.set_limits(1, 10 * kS);
  EXPECT_FALSE(p.hold("a", 0, 0));
  EXPECT_TRUE(p.hold("b", 0, 1));
  // a connected, but b has not been released yet: c must not overtake it.
  EXPECT_TRUE(p.hold("c", 0, 0));
  EXPECT_EQ(p.release(0), Names{"b"});
}

TEST(JoinPacer, AHeldPeersNewOfferKeepsItsPlace) {
  JoinPacer p;
  p.set_limits(1, 10 * kS);
  p.hold("a", 0, 1);
  p.hold("b", 0, 1);
  EXPECT_TRUE(p.hold("a", 5 * kS, 1));
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.release(0), Names{"a"});
}

TEST(JoinPacer, HeldTooLongIsRefused) {
  JoinPacer p;
  p.set_limits(1, 10 * kS);
  p.hold("a", 0, 1);
  p.hold("b", 3 * kS, 1);
  EXPECT_EQ(p.next_expiry_us(), 10 * kS);
  EXPECT_EQ(p.expire(9 * kS), Names{});
  EXPECT_EQ(p.expire(10 * kS), Names{"a"});
  EXPECT_EQ(p.next_expiry_us(), 13 * kS);
  EXPECT_EQ(p.expire(13 * kS), Names{"b"});
  EXPECT_EQ(p.next_expiry_us(), std::nullopt);
}

TEST(JoinPacer, OutgoingStartsOnlyWithAFreeSlotAndNobodyWaiting) {
  JoinPacer p;
  p.set_limits(2, 10 * kS);
  EXPECT_TRUE(p.may_start_outgoing(1));
  EXPECT_FALSE(p.may_start_outgoing(2));
  p.hold("a", 0, 2);
  EXPECT_FALSE(p.may_start_outgoing(0));  // the held offer first
  EXPECT_EQ(p.release(0), Names{"a"});
  EXPECT_TRUE(p.may_start_outgoing(1));
}

TEST(JoinPacer, RemoveDropsAHeldOffer) {
  JoinPacer p;
  p.set_limits(1, 10 * kS);
  p.hold("a", 0, 1);
  p.hold("b", 0, 1);
  p.remove("a");
  EXPECT_FALSE(p.held("a"));
  EXPECT_TRUE(p.held("b"));
  EXPECT_EQ(p.release(0), Names{"b"});
}
