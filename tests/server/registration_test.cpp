// Registration: id first, username, renames, duplicate names, the user list on join and on
// leave, name rules (PROTOCOL.md rule 6) and the shared-secret token (rule 9).
#include <string>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

using Registration = ServerTest;

// Sends `username` with `name_json` (a JSON value, as raw text) on a fresh connection and
// returns the first answer (an error, a rejectusername or the user list of a registration).
std::optional<Json> TryName(int port, const std::string& name_json,
                            std::unique_ptr<WsClient>* keep = nullptr) {
  std::unique_ptr<WsClient> c = WsClient::Connect(port);
  if (!c || c->status() != 101) return std::nullopt;
  std::optional<Json> id = c->Read();
  EXPECT_TRUE(id && id->type() == "id");
  c->SendText(R"({"type":"username","name":)" + name_json + "}");
  std::optional<Json> answer = c->Read();
  if (keep) *keep = std::move(c);
  return answer;
}

// The name is refused with an error of one of `codes` and the connection stays
// unregistered.
void ExpectNameRefused(int port, const std::string& name_json,
                       const std::vector<std::string>& codes = {"bad-name"}) {
  std::unique_ptr<WsClient> c;
  std::optional<Json> answer = TryName(port, name_json, &c);
  ASSERT_TRUE(answer) << "no answer to the name " << name_json;
  bool refused = false;
  for (const std::string& code : codes) refused = refused || IsError(*answer, code);
  EXPECT_TRUE(refused) << "name " << name_json << " answered with " << answer->text();
  if (answer->type() != "error") return;  // registered: reported above
  EXPECT_TRUE(answer->Str("message")) << "an error has a `message`: " << answer->text();
  // Not registered: anything but `username` is still refused as unregistered.
  ASSERT_TRUE(c->SendText(R"({"type":"message","text":"am I in?"})"));
  std::optional<Json> m = c->Read();
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "unregistered")) << m->text();
}

TEST_F(Registration, IdFirstThenUserlistWithTheName) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  ASSERT_EQ(c->status(), 101);
  std::optional<Json> first = c->Read();
  ASSERT_TRUE(first) << "nothing received after the handshake";
  EXPECT_EQ(first->type(), "id") << first->text();
  ASSERT_TRUE(first->Int("id")) << "`id` is not a number: " << first->text();
  EXPECT_GT(*first->Int("id"), 0);

  ASSERT_TRUE(c->SendText(R"({"type":"username","name":"alice","id":)" +
                          std::to_string(*first->Int("id")) + R"(,"date":1})"));
  std::optional<Json> next = c->Read();
  ASSERT_TRUE(next) << "no answer to `username`";
  EXPECT_EQ(next->type(), "userlist") << next->text();
  EXPECT_EQ(next->Users(), std::vector<std::string>{"alice"}) << next->text();
}

TEST_F(Registration, MessagesSentTogetherWithTheHandshakeAreNotLost) {
  // The request, a `username` and a chat message in one write, before the 101: the bytes
  // that arrive with the HTTP request are the first WebSocket frames.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> watcher = Join(port(), "watcher");
  ASSERT_TRUE(watcher);
  HandshakeOptions early;
  early.early_texts = {R"({"type":"username","name":"hasty"})",
                       R"({"type":"message","text":"first words"})"};
  std::unique_ptr<WsClient> c = WsClient::Connect(port(), early);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->status(), 101);
  std::optional<Json> first = c->Read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->type(), "id") << first->text();
  EXPECT_TRUE(c->ReadUntil([](const Json& j) {
    return IsUserlistWith(j, {"hasty", "watcher"});
  })) << "the `username` sent with the handshake was lost";
  std::optional<Json> chat =
      watcher->ReadUntil([](const Json& j) { return j.type() == "message"; });
  ASSERT_TRUE(chat) << "the chat message sent with the handshake was lost";
  EXPECT_EQ(chat->Str("name"), "hasty") << chat->text();
  EXPECT_EQ(chat->Str("text"), "first words") << chat->text();
}

