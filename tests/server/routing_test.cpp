// Routing (PROTOCOL.md rules 1 to 5): targets, name stamping, unregistered senders, the call
// partner for untargeted signaling, hang-ups from the server, public chat and server-only
// message types.
//
// "Nothing reached X" is asserted with a sentinel: the sender then sends X a message of its
// own, which X must receive with nothing forbidden before it (one server thread handles a
// connection's messages in order, so anything relayed earlier would arrive first).
#include <string>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

class Routing : public ServerTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartServer());
    alice_ = Join(port(), "alice");
    ASSERT_TRUE(alice_);
    bob_ = Join(port(), "bob");
    ASSERT_TRUE(bob_);
    carol_ = Join(port(), "carol");
    ASSERT_TRUE(carol_);
    for (WsClient* c : {alice_.get(), bob_.get()}) {
      ASSERT_TRUE(c->ReadUntil([](const Json& m) {
        return IsUserlistWith(m, {"alice", "bob", "carol"});
      }));
    }
  }

  void TearDown() override {
    // Clients first: the server's shutdown would otherwise wait for their close handshakes.
    alice_.reset();
    bob_.reset();
    carol_.reset();
    ServerTest::TearDown();
  }

  // `from` sends `to` a sentinel; returns what `to` received up to and including it.
  std::vector<Json> UpToSentinel(WsClient& from, WsClient& to, const std::string& tag) {
    std::vector<Json> seen;
    EXPECT_TRUE(from.SendText(AppMsg(to.name, tag)));
    std::optional<Json> m = to.ReadUntil(
        [&](const Json& j) { return j.type() == "app" && j.Str("seq") == tag; }, kTimeoutMs, &seen);
    EXPECT_TRUE(m) << to.name << " never received the sentinel " << tag;
    return seen;
  }

  std::unique_ptr<WsClient> alice_, bob_, carol_;
};

std::string Answer(const char* target_member) {
  std::string m = R"({"type":"video-answer","name":"x",)";
  m += target_member;
  m += R"("sdp":{"type":"answer","sdp":"v=0\r\n"}})";
  return m;
}

std::string Candidate(const char* target_member) {
  std::string m = R"({"type":"new-ice-candidate",)";
  m += target_member;
  m += R"("candidate":{"candidate":"candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host",)"
       R"("sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}})";
  return m;
}

TEST_F(Routing, TargetedMessageReachesTheTargetOnly) {
  ASSERT_TRUE(alice_->SendText(AppMsg("bob", "for-bob")));
  std::optional<Json> m = bob_->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("seq"), "for-bob");
  EXPECT_EQ(m->Str("target"), "bob");
  EXPECT_EQ(m->Str("name"), "alice");

  for (const Json& j : UpToSentinel(*alice_, *carol_, "sentinel")) {
    EXPECT_NE(j.Str("seq"), "for-bob") << "carol received a message targeted at bob";
  }
  // Nor is it echoed to the sender.
  for (const Json& j : UpToSentinel(*bob_, *alice_, "reply")) {
    EXPECT_NE(j.Str("seq"), "for-bob") << "the sender got its own message back";
  }
}

TEST_F(Routing, EveryCallMessageTypeIsRelayedToItsTarget) {
  const std::vector<std::string> messages = {
      OfferMsg("bob"),
      Answer(R"("target":"bob",)"),
      Candidate(R"("target":"bob",)"),
      R"({"type":"new-ice-candidate","target":"bob","candidate":null})",
      R"({"type":"hang-up","name":"alice","target":"bob"})",
      R"({"type":"custom-feature","target":"bob","payload":{"a":[1,2,{"b":null}]}})",
  };
  for (const std::string& text : messages) {
    SCOPED_TRACE(text);
    std::optional<Json> sent = Json::Parse(text);
    ASSERT_TRUE(sent);
    ASSERT_TRUE(alice_->SendText(text));
    std::optional<Json> m = bob_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type(), sent->type()) << m->text();
    EXPECT_EQ(m->Str("name"), "alice") << m->text();
    // Relayed as sent: every member but `name` is unchanged.
    JsonObjectIter it;
    const char* member = nullptr;
    JsonNode* value = nullptr;
    json_object_iter_init(&it, sent->object());
    while (json_object_iter_next(&it, &member, &value)) {
      if (std::string(member) == "name") continue;
      JsonNode* got = json_object_get_member(m->object(), member);
      ASSERT_NE(got, nullptr) << "member " << member << " was dropped: " << m->text();
      EXPECT_TRUE(json_node_equal(value, got)) << "member " << member << " changed: " << m->text();
    }
  }
}

