// Limits and hostile input (PROTOCOL.md rules 7 and 8): malformed JSON, wrong types, size
// (single frames and fragmented messages), nesting depth, binary frames, message rate and
// connection counts. The server must answer with an error, close abusers with 1008/1009,
// never relay garbage, and keep serving everybody else.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

using Limits = ServerTest;

// Reads until the server closes; returns everything received before.
std::vector<Json> ReadUntilClosed(WsClient& c, int timeout_ms = kTimeoutMs) {
  std::vector<Json> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!c.closed() && std::chrono::steady_clock::now() < deadline) {
    if (std::optional<Json> m = c.Read(100)) got.push_back(*m);
  }
  return got;
}

std::string Texts(const std::vector<Json>& messages) {
  std::string out;
  for (const Json& m : messages) out += "\n  " + m.text().substr(0, 300);
  return out;
}

// `a` and `b` can still talk (and so the server is alive and serving).
void ExpectRoundTrip(WsClient& a, WsClient& b, const std::string& tag) {
  ASSERT_TRUE(a.SendText(AppMsg(b.name, tag)));
  std::optional<Json> m =
      b.ReadUntil([&](const Json& j) { return j.type() == "app" && j.Str("seq") == tag; });
  ASSERT_TRUE(m) << b.name << " did not receive " << tag << " from " << a.name;
  EXPECT_EQ(m->Str("name"), a.name);
}

TEST_F(Limits, MalformedJsonIsRefusedAndTheConnectionStaysUsable) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  const std::vector<std::string> garbage = {
      "{not json",
      "",
      "null",
      "[1,2,3]",
      "\"just a string\"",
      R"({"no":"type"})",
      R"({"type":""})",
      R"({"type":5,"target":"bob"})",
      R"({"type":"app","target":"bob"} trailing)",
      R"({"type":"app","target":"bob","n":1e999})",
  };
  for (const std::string& text : garbage) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(alice->SendText(text));
    std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m) << "no answer";
    EXPECT_TRUE(IsError(*m, "malformed")) << m->text();
  }
  ExpectRoundTrip(*alice, *bob, "still-usable");
  // bob saw none of the garbage.
  std::vector<Json> seen;
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "sentinel")));
  ASSERT_TRUE(
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "sentinel"; }, kTimeoutMs, &seen));
  for (const Json& j : seen) {
    EXPECT_TRUE(j.type() == "userlist" || j.Str("seq") == "sentinel") << j.text();
  }
}

TEST_F(Limits, TooManyBadMessagesCloseTheConnectionWith1008) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-bad-messages", "3"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(alice->SendText("garbage " + std::to_string(i)));
    std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "malformed")) << m->text();
    ASSERT_FALSE(alice->closed()) << "closed after only " << i + 1 << " bad messages";
  }
  ExpectRoundTrip(*alice, *bob, "after-three");  // --max-bad-messages 3 are tolerated
  ASSERT_TRUE(alice->SendText("one too many"));
  std::vector<Json> got = ReadUntilClosed(*alice);
  ASSERT_TRUE(alice->closed()) << "still open after 4 bad messages";
  EXPECT_EQ(alice->close_code(), 1008) << alice->close_reason();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(IsError(got.back(), "malformed")) << Texts(got);
  // alice is gone for the others too; the server carries on.
  ASSERT_TRUE(bob->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"bob"}, {"alice"}); }));
  std::unique_ptr<WsClient> carol = Join(port(), "carol");
  ASSERT_TRUE(carol);
  ExpectRoundTrip(*carol, *bob, "server-alive");
}