TEST_F(Registration, EveryConnectionGetsItsOwnId) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> a = Join(port(), "alice");
  std::unique_ptr<WsClient> b = Join(port(), "bob");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
}

TEST_F(Registration, RenameShowsTheNewNameNotTheOld) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  ASSERT_TRUE(alice);
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(bob);
  ASSERT_TRUE(alice->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"alice", "bob"}); }));

  ASSERT_TRUE(alice->SendText(R"({"type":"username","name":"alicia"})"));
  std::vector<Json> seen;
  std::optional<Json> list =
      bob->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("alicia"); },
                     kTimeoutMs, &seen);
  ASSERT_TRUE(list) << "bob never saw the rename";
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alicia", "bob"})) << list->text();
  list =
      alice->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("alicia"); });
  ASSERT_TRUE(list);
  EXPECT_FALSE(list->HasUser("alice")) << list->text();

  // The new name is the one messages are stamped with, and the old one is free again.
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "after-rename")));
  std::optional<Json> m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "alicia") << m->text();
  std::unique_ptr<WsClient> other = Join(port(), "alice");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->name, "alice");
}

TEST_F(Registration, DuplicateNameGetsANumberAndRejectusername) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> first = Join(port(), "alice");
  ASSERT_TRUE(first);

  std::unique_ptr<WsClient> second = WsClient::Connect(port());
  ASSERT_TRUE(second);
  std::optional<Json> id = second->Read();
  ASSERT_TRUE(id && id->type() == "id");
  ASSERT_TRUE(second->SendText(R"({"type":"username","name":"alice","id":)" +
                               std::to_string(*id->Int("id")) + "}"));
  std::optional<Json> reject = second->Read();
  ASSERT_TRUE(reject);
  ASSERT_EQ(reject->type(), "rejectusername") << reject->text();
  EXPECT_EQ(reject->Str("name"), "alice1") << reject->text();
  EXPECT_EQ(reject->Int("id"), id->Int("id")) << reject->text();

  std::optional<Json> list =
      second->ReadUntil([](const Json& m) { return m.type() == "userlist"; });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alice", "alice1"})) << list->text();
  list = first->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"alice", "alice1"}); });
  ASSERT_TRUE(list) << "the first alice never saw alice1";

  // A third one gets the next number.
  std::unique_ptr<WsClient> third = Join(port(), "alice");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->name, "alice2");
}

TEST_F(Registration, RenameToATakenNameGetsANumber) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(bob->SendText(R"({"type":"username","name":"alice"})"));
  std::optional<Json> m = bob->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type(), "rejectusername") << m->text();
  EXPECT_EQ(m->Str("name"), "alice1") << m->text();
  std::optional<Json> list = alice->ReadUntil([](const Json& j) {
    return IsUserlistWith(j, {"alice", "alice1"});
  });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alice", "alice1"})) << list->text();
}

TEST_F(Registration, ARefusedRenameKeepsTheOldName) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->SendText(R"({"type":"username","name":"<b>alice</b>"})"));
  std::optional<Json> m = alice->ReadUntil([](const Json& j) { return j.type() != "userlist"; });
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "bad-name")) << m->text();
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "still-alice")));
  std::vector<Json> seen;
  m = bob->ReadUntil([](const Json& j) { return j.type() == "app"; }, kTimeoutMs, &seen);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "alice") << m->text();
  for (const Json& j : seen) {
    if (j.type() == "userlist") {
      EXPECT_EQ(j.Users(), (std::vector<std::string>{"alice", "bob"})) << j.text();
    }
  }
}

TEST_F(Registration, NamesAreComparedAfterUnicodeNormalization) {
  // "Zoë" precomposed (NFC) and as "e" + combining diaeresis (NFD) look the same: one
  // person, one name; the second gets a number rather than a look-alike.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> nfc = Join(port(), "Zo\xC3\xAB");
  ASSERT_TRUE(nfc);
  std::unique_ptr<WsClient> nfd = Join(port(), "Zoe\xCC\x88");
  ASSERT_TRUE(nfd);
  EXPECT_EQ(nfd->name,
            "Zo\xC3\xAB"
            "1");
}