TEST_F(Routing, TheServerStampsTheSendersName) {
  struct Case {
    const char* label;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"offer claiming to be mallory",
       R"({"type":"video-offer","name":"mallory","target":"bob","sdp":{"type":"offer","sdp":"v=0"}})"},
      {"claiming to be bob himself", R"({"type":"app","name":"bob","target":"bob"})"},
      {"no name", R"({"type":"app","target":"bob"})"},
      {"name of another type", R"({"type":"app","name":7,"target":"bob"})"},
      {"name as an object", R"({"type":"app","name":{"first":"mallory"},"target":"bob"})"},
      {"null name", R"({"type":"app","name":null,"target":"bob"})"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.label);
    ASSERT_TRUE(alice_->SendText(k.text));
    std::optional<Json> m = bob_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("name"), "alice") << m->text();
  }
  // Chat too.
  ASSERT_TRUE(alice_->SendText(R"({"type":"message","name":"mallory","text":"hi"})"));
  std::optional<Json> m = bob_->ReadUntil([](const Json& j) { return j.type() == "message"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "alice") << m->text();
}

TEST_F(Routing, UnregisteredSendersAreRefusedAndNothingIsRelayed) {
  std::unique_ptr<WsClient> eve = WsClient::Connect(port());
  ASSERT_TRUE(eve);
  ASSERT_TRUE(eve->Read());  // id
  const std::vector<std::string> attempts = {
      OfferMsg("bob"),
      AppMsg("bob", "from-eve"),
      Candidate(R"("target":"bob",)"),
      R"({"type":"hang-up","target":"bob"})",
      R"({"type":"message","text":"hello everyone"})",
  };
  for (const std::string& text : attempts) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(eve->SendText(text));
    std::optional<Json> m = eve->Read();
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "unregistered")) << m->text();
  }
  // Registered now: eve's next message to bob is the first thing bob gets from her.
  ASSERT_TRUE(eve->SendText(R"({"type":"username","name":"eve"})"));
  ASSERT_TRUE(eve->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"eve"}); }));
  eve->name = "eve";
  for (const Json& j : UpToSentinel(*eve, *bob_, "sentinel")) {
    EXPECT_TRUE(j.type() == "userlist" || j.Str("seq") == "sentinel")
        << "bob received something eve sent before registering: " << j.text();
  }
}

TEST_F(Routing, UntargetedSignalingGoesToTheCallPartnerOnly) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("bob")));  // opens the call alice <-> bob
  std::optional<Json> offer =
      bob_->ReadUntil([](const Json& j) { return j.type() == "video-offer"; });
  ASSERT_TRUE(offer);

  struct Case {
    const char* label;
    std::string text;
    std::string type;
  };
  const std::vector<Case> from_bob = {
      {"answer without target", Answer(""), "video-answer"},
      {"answer with null target", Answer(R"("target":null,)"), "video-answer"},
      {"candidate without target", Candidate(""), "new-ice-candidate"},
      {"candidate with null target", Candidate(R"("target":null,)"), "new-ice-candidate"},
      {"candidate with legacy targetUsername", Candidate(R"("targetUsername":"alice",)"),
       "new-ice-candidate"},
      {"end-of-candidates without target", R"({"type":"new-ice-candidate","candidate":null})",
       "new-ice-candidate"},
  };
  for (const Case& k : from_bob) {
    SCOPED_TRACE(k.label);
    ASSERT_TRUE(bob_->SendText(k.text));
    std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type(), k.type) << m->text();
    EXPECT_EQ(m->Str("name"), "bob") << m->text();
  }
  // The other way round too: the caller's untargeted candidates reach the callee.
  ASSERT_TRUE(alice_->SendText(Candidate("")));
  std::optional<Json> m = bob_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "new-ice-candidate") << m->text();
  EXPECT_EQ(m->Str("name"), "alice");

  // carol, not in the call, saw none of it (SDP and ICE are never broadcast).
  std::vector<Json> seen = UpToSentinel(*alice_, *carol_, "sentinel-a");
  std::vector<Json> more = UpToSentinel(*bob_, *carol_, "sentinel-b");
  seen.insert(seen.end(), more.begin(), more.end());
  for (const Json& j : seen) {
    EXPECT_TRUE(j.type() == "userlist" || j.type() == "app") << "carol received " << j.text();
  }
}

TEST_F(Routing, LegacyTargetUsernameIsATarget) {
  // Some clients name the recipient in `targetUsername`; it is a target like `target`.
  ASSERT_TRUE(alice_->SendText(R"({"type":"app","targetUsername":"carol","seq":"legacy"})"));
  std::optional<Json> m = carol_->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("seq"), "legacy");
  EXPECT_EQ(m->Str("name"), "alice");
  for (const Json& j : UpToSentinel(*alice_, *bob_, "sentinel")) {
    EXPECT_NE(j.Str("seq"), "legacy") << "bob got carol's message";
  }
}