TEST_F(Limits, WrongFieldTypesAreRefusedAsWrongType) {
  // More refusals than the default --max-bad-messages: allow them all on one connection.
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-bad-messages", "100"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  const std::vector<std::string> wrong = {
      R"({"type":"video-offer","target":"bob","sdp":5})",
      R"({"type":"video-offer","target":"bob","sdp":"v=0"})",
      R"({"type":"video-offer","target":"bob"})",
      R"({"type":"video-answer","target":"bob","sdp":{"type":"answer","sdp":5}})",
      R"({"type":"video-answer","target":"bob","sdp":{"type":7,"sdp":"v=0"}})",
      R"({"type":"new-ice-candidate","target":"bob","candidate":"x"})",
      R"({"type":"new-ice-candidate","target":"bob","candidate":{"candidate":3}})",
      R"({"type":"new-ice-candidate","target":"bob"})",
      R"({"type":"app","target":5})",
      R"({"type":"app","target":["bob"]})",
      R"({"type":"message","text":5})",
  };
  for (const std::string& text : wrong) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(alice->SendText(text));
    std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "wrong-type")) << m->text();
  }
  // `username` with a non-string name, on a fresh connection.
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c && c->Read());
  ASSERT_TRUE(c->SendText(R"({"type":"username","name":7})"));
  std::optional<Json> m = c->Read();
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "wrong-type")) << m->text();

  std::vector<Json> seen;
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "sentinel")));
  ASSERT_TRUE(
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "sentinel"; }, kTimeoutMs, &seen));
  for (const Json& j : seen) {
    EXPECT_TRUE(j.type() == "userlist" || j.Str("seq") == "sentinel")
        << "bob received a refused message: " << j.text();
  }
}

constexpr std::string_view kBigPrefix = R"({"type":"app","target":"bob","pad":")";

// An app message to bob of exactly `bytes` bytes.
std::string BigMessage(std::size_t bytes) {
  std::string m(kBigPrefix);
  m.append(bytes - m.size() - 2, 'x');
  m += "\"}";
  return m;
}

TEST_F(Limits, A4MiBFrameIsRefusedAndClosedWith1009) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  std::unique_ptr<WsClient> mallory = Join(port(), "mallory");
  ASSERT_TRUE(alice && bob && mallory);

  bool sent = mallory->SendText(BigMessage(4 << 20));
  std::printf("4 MiB frame fully written before the server stopped reading: %s\n",
              sent ? "yes" : "no");
  std::vector<Json> got = ReadUntilClosed(*mallory);
  ASSERT_TRUE(mallory->closed()) << "the connection stayed open";
  bool too_large = false;
  for (const Json& m : got) too_large = too_large || IsError(m, "too-large");
  EXPECT_TRUE(too_large) << "no too-large error before the close; received:" << Texts(got);
  EXPECT_EQ(mallory->close_code(), 1009) << "reason: " << mallory->close_reason();

  // The server survived and keeps serving the others; bob never got the pad.
  EXPECT_TRUE(ServerAlive());
  std::vector<Json> seen;
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "after")));
  ASSERT_TRUE(
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "after"; }, kTimeoutMs, &seen));
  for (const Json& j : seen) EXPECT_FALSE(j.Has("pad")) << "bob received the oversized message";
  std::unique_ptr<WsClient> carol = Join(port(), "carol");
  ASSERT_TRUE(carol);
}

TEST_F(Limits, AMessageJustOverTheLimitIsRefusedAndOneAtTheLimitPasses) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-message-size", "4096"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->SendText(BigMessage(4096)));
  std::optional<Json> m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m) << "a message of exactly the limit was not relayed";
  EXPECT_EQ(m->Str("pad").value_or("").size(), 4096 - kBigPrefix.size() - 2);

  ASSERT_TRUE(alice->SendText(BigMessage(4097)));
  std::vector<Json> got = ReadUntilClosed(*alice);
  ASSERT_TRUE(alice->closed());
  EXPECT_EQ(alice->close_code(), 1009);
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(IsError(got.back(), "too-large")) << Texts(got);
}

