// The router as a pure state machine: feed it messages, check the effects.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router-harness.h"

using namespace router_test;

TEST(Router, IdIsTheFirstMessage) {
  Harness h;
  Effects fx = h.connect(7);
  auto msgs = to(fx, 7);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(std::get<protocol::IdMsg>(msgs[0].parsed).id, 7u);
}

TEST(Router, RegistrationChangesTheUserList) {
  Harness h;
  h.connect(1);
  Effects fx = h.send(1, R"({"type":"username","name":"alice","id":1,"date":0})");
  EXPECT_TRUE(fx.userlist_changed);
  EXPECT_TRUE(fx.sends.empty());  // the list itself is broadcast by the transport, coalesced
  EXPECT_EQ(h.router.name_of(1), "alice");
  auto list = std::get<protocol::UserListMsg>(
      std::get<protocol::ServerMessage>(protocol::parse_server(h.router.userlist_message(), {})));
  EXPECT_EQ(list.users, std::vector<std::string>{"alice"});
  EXPECT_EQ(h.router.registered(), std::vector<ConnId>{1});
}

TEST(Router, DuplicateNameGetsANumber) {
  Harness h;
  h.join(1, "alice");
  h.connect(2);
  Effects fx = h.send(2, R"({"type":"username","name":"alice"})");
  auto msgs = to(fx, 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(std::get<protocol::RejectUsernameMsg>(msgs[0].parsed).name, "alice1");
  EXPECT_EQ(h.router.name_of(2), "alice1");
  h.connect(3);
  h.send(3, R"({"type":"username","name":"alice"})");
  EXPECT_EQ(h.router.name_of(3), "alice2");
}

TEST(Router, DuplicateOfA64CharNameStaysWithinTheLimit) {
  Harness h;
  std::string name(64, 'n');
  h.join(1, name);
  h.join(2, name);
  EXPECT_EQ(h.router.name_of(2), std::string(63, 'n') + "1");
}

TEST(Router, RenameFreesTheOldName) {
  Harness h;
  h.join(1, "alice");
  Effects fx = h.send(1, R"({"type":"username","name":"alicia"})");
  EXPECT_TRUE(fx.userlist_changed);
  EXPECT_EQ(h.router.name_of(1), "alicia");
  h.join(2, "alice");
  EXPECT_EQ(h.router.name_of(2), "alice");
  // Same name again: nothing happens.
  EXPECT_FALSE(h.send(1, R"({"type":"username","name":"alicia"})").userlist_changed);
}

TEST(Router, UnregisteredMaySendOnlyUsername) {
  Harness h;
  h.join(2, "bob");
  h.connect(1);
  Effects fx = h.send(1, kOffer);
  EXPECT_EQ(error_code(fx, 1), "unregistered");
  EXPECT_TRUE(to(fx, 2).empty());
  EXPECT_EQ(fx.relayed, 0u);
}

TEST(Router, TargetedMessageGoesToTargetOnlyWithStampedName) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  Effects fx = h.send(1, kOffer);
  auto msgs = to(fx, 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(relayed(msgs[0]).type, "video-offer");
  EXPECT_EQ(relayed(msgs[0]).name, "alice");  // not "x"
  EXPECT_TRUE(to(fx, 3).empty());
  EXPECT_TRUE(to(fx, 1).empty());
  EXPECT_EQ(fx.relayed, 1u);
  EXPECT_EQ(h.router.partners_of(1), std::set<ConnId>{2});
}

TEST(Router, ApplicationMessagesWithTargetAreRelayed) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  Effects fx = h.send(1, R"({"type":"app-ping","target":"bob","seq":1})");
  auto msgs = to(fx, 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(relayed(msgs[0]).type, "app-ping");
  EXPECT_EQ(json_object_get_int_member(relayed(msgs[0]).object.get(), "seq"), 1);
  // Without a target: refused, never broadcast.
  fx = h.send(1, R"({"type":"app-ping","seq":2})");
  EXPECT_EQ(error_code(fx, 1), "no-target");
  EXPECT_TRUE(to(fx, 2).empty());
}

TEST(Router, UntargetedSignalingGoesToTheCallPartnerOnly) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  // No call yet: refused.
  Effects fx = h.send(2, R"({"type":"new-ice-candidate","candidate":{"candidate":"c"}})");
  EXPECT_EQ(error_code(fx, 2), "no-target");
  EXPECT_TRUE(to(fx, 1).empty() && to(fx, 3).empty());

  h.send(1, kOffer);  // alice calls bob
  for (const char* answer :
       {R"({"type":"video-answer","sdp":{"type":"answer","sdp":"v=0"}})",
        R"({"type":"video-answer","target":null,"sdp":{"type":"answer","sdp":"v=0"}})",
        R"({"type":"new-ice-candidate","targetUsername":"alice","candidate":{"candidate":"c"}})"}) {
    fx = h.send(2, answer);
    ASSERT_EQ(to(fx, 1).size(), 1u) << answer;
    EXPECT_EQ(relayed(to(fx, 1)[0]).name, "bob");
    EXPECT_TRUE(to(fx, 3).empty());
  }
}

