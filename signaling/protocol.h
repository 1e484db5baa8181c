// The signaling protocol: JSON text <-> typed messages, validation and limits.
//
// Pure: no I/O, no global state. Both the server (router) and clients (the element, tests)
// use it. The protocol itself is described in PROTOCOL.md: MDN's webrtc-from-chat username
// protocol plus safety rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gref.h"

namespace signaling::protocol {

// Why a message was refused. The string form (to_string) is the `code` of the `error`
// message and the `reason` label of the server's refusal metrics.
enum class ErrorCode {
  kMalformed,        // not JSON, not an object, no string `type`
  kWrongType,        // a field has the wrong JSON type (e.g. `sdp` is a number)
  kTooLarge,         // message over the size limit
  kTooDeep,          // JSON nesting over the depth limit
  kBadName,          // `username` with a refused name
  kUnregistered,     // anything but `username` before registering
  kUserUnavailable,  // `target` names no registered user
  kNoTarget,         // signaling message without target and without a call partner
  kUnknownType,      // an untargeted message of a type the server does not handle
  kRateLimited,      // over the per-connection message rate
  kForbidden,        // token missing or wrong
};
inline constexpr int kErrorCodeCount = static_cast<int>(ErrorCode::kForbidden) + 1;
const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
};

struct Limits {
  std::size_t max_message_bytes = 256 * 1024;
  unsigned max_depth = 32;
};

// Returns true when `json` nests objects/arrays at most `max_depth` deep. Scans the text
// without parsing it (json-glib has no nesting limit and recurses), so it is safe on hostile
// input of any depth. Brackets inside strings are ignored.
bool depth_within(std::string_view json, unsigned max_depth);

// Names: trimmed; 1 to 64 characters; valid UTF-8; no control or invisible formatting
// characters (bidi overrides, zero-width); none of <>&"'. Returns the trimmed name, or
// sets `why`.
inline constexpr std::size_t kMaxNameChars = 64;
std::optional<std::string> normalize_name(std::string_view raw, std::string* why);

// Removes markup from chat text: tags `<...>` and any lone angle bracket.
std::string strip_markup(std::string_view text);

// ---- Client to server ----

// `username`: register or rename.
struct Username {
  std::string name;  // as sent; validate with normalize_name()
  std::optional<std::string> token;
};

// `message`: public chat.
struct Chat {
  std::string text;
  gwc::GRef<JsonNode> date;  // the client's `date` if it is a number, else null
};

// Everything else: signaling (`video-offer`, `video-answer`, `new-ice-candidate`,
// `hang-up`) and application messages. Relayed as sent, `name` stamped by the server.
struct Signal {
  std::string type;
  // The recipient named by `target` (or the legacy `targetUsername`); nullopt when absent,
  // null or not a string.
  std::optional<std::string> target;
  gwc::GRef<JsonObject> object;  // the whole message, for relaying
};

bool is_call_signal(std::string_view type);  // offer, answer, candidate, hang-up

using ClientMessage = std::variant<Username, Chat, Signal>;
using ParseResult = std::variant<ClientMessage, Error>;

// Parses and validates one client message. Checks size and depth before json-glib sees
// the text.
ParseResult parse_client(std::string_view text, const Limits& limits);

// ---- Server to client (serialized JSON text) ----
std::string make_id(std::uint64_t id);
std::string make_reject_username(std::uint64_t id, std::string_view name);
std::string make_userlist(const std::vector<std::string>& users);
std::string make_chat(std::string_view name, std::string_view text, JsonNode* date);
std::string make_hang_up(std::string_view name, std::string_view target, std::string_view reason);
std::string make_error(ErrorCode code, std::string_view message);
// Serializes a relayed message with `name` overwritten by the sender's registered name.
// nullopt when the message holds text that is not Unicode (escaped lone surrogates).
std::optional<std::string> stamp_name(JsonObject* object, std::string_view name);

// ---- Server to client, parsed (used by clients: the element, tests) ----
struct IdMsg {
  std::uint64_t id;
};
struct RejectUsernameMsg {
  std::string name;
};
struct UserListMsg {
  std::vector<std::string> users;
};
struct ChatMsg {
  std::string name, text;
};
struct ErrorMsg {
  std::string code, message;
};
// Relayed messages (offer, answer, candidate, hang-up, application types).
struct RelayedMsg {
  std::string type;
  std::string name;  // who sent it (stamped by the server; may be empty for other servers)
  gwc::GRef<JsonObject> object;
};
using ServerMessage =
    std::variant<IdMsg, RejectUsernameMsg, UserListMsg, ChatMsg, ErrorMsg, RelayedMsg>;
std::variant<ServerMessage, Error> parse_server(std::string_view text, const Limits& limits);

// Typed reads of a member of a message's object, for clients reading relayed messages:
// nullopt when the member is absent or holds another JSON type (an array, an object, a
// string where a number belongs), never a json-glib critical.
std::optional<std::string> string_member(JsonObject* object, const char* member);
std::optional<std::int64_t> int_member(JsonObject* object, const char* member);

// Serializes a JSON object built by a client (offers, answers, ...) to compact text.
std::string to_text(JsonObject* object);
std::string to_text(JsonNode* node);

}  // namespace signaling::protocol
