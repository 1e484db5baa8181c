// The server's decisions on an HTTP request head (signaling/http-policy.h).
#include "http-policy.h"

#include <gtest/gtest.h>

#include <string>

namespace signaling::http {
namespace {

TEST(HttpPolicy, AHeadWithoutBodyIsServed) {
  Decision d = decide({});
  EXPECT_EQ(d.refusal, Refusal::kNone);
  EXPECT_EQ(d.status, 0u);
  EXPECT_FALSE(d.ignore_range);
  EXPECT_EQ(decide({.content_length = "0"}).refusal, Refusal::kNone);
  EXPECT_EQ(decide({.content_length = " 000 "}).refusal, Refusal::kNone);
}

TEST(HttpPolicy, AnyDeclaredBodyIsRefusedWith413) {
  for (const char* length : {"1", "1073741824", "10000000000", "99999999999999999999999", "01"}) {
    Decision d = decide({.content_length = length});
    EXPECT_EQ(d.refusal, Refusal::kBody) << length;
    EXPECT_EQ(d.status, 413u) << length;
  }
  EXPECT_EQ(decide({.transfer_encoding = true}).status, 413u);
  EXPECT_EQ(decide({.content_length = "0", .transfer_encoding = true}).status, 413u);
  // Malformed lengths declare something: refused too.
  for (const char* length : {"", "-1", "1e9", "0x10", "5, 5"}) {
    EXPECT_EQ(decide({.content_length = length}).status, 413u) << '"' << length << '"';
  }
}

TEST(HttpPolicy, ExpectationsAreRefused) {
  Decision d = decide({.expect = "100-continue"});
  EXPECT_EQ(d.refusal, Refusal::kExpect);
  EXPECT_EQ(d.status, 417u);
  // With a body it is the body that is refused (no 100 Continue either way).
  EXPECT_EQ(decide({.content_length = "10000000000", .expect = "100-continue"}).status, 413u);
}

TEST(HttpPolicy, RangesAreCounted) {
  EXPECT_EQ(count_ranges("bytes=0-99"), 1u);
  EXPECT_EQ(count_ranges(" Bytes=0-1,5-9"), 2u);
  EXPECT_EQ(count_ranges("bytes=-500"), 1u);
  EXPECT_EQ(count_ranges("items=0-1"), 0u);
  EXPECT_EQ(count_ranges(""), 0u);
}

TEST(HttpPolicy, OnlyASingleShortRangeIsServed) {
  EXPECT_FALSE(decide({.range = "bytes=100-199"}).ignore_range);
  EXPECT_TRUE(decide({.range = "bytes=0-1,2-3"}).ignore_range);
  std::string thousand = "bytes=0-";
  for (int i = 1; i < 1000; ++i) thousand += ",0-";
  EXPECT_TRUE(decide({.range = thousand}).ignore_range);
  EXPECT_TRUE(decide({.range = "bytes=0-" + std::string(100, '9')}).ignore_range);
  EXPECT_TRUE(decide({.range = "pages=1-2"}).ignore_range);
  // A range does not make a refusal.
  EXPECT_EQ(decide({.range = "bytes=0-1,2-3"}).refusal, Refusal::kNone);
}

}  // namespace
}  // namespace signaling::http
