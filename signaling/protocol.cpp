#include "protocol.h"

#include <cmath>
#include <cstring>

namespace signaling::protocol {

namespace {

using gwc::GRef;

// Types only the server may send: a client sending them to another user would spoof the
// server (a fake user list, a fake id).
bool is_server_only_type(std::string_view type) {
  return type == "id" || type == "userlist" || type == "rejectusername" || type == "error";
}

std::string generate(JsonNode* root) {
  // One generator per thread, reused like the parser: creating the GObject costs a third
  // of writing a small message.
  thread_local GRef<JsonGenerator> gen = GRef<JsonGenerator>::adopt(json_generator_new());
  json_generator_set_root(gen.get(), root);
  gsize length = 0;
  gwc::GCharPtr data(json_generator_to_data(gen.get(), &length));
  json_generator_set_root(gen.get(), nullptr);  // holds no message between calls
  return std::string(data.get(), length);
}

std::string generate_object(JsonObject* object) {
  GRef<JsonNode> root = GRef<JsonNode>::adopt(json_node_alloc());
  json_node_init_object(root.get(), object);
  return generate(root.get());
}

GRef<JsonObject> new_typed_object(const char* type) {
  GRef<JsonObject> o = GRef<JsonObject>::adopt(json_object_new());
  json_object_set_string_member(o.get(), "type", type);
  return o;
}

// Strings the server writes must be valid UTF-8 (a WebSocket text frame is); parser error
// messages quote the invalid input, so repair rather than trust.
void set_string(JsonObject* o, const char* member, std::string_view value) {
  if (g_utf8_validate_len(value.data(), value.size(), nullptr)) {
    json_object_set_string_member(o, member, std::string(value).c_str());
  } else {
    gwc::GCharPtr valid(g_utf8_make_valid(value.data(), static_cast<gssize>(value.size())));
    json_object_set_string_member(o, member, valid.get());
  }
}

// Whether the JSON text holds the escape \u0000 (and not, say, an escaped backslash
// followed by the letters u0000).
bool has_escaped_nul(std::string_view text) {
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '\\') continue;
    if (text[i + 1] == 'u' && text.substr(i + 2, 4) == "0000") return true;
    ++i;  // skip the escaped character, a backslash included
  }
  return false;
}

// json-glib parses 1e999 as infinity and would then write `inf.0`, which is not JSON; it
// writes some finite doubles as invalid JSON too (below).
// Recursion is bounded: depth_within() ran first.
bool numbers_finite(JsonNode* node) {
  switch (JSON_NODE_TYPE(node)) {
    case JSON_NODE_OBJECT: {
      JsonObjectIter it;
      JsonNode* member = nullptr;
      json_object_iter_init(&it, json_node_get_object(node));
      while (json_object_iter_next(&it, nullptr, &member)) {
        if (!numbers_finite(member)) return false;
      }
      return true;
    }
    case JSON_NODE_ARRAY: {
      JsonArray* a = json_node_get_array(node);
      for (guint i = 0, n = json_array_get_length(a); i < n; ++i) {
        if (!numbers_finite(json_array_get_element(a, i))) return false;
      }
      return true;
    }
    case JSON_NODE_VALUE: {
      if (json_node_get_value_type(node) != G_TYPE_DOUBLE) return true;
      if (!std::isfinite(json_node_get_double(node))) return false;
      // json-glib 1.6 appends ".0" to a double it writes without a point, also after an
      // exponent: 1e30 becomes `1e+30.0`, which is not JSON. Such numbers are refused
      // (doubles are rare: ids, dates and indexes are integers).
      const std::string text = generate(node);
      const std::size_t e = text.find_first_of("eE");
      return e == std::string::npos || text.find('.', e) == std::string::npos;
    }
    case JSON_NODE_NULL:
      return true;
  }
  return true;
}

