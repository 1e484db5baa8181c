// The protocol layer: parsing, validation and limits, without any I/O.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "protocol.h"

namespace protocol = signaling::protocol;
using protocol::ErrorCode;

namespace {

protocol::Limits limits;

ErrorCode error_of(const std::string& text) {
  auto r = protocol::parse_client(text, limits);
  if (!std::holds_alternative<protocol::Error>(r)) {
    ADD_FAILURE() << "expected an error for " << text.substr(0, 120);
    return ErrorCode::kForbidden;
  }
  return std::get<protocol::Error>(r).code;
}

protocol::ClientMessage ok(const std::string& text) {
  auto r = protocol::parse_client(text, limits);
  if (auto* e = std::get_if<protocol::Error>(&r)) {
    ADD_FAILURE() << "refused: " << e->message << " for " << text.substr(0, 120);
    return protocol::Username{};
  }
  return std::get<protocol::ClientMessage>(std::move(r));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// JSON string literal for arbitrary text (json-glib escapes what must be).
std::string json_string(const std::string& s) {
  gwc::GRef<JsonNode> n = gwc::GRef<JsonNode>::adopt(json_node_new(JSON_NODE_VALUE));
  json_node_set_string(n.get(), s.c_str());
  return protocol::to_text(n.get());
}

}  // namespace

TEST(Depth, CountsObjectsAndArraysOutsideStrings) {
  EXPECT_TRUE(protocol::depth_within(R"({"a":{"b":[1,2,{"c":3}]}})", 4));
  EXPECT_FALSE(protocol::depth_within(R"({"a":{"b":[1,2,{"c":[3]}]}})", 4));
  // Brackets inside strings, with escaped quotes, do not count.
  EXPECT_TRUE(protocol::depth_within(R"({"a":"[[[[[[\"{{{{{"})", 1));
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  EXPECT_FALSE(protocol::depth_within(deep, 32));
}

TEST(Parse, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = R"({"type":"x","target":"b","p":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  EXPECT_EQ(error_of(deep), ErrorCode::kTooDeep);
}

TEST(Parse, SizeLimitCountsTheWholeMessage) {
  std::string big =
      R"({"type":"message","text":")" + std::string(limits.max_message_bytes, 'a') + "\"}";
  EXPECT_EQ(error_of(big), ErrorCode::kTooLarge);
}

TEST(Parse, MalformedInput) {
  EXPECT_EQ(error_of("not json"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of("[1,2]"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(R"({"no":"type"})"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(R"({"type":5})"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(R"({"type":""})"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(std::string("{\"type\":\"x\0\"}", 13)), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(R"({"type":"username","name":"a\u0000b"})"), ErrorCode::kMalformed);
  // An escaped backslash followed by the letters u0000 is text, not a NUL.
  EXPECT_EQ(
      std::get<protocol::Chat>(ok(R"({"type":"message","text":"type \\u0000 for NUL"})")).text,
      "type \\u0000 for NUL");
  EXPECT_EQ(error_of(R"({"type":"message","text":"x")"), ErrorCode::kMalformed);
  // Infinity would be written back as `inf.0`, which is not JSON.
  EXPECT_EQ(error_of(R"({"type":"message","text":"x","date":1e999})"), ErrorCode::kMalformed);
  EXPECT_EQ(error_of(R"({"type":"app","target":"b","v":[{"w":-1e400}]})"), ErrorCode::kMalformed);
}

// Found by the protocol fuzz target: json-glib 1.6 writes some doubles with an exponent and
// no point (1e30, 2e+20, 1e-300, 1e22) with ".0" after them ("1e+30.0"), which is not JSON:
// relayed, such a message reached its target unreadable (and, as a chat `date`, every user).
TEST(Parse, NumbersJsonGlibWritesAsInvalidJsonAreRefused) {
  for (const char* v : {"1e30", "2e+20", "1e-300", "1e22"}) {
    EXPECT_EQ(error_of(std::string(R"({"type":"app","target":"b","v":[{"w":)") + v + "}]}"),
              ErrorCode::kMalformed)
        << v;
    EXPECT_EQ(error_of(std::string(R"({"type":"message","text":"x","date":)") + v + "}"),
              ErrorCode::kMalformed)
        << v;
  }
  // Numbers it writes as JSON are relayed, and read back as they were.
  for (const char* v : {"1.5e30", "1e300", "-5e300", "1e23", "0.1", "-2.5", "1700000000000"}) {
    std::string text = std::string(R"({"type":"app","target":"b","v":)") + v + "}";
    auto sig = std::get<protocol::Signal>(ok(text));
    std::optional<std::string> stamped = protocol::stamp_name(sig.object.get(), "a");
    ASSERT_TRUE(stamped) << v;
    EXPECT_TRUE(
        std::holds_alternative<protocol::ServerMessage>(protocol::parse_server(*stamped, {})))
        << v << " written as " << *stamped;
  }
}

TEST(Parse, WrongTypes) {
  EXPECT_EQ(error_of(R"({"type":"username","name":7})"), ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"message","text":["x"]})"), ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"video-offer","target":"b","sdp":5})"), ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"video-offer","target":"b","sdp":{"type":"offer","sdp":1}})"),
            ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"new-ice-candidate","target":"b","candidate":"x"})"),
            ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"new-ice-candidate","target":"b","candidate":{"candidate":3}})"),
            ErrorCode::kWrongType);
  EXPECT_EQ(error_of(R"({"type":"hang-up","target":42})"), ErrorCode::kWrongType);
}

TEST(Parse, ServerOnlyTypesCannotBeSentByClients) {
  EXPECT_EQ(error_of(R"({"type":"userlist","target":"b","users":[]})"), ErrorCode::kUnknownType);
  EXPECT_EQ(error_of(R"({"type":"id","target":"b","id":1})"), ErrorCode::kUnknownType);
  EXPECT_EQ(error_of(R"({"type":"error","target":"b"})"), ErrorCode::kUnknownType);
  EXPECT_EQ(error_of(R"({"type":"rejectusername","target":"b"})"), ErrorCode::kUnknownType);
}

TEST(Parse, ChromiumOfferAsTheSampleClientSendsIt) {
  std::string sdp = read_file(std::string(TEST_DATA_DIR) + "/chromium-156-offer-audio-video.sdp");
  ASSERT_GT(sdp.size(), 1000u);
  std::string text =
      R"({"name":"alice","target":"bob","type":"video-offer","sdp":{"type":"offer","sdp":)" +
      json_string(sdp) + "}}";
  auto msg = ok(text);
  auto* s = std::get_if<protocol::Signal>(&msg);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, "video-offer");
  EXPECT_EQ(s->target, "bob");
  // Relayed with the sender's registered name, SDP intact.
  std::string relayed = protocol::stamp_name(s->object.get(), "al").value();
  auto back = protocol::parse_server(relayed, limits);
  auto* r = std::get_if<protocol::RelayedMsg>(&std::get<protocol::ServerMessage>(back));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "al");
  JsonObject* desc = json_object_get_object_member(r->object.get(), "sdp");
  EXPECT_EQ(std::string(json_object_get_string_member(desc, "sdp")), sdp);
}