TEST(Router, UntargetedWithSeveralCallsIsAmbiguous) {
  Harness h;
  h.join(1, "hub");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, R"({"type":"video-offer","target":"bob","sdp":{"sdp":"v=0"}})");
  h.send(1, R"({"type":"video-offer","target":"carol","sdp":{"sdp":"v=0"}})");
  Effects fx = h.send(1, R"({"type":"new-ice-candidate","candidate":{"candidate":"c"}})");
  EXPECT_EQ(error_code(fx, 1), "no-target");
  EXPECT_TRUE(to(fx, 2).empty() && to(fx, 3).empty());
}

TEST(Router, OfferToAbsentUserIsAnsweredWithHangUp) {
  Harness h;
  h.join(1, "alice");
  Effects fx = h.send(1, R"({"type":"video-offer","target":"ghost","sdp":{"sdp":"v=0"}})");
  auto msgs = to(fx, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "ghost");
  EXPECT_EQ(std::string(json_object_get_string_member(relayed(msgs[0]).object.get(), "reason")),
            "user-unavailable");
  ASSERT_EQ(fx.refused.size(), 1u);
  EXPECT_EQ(fx.refused[0], ErrorCode::kUserUnavailable);
  // Other messages to an absent user: an error.
  fx = h.send(1, R"({"type":"new-ice-candidate","target":"ghost","candidate":null})");
  EXPECT_EQ(error_code(fx, 1), "user-unavailable");
}

TEST(Router, DisconnectHangsUpOnPartners) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kOffer);
  Effects fx = h.disconnect(1);
  EXPECT_TRUE(fx.userlist_changed);
  auto msgs = to(fx, 2);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "alice");
  EXPECT_TRUE(to(fx, 3).empty());
  EXPECT_TRUE(h.router.partners_of(2).empty());
  EXPECT_EQ(h.router.registered_count(), 2u);
}

TEST(Router, HangUpEndsThePairing) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kOffer);
  Effects fx = h.send(2, R"({"type":"hang-up","name":"bob","target":"alice"})");
  EXPECT_EQ(to(fx, 1).size(), 1u);
  EXPECT_TRUE(h.router.partners_of(1).empty());
  fx = h.disconnect(2);
  EXPECT_TRUE(to(fx, 1).empty());  // no call any more, no hang-up
}

TEST(Router, ChatGoesToEveryoneWithMarkupStripped) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  Effects fx =
      h.send(1, R"({"type":"message","name":"eve","text":"<b>hi</b> <script>x</script>"})");
  for (ConnId id : {1, 2}) {
    auto msgs = to(fx, id);
    ASSERT_EQ(msgs.size(), 1u);
    auto chat = std::get<protocol::ChatMsg>(msgs[0].parsed);
    EXPECT_EQ(chat.name, "alice");
    EXPECT_EQ(chat.text, "hi x");
  }
}