TEST_F(Routing, UntargetedSignalingWithoutACallIsRefused) {
  const std::vector<std::string> attempts = {
      Answer(""),
      Answer(R"("target":null,)"),
      Candidate(""),
      Candidate(R"("target":null,)"),
      OfferMsg(""),
      R"({"type":"app","seq":"nobody in particular"})",  // not signaling: no target, no route
  };
  for (const std::string& text : attempts) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(carol_->SendText(text));
    std::optional<Json> m = carol_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "no-target")) << m->text();
  }
  // Nothing was broadcast to the others.
  for (WsClient* other : {alice_.get(), bob_.get()}) {
    for (const Json& j : UpToSentinel(*carol_, *other, "sentinel")) {
      EXPECT_TRUE(j.type() == "userlist" || j.Str("seq") == "sentinel")
          << other->name << " received " << j.text();
    }
  }
}

TEST_F(Routing, HangUpEndsTheCallForUntargetedSignaling) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("bob")));
  ASSERT_TRUE(bob_->ReadUntil([](const Json& j) { return j.type() == "video-offer"; }));
  ASSERT_TRUE(bob_->SendText(R"({"type":"hang-up","name":"bob","target":"alice"})"));
  std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() == "hang-up"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "bob");
  // The call is over: an untargeted candidate has nowhere to go.
  ASSERT_TRUE(bob_->SendText(Candidate("")));
  m = bob_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "no-target")) << m->text();
}

TEST_F(Routing, CallerDisconnectingHangsUpTheCallee) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("bob")));
  ASSERT_TRUE(bob_->ReadUntil([](const Json& j) { return j.type() == "video-offer"; }));
  ASSERT_TRUE(bob_->SendText(Answer(R"("target":"alice",)")));
  ASSERT_TRUE(alice_->ReadUntil([](const Json& j) { return j.type() == "video-answer"; }));

  alice_->Abort();  // the caller's browser tab is closed
  std::vector<Json> seen;
  std::optional<Json> m =
      bob_->ReadUntil([](const Json& j) { return j.type() == "hang-up"; }, kTimeoutMs, &seen);
  ASSERT_TRUE(m) << "bob got no hang-up when alice disconnected";
  EXPECT_EQ(m->Str("name"), "alice") << m->text();
  EXPECT_EQ(m->Str("target"), "bob") << m->text();
  EXPECT_EQ(m->Str("reason"), "disconnected") << m->text();
  ASSERT_TRUE(bob_->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"bob"}, {"alice"}); }));
  // carol was not in the call: she sees alice leave, and no hang-up.
  std::vector<Json> carol_seen;
  ASSERT_TRUE(
      carol_->ReadUntil([](const Json& j) { return IsUserlistWith(j, {"carol"}, {"alice"}); },
                        kTimeoutMs, &carol_seen));
  for (const Json& j : UpToSentinel(*bob_, *carol_, "sentinel")) carol_seen.push_back(j);
  for (const Json& j : carol_seen) EXPECT_NE(j.type(), "hang-up") << j.text();
}

TEST_F(Routing, CalleeClosingHangsUpTheCaller) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("bob")));
  ASSERT_TRUE(bob_->ReadUntil([](const Json& j) { return j.type() == "video-offer"; }));
  ASSERT_TRUE(bob_->SendClose(1000));
  ASSERT_TRUE(bob_->WaitClosed());
  std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() == "hang-up"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "bob") << m->text();
  EXPECT_EQ(m->Str("reason"), "disconnected") << m->text();
}

TEST_F(Routing, OfferToAnAbsentUserIsAnsweredWithHangUp) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("nobody")));
  std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "hang-up") << m->text();
  EXPECT_EQ(m->Str("reason"), "user-unavailable") << m->text();
  EXPECT_EQ(m->Str("name"), "nobody") << m->text();
  EXPECT_EQ(m->Str("target"), "alice") << m->text();

  // Other messages to an absent user are refused with an error.
  ASSERT_TRUE(alice_->SendText(AppMsg("nobody", "x")));
  m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "user-unavailable")) << m->text();

  // Names are matched exactly: "Bob" and " bob" are not bob.
  for (const char* t : {"Bob", " bob", "bob "}) {
    SCOPED_TRACE(t);
    ASSERT_TRUE(alice_->SendText(OfferMsg(t)));
    m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("reason"), "user-unavailable") << m->text();
  }
  for (const Json& j : UpToSentinel(*alice_, *bob_, "sentinel")) {
    EXPECT_NE(j.type(), "video-offer") << "bob received an offer for someone else";
  }
}