// Parses `text` into a JSON object after the size, NUL and depth checks.
std::variant<GRef<JsonObject>, Error> parse_object(std::string_view text, const Limits& limits) {
  if (text.size() > limits.max_message_bytes) {
    return Error{ErrorCode::kTooLarge, "message of " + std::to_string(text.size()) +
                                           " bytes is over the limit of " +
                                           std::to_string(limits.max_message_bytes)};
  }
  // json-glib hands strings out as C strings: an escaped NUL would silently cut a name or a
  // target short ("a\u0000b" registering "a"), so it is refused like a raw one.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr || has_escaped_nul(text)) {
    return Error{ErrorCode::kMalformed, "message contains a NUL character"};
  }
  if (!depth_within(text, limits.max_depth)) {
    return Error{ErrorCode::kTooDeep,
                 "JSON nesting is deeper than " + std::to_string(limits.max_depth) + " levels"};
  }
  // One parser per thread, reused: creating a JsonParser per message costs more than
  // parsing a small message.
  thread_local GRef<JsonParser> parser = GRef<JsonParser>::adopt(json_parser_new());
  gwc::GErrorPtr err;
  if (!json_parser_load_from_data(parser.get(), text.data(), static_cast<gssize>(text.size()),
                                  gwc::out(err))) {
    return Error{ErrorCode::kMalformed,
                 std::string("not valid JSON: ") + (err ? err->message : "parse failed")};
  }
  JsonNode* root = json_parser_get_root(parser.get());
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root)) {
    return Error{ErrorCode::kMalformed, "message is not a JSON object"};
  }
  if (!numbers_finite(root)) return Error{ErrorCode::kMalformed, "number out of range"};
  return GRef<JsonObject>::ref(json_node_get_object(root));
}

bool member_is_null_or_absent(JsonObject* o, const char* member) {
  JsonNode* n = json_object_get_member(o, member);
  return n == nullptr || JSON_NODE_HOLDS_NULL(n);
}

std::optional<Error> check_signal_fields(std::string_view type, JsonObject* o) {
  auto wrong = [&](const char* what) {
    return Error{ErrorCode::kWrongType, std::string(type) + ": " + what};
  };
  if (json_object_has_member(o, "target") && !member_is_null_or_absent(o, "target") &&
      !string_member(o, "target")) {
    return wrong("`target` must be a string");
  }
  if (type == "video-offer" || type == "video-answer") {
    JsonNode* sdp = json_object_get_member(o, "sdp");
    if (sdp == nullptr || !JSON_NODE_HOLDS_OBJECT(sdp)) {
      return wrong("`sdp` must be an object {type, sdp}");
    }
    JsonObject* desc = json_node_get_object(sdp);
    if (!string_member(desc, "sdp")) return wrong("`sdp.sdp` must be a string");
    if (json_object_has_member(desc, "type") && !string_member(desc, "type")) {
      return wrong("`sdp.type` must be a string");
    }
  } else if (type == "new-ice-candidate") {
    JsonNode* cand = json_object_get_member(o, "candidate");
    if (cand == nullptr) return wrong("`candidate` is missing");
    if (JSON_NODE_HOLDS_OBJECT(cand)) {
      JsonObject* c = json_node_get_object(cand);
      if (!string_member(c, "candidate")) return wrong("`candidate.candidate` must be a string");
    } else if (!JSON_NODE_HOLDS_NULL(cand)) {
      return wrong("`candidate` must be an object or null");
    }
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kWrongType:
      return "wrong-type";
    case ErrorCode::kTooLarge:
      return "too-large";
    case ErrorCode::kTooDeep:
      return "too-deep";
    case ErrorCode::kBadName:
      return "bad-name";
    case ErrorCode::kUnregistered:
      return "unregistered";
    case ErrorCode::kUserUnavailable:
      return "user-unavailable";
    case ErrorCode::kNoTarget:
      return "no-target";
    case ErrorCode::kUnknownType:
      return "unknown-type";
    case ErrorCode::kRateLimited:
      return "rate-limited";
    case ErrorCode::kForbidden:
      return "forbidden";
  }
  return "unknown";
}

