// The reconnect policy shared by the element and the tests: capped, jittered, exponential.
#include "backoff.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

using signaling::Backoff;

TEST(Backoff, DoublesFromTheInitialDelayUpToTheCap) {
  Backoff b(1000, 30000);
  // random = 0 gives the bottom of each step [d/2, d], random = d/2 its top.
  std::uint32_t expected_high[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (std::uint32_t high : expected_high) {
    Backoff lo = b, hi = b;
    EXPECT_EQ(lo.next_delay_ms(0), high - high / 2);
    EXPECT_EQ(hi.next_delay_ms(high / 2), high);  // the top of [d/2, d]
    b.next_delay_ms(0);
  }
  EXPECT_EQ(b.attempts(), 8u);
}

TEST(Backoff, EveryDelayLiesInTheUpperHalfOfItsStep) {
  Backoff b(500, 8000);
  std::mt19937 rng(7);
  for (int n = 0; n < 40; ++n) {
    std::uint32_t d = std::min<std::uint32_t>(500u << std::min(n, 10), 8000);
    std::uint32_t got = b.next_delay_ms(rng());
    EXPECT_GE(got, d - d / 2) << "attempt " << n;
    EXPECT_LE(got, d) << "attempt " << n;
  }
}

TEST(Backoff, ResetStartsOver) {
  Backoff b(1000, 30000);
  for (int i = 0; i < 6; ++i) b.next_delay_ms(0);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  EXPECT_EQ(b.next_delay_ms(0), 500u);
}

TEST(Backoff, TheCapIsNeverBelowTheInitialDelay) {
  Backoff b(2000, 100);
  EXPECT_EQ(b.max_ms(), 2000u);
  EXPECT_LE(b.next_delay_ms(12345), 2000u);
  b.set_max_ms(60000);
  for (int i = 0; i < 20; ++i) EXPECT_LE(b.next_delay_ms(0xffffffffu), 60000u);
}

TEST(Backoff, ManyClientsAreSpreadOverTheStep) {
  // 1,000 clients that lost the server at the same moment: their first retries spread over
  // the whole upper half of the first step, not onto a few instants.
  std::mt19937 rng(1);
  std::set<std::uint32_t> first;
  for (int i = 0; i < 1000; ++i) first.insert(Backoff(1000, 30000).next_delay_ms(rng()));
  EXPECT_GT(first.size(), 400u);
  EXPECT_GE(*first.begin(), 500u);
  EXPECT_LE(*first.rbegin(), 1000u);
  EXPECT_LT(*first.begin(), 520u);
  EXPECT_GT(*first.rbegin(), 980u);
}

TEST(Backoff, HugeAttemptCountsDoNotOverflow) {
  Backoff b(1, 0xffffffffu);
  std::uint32_t last = 0;
  for (int i = 0; i < 100; ++i) last = b.next_delay_ms(0xffffffffu);
  EXPECT_GT(last, 0x7fffffffu);
}