TEST_F(Registration, DuplicateOfA64CharacterNameStaysWithinTheLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string name(64, 'n');
  std::unique_ptr<WsClient> a = Join(port(), name);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, name);
  std::unique_ptr<WsClient> b = Join(port(), name);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name, std::string(63, 'n') + "1");
}

TEST_F(Registration, UserlistOnJoinAndOnLeave) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  ASSERT_TRUE(alice);
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(bob);
  std::unique_ptr<WsClient> carol = Join(port(), "carol");
  ASSERT_TRUE(carol);
  ASSERT_TRUE(alice->ReadUntil([](const Json& m) {
    return IsUserlistWith(m, {"alice", "bob", "carol"});
  })) << "alice never saw bob and carol join";

  // bob leaves cleanly (close frame).
  ASSERT_TRUE(bob->SendClose(1000));
  ASSERT_TRUE(bob->WaitClosed());
  std::optional<Json> list =
      alice->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"alice"}, {"bob"}); });
  ASSERT_TRUE(list) << "bob is still listed after closing";
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alice", "carol"})) << list->text();

  // carol vanishes (TCP connection dropped without a close frame).
  carol->Abort();
  list = alice->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"alice"}, {"carol"}); });
  ASSERT_TRUE(list) << "carol is still listed after her connection dropped";
  EXPECT_EQ(list->Users(), std::vector<std::string>{"alice"}) << list->text();
}

TEST_F(Registration, UnregisteredConnectionsAreNotListed) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> lurker = WsClient::Connect(port());
  ASSERT_TRUE(lurker && lurker->status() == 101);
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  ASSERT_TRUE(alice);
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(bob);
  std::optional<Json> list = alice->ReadUntil([](const Json& m) {
    return IsUserlistWith(m, {"alice", "bob"});
  });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alice", "bob"}));
  // The unregistered connection got its id and nothing else: no user lists.
  std::optional<Json> id = lurker->Read();
  ASSERT_TRUE(id);
  EXPECT_EQ(id->type(), "id");
  ASSERT_TRUE(lurker->SendText(R"({"type":"message","text":"hi"})"));
  std::optional<Json> m = lurker->Read();
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsError(*m, "unregistered")) << m->text();
}

struct HostileName {
  const char* label;
  std::string json;  // the `name` value as raw JSON text
};

