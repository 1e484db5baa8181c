// The router's opt-in untargeted mode (RouterConfig::relay_untargeted, --relay-untargeted),
// for apps that never send `target`: one test per rule of docs/protocol.md, "Apps that omit
// `target`".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router-harness.h"

using namespace router_test;

namespace {

RouterConfig untargeted_mode() {
  RouterConfig config;
  config.relay_untargeted = true;
  return config;
}

const char* kUntargetedOffer = R"({"type":"video-offer","sdp":{"type":"offer","sdp":"v=0\r\n"}})";
const char* kUntargetedAnswer =
    R"({"type":"video-answer","sdp":{"type":"answer","sdp":"v=0\r\n"}})";
const char* kUntargetedCandidate =
    R"({"type":"new-ice-candidate","candidate":{"candidate":"c","sdpMid":"0"}})";

// The three ways an answer to an untargeted offer comes: as the seed app sends it (no target
// at all, or keyed `targetUsername`), and as the element does (`target`).
std::vector<std::string> answers_to(const std::string& caller) {
  return {
      kUntargetedAnswer,
      R"({"type":"video-answer","targetUsername":")" + caller +
          R"(","sdp":{"type":"answer","sdp":"v=0"}})",
      R"({"type":"video-answer","target":")" + caller + R"(","sdp":{"type":"answer","sdp":"v=0"}})",
  };
}

std::string reason_of(const Msg& m) {
  auto r = protocol::string_member(relayed(m).object.get(), "reason");
  return r ? *r : "";
}

}  // namespace

// Without the mode (the default), nothing untargeted is ever broadcast: the offer, the answer
// and the candidates of an app that omits `target` are refused `no-target`.
TEST(RouterUntargeted, OffByDefault) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  for (const char* msg : {kUntargetedOffer, kUntargetedCandidate}) {
    Effects fx = h.send(1, msg);
    EXPECT_EQ(error_code(fx, 1), "no-target") << msg;
    EXPECT_TRUE(to(fx, 2).empty()) << msg;
  }
  Effects fx = h.send(2, kUntargetedAnswer);
  EXPECT_EQ(error_code(fx, 2), "no-target");
  EXPECT_TRUE(to(fx, 1).empty());
  EXPECT_EQ(fx.untargeted_offers, 0u);
}

TEST(RouterUntargeted, OfferGoesToEveryOtherUserNeverBack) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.connect(4);  // not registered: gets nothing
  Effects fx = h.send(1, kUntargetedOffer);
  EXPECT_TRUE(to(fx, 1).empty());
  EXPECT_TRUE(to(fx, 4).empty());
  for (ConnId id : {2, 3}) {
    auto msgs = to(fx, id);
    ASSERT_EQ(msgs.size(), 1u) << id;
    EXPECT_EQ(msgs[0].type, "video-offer");
    EXPECT_EQ(relayed(msgs[0]).name, "alice");
  }
  EXPECT_EQ(fx.untargeted_offers, 1u);
  EXPECT_EQ(fx.relayed, 2u);
  EXPECT_EQ(h.router.offered_to(1), (std::set<ConnId>{2, 3}));
  EXPECT_TRUE(h.router.partners_of(1).empty());  // no call until someone answers
}

// Nobody else online: nothing to offer to, refused as without the mode.
TEST(RouterUntargeted, OfferWithNobodyElseOnlineIsRefused) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  Effects fx = h.send(1, kUntargetedOffer);
  EXPECT_EQ(error_code(fx, 1), "no-target");
  EXPECT_EQ(fx.untargeted_offers, 0u);
  EXPECT_TRUE(h.router.offered_to(1).empty());
}

// The first answer pairs the call, whichever way it names (or does not name) the caller; a
// later answer from someone else gets a hang-up `answered-elsewhere` and is not delivered.
TEST(RouterUntargeted, FirstAnswerPairsLaterAnswerGetsHangUp) {
  for (const std::string& first : answers_to("alice")) {
    for (const std::string& late : answers_to("alice")) {
      SCOPED_TRACE("first " + first + ", late " + late);
      Harness h(untargeted_mode());
      h.join(1, "alice");
      h.join(2, "bob");
      h.join(3, "carol");
      h.send(1, kUntargetedOffer);
      Effects fx = h.send(2, first);
      auto msgs = to(fx, 1);
      ASSERT_EQ(msgs.size(), 1u);
      EXPECT_EQ(msgs[0].type, "video-answer");
      EXPECT_EQ(relayed(msgs[0]).name, "bob");
      EXPECT_TRUE(to(fx, 3).empty());
      EXPECT_EQ(h.router.partners_of(1), std::set<ConnId>{2});
      EXPECT_EQ(h.router.partners_of(2), std::set<ConnId>{1});

      fx = h.send(3, late);
      EXPECT_TRUE(to(fx, 1).empty()) << "the late answer reached the caller";
      EXPECT_TRUE(to(fx, 2).empty());
      msgs = to(fx, 3);
      ASSERT_EQ(msgs.size(), 1u);
      EXPECT_EQ(msgs[0].type, "hang-up");
      EXPECT_EQ(relayed(msgs[0]).name, "alice");
      EXPECT_EQ(reason_of(msgs[0]), "answered-elsewhere");
      EXPECT_EQ(fx.late_answers, 1u);
      EXPECT_EQ(h.router.partners_of(1), std::set<ConnId>{2});
      EXPECT_TRUE(h.router.partners_of(3).empty());
    }
  }
}