TEST(Parse, InvalidUnicodeIsRefusedAndErrorsStayUtf8) {
  EXPECT_EQ(error_of(R"({"type":"app","target":"b","text":"\ud800"})"), ErrorCode::kMalformed);
  // Error messages quoting invalid input are repaired to valid UTF-8.
  std::string e = protocol::make_error(ErrorCode::kMalformed, "bad \xff input");
  EXPECT_TRUE(g_utf8_validate(e.c_str(), -1, nullptr));
}

TEST(Parse, TargetVariants) {
  auto with = [](const std::string& t) {
    auto m = ok(R"({"type":"new-ice-candidate","candidate":{"candidate":"c"})" + t + "}");
    return std::get<protocol::Signal>(m).target;
  };
  EXPECT_EQ(with(R"(,"target":"bob")"), "bob");
  EXPECT_EQ(with(R"(,"targetUsername":"bob")"), "bob");  // legacy clients
  EXPECT_EQ(with(R"(,"target":null)"), std::nullopt);
  EXPECT_EQ(with(""), std::nullopt);
  // End of candidates (null) is relayed too.
  auto m = ok(R"({"type":"new-ice-candidate","target":"b","candidate":null})");
  EXPECT_TRUE(std::holds_alternative<protocol::Signal>(m));
}

