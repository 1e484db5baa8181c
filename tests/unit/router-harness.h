// The router test harness: feed the router connection events and messages, read the effects
// (shared by router_test.cpp and router_untargeted_test.cpp).
#pragma once

#include <string>
#include <vector>

#include "router.h"

namespace router_test {

using signaling::ConnId;
using signaling::Effects;
using signaling::Router;
using signaling::RouterConfig;
namespace protocol = signaling::protocol;
using protocol::ErrorCode;

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

inline std::string type_of(const protocol::ServerMessage& m) {
  if (std::holds_alternative<protocol::IdMsg>(m)) return "id";
  if (std::holds_alternative<protocol::RejectUsernameMsg>(m)) return "rejectusername";
  if (std::holds_alternative<protocol::UserListMsg>(m)) return "userlist";
  if (std::holds_alternative<protocol::ChatMsg>(m)) return "message";
  if (std::holds_alternative<protocol::ErrorMsg>(m)) return "error";
  return std::get<protocol::RelayedMsg>(m).type;
}

// Messages sent to `to`, parsed.
inline std::vector<Msg> to(const Effects& fx, ConnId id) {
  std::vector<Msg> out;
  for (const auto& s : fx.sends) {
    if (s.to != id) continue;
    auto r = protocol::parse_server(*s.text, {});
    auto& m = std::get<protocol::ServerMessage>(r);
    out.push_back({type_of(m), m, *s.text});
  }
  return out;
}

inline std::string error_code(const Effects& fx, ConnId id) {
  for (auto& m : to(fx, id)) {
    if (m.type == "error") return std::get<protocol::ErrorMsg>(m.parsed).code;
  }
  return "";
}

inline const protocol::RelayedMsg& relayed(const Msg& m) {
  return std::get<protocol::RelayedMsg>(m.parsed);
}

inline const char* kOffer =
    R"({"type":"video-offer","name":"x","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}})";

}  // namespace router_test