TEST_F(Limits, An8MiBMessageIn64KiBFragmentsIsRefusedWithoutBufferingIt) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  std::unique_ptr<WsClient> mallory = Join(port(), "mallory");
  ASSERT_TRUE(alice && bob && mallory);
  ExpectRoundTrip(*alice, *bob, "warm-up");
  // The peak, not the RSS after the close: by then a buffered message is freed again.
  ASSERT_TRUE(server_.ResetPeakRss());
  long rss_before = server_.RssKiB(), peak_before = server_.PeakRssKiB();
  ASSERT_GT(rss_before, 0);
  ASSERT_GT(peak_before, 0);
  ASSERT_LT(peak_before - rss_before, 1024) << "clear_refs did not reset VmHWM";

  bool sent = mallory->SendFragmented(BigMessage(8 << 20), 64 << 10);
  std::vector<Json> got = ReadUntilClosed(*mallory);
  long rss_after = server_.RssKiB(), peak_after = server_.PeakRssKiB();
  std::printf(
      "all 8 MiB written: %s; server VmRSS %ld KiB -> %ld KiB (%+ld KiB), peak (VmHWM) %+ld KiB\n",
      sent ? "yes" : "no", rss_before, rss_after, rss_after - rss_before, peak_after - rss_before);
  ASSERT_TRUE(mallory->closed()) << "the connection stayed open";
  bool too_large = false;
  for (const Json& m : got) too_large = too_large || IsError(m, "too-large");
  EXPECT_TRUE(too_large) << "no too-large error before the close; received:" << Texts(got);
  EXPECT_EQ(mallory->close_code(), 1009) << "reason: " << mallory->close_reason();
  // The server holds at most --max-message-size (256 KiB) of it at any time.
  EXPECT_LT(peak_after - rss_before, 2048) << "the server buffered the fragments";
  EXPECT_LT(rss_after - rss_before, 2048);

  EXPECT_TRUE(ServerAlive());
  std::vector<Json> seen;
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "after")));
  ASSERT_TRUE(
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "after"; }, kTimeoutMs, &seen));
  for (const Json& j : seen) EXPECT_FALSE(j.Has("pad")) << "bob received the oversized message";
}

TEST_F(Limits, FragmentedMessagesUnderTheLimitAreReassembled) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->SendFragmented(AppMsg("bob", "tiny-fragments"), 3));
  std::optional<Json> m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("seq"), "tiny-fragments");
  EXPECT_EQ(m->Str("name"), "alice");
}

TEST_F(Limits, ABigFragmentedMessageWithAPingInBetweenIsRelayed) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  std::string big = BigMessage(200 << 10);
  const std::size_t frag = 16 << 10;
  for (std::size_t off = 0; off < big.size(); off += frag) {
    bool fin = off + frag >= big.size();
    ASSERT_TRUE(alice->SendFrame(off == 0 ? kText : kContinuation,
                                 std::string_view(big).substr(off, frag), fin));
    if (off == frag) {
      ASSERT_TRUE(alice->SendFrame(kPing, "control frames may interleave"));
    }
  }
  std::optional<Json> m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m) << "the reassembled 200 KiB message was not relayed";
  EXPECT_EQ(m->Str("pad").value_or("").size(), big.size() - kBigPrefix.size() - 2);
  EXPECT_EQ(m->Str("name"), "alice");
}

TEST_F(Limits, DeepNestingIsRefusedAsTooDeep) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  const std::size_t depth = 100000;
  std::string deep = std::string(depth, '[') + std::string(depth, ']');
  ASSERT_TRUE(alice->SendText(deep));
  std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m) << "no answer to 100,000 nested arrays";
  EXPECT_TRUE(IsError(*m, "too-deep")) << m->text();
  EXPECT_TRUE(ServerAlive());

  // Unbalanced, inside an object, and objects rather than arrays.
  std::string open_only = R"({"type":"app","target":"bob","x":)" + std::string(depth, '[');
  std::string objects;
  for (int i = 0; i < 1000; ++i) objects += R"({"a":)";
  objects += '1';
  objects.append(1000, '}');
  for (const std::string& text : {open_only, objects}) {
    ASSERT_TRUE(alice->SendText(text));
    m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "too-deep")) << m->text();
  }
  // 33 levels (over the default 32) in an otherwise valid message.
  std::string nested = std::string(32, '[') + std::string(32, ']');
  ASSERT_TRUE(alice->SendText(R"({"type":"app","target":"bob","x":)" + nested + "}"));
  m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "too-deep")) << m->text();
  // 32 levels pass.
  nested = std::string(31, '[') + std::string(31, ']');
  ASSERT_TRUE(
      alice->SendText(R"({"type":"app","target":"bob","seq":"deep-ok","x":)" + nested + "}"));
  m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m) << "32 levels of nesting were refused";
  EXPECT_EQ(m->Str("seq"), "deep-ok");
  ExpectRoundTrip(*alice, *bob, "alive");
}

