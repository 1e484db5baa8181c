// A raw protocol client for the element tests: it registers a name and records what the
// server sends it. Header-only; used by call_test.cpp, hostile_test.cpp and
// renegotiation_test.cpp and codec_test.cpp (which drive a bare webrtcbin through it, bare-peer.h).
#pragma once

#include <glib.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "protocol.h"

namespace test {

// A raw protocol client on the default main context, for what an element would never send
// (bad SDPs, floods, spoofed messages).
class RawClient {
 public:
  RawClient(const std::string& url, const std::string& name) : name_(name) {
    client_ = std::make_unique<signaling::Client>(
        signaling::ClientOptions{.uri = url},
        signaling::ClientCallbacks{
            .on_open = {},
            .on_text =
                [this](std::string_view text) {
                  auto r = signaling::protocol::parse_server(text, {});
                  auto* m = std::get_if<signaling::protocol::ServerMessage>(&r);
                  if (!m) return;
                  if (auto* id = std::get_if<signaling::protocol::IdMsg>(m)) {
                    client_->send(R"({"type":"username","name":")" + name_ + R"(","id":)" +
                                  std::to_string(id->id) + "}");
                  } else if (auto* list = std::get_if<signaling::protocol::UserListMsg>(m)) {
                    users = list->users;
                  } else if (auto* rel = std::get_if<signaling::protocol::RelayedMsg>(m)) {
                    types.push_back(rel->type);
                    if (on_relayed) on_relayed(*rel);
                    if (rel->type == "hang-up") {
                      JsonNode* reason = json_object_get_member(rel->object.get(), "reason");
                      hang_ups.push_back(reason && JSON_NODE_HOLDS_VALUE(reason) &&
                                                 json_node_get_value_type(reason) == G_TYPE_STRING
                                             ? json_node_get_string(reason)
                                             : "");
                    }
                  } else if (auto* err = std::get_if<signaling::protocol::ErrorMsg>(m)) {
                    errors.push_back(err->code);
                  }
                },
            .on_closed = [this](unsigned short, const std::string&) { closed = true; }});
    client_->connect();
  }
  // Iterates the default main context (our sends and receives) until `pred` or the timeout.
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      while (g_main_context_iteration(nullptr, FALSE)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return pred();
  }
  void pump(int ms) {
    run_until([] { return false; }, ms);
  }
  void send(const std::string& text) { client_->send(text); }
  bool registered_with(const std::string& user) {
    return run_until([&] { return std::find(users.begin(), users.end(), user) != users.end(); });
  }

  // What the server sent: the latest user list, the types of relayed messages, the reasons of
  // relayed hang-ups and the codes of errors, in order.
  std::vector<std::string> users, types, hang_ups, errors;
  bool closed = false;
  // Called with every relayed message (offers, answers, candidates), on the default context.
  std::function<void(const signaling::protocol::RelayedMsg&)> on_relayed;

 private:
  std::string name_;
  std::unique_ptr<signaling::Client> client_;
};

}  // namespace test