TEST(Parse, UsernameAndChat) {
  auto u =
      std::get<protocol::Username>(ok(R"({"type":"username","name":"alice","id":3,"date":1})"));
  EXPECT_EQ(u.name, "alice");
  EXPECT_FALSE(u.token.has_value());
  auto c = std::get<protocol::Chat>(ok(R"({"type":"message","text":"hi","date":1700000000000})"));
  EXPECT_EQ(c.text, "hi");
  ASSERT_TRUE(c.date);
  EXPECT_EQ(json_node_get_int(c.date.get()), 1700000000000);
}

TEST(Names, AcceptedAndNormalized) {
  std::string why;
  EXPECT_EQ(protocol::normalize_name("  alice \t", &why), "alice");
  EXPECT_EQ(protocol::normalize_name("Zoë", &why), "Zoë");
  // NFC: "e" + combining acute is the same name as "é".
  EXPECT_EQ(protocol::normalize_name("Rene\xcc\x81", &why), "Ren\xc3\xa9");
  EXPECT_EQ(protocol::normalize_name(std::string(64, 'x'), &why), std::string(64, 'x'));
  EXPECT_EQ(protocol::normalize_name("日本語の名前", &why), "日本語の名前");
}

TEST(Names, Refused) {
  std::string why;
  for (const std::string& bad :
       {std::string(""), std::string("   "), std::string(65, 'x'), std::string("<script>"),
        std::string("a&b"), std::string("a\"b"), std::string("a'b"), std::string("a\nb"),
        std::string("a\x01"), std::string("evil\u202Egnp.exe"), std::string("zero\u200Bwidth"),
        std::string("bad\xff\xfeutf8"), std::string("nul\0x", 5)}) {
    why.clear();
    EXPECT_FALSE(protocol::normalize_name(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty());
  }
}

TEST(Markup, Stripped) {
  EXPECT_EQ(protocol::strip_markup("<b>hi</b> there"), "hi there");
  EXPECT_EQ(protocol::strip_markup("<img src=x onerror=alert(1)>ok"), "ok");
  EXPECT_EQ(protocol::strip_markup("a < b > c"), "a  c");
  EXPECT_EQ(protocol::strip_markup("1 < 2"), "1  2");
  EXPECT_EQ(protocol::strip_markup("plain & simple"), "plain & simple");
}

TEST(ServerMessages, RoundTrip) {
  auto parse = [](const std::string& t) {
    return std::get<protocol::ServerMessage>(protocol::parse_server(t, limits));
  };
  EXPECT_EQ(std::get<protocol::IdMsg>(parse(protocol::make_id(42))).id, 42u);
  EXPECT_EQ(
      std::get<protocol::RejectUsernameMsg>(parse(protocol::make_reject_username(1, "a1"))).name,
      "a1");
  auto list = std::get<protocol::UserListMsg>(parse(protocol::make_userlist({"a", "b"})));
  EXPECT_EQ(list.users, (std::vector<std::string>{"a", "b"}));
  auto err = std::get<protocol::ErrorMsg>(parse(protocol::make_error(ErrorCode::kTooDeep, "x")));
  EXPECT_EQ(err.code, "too-deep");
  auto hang = std::get<protocol::RelayedMsg>(parse(protocol::make_hang_up("a", "b", "busy")));
  EXPECT_EQ(hang.type, "hang-up");
  EXPECT_EQ(hang.name, "a");
  // The MDN sample server sends Date.now()-style ids.
  EXPECT_EQ(std::get<protocol::IdMsg>(parse(R"({"type":"id","id":1700000000000})")).id,
            1700000000000u);
}

namespace {

// An application message whose JSON nests exactly `depth` levels (the message object is 1).
std::string nested_message(unsigned depth) {
  return R"({"type":"app","target":"b","p":)" + std::string(depth - 1, '[') +
         std::string(depth - 1, ']') + "}";
}

}  // namespace

// The limit itself, not a depth far over it: a limit one too high or one too low fails here.
TEST(Depth, ExactlyAtTheLimitPassesAndOneOverIsRefused) {
  for (unsigned limit : {1u, 2u, 32u, 1000u}) {
    std::string at = std::string(limit, '[') + std::string(limit, ']');
    std::string over = "[" + at + "]";
    EXPECT_TRUE(protocol::depth_within(at, limit)) << limit;
    EXPECT_FALSE(protocol::depth_within(over, limit)) << limit;
    // Objects count like arrays, and a string's brackets not at all.
    std::string objects;
    for (unsigned i = 0; i < limit; ++i) objects += i + 1 < limit ? R"({"k":)" : R"({"k":"]}[{"})";
    objects += std::string(limit - 1, '}');
    EXPECT_TRUE(protocol::depth_within(objects, limit)) << objects;
    EXPECT_FALSE(protocol::depth_within("[" + objects + "]", limit)) << limit;
  }
}

TEST(Parse, DepthLimitIsExactForTheDefaultAndAConfiguredLimit) {
  protocol::Limits defaults;
  ASSERT_EQ(defaults.max_depth, 32u);  // README: --max-depth, default 32
  for (unsigned limit : {defaults.max_depth, 5u, 100u}) {
    protocol::Limits l;
    l.max_depth = limit;
    auto at = protocol::parse_client(nested_message(limit), l);
    EXPECT_TRUE(std::holds_alternative<protocol::ClientMessage>(at))
        << "depth " << limit << " refused under a limit of " << limit;
    auto over = protocol::parse_client(nested_message(limit + 1), l);
    ASSERT_TRUE(std::holds_alternative<protocol::Error>(over))
        << "depth " << limit + 1 << " accepted under a limit of " << limit;
    EXPECT_EQ(std::get<protocol::Error>(over).code, ErrorCode::kTooDeep);
  }
}

// The size limit exactly: a message of max_message_bytes passes, one byte more is refused.
TEST(Parse, SizeLimitIsExactForTheDefaultAndAConfiguredLimit) {
  protocol::Limits defaults;
  ASSERT_EQ(defaults.max_message_bytes, 262144u);  // README: --max-message-size 262144
  for (std::size_t limit : {defaults.max_message_bytes, std::size_t{100}, std::size_t{4096}}) {
    protocol::Limits l;
    l.max_message_bytes = limit;
    const std::string head = R"({"type":"message","text":")", tail = "\"}";
    std::string at = head + std::string(limit - head.size() - tail.size(), 'a') + tail;
    ASSERT_EQ(at.size(), limit);
    auto ok_at = protocol::parse_client(at, l);
    EXPECT_TRUE(std::holds_alternative<protocol::ClientMessage>(ok_at))
        << limit << " bytes refused under a limit of " << limit;
    auto over = protocol::parse_client(head + "a" + at.substr(head.size()), l);
    ASSERT_TRUE(std::holds_alternative<protocol::Error>(over))
        << limit + 1 << " bytes accepted under a limit of " << limit;
    EXPECT_EQ(std::get<protocol::Error>(over).code, ErrorCode::kTooLarge);
  }
}

// Found by the protocol fuzz target (UBSan: 1e+300 is outside the range of representable
// values of type 'unsigned long'): an id must be a number an id can be.
TEST(Protocol, ParseServerRefusesIdsOutOfRange) {
  for (const char* id : {"1e300", "-1e300", "18446744073709551616.0", "-1", "-0.5e10"}) {
    auto parsed =
        protocol::parse_server(std::string(R"({"type":"id","id":)") + id + "}", protocol::Limits{});
    ASSERT_TRUE(std::holds_alternative<protocol::Error>(parsed)) << id;
    EXPECT_EQ(std::get<protocol::Error>(parsed).code, ErrorCode::kWrongType) << id;
  }
  auto largest = protocol::parse_server(R"({"type":"id","id":18446744073709549568.0})", {});
  EXPECT_EQ(std::get<protocol::IdMsg>(std::get<protocol::ServerMessage>(largest)).id,
            18446744073709549568u);
}