TEST_F(Limits, BinaryFramesAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->SendBinary(AppMsg("bob", "binary")));
  std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m) << "no answer to a binary frame";
  EXPECT_EQ(m->type(), "error") << m->text();
  std::printf("binary frame answered with: %s\n", m->text().c_str());
  ASSERT_TRUE(alice->SendBinary(std::string("\x00\xff\x10", 3)));
  m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "error") << m->text();

  std::vector<Json> seen;
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "sentinel")));
  ASSERT_TRUE(
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "sentinel"; }, kTimeoutMs, &seen));
  for (const Json& j : seen) EXPECT_NE(j.Str("seq"), "binary") << "a binary frame was relayed";
}

TEST_F(Limits, RateLimitRefusesFloodsAndRecovers) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-rate", "5", "--max-burst", "5"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);

  const int sent = 20;
  for (int i = 0; i < sent; ++i) ASSERT_TRUE(alice->SendText(AppMsg("bob", std::to_string(i))));
  std::vector<Json> alice_seen;
  std::optional<Json> err = alice->ReadUntil(
      [](const Json& j) { return IsError(j, "rate-limited"); }, kTimeoutMs, &alice_seen);
  ASSERT_TRUE(err) << "no rate-limited error after " << sent << " messages at once";

  // The limit is defined in time: a second later the bucket has refilled.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "after-pause")));
  std::vector<Json> seen;
  ASSERT_TRUE(bob->ReadUntil([](const Json& j) { return j.Str("seq") == "after-pause"; },
                             kTimeoutMs, &seen))
      << "alice was still limited after a pause";
  int relayed = 0;
  for (const Json& j : seen) relayed += j.type() == "app" && j.Str("seq") != "after-pause";
  // One error per run of refusals, not one per dropped message, and none for the message
  // after the pause.
  for (const Json& m : alice->Drain(200)) alice_seen.push_back(m);
  int errors = 0;
  for (const Json& j : alice_seen) errors += IsError(j, "rate-limited");
  std::printf("%d of %d flooded messages relayed, %d rate-limited errors\n", relayed, sent, errors);
  EXPECT_GE(relayed, 1);
  // The burst of 5 (the username took one token), plus what refilled at 5/s while the
  // server read the 20 messages: a handful at most.
  EXPECT_LE(relayed, 8);
  EXPECT_GE(errors, 1);
  EXPECT_LT(errors, sent - relayed) << "one error per dropped message";
  EXPECT_FALSE(alice->closed());
}

