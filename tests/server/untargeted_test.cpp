// The server's opt-in untargeted mode over real sockets (--relay-untargeted,
// --max-held-candidates): the flags reach the router, its effects reach the clients, and the
// metrics count what the mode did. The rules themselves are unit-tested
// (tests/unit/router_untargeted_test.cpp).
#include <string>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

class Untargeted : public ServerTest {
 protected:
  void Join3() {
    for (const char* name : {"alice", "bob", "carol"}) {
      clients_.push_back(Join(port(), name));
      ASSERT_TRUE(clients_.back());
    }
    // carol's own Join already read the list with all three.
    for (WsClient* c : {clients_[0].get(), clients_[1].get()}) {
      ASSERT_TRUE(c->ReadUntil([](const Json& m) {
        return IsUserlistWith(m, {"alice", "bob", "carol"});
      }));
    }
  }
  void TearDown() override {
    clients_.clear();
    ServerTest::TearDown();
  }
  WsClient& alice() { return *clients_[0]; }
  WsClient& bob() { return *clients_[1]; }
  WsClient& carol() { return *clients_[2]; }
  std::vector<std::unique_ptr<WsClient>> clients_;
};

const char* kCandidate =
    R"({"type":"new-ice-candidate","candidate":{"candidate":"candidate:1 1 UDP 2122252543 )"
    R"(127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}})";

TEST_F(Untargeted, OfferToEveryoneFirstAnswerPairsHeldCandidatesBounded) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--relay-untargeted", "--max-held-candidates", "2"}));
  ASSERT_NO_FATAL_FAILURE(Join3());
  ASSERT_TRUE(alice().SendText(OfferMsg("")));
  for (WsClient* c : {&bob(), &carol()}) {
    auto offer = c->ReadUntil([](const Json& m) { return m.type() == "video-offer"; });
    ASSERT_TRUE(offer) << c->name;
    EXPECT_EQ(offer->Str("name"), "alice");
  }
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(alice().SendText(kCandidate));
  ASSERT_TRUE(bob().SendText(
      R"({"type":"video-answer","targetUsername":"alice","sdp":{"type":"answer","sdp":"v=0"}})"));
  auto answer = alice().ReadUntil([](const Json& m) { return m.type() == "video-answer"; });
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->Str("name"), "bob");
  // bob gets the two held candidates, then (sentinel) nothing more of those sent early.
  ASSERT_TRUE(alice().SendText(AppMsg("bob", "sentinel")));
  std::vector<Json> seen;
  ASSERT_TRUE(
      bob().ReadUntil([](const Json& m) { return m.type() == "app" && m.Str("seq") == "sentinel"; },
                      kTimeoutMs, &seen));
  int candidates = 0;
  for (const Json& m : seen) candidates += m.type() == "new-ice-candidate";
  EXPECT_EQ(candidates, 2);
  EXPECT_EQ(server_.Metric(R"(webrtc_call_held_candidates_dropped_total{reason="limit"})"), 2);
  EXPECT_EQ(server_.Metric("webrtc_call_untargeted_offers_total"), 1);

  // carol answers too late: a hang-up, and alice hears nothing of it.
  ASSERT_TRUE(carol().SendText(R"({"type":"video-answer","sdp":{"type":"answer","sdp":"v=0"}})"));
  auto hang_up = carol().ReadUntil([](const Json& m) { return m.type() == "hang-up"; });
  ASSERT_TRUE(hang_up);
  EXPECT_EQ(hang_up->Str("name"), "alice");
  EXPECT_EQ(hang_up->Str("reason"), "answered-elsewhere");
  EXPECT_EQ(server_.Metric("webrtc_call_late_answers_total"), 1);
  // Untargeted candidates now go to the partner only.
  ASSERT_TRUE(alice().SendText(kCandidate));
  ASSERT_TRUE(alice().SendText(AppMsg("carol", "sentinel2")));
  seen.clear();
  ASSERT_TRUE(carol().ReadUntil(
      [](const Json& m) { return m.type() == "app" && m.Str("seq") == "sentinel2"; }, kTimeoutMs,
      &seen));
  for (const Json& m : seen) EXPECT_NE(m.type(), "new-ice-candidate") << m.text();
  EXPECT_TRUE(bob().ReadUntil([](const Json& m) { return m.type() == "new-ice-candidate"; }));
}

TEST_F(Untargeted, OffByDefault) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_NO_FATAL_FAILURE(Join3());
  ASSERT_TRUE(alice().SendText(OfferMsg("")));
  auto error = alice().ReadUntil([](const Json& m) { return m.type() == "error"; });
  ASSERT_TRUE(error);
  EXPECT_TRUE(IsError(*error, "no-target")) << error->text();
  ASSERT_TRUE(alice().SendText(AppMsg("bob", "sentinel")));
  std::vector<Json> seen;
  ASSERT_TRUE(
      bob().ReadUntil([](const Json& m) { return m.type() == "app" && m.Str("seq") == "sentinel"; },
                      kTimeoutMs, &seen));
  for (const Json& m : seen) EXPECT_NE(m.type(), "video-offer") << m.text();
  EXPECT_EQ(server_.Metric("webrtc_call_untargeted_offers_total"), 0);
}

}  // namespace
}  // namespace wcc_test