TEST_F(Registration, HostileNamesAreRefusedWithBadName) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> watcher = Join(port(), "watcher");
  ASSERT_TRUE(watcher);

  const std::vector<HostileName> names = {
      {"empty", R"("")"},
      {"whitespace only", R"("   \t  ")"},
      {"unicode whitespace only", "\"\xE3\x80\x80\xC2\xA0\""},  // U+3000, U+00A0
      {"65 characters", Quote(std::string(65, 'x'))},
      {"65 non-ASCII characters", Quote([] {
         std::string s;
         for (int i = 0; i < 65; ++i) s += "\xC3\xAB";  // ë
         return s;
       }())},
      {"script tag", R"("<script>alert(1)</script>")"},
      {"ampersand", R"("tom&jerry")"},
      {"double quote", R"("say \"hi\"")"},
      {"apostrophe", R"("o'brien")"},
      {"control character BEL", R"("bob\u0007")"},
      {"newline", R"("bob\nalice")"},
      {"escape sequence", R"("\u001b[31mred")"},
      {"DEL", R"("bob\u007f")"},
      {"C1 control", R"("bob\u0085")"},
      {"bidi override U+202E", "\"evil\xE2\x80\xAEtxt.exe\""},
      {"bidi override escaped", R"("evil\u202etxt.exe")"},
      {"zero-width space",
       "\"ali\xE2\x80\x8B"
       "ce\""},
      {"zero-width space only", R"("\u200b")"},
      {"line separator U+2028", R"("a\u2028b")"},
      {"private use", R"("\ue000")"},
  };
  for (const HostileName& n : names) {
    SCOPED_TRACE(n.label);
    ExpectNameRefused(port(), n.json);
  }
  // Escaped lone surrogates are not text: json-glib already refuses some as invalid JSON
  // (`malformed`), which is as good a refusal as `bad-name`.
  for (const char* surrogate : {R"("\ud800")", R"("x\udc00y")", R"("\udbff\udbff")"}) {
    SCOPED_TRACE(surrogate);
    ExpectNameRefused(port(), surrogate, {"bad-name", "malformed"});
  }

  // The watcher's user list never had any of them: a late user's arrival shows the present.
  std::vector<Json> seen;
  std::unique_ptr<WsClient> late = Join(port(), "late");
  ASSERT_TRUE(late);
  std::optional<Json> list = watcher->ReadUntil(
      [](const Json& m) { return m.type() == "userlist" && m.HasUser("late"); }, kTimeoutMs, &seen);
  ASSERT_TRUE(list);
  for (const Json& m : seen) {
    if (m.type() == "userlist") {
      for (const std::string& u : m.Users()) {
        EXPECT_TRUE(u == "watcher" || u == "late") << "unexpected user listed: " << m.text();
      }
    } else if (m.type() == "message") {
      ADD_FAILURE() << "a refused user's chat reached the watcher: " << m.text();
    }
  }
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Registration, NameWithAnEscapedNulIsRefused) {
  // "\u0000" is a control character like any other (rule 6). What must not happen: the
  // name cut at the NUL and registered as "alice" (or "alice1" when alice is online). The
  // server refuses any message holding an escaped NUL as `malformed`, which is as good.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  ASSERT_TRUE(alice);
  ExpectNameRefused(port(), R"("alice\u0000evil")", {"bad-name", "malformed"});
  ExpectNameRefused(port(), R"("bob\u0000")", {"bad-name", "malformed"});
  ExpectNameRefused(port(), R"("\u0000")", {"bad-name", "malformed"});
  std::unique_ptr<WsClient> late = Join(port(), "late");
  ASSERT_TRUE(late);
  std::optional<Json> list =
      alice->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("late"); });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"alice", "late"})) << list->text();
}

TEST_F(Registration, NonStringNameIsWrongType) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (const char* name : {"7", "null", "[\"alice\"]", "{\"x\":1}", "true"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<WsClient> c;
    std::optional<Json> answer = TryName(port(), name, &c);
    ASSERT_TRUE(answer);
    EXPECT_TRUE(IsError(*answer, "wrong-type")) << answer->text();
  }
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Read());
  ASSERT_TRUE(c->SendText(R"({"type":"username"})"));
  std::optional<Json> answer = c->Read();
  ASSERT_TRUE(answer);
  EXPECT_TRUE(IsError(*answer, "wrong-type")) << "missing name: " << answer->text();
}

TEST_F(Registration, InvalidUtf8NameInATextFrameClosesTheConnection) {
  // A text frame must be UTF-8 (RFC 6455 8.1); libsoup fails such a frame itself, before the
  // router sees it. What a client sees: the connection is closed (1007, invalid payload),
  // nobody is registered, and the server goes on serving.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> watcher = Join(port(), "watcher");
  ASSERT_TRUE(watcher);
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Read());
  ASSERT_TRUE(c->SendText("{\"type\":\"username\",\"name\":\"bad\xff\xfe\xc3\"}"));
  std::vector<Json> got;
  while (std::optional<Json> m = c->Read()) got.push_back(*m);
  ASSERT_TRUE(c->closed()) << "the connection stayed open";
  EXPECT_EQ(c->close_code(), 1007) << "close reason: " << c->close_reason();
  for (const Json& m : got) {
    EXPECT_NE(m.type(), "userlist") << "registered with an invalid name: " << m.text();
  }
  std::unique_ptr<WsClient> late = Join(port(), "late");
  ASSERT_TRUE(late);
  std::optional<Json> list =
      watcher->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("late"); });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"late", "watcher"})) << list->text();
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Registration, AcceptedNames) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string long_name(64, 'L');
  std::unique_ptr<WsClient> a = Join(port(), long_name);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, long_name);
  std::unique_ptr<WsClient> z = Join(port(), "Zo\xC3\xAB");  // Zoë
  ASSERT_TRUE(z);
  EXPECT_EQ(z->name, "Zo\xC3\xAB");
  std::unique_ptr<WsClient> k =
      Join(port(), "\xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80");  // 東京 😀
  ASSERT_TRUE(k);
  std::unique_ptr<WsClient> spaced = Join(port(), "Mary Ann");
  ASSERT_TRUE(spaced);

  // Everybody sees the names exactly, as UTF-8.
  std::optional<Json> list = a->ReadUntil([&](const Json& m) {
    return IsUserlistWith(m, {long_name, "Zo\xC3\xAB", "Mary Ann"});
  });
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->HasUser("\xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80")) << list->text();

  // And messages are stamped with them.
  ASSERT_TRUE(z->SendText(AppMsg(long_name, "hello")));
  std::optional<Json> m = a->ReadUntil([](const Json& j) { return j.type() == "app"; });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("name"), "Zo\xC3\xAB");
}