TEST_F(Limits, AClientThatNeverStopsFloodingIsClosedWith1008) {
  // After --max-rate/--max-burst, refused messages in a row are strikes; 200 strikes close
  // the connection.
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-rate", "5", "--max-burst", "5"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  int written = 0;
  for (; written < 400 && !alice->closed(); ++written) {
    if (!alice->SendText(AppMsg("bob", std::to_string(written)))) break;
  }
  std::vector<Json> got = ReadUntilClosed(*alice);
  ASSERT_TRUE(alice->closed()) << "still open after " << written << " messages in a row";
  EXPECT_EQ(alice->close_code(), 1008) << alice->close_reason();
  std::printf("closed with %d after %d messages written; reason: %s\n", alice->close_code(),
              written, alice->close_reason().c_str());
  ASSERT_TRUE(bob->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"bob"}, {"alice"}); }));
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Limits, AClientThatDoesNotReadIsDroppedBeforeItsBacklogGrowsUnbounded) {
  // bob stops reading while alice sends him far more than the socket buffers hold: once the
  // unsent data queued for bob passes --max-send-backlog, the server drops him.
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--max-send-backlog", "65536", "--max-burst", "1000", "--max-rate", "1000"}));
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"alice", "bob"}); }));
  const std::string big = BigMessage(250 << 10);
  long rss_before = server_.RssKiB();
  int sent = 0;
  std::optional<Json> gone;
  // 250 KiB at a time until the server reports bob gone (at most 400 MB).
  for (; sent < 1600 && !gone; ++sent) {
    ASSERT_TRUE(alice->SendText(big)) << "alice could not send";
    while (std::optional<Json> m = alice->Read(0)) {
      if (IsUserlistWith(*m, {"alice"}, {"bob"})) gone = m;
    }
  }
  if (!gone) {
    gone = alice->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"alice"}, {"bob"}); });
  }
  long rss_after = server_.RssKiB();
  std::printf("bob dropped after %d messages of 250 KiB (%d MiB); server VmRSS %+ld KiB\n", sent,
              sent * 250 / 1024, rss_after - rss_before);
  ASSERT_TRUE(gone) << "the server kept queueing for a client that does not read";
  EXPECT_EQ(server_.Metric("webrtc_call_slow_peers_dropped_total"), 1);
  // bob, reading at last, finds the queued messages and then the close (or, past the grace
  // period, the end of the connection).
  EXPECT_TRUE(bob->WaitClosed(10000));
  std::printf("bob: close code %d, eof %d\n", bob->close_code(), bob->eof());
  EXPECT_TRUE(bob->close_code() == 1008 || bob->close_code() == -1) << bob->close_code();
  EXPECT_TRUE(ServerAlive());
}

// One client sending as fast as it can must not stall the others (the server runs on one
// thread, and libsoup 3.2 reads a connection until its socket is drained). Control frames
// bypass the router, and so the message rate limit: libsoup answers every ping with a pong
// by itself, and a client that never reads its pongs must not make the server queue them
// without bound.
enum class FloodKind { kPingsReadingPongs, kPingsNeverReadingPongs, kTextMessages };

struct Flood {
  long round_trip_ms = -1;  // alice -> bob during the flood; -1: not delivered in time
  long frames = 0;
  long rss_growth_kib = 0;
  long recovery_ms = -1;  // from the end of the flood until /healthz answers again
  int flooder_close_code = -1;
};

Flood RunFlood(ServerProcess& server, int port, FloodKind kind) {
  Flood r;
  std::unique_ptr<WsClient> alice = Join(port, "alice");
  std::unique_ptr<WsClient> bob = Join(port, "bob");
  std::unique_ptr<WsClient> flooder = Join(port, "flooder");
  if (!alice || !bob || !flooder) return r;
  long rss_before = server.RssKiB();
  std::atomic<long> frames{0};
  std::thread thread([&] {
    const std::string ping(125, 'p');  // the largest control frame
    // 8 KiB messages to an absent user: each is parsed and answered with an error.
    const std::string text =
        R"({"type":"app","target":"nobody","pad":")" + std::string(8 << 10, 'x') + "\"}";
    bool read = kind != FloodKind::kPingsNeverReadingPongs;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    while (std::chrono::steady_clock::now() < end) {
      bool ok = kind == FloodKind::kTextMessages ? flooder->SendText(text)
                                                 : flooder->SendFrame(kPing, ping, true, 1000);
      if (!ok) break;
      if (++frames % 64 == 0 && read) {
        while (flooder->ReadFrame(0)) {
        }
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto sent_at = std::chrono::steady_clock::now();
  if (alice->SendText(AppMsg("bob", "during-flood")) &&
      bob->ReadUntil([](const Json& j) { return j.Str("seq") == "during-flood"; }, 1500)) {
    r.round_trip_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - sent_at)
                                            .count());
  }
  thread.join();
  r.frames = frames;
  auto flood_end = std::chrono::steady_clock::now();
  for (int i = 0; i < 10 && HttpGet(port, "/healthz").status != 200; ++i) {
  }
  r.recovery_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - flood_end)
                                        .count());
  r.rss_growth_kib = server.RssKiB() - rss_before;
  flooder->WaitClosed(0);
  r.flooder_close_code = flooder->close_code();
  flooder->Abort();
  const char* what = kind == FloodKind::kTextMessages ? "8 KiB messages"
                     : kind == FloodKind::kPingsReadingPongs
                         ? "pings (flooder reads its pongs)"
                         : "pings (flooder never reads its pongs)";
  std::printf(
      "%ld %s sent in up to 2 s, flooder close code %d: alice->bob %s%ld ms, server VmRSS "
      "%+ld KiB, /healthz back %ld ms after the flood\n",
      r.frames, what, r.flooder_close_code, r.round_trip_ms < 0 ? "not delivered within " : "",
      r.round_trip_ms < 0 ? 1500 : r.round_trip_ms, r.rss_growth_kib, r.recovery_ms);
  return r;
}

