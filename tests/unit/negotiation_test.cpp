// The negotiation state machine (gst-plugin/negotiation.h): a test per row of its table.
#include "negotiation.h"

#include <gtest/gtest.h>

using webrtccall::answer_setup;
using webrtccall::check_reoffer;
using webrtccall::dtls_role_from_answer;
using webrtccall::DtlsRole;
using webrtccall::first_setup;
using webrtccall::Negotiation;
using webrtccall::transport_identity;
using Action = Negotiation::Action;
using State = Negotiation::State;

namespace {

// alice < bob: alice is impolite, bob polite (the same rule on both ends).
Negotiation impolite() {
  return Negotiation("alice", "bob");
}
Negotiation polite() {
  return Negotiation("bob", "alice");
}

// A call whose first exchange is done, with us as the offerer.
Negotiation established(Negotiation n) {
  EXPECT_EQ(n.local_offer(1).action, Action::kSendOffer);
  EXPECT_EQ(n.remote_answer().action, Action::kApplyRemoteAnswer);
  EXPECT_EQ(n.answer_applied(1).action, Action::kNone);
  EXPECT_EQ(n.state(), State::kStable);
  EXPECT_TRUE(n.established());
  return n;
}

}  // namespace

TEST(Negotiation, PolitenessIsByNameOrderTheSameOnBothEnds) {
  EXPECT_FALSE(impolite().polite());
  EXPECT_TRUE(polite().polite());
  EXPECT_NE(Negotiation("x", "y").polite(), Negotiation("y", "x").polite());
}

// stable | local offer | send offer | have-local-offer
TEST(Negotiation, StableLocalOfferSendsIt) {
  Negotiation n = impolite();
  EXPECT_EQ(n.local_offer(5).action, Action::kSendOffer);
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
  EXPECT_EQ(n.offer_pending_since_us(), 5);
  EXPECT_FALSE(n.established());
}

// stable | remote offer | apply remote offer | have-remote-offer
TEST(Negotiation, StableRemoteOfferIsApplied) {
  for (Negotiation n : {impolite(), polite()}) {
    EXPECT_EQ(n.remote_offer().action, Action::kApplyRemoteOffer);
    EXPECT_EQ(n.state(), State::kHaveRemoteOffer);
    EXPECT_EQ(n.local_answer(1).action, Action::kNone);
    EXPECT_EQ(n.state(), State::kStable);
    EXPECT_TRUE(n.established());
  }
}

// An offer in stable on an established call (renegotiation, as MDN's sample does right after
// answering ours) is answered too, whoever offered first.
TEST(Negotiation, StableRemoteReofferOnAnEstablishedCallIsApplied) {
  for (Negotiation n : {established(impolite()), established(polite())}) {
    EXPECT_EQ(n.remote_offer().action, Action::kApplyRemoteOffer);
    EXPECT_EQ(n.local_answer(1).action, Action::kNone);
    EXPECT_EQ(n.state(), State::kStable);
  }
}

// stable | remote answer | refuse
TEST(Negotiation, StableRemoteAnswerIsRefused) {
  Negotiation n = impolite();
  EXPECT_EQ(n.remote_answer().action, Action::kRefuse);
  Negotiation e = established(polite());
  Negotiation::Step step = e.remote_answer();
  EXPECT_EQ(step.action, Action::kRefuse);
  EXPECT_FALSE(step.reason.empty());
}

// stable, established | negotiation needed | send offer
TEST(Negotiation, StableNegotiationNeededSendsAnOffer) {
  Negotiation n = established(impolite());
  EXPECT_EQ(n.negotiation_needed(9).action, Action::kSendOffer);
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
  EXPECT_EQ(n.offer_pending_since_us(), 9);
}