TEST(Router, BadNamesAreRefused) {
  Harness h;
  h.connect(1);
  Effects fx = h.send(1, R"({"type":"username","name":"<img>"})");
  EXPECT_EQ(error_code(fx, 1), "bad-name");
  EXPECT_FALSE(fx.userlist_changed);
  EXPECT_EQ(h.router.registered_count(), 0u);
}

TEST(Router, RateLimitWithOneErrorPerBurst) {
  RouterConfig config;
  config.max_messages_per_second = 5;
  config.burst = 5;
  Harness h(config);
  h.join(1, "alice");  // uses one token
  h.join(2, "bob");
  int relayed_count = 0, errors = 0;
  for (int i = 0; i < 20; ++i) {
    Effects fx = h.send(1, R"({"type":"app","target":"bob"})");
    relayed_count += static_cast<int>(fx.relayed);
    errors += error_code(fx, 1) == "rate-limited";
  }
  EXPECT_EQ(relayed_count, 4);
  EXPECT_EQ(errors, 1);
  h.now_us += 1'000'000;  // a second later the bucket is full again
  EXPECT_EQ(h.send(1, R"({"type":"app","target":"bob"})").relayed, 1u);
}

TEST(Router, FloodingIsClosedWithPolicyViolation) {
  RouterConfig config;
  config.max_messages_per_second = 1;
  config.burst = 1;
  config.max_rate_strikes = 10;
  Harness h(config);
  h.join(1, "alice");
  bool closed = false;
  for (int i = 0; i < 12 && !closed; ++i) {
    Effects fx = h.send(1, "{}");
    closed = !fx.closes.empty() && fx.closes[0].code == signaling::kClosePolicy;
  }
  EXPECT_TRUE(closed);
}

TEST(Router, GarbageIsClosedAfterTheLimit) {
  RouterConfig config;
  config.max_bad_messages = 3;
  Harness h(config);
  h.connect(1);
  for (int i = 0; i < 3; ++i) {
    Effects fx = h.send(1, "garbage");
    EXPECT_EQ(error_code(fx, 1), "malformed");
    EXPECT_TRUE(fx.closes.empty());
  }
  Effects fx = h.send(1, "garbage");
  ASSERT_EQ(fx.closes.size(), 1u);
  EXPECT_EQ(fx.closes[0].code, signaling::kClosePolicy);
}

TEST(Router, TooLargeClosesWith1009) {
  Harness h;
  h.connect(1);
  Effects fx;
  h.router.refuse(1, ErrorCode::kTooLarge, "8 MiB", fx);
  EXPECT_EQ(error_code(fx, 1), "too-large");
  ASSERT_EQ(fx.closes.size(), 1u);
  EXPECT_EQ(fx.closes[0].code, signaling::kCloseTooBig);
}

TEST(Router, TokenRequiredToRegister) {
  RouterConfig config;
  config.token = "s3cret";
  Harness h(config);
  h.connect(1, /*authorized=*/false);
  EXPECT_EQ(error_code(h.send(1, R"({"type":"username","name":"a"})"), 1), "forbidden");
  EXPECT_EQ(error_code(h.send(1, R"({"type":"username","name":"a","token":"nope"})"), 1),
            "forbidden");
  h.send(1, R"({"type":"username","name":"a","token":"s3cret"})");
  EXPECT_EQ(h.router.name_of(1), "a");
  h.connect(2, /*authorized=*/true);  // checked at the handshake (?token=)
  h.send(2, R"({"type":"username","name":"b"})");
  EXPECT_EQ(h.router.name_of(2), "b");
}