// After the pairing, untargeted messages of either side (candidates, re-offers, answers to
// them, hang-up) go to the partner only.
TEST(RouterUntargeted, LaterUntargetedMessagesGoToThePartner) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(2, kUntargetedAnswer);
  const std::pair<ConnId, const char*> steps[] = {
      {1, kUntargetedCandidate},    {2, kUntargetedCandidate}, {2, kUntargetedOffer},
      {1, kUntargetedAnswer},       {1, kUntargetedOffer},     {2, kUntargetedAnswer},
      {2, R"({"type":"hang-up"})"},
  };
  for (const auto& [from, msg] : steps) {
    ConnId partner = from == 1 ? 2 : 1;
    Effects fx = h.send(from, msg);
    ASSERT_EQ(to(fx, partner).size(), 1u) << from << ": " << msg;
    EXPECT_TRUE(to(fx, 3).empty()) << from << ": " << msg;
    EXPECT_TRUE(to(fx, from).empty()) << from << ": " << msg;
    EXPECT_EQ(fx.untargeted_offers, 0u) << "a re-offer in the call was broadcast: " << msg;
  }
  EXPECT_TRUE(h.router.partners_of(1).empty());
  // The call is over: carol's answer now is no longer "late", just without a call.
  Effects fx = h.send(3, kUntargetedAnswer);
  EXPECT_EQ(error_code(fx, 3), "no-target");
  EXPECT_EQ(fx.late_answers, 0u);
}

// The caller's candidates sent before the answer are held, in order, and delivered to the
// answerer only, right when it answers.
TEST(RouterUntargeted, CandidatesBeforeTheAnswerAreHeldThenDelivered) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  for (const char* c : {R"({"type":"new-ice-candidate","candidate":{"candidate":"c1"}})",
                        R"({"type":"new-ice-candidate","candidate":{"candidate":"c2"}})",
                        R"({"type":"new-ice-candidate","name":"mallory","candidate":null})"}) {
    Effects fx = h.send(1, c);
    EXPECT_TRUE(fx.sends.empty()) << c;  // neither delivered nor refused
  }
  EXPECT_EQ(h.router.held_candidates(1), 3u);
  Effects fx = h.send(3, R"({"type":"video-answer","targetUsername":"alice","sdp":{"sdp":"v"}})");
  auto msgs = to(fx, 3);
  ASSERT_EQ(msgs.size(), 3u);
  std::vector<std::string> got;
  for (auto& m : msgs) {
    EXPECT_EQ(m.type, "new-ice-candidate");
    EXPECT_EQ(relayed(m).name, "alice");  // stamped, not "mallory"
    JsonNode* cand = json_object_get_member(relayed(m).object.get(), "candidate");
    got.push_back(JSON_NODE_HOLDS_NULL(cand)
                      ? "null"
                      : json_object_get_string_member(json_node_get_object(cand), "candidate"));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"c1", "c2", "null"}));
  EXPECT_TRUE(to(fx, 2).empty());
  EXPECT_EQ(to(fx, 1).size(), 1u);  // the answer
  EXPECT_EQ(h.router.held_candidates(1), 0u);
  // From now on, straight to the partner.
  EXPECT_EQ(to(h.send(1, kUntargetedCandidate), 3).size(), 1u);
}