// stable, not established | negotiation needed | queue (the first exchange has not happened:
// an incoming call whose offer is not here yet cannot offer)
TEST(Negotiation, NegotiationNeededBeforeTheFirstExchangeIsQueued) {
  Negotiation n = polite();
  EXPECT_EQ(n.negotiation_needed(1).action, Action::kQueue);
  EXPECT_EQ(n.remote_offer().action, Action::kApplyRemoteOffer);
  EXPECT_EQ(n.local_answer(1).action, Action::kSendOffer);  // the queued one
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
  EXPECT_FALSE(n.queued());
}

// have-local-offer | remote answer | apply remote answer | stable
TEST(Negotiation, HaveLocalOfferRemoteAnswerIsApplied) {
  Negotiation n = impolite();
  n.local_offer(1);
  EXPECT_EQ(n.remote_answer().action, Action::kApplyRemoteAnswer);
  EXPECT_EQ(n.answer_applied(1).action, Action::kNone);
  EXPECT_EQ(n.state(), State::kStable);
  EXPECT_EQ(n.offer_pending_since_us(), 0);
}

// have-local-offer | remote offer, not established | impolite: ignore
TEST(Negotiation, InitialGlareImpoliteIgnoresTheRemoteOffer) {
  Negotiation n = impolite();
  n.local_offer(1);
  EXPECT_EQ(n.remote_offer().action, Action::kIgnoreOffer);
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
  EXPECT_EQ(n.remote_answer().action, Action::kApplyRemoteAnswer);  // the polite one answers
}

// have-local-offer | remote offer, not established | polite: restart and answer
TEST(Negotiation, InitialGlarePoliteRestartsAndAnswers) {
  Negotiation n = polite();
  n.local_offer(1);
  EXPECT_EQ(n.remote_offer().action, Action::kRestartAndAnswer);
  EXPECT_EQ(n.state(), State::kClosed);
  // This call is over: nothing more comes out of it.
  EXPECT_EQ(n.remote_answer().action, Action::kNone);
  EXPECT_EQ(n.negotiation_needed(2).action, Action::kNone);
}

// have-local-offer | remote offer, established | ignore (impolite)
TEST(Negotiation, RenegotiationCollisionImpoliteIgnores) {
  Negotiation n = established(impolite());
  n.negotiation_needed(1);
  EXPECT_EQ(n.remote_offer().action, Action::kIgnoreOffer);
  EXPECT_FALSE(n.owed());
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
}

// have-local-offer | remote offer, established | ignore (polite, remembers it is owed);
// answered: stable, nothing owed any more; unanswered: the reason says why.
TEST(Negotiation, RenegotiationCollisionPoliteKeepsItsOfferAndRemembers) {
  Negotiation n = established(polite());
  n.negotiation_needed(1);
  Negotiation::Step step = n.remote_offer();
  EXPECT_EQ(step.action, Action::kIgnoreOffer);
  EXPECT_NE(step.reason.find("roll back"), std::string::npos);
  EXPECT_TRUE(n.owed());
  EXPECT_NE(n.unanswered_reason("alice").find("collision"), std::string::npos);
  EXPECT_EQ(n.remote_answer().action, Action::kApplyRemoteAnswer);
  n.answer_applied(1);
  EXPECT_FALSE(n.owed());
  EXPECT_EQ(n.state(), State::kStable);
  // The remote re-offers its own once stable: answered.
  EXPECT_EQ(n.remote_offer().action, Action::kApplyRemoteOffer);
}

// have-local-offer | negotiation needed | queue, run once the answer is applied
TEST(Negotiation, HaveLocalOfferNegotiationNeededIsQueuedUntilStable) {
  Negotiation n = established(impolite());
  EXPECT_EQ(n.negotiation_needed(1).action, Action::kSendOffer);
  EXPECT_EQ(n.negotiation_needed(2).action, Action::kQueue);
  EXPECT_EQ(n.negotiation_needed(3).action, Action::kQueue);  // still one renegotiation
  n.remote_answer();
  EXPECT_EQ(n.answer_applied(7).action, Action::kSendOffer);
  EXPECT_EQ(n.state(), State::kHaveLocalOffer);
  EXPECT_EQ(n.offer_pending_since_us(), 7);
  n.remote_answer();
  EXPECT_EQ(n.answer_applied(1).action, Action::kNone);
}