bool depth_within(std::string_view json, unsigned max_depth) {
  unsigned depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

std::optional<std::string> normalize_name(std::string_view raw, std::string* why) {
  auto refuse = [&](const char* reason) -> std::optional<std::string> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (raw.size() > kMaxNameChars * 4 + 64) return refuse("name is longer than 64 characters");
  if (!g_utf8_validate_len(raw.data(), raw.size(), nullptr)) return refuse("name is not UTF-8");
  gwc::GCharPtr nfc(g_utf8_normalize(raw.data(), static_cast<gssize>(raw.size()), G_NORMALIZE_NFC));
  if (!nfc) return refuse("name is not UTF-8");

  // Trim Unicode white space at both ends.
  const char* begin = nfc.get();
  const char* end = begin + std::strlen(begin);
  while (begin < end && g_unichar_isspace(g_utf8_get_char(begin))) begin = g_utf8_next_char(begin);
  while (end > begin) {
    const char* prev = g_utf8_find_prev_char(begin, end);
    if (prev == nullptr || !g_unichar_isspace(g_utf8_get_char(prev))) break;
    end = prev;
  }
  if (begin == end) return refuse("name is empty");

  std::size_t chars = 0;
  for (const char* p = begin; p < end; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (++chars > kMaxNameChars) return refuse("name is longer than 64 characters");
    switch (g_unichar_type(c)) {
      case G_UNICODE_CONTROL:
      case G_UNICODE_FORMAT:
      case G_UNICODE_LINE_SEPARATOR:
      case G_UNICODE_PARAGRAPH_SEPARATOR:
      case G_UNICODE_SURROGATE:
      case G_UNICODE_UNASSIGNED:
      case G_UNICODE_PRIVATE_USE:
        return refuse("name contains control or invisible characters");
      default:
        break;
    }
    if (c == '<' || c == '>' || c == '&' || c == '"' || c == '\'') {
      return refuse("name contains one of < > & \" '");
    }
  }
  return std::string(begin, end);
}

std::string strip_markup(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '<') {
      std::size_t close = text.find('>', i + 1);
      if (close != std::string_view::npos) {
        i = close;  // drop the whole tag
      }
      continue;  // a lone '<' is dropped too
    }
    if (c == '>') continue;
    out.push_back(c);
  }
  return out;
}

bool is_call_signal(std::string_view type) {
  return type == "video-offer" || type == "video-answer" || type == "new-ice-candidate" ||
         type == "hang-up";
}

ParseResult parse_client(std::string_view text, const Limits& limits) {
  auto parsed = parse_object(text, limits);
  if (auto* e = std::get_if<Error>(&parsed)) return std::move(*e);
  GRef<JsonObject> o = std::move(std::get<GRef<JsonObject>>(parsed));

  std::optional<std::string> type = string_member(o.get(), "type");
  if (!type || type->empty()) return Error{ErrorCode::kMalformed, "message has no string `type`"};

  if (*type == "username") {
    std::optional<std::string> name = string_member(o.get(), "name");
    if (!name) return Error{ErrorCode::kWrongType, "username: `name` must be a string"};
    Username u{std::move(*name), string_member(o.get(), "token")};
    return ClientMessage{std::move(u)};
  }
  if (*type == "message") {
    std::optional<std::string> chat_text = string_member(o.get(), "text");
    if (!chat_text) return Error{ErrorCode::kWrongType, "message: `text` must be a string"};
    Chat chat{std::move(*chat_text), {}};
    JsonNode* date = json_object_get_member(o.get(), "date");
    if (date && JSON_NODE_HOLDS_VALUE(date) &&
        (json_node_get_value_type(date) == G_TYPE_INT64 ||
         json_node_get_value_type(date) == G_TYPE_DOUBLE)) {
      chat.date = GRef<JsonNode>::adopt(json_node_copy(date));
    }
    return ClientMessage{std::move(chat)};
  }
  if (is_server_only_type(*type)) {
    return Error{ErrorCode::kUnknownType, "`" + *type + "` messages are sent by the server only"};
  }
  if (auto e = check_signal_fields(*type, o.get())) return std::move(*e);

  Signal s{std::move(*type), string_member(o.get(), "target"), std::move(o)};
  if (!s.target) s.target = string_member(s.object.get(), "targetUsername");
  return ClientMessage{std::move(s)};
}

std::string make_id(std::uint64_t id) {
  GRef<JsonObject> o = new_typed_object("id");
  json_object_set_int_member(o.get(), "id", static_cast<gint64>(id));
  return generate_object(o.get());
}

std::string make_reject_username(std::uint64_t id, std::string_view name) {
  GRef<JsonObject> o = new_typed_object("rejectusername");
  json_object_set_int_member(o.get(), "id", static_cast<gint64>(id));
  set_string(o.get(), "name", name);
  return generate_object(o.get());
}

std::string make_userlist(const std::vector<std::string>& users) {
  GRef<JsonObject> o = new_typed_object("userlist");
  JsonArray* a = json_array_sized_new(static_cast<guint>(users.size()));
  for (const std::string& u : users) json_array_add_string_element(a, u.c_str());
  json_object_set_array_member(o.get(), "users", a);
  return generate_object(o.get());
}

std::string make_chat(std::string_view name, std::string_view text, JsonNode* date) {
  GRef<JsonObject> o = new_typed_object("message");
  set_string(o.get(), "name", name);
  set_string(o.get(), "text", text);
  if (date) {
    json_object_set_member(o.get(), "date", json_node_copy(date));
  } else {
    json_object_set_int_member(o.get(), "date", g_get_real_time() / 1000);
  }
  return generate_object(o.get());
}