TEST(RouterUntargeted, HeldCandidatesAreBoundedInCountAndBytes) {
  RouterConfig config = untargeted_mode();
  config.max_held_candidates = 2;
  Harness h(config);
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kUntargetedOffer);
  std::uint64_t dropped = 0;
  std::size_t events = 0;
  for (int i = 0; i < 5; ++i) {
    Effects fx = h.send(1, kUntargetedCandidate);
    dropped += fx.held_dropped_limit;
    for (auto& e : fx.events) events += e.what == "held-candidates-dropped";
  }
  EXPECT_EQ(h.router.held_candidates(1), 2u);
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(events, 1u);  // one log line per offer, not one per candidate
  EXPECT_EQ(to(h.send(2, kUntargetedAnswer), 2).size(), 2u);

  config.max_held_candidates = 100;
  config.max_held_candidate_bytes = 3 * std::string(kUntargetedCandidate).size() + 40;
  Harness b(config);
  b.join(1, "alice");
  b.join(2, "bob");
  b.send(1, kUntargetedOffer);
  dropped = 0;
  for (int i = 0; i < 10; ++i) dropped += b.send(1, kUntargetedCandidate).held_dropped_limit;
  EXPECT_LE(b.router.held_candidates(1), 3u);
  EXPECT_GE(b.router.held_candidates(1), 1u);
  EXPECT_EQ(dropped, 10u - b.router.held_candidates(1));
}

// The caller hangs up before anyone answered: everyone it rang gets its hang-up, the held
// candidates are dropped, and an answer after that reaches nobody.
TEST(RouterUntargeted, CallerHangsUpBeforeTheAnswer) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(1, kUntargetedCandidate);
  h.send(1, kUntargetedCandidate);
  Effects fx = h.send(1, R"({"type":"hang-up"})");
  for (ConnId id : {2, 3}) {
    auto msgs = to(fx, id);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type, "hang-up");
    EXPECT_EQ(relayed(msgs[0]).name, "alice");
  }
  EXPECT_EQ(fx.held_dropped_ended, 2u);
  EXPECT_TRUE(h.router.offered_to(1).empty());
  fx = h.send(2, kUntargetedAnswer);
  EXPECT_EQ(error_code(fx, 2), "no-target");
  EXPECT_TRUE(to(fx, 1).empty());
}

// The caller disconnects before anyone answered: everyone it rang gets a hang-up
// `disconnected` in its name (as call partners do), and its held candidates are dropped.
TEST(RouterUntargeted, CallerLeavesBeforeTheAnswer) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(1, kUntargetedCandidate);
  Effects fx = h.disconnect(1);
  for (ConnId id : {2, 3}) {
    auto msgs = to(fx, id);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type, "hang-up");
    EXPECT_EQ(relayed(msgs[0]).name, "alice");
    EXPECT_EQ(reason_of(msgs[0]), "disconnected");
  }
  EXPECT_EQ(fx.held_dropped_ended, 1u);
  // Whoever registers as alice next has no offer out.
  h.join(4, "alice");
  EXPECT_EQ(error_code(h.send(2, kUntargetedAnswer), 2), "no-target");
}

// Once answered, the caller leaving is an ordinary call ending: only the partner is told.
TEST(RouterUntargeted, CallerLeavesAfterTheAnswerTellsThePartnerOnly) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(2, kUntargetedAnswer);
  Effects fx = h.disconnect(1);
  EXPECT_EQ(to(fx, 2).size(), 1u);
  EXPECT_TRUE(to(fx, 3).empty());
}

// A new untargeted offer from a caller still unanswered replaces its pending one: it goes to
// everyone online now, and the candidates held so far stay for the answerer (the same peer
// connection does not gather them again).
TEST(RouterUntargeted, NewOfferReplacesThePendingOne) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kUntargetedOffer);
  h.send(1, kUntargetedCandidate);
  h.join(3, "carol");
  Effects fx = h.send(1, kUntargetedOffer);
  EXPECT_EQ(to(fx, 2).size(), 1u);
  EXPECT_EQ(to(fx, 3).size(), 1u);
  EXPECT_EQ(h.router.offered_to(1), (std::set<ConnId>{2, 3}));
  fx = h.send(3, kUntargetedAnswer);
  EXPECT_EQ(to(fx, 3).size(), 1u);  // the held candidate
  EXPECT_EQ(to(fx, 1).size(), 1u);
  EXPECT_EQ(h.router.partners_of(1), std::set<ConnId>{3});
}

// A decline (hang-up) from one of those it rang reaches the caller only when nobody else may
// still answer: the caller of an untargeted offer tears its call down on any hang-up.
TEST(RouterUntargeted, DeclineReachesTheCallerOnlyFromTheLast) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  Effects fx = h.send(2, R"({"type":"hang-up","target":"alice","reason":"declined"})");
  EXPECT_TRUE(to(fx, 1).empty());
  EXPECT_EQ(h.router.offered_to(1), std::set<ConnId>{3});
  // bob declined: his answer now is not a pairing any more.
  EXPECT_EQ(error_code(h.send(2, kUntargetedAnswer), 2), "no-target");
  fx = h.send(3, R"({"type":"hang-up"})");
  auto msgs = to(fx, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "carol");
  EXPECT_TRUE(h.router.offered_to(1).empty());
}