// A string `target` goes to that user only. When nobody of that name is online, nothing
// reaches the sender's call partner, whatever the type: an offer is answered with hang-up
// `user-unavailable`, a hang-up is dropped, anything else is refused with an error.
TEST(Router, TargetNotOnlineIsNeverRedirectedToTheCallPartner) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.join(3, "carol");
  h.send(1, kOffer);  // alice calls bob: bob is her only call partner
  ASSERT_EQ(h.router.partners_of(1), std::set<ConnId>{2});
  enum Back { kHangUp, kNothing, kError };
  const std::pair<Back, const char*> cases[] = {
      {kHangUp, R"({"type":"video-offer","target":"ghost","sdp":{"type":"offer","sdp":"v=0"}})"},
      {kError, R"({"type":"video-answer","target":"ghost","sdp":{"type":"answer","sdp":"v=0"}})"},
      {kError, R"({"type":"new-ice-candidate","target":"ghost","candidate":{"candidate":"c"}})"},
      {kError, R"({"type":"new-ice-candidate","targetUsername":"ghost","candidate":null})"},
      {kNothing, R"({"type":"hang-up","target":"ghost"})"},
      {kError, R"({"type":"app-ping","target":"ghost","seq":1})"},
  };
  for (const auto& [expected, msg] : cases) {
    Effects fx = h.send(1, msg);
    EXPECT_TRUE(to(fx, 2).empty()) << msg << " reached the call partner";
    EXPECT_TRUE(to(fx, 3).empty()) << msg;
    EXPECT_EQ(fx.relayed, 0u) << msg;
    auto back = to(fx, 1);
    switch (expected) {
      case kHangUp:
        ASSERT_EQ(back.size(), 1u) << msg;
        EXPECT_EQ(back[0].type, "hang-up");
        EXPECT_EQ(relayed(back[0]).name, "ghost");
        EXPECT_STREQ(json_object_get_string_member(relayed(back[0]).object.get(), "reason"),
                     "user-unavailable");
        break;
      case kNothing:
        EXPECT_TRUE(back.empty()) << msg;
        break;
      case kError:
        EXPECT_EQ(error_code(fx, 1), "user-unavailable") << msg;
        break;
    }
  }
  // The offer to nobody did not pair alice with anyone else, nor end her call with bob.
  EXPECT_EQ(h.router.partners_of(1), std::set<ConnId>{2});
  // Targets of other JSON types are refused, never taken as "no target".
  for (const char* msg : {
           R"({"type":"new-ice-candidate","target":7,"candidate":{"candidate":"c"}})",
           R"({"type":"video-answer","target":{"name":"bob"},"sdp":{"type":"answer","sdp":"v"}})",
           R"({"type":"hang-up","target":["bob"]})",
           R"({"type":"new-ice-candidate","target":true,"candidate":null})",
       }) {
    Effects fx = h.send(1, msg);
    EXPECT_TRUE(to(fx, 2).empty()) << msg << " reached the call partner";
    EXPECT_EQ(error_code(fx, 1), "wrong-type") << msg;
  }
  // The partner itself by name, and no target at all, still reach bob.
  EXPECT_EQ(
      to(h.send(1, R"({"type":"new-ice-candidate","target":"bob","candidate":null})"), 2).size(),
      1u);
  EXPECT_EQ(to(h.send(1, R"({"type":"new-ice-candidate","candidate":null})"), 2).size(), 1u);
}

// Once the partner left, an untargeted message has nowhere to go; it does not go to whoever
// registers the partner's name next.
TEST(Router, UntargetedAfterThePartnerLeftReachesNobody) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kOffer);
  h.disconnect(2);
  h.join(3, "bob");
  Effects fx = h.send(1, R"({"type":"new-ice-candidate","candidate":{"candidate":"c"}})");
  EXPECT_TRUE(to(fx, 3).empty());
  EXPECT_EQ(error_code(fx, 1), "no-target");
}