// have-local-offer | local offer | refuse
TEST(Negotiation, OneLocalOfferAtATime) {
  Negotiation n = impolite();
  n.local_offer(1);
  EXPECT_EQ(n.local_offer(2).action, Action::kRefuse);
}

// have-remote-offer | local answer | none, stable
TEST(Negotiation, HaveRemoteOfferLocalAnswerIsStable) {
  Negotiation n = established(polite());
  n.remote_offer();
  EXPECT_EQ(n.local_answer(1).action, Action::kNone);
  EXPECT_EQ(n.state(), State::kStable);
}

// have-remote-offer | remote offer | ignore
TEST(Negotiation, HaveRemoteOfferAnotherOfferIsIgnored) {
  Negotiation n = polite();
  n.remote_offer();
  EXPECT_EQ(n.remote_offer().action, Action::kIgnoreOffer);
  EXPECT_EQ(n.state(), State::kHaveRemoteOffer);
}

// have-remote-offer | remote answer | refuse
TEST(Negotiation, HaveRemoteOfferRemoteAnswerIsRefused) {
  Negotiation n = polite();
  n.remote_offer();
  EXPECT_EQ(n.remote_answer().action, Action::kRefuse);
}

// have-remote-offer | negotiation needed | queue, run after our answer
TEST(Negotiation, HaveRemoteOfferNegotiationNeededIsQueuedUntilAnswered) {
  Negotiation n = established(polite());
  n.remote_offer();
  EXPECT_EQ(n.negotiation_needed(1).action, Action::kQueue);
  EXPECT_EQ(n.local_answer(1).action, Action::kSendOffer);
}

// any | description failed | refuse, closed; closed | any | none
TEST(Negotiation, AFailedDescriptionClosesTheNegotiation) {
  Negotiation n = established(impolite());
  n.negotiation_needed(1);
  Negotiation::Step step = n.description_failed("webrtcbin said no");
  EXPECT_EQ(step.action, Action::kRefuse);
  EXPECT_EQ(step.reason, "webrtcbin said no");
  EXPECT_EQ(n.state(), State::kClosed);
  EXPECT_EQ(n.remote_offer().action, Action::kNone);
  EXPECT_EQ(n.remote_answer().action, Action::kNone);
  EXPECT_EQ(n.local_offer(2).action, Action::kNone);
  EXPECT_EQ(n.negotiation_needed(2).action, Action::kNone);
  EXPECT_EQ(n.description_failed("again").action, Action::kNone);
}

// have-local-offer | offer failed | established: stable, the call goes on; not: refuse
TEST(Negotiation, AFailedReofferLeavesTheCallAsItWas) {
  Negotiation n = established(impolite());
  n.negotiation_needed(1);
  n.negotiation_needed(2);  // queued behind it: dropped with it
  Negotiation::Step step = n.offer_failed("webrtcbin said no");
  EXPECT_EQ(step.action, Action::kNone);
  EXPECT_EQ(step.reason, "webrtcbin said no");
  EXPECT_EQ(n.state(), State::kStable);
  EXPECT_FALSE(n.queued());
  EXPECT_EQ(n.offer_pending_since_us(), 0);
  EXPECT_EQ(n.remote_offer().action, Action::kApplyRemoteOffer);

  Negotiation first = impolite();
  first.local_offer(1);
  EXPECT_EQ(first.offer_failed("no").action, Action::kRefuse);
  EXPECT_EQ(first.state(), State::kClosed);
}

TEST(Negotiation, ActionsAndStatesHaveNames) {
  EXPECT_STREQ(webrtccall::to_string(State::kHaveLocalOffer), "have-local-offer");
  EXPECT_STREQ(webrtccall::to_string(Action::kRestartAndAnswer), "restart-and-answer");
}

