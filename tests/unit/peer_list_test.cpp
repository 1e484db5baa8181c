// The `peer` list (gst-plugin/peer-list.h): parsing, and which users to dial when, each with
// its own backoff.
#include "peer-list.h"

#include <gtest/gtest.h>

#include <set>

using webrtccall::parse_peer_list;
using webrtccall::PeerDialer;

namespace {
constexpr std::int64_t kS = 1000000;
using Names = std::vector<std::string>;
}  // namespace

TEST(PeerList, Parses) {
  EXPECT_EQ(parse_peer_list("bob"), (Names{"bob"}));  // one name, as before
  EXPECT_EQ(parse_peer_list("a,b,c"), (Names{"a", "b", "c"}));
  EXPECT_EQ(parse_peer_list(" a , b,\tc "), (Names{"a", "b", "c"}));
  EXPECT_EQ(parse_peer_list("a,,b,"), (Names{"a", "b"}));
  EXPECT_EQ(parse_peer_list("b,a,b"), (Names{"b", "a"}));
  EXPECT_EQ(parse_peer_list(""), Names{});
  EXPECT_EQ(parse_peer_list(" , "), Names{});
}

TEST(PeerList, DueAreTheCallableOnesInOrder) {
  PeerDialer d;
  d.set_peers({"a", "b", "c"});
  std::set<std::string> online = {"c", "a"};
  auto callable = [&](const std::string& u) { return online.contains(u); };
  EXPECT_EQ(d.due(0, callable), (Names{"a", "c"}));
  EXPECT_TRUE(d.listed("b"));
  EXPECT_FALSE(d.listed("d"));
}

TEST(PeerList, EachUserHasItsOwnBackoff) {
  PeerDialer d;
  d.set_peers({"a", "b"});
  auto all = [](const std::string&) { return true; };
  // a fails three times: 1, 2, 4 s; b meanwhile is due at every step.
  EXPECT_EQ(d.schedule_retry("a", 0), 1 * kS);
  EXPECT_EQ(d.due(0, all), (Names{"b"}));
  EXPECT_EQ(d.next_retry_us(0), 1 * kS);
  EXPECT_EQ(d.due(1 * kS, all), (Names{"a", "b"}));
  EXPECT_EQ(d.schedule_retry("a", 1 * kS), 3 * kS);
  EXPECT_EQ(d.schedule_retry("a", 3 * kS), 7 * kS);
  EXPECT_EQ(d.attempts("a"), 3u);
  EXPECT_EQ(d.attempts("b"), 0u);
  // b fails once: its first step, whatever a's is.
  EXPECT_EQ(d.schedule_retry("b", 3 * kS), 4 * kS);
  EXPECT_EQ(d.next_retry_us(3 * kS), 4 * kS);
  EXPECT_EQ(d.due(4 * kS, all), (Names{"b"}));
  EXPECT_EQ(d.next_retry_us(4 * kS), 7 * kS);
  EXPECT_EQ(d.next_retry_us(7 * kS), std::nullopt);
}

TEST(PeerList, APendingRedialIsNotPushedBack) {
  PeerDialer d;
  d.set_peers({"a"});
  EXPECT_EQ(d.schedule_retry("a", 0), 1 * kS);
  EXPECT_EQ(d.schedule_retry("a", kS / 2), 1 * kS);  // a second failure report: same redial
  EXPECT_EQ(d.attempts("a"), 1u);
}

TEST(PeerList, BackoffCapsAt30s) {
  PeerDialer d;
  d.set_peers({"a"});
  std::int64_t t = 0;
  for (int i = 0; i < 10; ++i) t = d.schedule_retry("a", t);
  std::int64_t next = d.schedule_retry("a", t);
  EXPECT_EQ(next - t, 30 * kS);
}

TEST(PeerList, ResetAfterConnectOrOffline) {
  PeerDialer d;
  d.set_peers({"a"});
  d.schedule_retry("a", 0);
  d.schedule_retry("a", 1 * kS);
  d.reset("a");
  EXPECT_EQ(d.attempts("a"), 0u);
  EXPECT_EQ(d.due(1 * kS, [](const std::string&) { return true; }), (Names{"a"}));
  EXPECT_EQ(d.schedule_retry("a", 1 * kS), 2 * kS);
}

TEST(PeerList, RelistingKeepsStateOfThoseStillListed) {
  PeerDialer d;
  d.set_peers({"a", "b"});
  d.schedule_retry("a", 0);
  d.schedule_retry("b", 0);
  d.set_peers({"a", "c"});
  EXPECT_EQ(d.attempts("a"), 1u);
  EXPECT_EQ(d.attempts("b"), 0u);  // forgotten
  EXPECT_EQ(d.next_retry_us(0), 1 * kS);
}
