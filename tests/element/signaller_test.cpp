// The default signaller against a permissive server: MDN's sample server relays whatever a
// client sends, so every member of a relayed message may hold any JSON type. This test plays
// that server (libsoup, in process, on loopback) and sends the element such messages; json-glib
// criticals are fatal here, as under G_DEBUG=fatal-criticals.
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <string>
#include <vector>

#include "bare-peer.h"
#include "peer.h"

namespace {

class PermissiveServer {
 public:
  PermissiveServer() {
    server_ = soup_server_new(nullptr, nullptr);
    soup_server_add_websocket_handler(
        server_, nullptr, nullptr, nullptr,
        +[](SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection* ws,
            gpointer data) {
          auto* self = static_cast<PermissiveServer*>(data);
          self->ws_ = SOUP_WEBSOCKET_CONNECTION(g_object_ref(ws));
          g_signal_connect(
              ws, "message",
              G_CALLBACK(+[](SoupWebsocketConnection*, gint, GBytes* bytes, gpointer d) {
                gsize n = 0;
                const char* p = static_cast<const char*>(g_bytes_get_data(bytes, &n));
                auto* me = static_cast<PermissiveServer*>(d);
                me->received_.emplace_back(p, n);
                if (me->on_message) me->on_message(me->received_.back());
              }),
              self);
          soup_websocket_connection_send_text(ws, R"({"type":"id","id":1})");
        },
        this, nullptr);
    GError* error = nullptr;
    GInetAddress* lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress* addr = g_inet_socket_address_new(lo, 0);
    soup_server_listen(server_, addr, static_cast<SoupServerListenOptions>(0), &error);
    g_object_unref(addr);
    g_object_unref(lo);
    if (error) {
      ADD_FAILURE() << error->message;
      g_error_free(error);
      return;
    }
    GSList* uris = soup_server_get_uris(server_);
    if (uris) {
      url_ =
          "ws://127.0.0.1:" + std::to_string(g_uri_get_port(static_cast<GUri*>(uris->data))) + "/";
    }
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  }
  ~PermissiveServer() {
    if (ws_) g_object_unref(ws_);
    soup_server_disconnect(server_);
    g_object_unref(server_);
  }
  const std::string& url() const { return url_; }
  // Called with every message the element sends, on the default main context.
  std::function<void(const std::string&)> on_message;
  void send(const std::string& text) { soup_websocket_connection_send_text(ws_, text.c_str()); }
  bool connected() const { return ws_ != nullptr; }
  bool received(const std::string& part) const {
    for (const std::string& m : received_) {
      if (m.find(part) != std::string::npos) return true;
    }
    return false;
  }
  // Runs the default main context (this server's) until `pred` or the timeout.
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 10000) {
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000;
    while (!pred() && g_get_monotonic_time() < deadline) {
      g_main_context_iteration(nullptr, FALSE);
      g_usleep(2000);
    }
    return pred();
  }

 private:
  SoupServer* server_ = nullptr;
  SoupWebsocketConnection* ws_ = nullptr;
  std::vector<std::string> received_;
  std::string url_;
};

}  // namespace

TEST(PermissiveServer, MembersOfAnyJsonTypeAreRefusedWithoutACritical) {
  GLogLevelFlags old =
      g_log_set_always_fatal(static_cast<GLogLevelFlags>(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR));
  PermissiveServer server;
  ASSERT_FALSE(server.url().empty());
  test::Peer bob("bob", server.url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(server.run_until([&] { return server.received(R"("type":"username")"); }));
  server.send(R"({"type":"userlist","users":["bob","mallory"]})");
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}, 5000));

  // Candidates, a hang-up and an offer whose members hold arrays, objects and wrong types,
  // each relayed as MDN's server would (with the sender's name, or none).
  const char* hostile[] = {
      R"({"type":"new-ice-candidate","name":"mallory","target":"bob",)"
      R"("candidate":{"candidate":["x"],"sdpMid":{},"sdpMLineIndex":[]}})",
      R"({"type":"new-ice-candidate","name":"mallory","target":"bob","candidate":)"
      R"({"candidate":"candidate:1 1 udp 1 10.77.0.9 9 typ host","sdpMid":[1],)"
      R"("sdpMLineIndex":"0"}})",
      R"({"type":"new-ice-candidate","name":"mallory","candidate":{"candidate":{},)"
      R"("sdpMLineIndex":1e300}})",
      R"({"type":"hang-up","name":"mallory","target":"bob","reason":{"a":1}})",
      R"({"type":"hang-up","name":["mallory"],"target":"bob"})",
      R"({"type":"video-answer","name":"mallory","target":"bob","sdp":{"sdp":{"x":1}}})",
      R"({"type":"video-offer","name":"mallory","target":"bob","sdp":{"type":"offer",)"
      R"("sdp":["v=0"]}})",
  };
  for (const char* m : hostile) server.send(m);
  // The offer with an unusable description is refused with a reason the sender can read.
  ASSERT_TRUE(server.run_until([&] { return server.received(R"("reason":"invalid-sdp")"); }));
  EXPECT_TRUE(server.received(R"("target":"mallory")"));
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "mallory"}}, 5000);
  ASSERT_TRUE(ended);

  // Still working: a new user list reaches the application.
  server.send(R"({"type":"userlist","users":["bob","carol"]})");
  EXPECT_TRUE(bob.wait_until([&] {
    return bob.has_message("webrtccall-users", {}) && [&] {
      gchar** users = nullptr;
      g_object_get(bob.element(), "users", &users, nullptr);
      bool carol = users && g_strv_contains(users, "carol");
      g_strfreev(users);
      return carol;
    }();
  }));
  EXPECT_TRUE(bob.errors().empty());
  g_log_set_always_fatal(old);
}

// MDN's sample server stamps no sender name, and its client sends none with candidates: such
// candidates belong to the only call in negotiation. Here the remote (a bare webrtcbin) gets
// none of the element's candidates, so the call connects only if the element takes the
// remote's (without them neither side has a candidate of the other).
TEST(PermissiveServer, CandidatesWithoutASenderNameReachTheOnlyCallInNegotiation) {
  PermissiveServer server;
  ASSERT_FALSE(server.url().empty());
  test::Peer bob("bob", server.url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(server.run_until([&] { return server.received(R"("type":"username")"); }));
  server.send(R"({"type":"userlist","users":["bob","mdn"]})");
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}, 5000));

  test::BarePeer mdn("mdn", [&](const std::string& text) { server.send(text); });
  mdn.name_on_candidates = false;
  mdn.ignore_remote_candidates = true;
  struct Unhook {
    PermissiveServer& s;
    ~Unhook() { s.on_message = nullptr; }
  } unhook{server};
  server.on_message = [&](const std::string& text) {
    JsonParser* parser = json_parser_new();
    if (json_parser_load_from_data(parser, text.c_str(), -1, nullptr) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
      mdn.handle(json_node_get_object(json_parser_get_root(parser)));
    }
    g_object_unref(parser);
  };
  mdn.call("bob");
  ASSERT_TRUE(server.run_until([&] { return mdn.answers_received == 1; }));
  EXPECT_TRUE(server.run_until(
      [&] {
        return bob.has_message("webrtccall-call-connected", {{"peer", "mdn"}});
      },
      15000))
      << "the element dropped the candidates without a sender name";
  EXPECT_TRUE(server.run_until([&] { return mdn.video_frames >= 10; }));
  EXPECT_FALSE(bob.has_message("webrtccall-call-ended", {}));
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