TEST_F(Limits, APingFloodDoesNotStallOtherUsers) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Flood r = RunFlood(server_, port(), FloodKind::kPingsReadingPongs);
  ASSERT_GT(r.frames, 0);
  EXPECT_GE(r.round_trip_ms, 0) << "alice's message to bob waited for the flood to end";
  EXPECT_LT(r.round_trip_ms, 500);
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Limits, APingFloodWithUnreadPongsIsBounded) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Flood r = RunFlood(server_, port(), FloodKind::kPingsNeverReadingPongs);
  ASSERT_GT(r.frames, 0);
  EXPECT_GE(r.round_trip_ms, 0) << "alice's message to bob waited for the flood to end";
  EXPECT_LT(r.round_trip_ms, 500);
  EXPECT_LT(r.rss_growth_kib, 8192) << "the server queued the unread pongs without bound";
  EXPECT_LT(r.recovery_ms, 1000) << "the server was still busy long after the flood";
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Limits, AClientStreamingMessagesAtFullSpeedDoesNotStallOtherUsers) {
  // A rate limit high enough to let the stream through: only fairness protects the others.
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-rate", "1000000", "--max-burst", "1000000"}));
  Flood r = RunFlood(server_, port(), FloodKind::kTextMessages);
  ASSERT_GT(r.frames, 0);
  EXPECT_GE(r.round_trip_ms, 0) << "alice's message to bob waited for the stream to end";
  EXPECT_LT(r.round_trip_ms, 500);
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Limits, ConnectionsPerAddressAreLimited) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-connections-per-address", "3"}));
  std::vector<std::unique_ptr<WsClient>> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(WsClient::Connect(port()));
    ASSERT_TRUE(conns.back());
    ASSERT_EQ(conns.back()->status(), 101) << "connection " << i + 1;
    ASSERT_TRUE(conns.back()->Read());  // id: the server counts it
  }
  std::unique_ptr<WsClient> fourth = WsClient::Connect(port());
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->status(), 429) << fourth->handshake().body;
  EXPECT_FALSE(fourth->handshake().Header("retry-after").empty());

  // A slot frees up once a connection is gone.
  ASSERT_TRUE(conns[0]->SendClose(1000));
  ASSERT_TRUE(conns[0]->WaitEof());
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::unique_ptr<WsClient> again;
  while (std::chrono::steady_clock::now() < deadline) {
    again = WsClient::Connect(port());
    ASSERT_TRUE(again);
    status = again->status();
    if (status == 101) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 101) << "the closed connection's slot was not given back";
  // HTTP requests are not WebSocket connections: still served.
  EXPECT_EQ(HttpGet(port(), "/healthz").status, 200);
}

TEST_F(Limits, TotalConnectionsAreLimited) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-connections", "2"}));
  std::unique_ptr<WsClient> a = Join(port(), "alice");
  std::unique_ptr<WsClient> b = Join(port(), "bob");
  ASSERT_TRUE(a && b);
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status(), 503) << c->handshake().body;
  EXPECT_FALSE(c->handshake().Header("retry-after").empty());
  ExpectRoundTrip(*a, *b, "still-fine");
}

}  // namespace
}  // namespace wcc_test