// A user who just left, a call that just ended: messages refused for these races are never
// counted towards --max-bad-messages, however many; garbage still is.
TEST(Router, RacesAreNeverCountedAsAbuse) {
  RouterConfig config;
  config.max_bad_messages = 3;
  Harness h(config);
  h.join(1, "alice");
  for (int i = 0; i < 20; ++i) {
    Effects fx =
        h.send(1, R"({"type":"new-ice-candidate","target":"gone","candidate":{"candidate":"c"}})");
    EXPECT_EQ(error_code(fx, 1), "user-unavailable");
    EXPECT_TRUE(fx.closes.empty()) << "closed after " << i + 1 << " messages to a user who left";
    fx = h.send(1, R"({"type":"new-ice-candidate","candidate":{"candidate":"c"}})");
    EXPECT_EQ(error_code(fx, 1), "no-target");
    EXPECT_TRUE(fx.closes.empty()) << "closed after " << i + 1 << " candidates of an ended call";
    h.now_us += 100'000;  // within the rate limit
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(h.send(1, "garbage").closes.empty());
  EXPECT_FALSE(h.send(1, "garbage").closes.empty());
}

// One rate-limit error per burst of refusals: the next burst, after messages went through
// again, gets its own.
TEST(Router, EveryBurstOfRefusalsGetsItsError) {
  RouterConfig config;
  config.max_messages_per_second = 5;
  config.burst = 5;
  Harness h(config);
  h.join(1, "alice");
  h.join(2, "bob");
  for (int burst = 0; burst < 3; ++burst) {
    int errors = 0, relayed_count = 0;
    for (int i = 0; i < 10; ++i) {
      Effects fx = h.send(1, R"({"type":"app","target":"bob"})");
      errors += error_code(fx, 1) == "rate-limited";
      relayed_count += static_cast<int>(fx.relayed);
    }
    EXPECT_EQ(errors, 1) << "burst " << burst;
    EXPECT_GE(relayed_count, 4) << "burst " << burst;
    h.now_us += 1'000'000;
  }
}

TEST(Router, UnregisteredCannotChat) {
  Harness h;
  h.join(2, "bob");
  h.connect(1);
  Effects fx = h.send(1, R"({"type":"message","text":"hi"})");
  EXPECT_EQ(error_code(fx, 1), "unregistered");
  EXPECT_TRUE(to(fx, 2).empty());
  EXPECT_EQ(fx.relayed, 0u);
}

// A hang-up without a target goes to the call partner and ends the pairing, like a targeted one.
TEST(Router, UntargetedHangUpEndsTheCall) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  h.send(1, kOffer);
  Effects fx = h.send(2, R"({"type":"hang-up"})");
  auto msgs = to(fx, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "hang-up");
  EXPECT_EQ(relayed(msgs[0]).name, "bob");
  EXPECT_TRUE(h.router.partners_of(1).empty());
  EXPECT_TRUE(h.router.partners_of(2).empty());
  // With the call over, a second one has nowhere to go and is dropped without an error.
  fx = h.send(2, R"({"type":"hang-up"})");
  EXPECT_TRUE(fx.sends.empty());
}

// The bucket refills up to --max-burst and no further: a client silent for an hour may send
// one burst at once, not an hour's worth.
TEST(Router, IdleTimeSavesAtMostOneBurst) {
  RouterConfig config;
  config.max_messages_per_second = 5;
  config.burst = 10;
  Harness h(config);
  h.join(1, "alice");
  h.join(2, "bob");
  h.now_us += 3600LL * 1'000'000;
  int relayed_count = 0;
  for (int i = 0; i < 100; ++i) {
    relayed_count += static_cast<int>(h.send(1, R"({"type":"app","target":"bob"})").relayed);
  }
  EXPECT_EQ(relayed_count, 10);
}

// A target with an escaped lone surrogate names nobody: refused as malformed, not answered
// with a hang-up whose `name` (the target echoed) the sender could never match. (Found by
// the router fuzzer: the hang-up named "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdob" for
// "\ud800bob".)
TEST(Router, TargetWithALoneSurrogateIsMalformed) {
  Harness h;
  h.join(1, "alice");
  h.join(2, "bob");
  for (const char* msg :
       {R"({"type":"video-offer","target":"\ud800bob","sdp":{"type":"offer","sdp":"v=0"}})",
        R"({"type":"new-ice-candidate","target":"b\udc00","candidate":null})"}) {
    Effects fx = h.send(1, msg);
    EXPECT_EQ(error_code(fx, 1), "malformed") << msg;
    for (auto& m : to(fx, 1)) EXPECT_NE(m.type, "hang-up") << msg;
    EXPECT_TRUE(to(fx, 2).empty()) << msg;
  }
}
