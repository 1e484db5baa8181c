// Fuzzing the protocol parser (signaling/protocol.h): bytes to message.
//
// Each input is one message text, read both as a client message (the server's side) and as a
// server message (the element's side). Neither may crash, and what they accept must hold:
//  - a client message the parser accepts is within the size and nesting limits;
//  - a refusal for size comes exactly when the text is over the limit, and for depth only
//    when it is (a NUL is refused before the depth is looked at);
//  - a name normalize_name() accepts is at most 64 characters, and normalizing it again
//    leaves it as it is;
//  - a chat text is relayed with no markup left, and reads back as the same chat;
//  - a signaling message stamped with a name reads back (as a server message and again as a
//    client message) with that name, its type and its target; a type the server alone sends
//    is never accepted from a client.
#include <glib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol.h"

namespace {

namespace protocol = signaling::protocol;

std::string_view g_input;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes): %.*s\n", what, g_input.size(),
               static_cast<int>(g_input.size() < 4096 ? g_input.size() : 4096), g_input.data());
  std::abort();
}

bool server_only(std::string_view type) {
  return type == "id" || type == "userlist" || type == "rejectusername" || type == "error";
}

void check_client(std::string_view text, const protocol::Limits& limits) {
  const bool too_large = text.size() > limits.max_message_bytes;
  auto parsed = protocol::parse_client(text, limits);
  if (auto* err = std::get_if<protocol::Error>(&parsed)) {
    check((err->code == protocol::ErrorCode::kTooLarge) == too_large,
          "refused as too large exactly when it is");
    const bool deep = !protocol::depth_within(text, limits.max_depth);
    if (err->code == protocol::ErrorCode::kTooDeep)
      check(deep, "refused as too deep when it is not");
    // A NUL character is refused before the depth is looked at (kMalformed).
    if (deep && !too_large) {
      check(err->code == protocol::ErrorCode::kTooDeep ||
                err->code == protocol::ErrorCode::kMalformed,
            "too deep, and refused for another reason");
    }
    return;
  }
  check(!too_large, "a message over the size limit accepted");
  check(protocol::depth_within(text, limits.max_depth), "a message over the depth limit accepted");
  auto& msg = std::get<protocol::ClientMessage>(parsed);

  if (auto* u = std::get_if<protocol::Username>(&msg)) {
    std::string why;
    if (auto name = protocol::normalize_name(u->name, &why)) {
      check(g_utf8_strlen(name->c_str(), static_cast<gssize>(name->size())) <=
                static_cast<glong>(protocol::kMaxNameChars),
            "a name over 64 characters accepted");
      auto again = protocol::normalize_name(*name, &why);
      check(again && *again == *name, "normalizing a name twice changes it");
      check(name->find_first_of("<>&\"'") == std::string::npos, "a name with markup accepted");
    }
    return;
  }
  if (auto* chat = std::get_if<protocol::Chat>(&msg)) {
    const std::string clean = protocol::strip_markup(chat->text);
    check(clean.find_first_of("<>") == std::string::npos, "markup left in a chat text");
    const std::string out = protocol::make_chat("alice", clean, chat->date.get());
    auto back = protocol::parse_server(out, {});
    auto* m = std::get_if<protocol::ServerMessage>(&back);
    check(m != nullptr, "a relayed chat message does not parse");
    auto* c = std::get_if<protocol::ChatMsg>(m);
    // Text that is not UTF-8 (json-glib's reading of an escaped lone surrogate) is repaired.
    std::string expected = clean;
    if (!g_utf8_validate(clean.data(), static_cast<gssize>(clean.size()), nullptr)) {
      gchar* valid = g_utf8_make_valid(clean.data(), static_cast<gssize>(clean.size()));
      expected = valid;
      g_free(valid);
    }
    check(c && c->name == "alice" && c->text == expected, "a relayed chat message reads otherwise");
    return;
  }
  auto& sig = std::get<protocol::Signal>(msg);
  check(!sig.type.empty() && !server_only(sig.type), "a server-only type accepted from a client");
  std::optional<std::string> stamped = protocol::stamp_name(sig.object.get(), "alice");
  if (!stamped) return;  // invalid Unicode: refused by the router
  check(g_utf8_validate(stamped->data(), static_cast<gssize>(stamped->size()), nullptr),
        "a stamped message is not UTF-8");
  auto back = protocol::parse_server(*stamped, {});
  auto* m = std::get_if<protocol::ServerMessage>(&back);
  check(m != nullptr, "a stamped message does not parse as a server message");
  auto* r = std::get_if<protocol::RelayedMsg>(m);
  check(r && r->type == sig.type && r->name == "alice", "a stamped message reads otherwise");
  // Relayed again (a client that forwards what it got): the same type and target.
  protocol::Limits unlimited{.max_message_bytes = stamped->size() + 1, .max_depth = 1000};
  auto again = protocol::parse_client(*stamped, unlimited);
  auto* am = std::get_if<protocol::ClientMessage>(&again);
  check(am != nullptr, "a stamped message does not parse as a client message");
  auto* as = std::get_if<protocol::Signal>(am);
  check(as && as->type == sig.type && as->target == sig.target,
        "a stamped message loses its type or target");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  g_input = text;
  check_client(text, protocol::Limits{});
  check_client(text, protocol::Limits{.max_message_bytes = 512, .max_depth = 4});
  (void)protocol::parse_server(text, {});
  return 0;
}