// In a call, a message for someone who is not online still goes to nobody: never to the call
// partner in its place.
TEST_F(Routing, TargetNotOnlineIsNotRedirectedToTheCallPartner) {
  ASSERT_TRUE(alice_->SendText(OfferMsg("bob")));  // opens the call alice <-> bob
  ASSERT_TRUE(bob_->ReadUntil([](const Json& j) { return j.type() == "video-offer"; }));
  ASSERT_TRUE(alice_->SendText(OfferMsg("nobody")));
  std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "hang-up") << m->text();
  EXPECT_EQ(m->Str("reason"), "user-unavailable") << m->text();
  for (const std::string& text :
       {Answer(R"("target":"nobody",)"), Candidate(R"("target":"nobody",)"),
        Candidate(R"("targetUsername":"nobody",)"), AppMsg("nobody", "for-nobody")}) {
    ASSERT_TRUE(alice_->SendText(text));
    m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "user-unavailable")) << m->text();
  }
  ASSERT_TRUE(alice_->SendText(R"({"type":"hang-up","target":"nobody"})"));
  for (const Json& j : UpToSentinel(*alice_, *bob_, "sentinel")) {
    EXPECT_TRUE(j.type() == "userlist" || j.Str("seq") == "sentinel")
        << "bob received a message for nobody: " << j.text();
  }
}

TEST_F(Routing, ChatGoesToEveryoneWithMarkupStrippedAndNameStamped) {
  ASSERT_TRUE(alice_->SendText(
      R"({"type":"message","text":"<b>hi</b>","name":"mallory","id":1,"date":123})"));
  for (WsClient* c : {alice_.get(), bob_.get(), carol_.get()}) {
    SCOPED_TRACE(c->name);
    std::optional<Json> m = c->ReadUntil([](const Json& j) { return j.type() == "message"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("text"), "hi") << m->text();
    EXPECT_EQ(m->Str("name"), "alice") << m->text();
    EXPECT_EQ(m->Int("date"), 123) << m->text();
  }
  ASSERT_TRUE(bob_->SendText(
      R"({"type":"message","text":"<img src=x onerror=alert(1)>a < b > c <script>x</script>"})"));
  for (WsClient* c : {alice_.get(), bob_.get(), carol_.get()}) {
    SCOPED_TRACE(c->name);
    std::optional<Json> m = c->ReadUntil([](const Json& j) { return j.type() == "message"; });
    ASSERT_TRUE(m);
    std::string text = m->Str("text").value_or("<missing>");
    EXPECT_EQ(text.find('<'), std::string::npos) << text;
    EXPECT_EQ(text.find('>'), std::string::npos) << text;
    EXPECT_EQ(m->Str("name"), "bob");
    EXPECT_TRUE(m->Int("date")) << "the server adds a date when the client gave none";
  }
}

TEST_F(Routing, TextAboutEscapesIsNotMistakenForAnEscapedNul) {
  // `"\\u0000"` in JSON is a backslash followed by "u0000": six harmless characters, no NUL.
  // Chat comes back to the sender too, so alice sees either her message or a refusal.
  ASSERT_TRUE(alice_->SendText(R"({"type":"message","text":"type \\u0000 for a NUL"})"));
  std::optional<Json> m =
      alice_->ReadUntil([](const Json& j) { return j.type() == "error" || j.type() == "message"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "message") << "a valid chat message was refused: " << m->text();
  EXPECT_EQ(m->Str("text"), "type \\u0000 for a NUL") << m->text();

  // Same in a relayed message; bob's sentinel shows whether it arrived.
  ASSERT_TRUE(alice_->SendText(R"({"type":"app","target":"bob","seq":"C:\\u0000dir"})"));
  bool delivered = false;
  for (const Json& j : UpToSentinel(*alice_, *bob_, "sentinel")) {
    delivered = delivered || j.Str("seq") == "C:\\u0000dir";
  }
  EXPECT_TRUE(delivered) << "a valid message holding a backslash before u0000 was not relayed";
}

TEST_F(Routing, ServerOnlyTypesCannotBeSpoofed) {
  const std::vector<std::string> spoofs = {
      R"({"type":"userlist","target":"bob","users":[]})",
      R"({"type":"userlist","target":"bob","users":["mallory"]})",
      R"({"type":"id","target":"bob","id":99})",
      R"({"type":"rejectusername","target":"bob","id":1,"name":"bob1"})",
      R"({"type":"error","target":"bob","code":"forbidden","message":"you are banned"})",
  };
  for (const std::string& text : spoofs) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(alice_->SendText(text));
    std::optional<Json> m = alice_->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type(), "error") << "not refused: " << m->text();
  }
  for (const Json& j : UpToSentinel(*alice_, *bob_, "sentinel")) {
    if (j.type() == "userlist") {
      EXPECT_EQ(j.Users(), (std::vector<std::string>{"alice", "bob", "carol"}))
          << "bob received a forged user list: " << j.text();
    } else {
      EXPECT_EQ(j.Str("seq"), "sentinel") << "bob received " << j.text();
    }
  }
}

}  // namespace
}  // namespace wcc_test