// The last one who could answer leaves: the caller gets a hang-up `disconnected` from it.
TEST(RouterUntargeted, LastRecipientLeavingEndsTheOffer) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kUntargetedOffer);
  h.send(1, kUntargetedCandidate);
  Effects fx = h.disconnect(2);
  auto msgs = to(fx, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "bob");
  EXPECT_EQ(reason_of(msgs[0]), "disconnected");
  EXPECT_EQ(fx.held_dropped_ended, 1u);
  EXPECT_TRUE(h.router.offered_to(1).empty());
}

// Two untargeted offers rang bob: an untargeted answer cannot say which, so it is refused;
// naming the caller answers that one.
TEST(RouterUntargeted, UntargetedAnswerToTwoOffersIsAmbiguous) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(3, kUntargetedOffer);
  Effects fx = h.send(2, kUntargetedAnswer);
  EXPECT_EQ(error_code(fx, 2), "no-target");
  EXPECT_TRUE(to(fx, 1).empty() && to(fx, 3).empty());
  fx = h.send(2, R"({"type":"video-answer","targetUsername":"carol","sdp":{"sdp":"v"}})");
  EXPECT_EQ(to(fx, 3).size(), 1u);
  EXPECT_EQ(h.router.partners_of(3), std::set<ConnId>{2});
}

// The mode changes nothing for targeted calls, and nothing for users already in a call.
TEST(RouterUntargeted, TargetedCallsAreUnchanged) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  Effects fx = h.send(1, kOffer);  // to bob
  EXPECT_EQ(to(fx, 2).size(), 1u);
  EXPECT_TRUE(to(fx, 3).empty());
  EXPECT_EQ(fx.untargeted_offers, 0u);
  // alice's untargeted re-offer goes to bob, her partner, not to everyone.
  fx = h.send(1, kUntargetedOffer);
  EXPECT_EQ(to(fx, 2).size(), 1u);
  EXPECT_TRUE(to(fx, 3).empty());
  // A hub in two calls: untargeted is still ambiguous, never broadcast.
  h.send(1, R"({"type":"video-offer","target":"carol","sdp":{"sdp":"v=0"}})");
  fx = h.send(1, kUntargetedOffer);
  EXPECT_EQ(error_code(fx, 1), "no-target");
  EXPECT_EQ(fx.untargeted_offers, 0u);
}

// Two users whose untargeted offers rang each other (and nobody else): when one leaves, the
// other gets one hang-up, not one as the last it rang and another as a caller it rang.
// (Found by the router fuzzer's untargeted mode.)
TEST(RouterUntargeted, CrossedOffersGetOneHangUpOnDeparture) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kUntargetedOffer);
  h.send(2, kUntargetedOffer);
  Effects fx = h.disconnect(2);
  auto msgs = to(fx, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "bob");
  EXPECT_TRUE(h.router.offered_to(1).empty());
}

// A caller that renames itself before the answer: its held candidates reach the answerer with
// the name it has then, the one the answerer's call knows it by (the element drops candidates
// of no call). (Found by the router fuzzer's untargeted mode.)
TEST(RouterUntargeted, HeldCandidatesCarryTheCallersNameAtDelivery) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kUntargetedOffer);
  h.send(1, kUntargetedCandidate);
  h.send(1, R"({"type":"username","name":"alicia"})");
  auto msgs = to(h.send(2, kUntargetedAnswer), 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "new-ice-candidate");
  EXPECT_EQ(relayed(msgs[0]).name, "alicia");
}

// alice and bob call at once without a target; bob answers alice's offer: bob's own offer ends
// (carol, whom it rang too, gets a hang-up), so a later answer to it does not give bob a
// second call.
TEST(RouterUntargeted, AnsweringEndsTheAnswerersOwnOffer) {
  Harness h(untargeted_mode());
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kUntargetedOffer);
  h.send(2, kUntargetedOffer);
  Effects fx = h.send(2, R"({"type":"video-answer","targetUsername":"alice","sdp":{"sdp":"v"}})");
  EXPECT_EQ(to(fx, 1).size(), 1u);  // the answer only: no hang-up for alice
  auto msgs = to(fx, 3);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "bob");
  EXPECT_EQ(reason_of(msgs[0]), "answered-elsewhere");
  EXPECT_TRUE(h.router.offered_to(2).empty());
  h.send(3, R"({"type":"video-answer","targetUsername":"bob","sdp":{"sdp":"v"}})");
  EXPECT_EQ(h.router.partners_of(2), std::set<ConnId>{1});
}