// A candidate without a sender name goes to the only call in negotiation, if exactly one.
TEST(NamelessCandidate, GoesToTheOnlyCallInNegotiation) {
  using webrtccall::call_for_nameless_candidate;
  EXPECT_EQ(call_for_nameless_candidate({}), -1);
  EXPECT_EQ(call_for_nameless_candidate({false}), 0);
  EXPECT_EQ(call_for_nameless_candidate({true, false, true}), 1);
  EXPECT_EQ(call_for_nameless_candidate({true, true}), -1);          // all connected
  EXPECT_EQ(call_for_nameless_candidate({false, true, false}), -1);  // two: whose?
}

namespace {

const char* kOffer =
    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "a=fingerprint:sha-256 AA:BB\r\na=group:BUNDLE 0 1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=mid:0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=mid:1\r\n";

}  // namespace

TEST(Reoffer, SameTransportsAndNewBundledLinesAreAccepted) {
  auto before = transport_identity(kOffer);
  EXPECT_EQ(before.ice_ufrags, std::vector<std::string>{"u1"});
  EXPECT_EQ(before.fingerprints, std::vector<std::string>{"sha-256 AA:BB"});
  std::string more = std::string(kOffer) +
                     "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u1\r\na=ice-pwd:p1\r\n"
                     "a=mid:2\r\n";
  EXPECT_EQ(check_reoffer(before, transport_identity(more)), "");
  EXPECT_EQ(check_reoffer(before, before), "");
}

TEST(Reoffer, ANewFingerprintIsRefused) {
  std::string other = kOffer;
  other.replace(other.find("AA:BB"), 5, "CC:DD");
  std::string why = check_reoffer(transport_identity(kOffer), transport_identity(other));
  EXPECT_NE(why.find("DTLS fingerprint"), std::string::npos) << why;
}

TEST(Reoffer, NewIceCredentialsAreRefused) {
  std::string other = kOffer;
  for (std::size_t at; (at = other.find("ufrag:u1")) != std::string::npos;) {
    other.replace(at, 8, "ufrag:u2");
  }
  std::string why = check_reoffer(transport_identity(kOffer), transport_identity(other));
  EXPECT_NE(why.find("ICE"), std::string::npos) << why;
}

TEST(Reoffer, RejectedLinesCarryNoTransport) {
  std::string other =
      std::string(kOffer) + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:zz\r\na=ice-pwd:zz\r\n";
  EXPECT_EQ(check_reoffer(transport_identity(kOffer), transport_identity(other)), "");
}

// The DTLS role the first exchange set is kept by our answers to later offers.
TEST(DtlsRole, TheRemoteAnsweringActiveMakesUsTheServer) {
  // We placed the call (actpass), the browser answered active: we answer re-offers passive.
  EXPECT_EQ(dtls_role_from_answer("active", false), DtlsRole::kServer);
  EXPECT_STREQ(answer_setup(DtlsRole::kServer), "passive");
  EXPECT_EQ(dtls_role_from_answer("passive", false), DtlsRole::kClient);
}

TEST(DtlsRole, OurOwnAnswerGivesOurRole) {
  // We answered the first offer active (webrtcbin always does): we stay the client.
  EXPECT_EQ(dtls_role_from_answer("active", true), DtlsRole::kClient);
  EXPECT_STREQ(answer_setup(DtlsRole::kClient), "active");
  EXPECT_EQ(dtls_role_from_answer("passive", true), DtlsRole::kServer);
}

TEST(DtlsRole, AnActpassAnswerSetsNoRole) {
  EXPECT_EQ(dtls_role_from_answer("actpass", false), DtlsRole::kUnknown);
  EXPECT_EQ(dtls_role_from_answer("", true), DtlsRole::kUnknown);
  EXPECT_EQ(answer_setup(DtlsRole::kUnknown), nullptr);
}

TEST(DtlsRole, FirstSetupOfAnSdp) {
  EXPECT_EQ(first_setup("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=setup:active\r\n"
                        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:passive\r\n"),
            "active");
  EXPECT_EQ(first_setup("v=0\na=setup:passive\n"), "passive");
  EXPECT_EQ(first_setup("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"), "");
}