std::string make_hang_up(std::string_view name, std::string_view target, std::string_view reason) {
  GRef<JsonObject> o = new_typed_object("hang-up");
  set_string(o.get(), "name", name);
  set_string(o.get(), "target", target);
  set_string(o.get(), "reason", reason);
  return generate_object(o.get());
}

std::string make_error(ErrorCode code, std::string_view message) {
  GRef<JsonObject> o = new_typed_object("error");
  json_object_set_string_member(o.get(), "code", to_string(code));
  set_string(o.get(), "message", message);
  return generate_object(o.get());
}

std::optional<std::string> stamp_name(JsonObject* object, std::string_view name) {
  set_string(object, "name", name);
  std::string text = generate_object(object);
  // json-glib turns an escaped lone surrogate ("\ud800") into bytes that are not UTF-8.
  if (!g_utf8_validate_len(text.data(), text.size(), nullptr)) return std::nullopt;
  return text;
}

std::string to_text(JsonObject* object) {
  return generate_object(object);
}
std::string to_text(JsonNode* node) {
  return generate(node);
}

std::variant<ServerMessage, Error> parse_server(std::string_view text, const Limits& limits) {
  auto parsed = parse_object(text, limits);
  if (auto* e = std::get_if<Error>(&parsed)) return std::move(*e);
  GRef<JsonObject> o = std::move(std::get<GRef<JsonObject>>(parsed));
  std::optional<std::string> type = string_member(o.get(), "type");
  if (!type) return Error{ErrorCode::kMalformed, "message has no string `type`"};

  auto wrong = [&](const char* what) { return Error{ErrorCode::kWrongType, *type + ": " + what}; };
  if (*type == "id") {
    JsonNode* id = json_object_get_member(o.get(), "id");
    if (!id || !JSON_NODE_HOLDS_VALUE(id)) return wrong("`id` must be a number");
    // The sample server sends Date.now() based ids; accept integers and doubles.
    GType t = json_node_get_value_type(id);
    if (t == G_TYPE_INT64 && json_node_get_int(id) >= 0)
      return ServerMessage{IdMsg{static_cast<std::uint64_t>(json_node_get_int(id))}};
    // Converting a double outside [0, 2^64) is undefined behaviour: such an id is refused.
    if (t == G_TYPE_DOUBLE && json_node_get_double(id) >= 0 &&
        json_node_get_double(id) < 18446744073709551616.0) {
      return ServerMessage{IdMsg{static_cast<std::uint64_t>(json_node_get_double(id))}};
    }
    return wrong("`id` must be a number");
  }
  if (*type == "rejectusername") {
    auto name = string_member(o.get(), "name");
    if (!name) return wrong("`name` must be a string");
    return ServerMessage{RejectUsernameMsg{std::move(*name)}};
  }
  if (*type == "userlist") {
    JsonNode* users = json_object_get_member(o.get(), "users");
    if (!users || !JSON_NODE_HOLDS_ARRAY(users)) return wrong("`users` must be an array");
    UserListMsg list;
    JsonArray* a = json_node_get_array(users);
    for (guint i = 0; i < json_array_get_length(a); ++i) {
      JsonNode* n = json_array_get_element(a, i);
      if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
        list.users.emplace_back(json_node_get_string(n));
      }
    }
    return ServerMessage{std::move(list)};
  }
  if (*type == "message") {
    return ServerMessage{ChatMsg{string_member(o.get(), "name").value_or(""),
                                 string_member(o.get(), "text").value_or("")}};
  }
  if (*type == "error") {
    return ServerMessage{ErrorMsg{string_member(o.get(), "code").value_or(""),
                                  string_member(o.get(), "message").value_or("")}};
  }
  std::string name = string_member(o.get(), "name").value_or("");
  return ServerMessage{RelayedMsg{std::move(*type), std::move(name), std::move(o)}};
}

std::optional<std::string> string_member(JsonObject* o, const char* member) {
  JsonNode* n = json_object_get_member(o, member);
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    return std::nullopt;
  }
  return std::string(json_node_get_string(n));
}

std::optional<std::int64_t> int_member(JsonObject* o, const char* member) {
  JsonNode* n = json_object_get_member(o, member);
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE(n)) return std::nullopt;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) return json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) {
    // Browsers serialize integers as plain numbers; only whole values in range count.
    double d = json_node_get_double(n);
    if (d >= -9.0e15 && d <= 9.0e15 && d == static_cast<double>(static_cast<std::int64_t>(d))) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

}  // namespace signaling::protocol
