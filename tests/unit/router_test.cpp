// The router as a pure state machine: feed it messages, check the effects.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router.h"

using signaling::ConnId;
using signaling::Effects;
using signaling::Router;
using signaling::RouterConfig;
namespace protocol = signaling::protocol;
using protocol::ErrorCode;

namespace {

struct Msg {
  std::string type;
  protocol::ServerMessage parsed;
  std::string text;
};

class Harness {
 public:
  explicit Harness(RouterConfig config = {}) : router(std::move(config)) {}

  Effects connect(ConnId id, bool authorized = true) {
    Effects fx;
    router.connect(id, authorized, now_us, fx);
    return fx;
  }
  Effects send(ConnId id, const std::string& text) {
    Effects fx;
    router.receive(id, text, now_us, fx);
    return fx;
  }
  Effects disconnect(ConnId id) {
    Effects fx;
    router.disconnect(id, fx);
    return fx;
  }
  // Connects and registers.
  void join(ConnId id, const std::string& name) {
    connect(id);
    send(id, R"({"type":"username","name":")" + name + R"("})");
  }

  Router router;
  std::int64_t now_us = 1'000'000;
};

std::string type_of(const protocol::ServerMessage& m) {
  if (std::holds_alternative<protocol::IdMsg>(m)) return "id";
  if (std::holds_alternative<protocol::RejectUsernameMsg>(m)) return "rejectusername";
  if (std::holds_alternative<protocol::UserListMsg>(m)) return "userlist";
  if (std::holds_alternative<protocol::ChatMsg>(m)) return "message";
  if (std::holds_alternative<protocol::ErrorMsg>(m)) return "error";
  return std::get<protocol::RelayedMsg>(m).type;
}

// Messages sent to `to`, parsed.
std::vector<Msg> to(const Effects& fx, ConnId id) {
  std::vector<Msg> out;
  for (const auto& s : fx.sends) {
    if (s.to != id) continue;
    auto r = protocol::parse_server(*s.text, {});
    auto& m = std::get<protocol::ServerMessage>(r);
    out.push_back({type_of(m), m, *s.text});
  }
  return out;
}

std::string error_code(const Effects& fx, ConnId id) {
  for (auto& m : to(fx, id)) {
    if (m.type == "error") return std::get<protocol::ErrorMsg>(m.parsed).code;
  }
  return "";
}

const protocol::RelayedMsg& relayed(const Msg& m) {
  return std::get<protocol::RelayedMsg>(m.parsed);
}

const char* kOffer =
    R"({"type":"video-offer","name":"x","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}})";

}  // namespace

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

// ---- The untargeted mode (RouterConfig::relay_untargeted, --relay-untargeted) ----

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