TEST_F(Registration, NamesAreTrimmed) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Read());
  ASSERT_TRUE(c->SendText(R"({"type":"username","name":"  carol \t"})"));
  std::optional<Json> list = c->ReadUntil([](const Json& m) { return m.type() == "userlist"; });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), std::vector<std::string>{"carol"}) << list->text();
}

// ---- Token (--token) ----

TEST_F(Registration, TokenOnTheUrlRegisters) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--token", "s3cret"}));
  std::unique_ptr<WsClient> c = Join(port(), "alice", {.path = "/?token=s3cret"});
  ASSERT_TRUE(c);
  std::unique_ptr<WsClient> d = Join(port(), "bob", {.path = "/ws?token=s3cret"});
  ASSERT_TRUE(d);
}

TEST_F(Registration, TokenInUsernameRegisters) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--token", "s3cret"}));
  std::unique_ptr<WsClient> c = WsClient::Connect(port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Read());
  ASSERT_TRUE(c->SendText(R"({"type":"username","name":"alice","token":"s3cret"})"));
  std::optional<Json> m = c->Read();
  ASSERT_TRUE(m);
  EXPECT_TRUE(IsUserlistWith(*m, {"alice"})) << m->text();
}

TEST_F(Registration, MissingOrWrongTokenIsForbidden) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--token", "s3cret"}));
  std::unique_ptr<WsClient> member = Join(port(), "member", {.path = "/?token=s3cret"});
  ASSERT_TRUE(member);

  struct Case {
    const char* label;
    std::string path, username;
  };
  const std::vector<Case> cases = {
      {"no token", "/", R"({"type":"username","name":"eve"})"},
      {"wrong token field", "/", R"({"type":"username","name":"eve","token":"guess"})"},
      {"token of another type", "/", R"({"type":"username","name":"eve","token":12345})"},
      {"wrong URL token", "/?token=guess", R"({"type":"username","name":"eve"})"},
      {"empty URL token", "/?token=", R"({"type":"username","name":"eve"})"},
      {"prefix of the token", "/?token=s3cre", R"({"type":"username","name":"eve"})"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.label);
    std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.path = k.path});
    ASSERT_TRUE(c);
    ASSERT_EQ(c->status(), 101);
    ASSERT_TRUE(c->Read());
    ASSERT_TRUE(c->SendText(k.username));
    std::optional<Json> m = c->Read();
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "forbidden")) << m->text();
    // Still not registered.
    ASSERT_TRUE(c->SendText(AppMsg("member", "sneak")));
    m = c->Read();
    ASSERT_TRUE(m);
    EXPECT_TRUE(IsError(*m, "unregistered")) << m->text();
  }
  // The member saw none of them: neither in the user list nor as a message.
  std::unique_ptr<WsClient> late = Join(port(), "late", {.path = "/?token=s3cret"});
  ASSERT_TRUE(late);
  std::vector<Json> seen;
  ASSERT_TRUE(
      member->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("late"); },
                        kTimeoutMs, &seen));
  for (const Json& m : seen) {
    EXPECT_FALSE(m.type() == "userlist" && m.HasUser("eve")) << m.text();
    EXPECT_NE(m.type(), "app") << m.text();
  }
}

}  // namespace
}  // namespace wcc_test
