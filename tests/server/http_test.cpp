// The HTTP side: /healthz, /metrics, the web client's files (and no path traversal), the
// WebSocket handshake (subprotocol `json`, endpoints / and /ws) and the Origin allow-list.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <tuple>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

using Http = ServerTest;

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST_F(Http, HealthzAnswersOk) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  HttpResponse r = HttpGet(port(), "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Trimmed(r.body), "ok");
  EXPECT_TRUE(r.Header("content-type").starts_with("text/plain")) << r.Header("content-type");
}

TEST_F(Http, MetricsMatchWhatHappened) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  // One message relayed...
  ASSERT_TRUE(alice->SendText(AppMsg("bob", "one")));
  ASSERT_TRUE(bob->ReadUntil([](const Json& m) { return m.type() == "app"; }));
  // ... and two refused as malformed (each answered, so the server has counted them).
  for (const char* garbage : {"{oops", "[]"}) {
    ASSERT_TRUE(alice->SendText(garbage));
    ASSERT_TRUE(alice->ReadUntil([](const Json& m) { return IsError(m, "malformed"); }));
  }
  // ... one refused as unregistered, from a connection that is open but not registered.
  std::unique_ptr<WsClient> lurker = WsClient::Connect(port());
  ASSERT_TRUE(lurker && lurker->Read());
  ASSERT_TRUE(lurker->SendText(AppMsg("bob", "sneak")));
  ASSERT_TRUE(lurker->ReadUntil([](const Json& m) { return IsError(m, "unregistered"); }));
  // ... and two connections closed for breaking WebSocket rules: text that is not UTF-8
  // (1007), a continuation frame with no message to continue (1002).
  for (auto [opcode, payload, code] :
       {std::tuple{kText, "\xc3\x28", 1007}, std::tuple{kContinuation, "orphan", 1002}}) {
    std::unique_ptr<WsClient> rogue = WsClient::Connect(port());
    ASSERT_TRUE(rogue && rogue->Read());
    ASSERT_TRUE(rogue->SendFrame(opcode, payload));
    ASSERT_TRUE(rogue->WaitClosed());
    EXPECT_EQ(rogue->close_code(), code) << rogue->close_reason();
  }

  HttpResponse r = HttpGet(port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.Header("content-type").starts_with("text/plain")) << r.Header("content-type");
  const std::string& t = r.body;
  EXPECT_NE(t.find("# TYPE webrtc_call_connections gauge\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# TYPE webrtc_call_messages_relayed_total counter\n"), std::string::npos);
  EXPECT_EQ(server_.Metric("webrtc_call_connections"), 3) << t;
  EXPECT_EQ(server_.Metric("webrtc_call_registered_users"), 2) << t;
  EXPECT_EQ(server_.Metric("webrtc_call_messages_relayed_total"), 1) << t;
  EXPECT_EQ(server_.Metric(R"(webrtc_call_messages_refused_total{reason="malformed"})"), 2) << t;
  EXPECT_EQ(server_.Metric(R"(webrtc_call_messages_refused_total{reason="unregistered"})"), 1) << t;
  EXPECT_EQ(server_.Metric(R"(webrtc_call_messages_refused_total{reason="too-large"})"), 0) << t;
  EXPECT_EQ(server_.Metric("webrtc_call_connections_total"), 5) << t;
  EXPECT_EQ(server_.Metric("webrtc_call_websocket_errors_total"), 2) << t;
  // Every sample line is `name[{labels}] value`.
  std::size_t pos = 0;
  while (pos < t.size()) {
    std::size_t eol = t.find('\n', pos);
    std::string line = t.substr(pos, eol - pos);
    pos = eol == std::string::npos ? t.size() : eol + 1;
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(line.starts_with("webrtc_call_")) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos) << line;
  }

  // bob leaves: the gauges follow.
  bob.reset();
  ASSERT_TRUE(
      alice->ReadUntil([](const Json& m) { return IsUserlistWith(m, {"alice"}, {"bob"}); }));
  EXPECT_EQ(server_.Metric("webrtc_call_registered_users"), 1);
  EXPECT_EQ(server_.Metric("webrtc_call_connections"), 2);
}

class StaticFiles : public ServerTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    web_ = dir_.path() + "/web";
    ASSERT_EQ(mkdir(web_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((web_ + "/sub").c_str(), 0755), 0);
    dir_.Write("web/index.html", kIndex);
    dir_.Write("web/sub/page.txt", "a page in a folder\n");
    dir_.Write("secret.txt", kSecret);
    ASSERT_EQ(symlink("../secret.txt", (web_ + "/escape.txt").c_str()), 0);
    ASSERT_NO_FATAL_FAILURE(StartServer({"--web-root", web_}));
  }

  static constexpr const char* kIndex = "<!doctype html><title>test page</title><p>hello</p>\n";
  static constexpr const char* kSecret = "TOP-SECRET-OUTSIDE-THE-WEB-ROOT\n";
  TempDir dir_;
  std::string web_;
};

TEST_F(StaticFiles, ServesIndexHtmlFromTheWebRoot) {
  for (const char* path : {"/", "/index.html"}) {
    SCOPED_TRACE(path);
    HttpResponse r = HttpGet(port(), path);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, kIndex);
    EXPECT_TRUE(r.Header("content-type").starts_with("text/html")) << r.Header("content-type");
  }
  HttpResponse r = HttpGet(port(), "/sub/page.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "a page in a folder\n");
  EXPECT_EQ(HttpGet(port(), "/missing.html").status, 404);
}

TEST_F(StaticFiles, PathTraversalIsRefused) {
  const std::vector<std::string> attacks = {
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E/secret.txt",
      "/..%2fsecret.txt",
      "/%2e%2e%2fsecret.txt",
      "/sub/../../secret.txt",
      "/sub/%2e%2e/%2e%2e/secret.txt",
      "/sub/..%2f..%2fsecret.txt",
      "/..\\secret.txt",
      "/..%5csecret.txt",
      "/escape.txt",  // a symlink out of the web root
      "/../../../../../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "//etc/passwd",
      "/%2fetc/passwd",
      "/./../secret.txt",
  };
  for (const std::string& path : attacks) {
    SCOPED_TRACE(path);
    HttpResponse r = HttpGet(port(), path);
    std::printf("GET %-55s -> %d\n", path.c_str(), r.status);
    EXPECT_TRUE(r.status == 400 || r.status == 403 || r.status == 404)
        << "status " << r.status << ": " << r.body.substr(0, 200);
    EXPECT_EQ(r.body.find("TOP-SECRET"), std::string::npos) << "served the file outside the root";
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << "served /etc/passwd";
  }
  // "/.." is "/" once dot segments are removed (RFC 3986 5.2.4): the root, never above it.
  for (const char* path : {"/..", "/%2e%2e", "/sub/../.."}) {
    SCOPED_TRACE(path);
    HttpResponse r = HttpGet(port(), path);
    std::printf("GET %-55s -> %d\n", path, r.status);
    EXPECT_TRUE(r.status == 404 || r.status == 403 || r.status == 400 ||
                (r.status == 200 && r.body == kIndex))
        << "status " << r.status << ": " << r.body.substr(0, 200);
  }
  EXPECT_TRUE(ServerAlive());
}

// ---- The WebSocket handshake ----

TEST_F(Http, JsonSubprotocolIsSelectedWhenOffered) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.protocols = {"json"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status(), 101);
  EXPECT_EQ(c->protocol(), "json");
  c = WsClient::Connect(port(), {.protocols = {"chat", "json"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status(), 101);
  EXPECT_EQ(c->protocol(), "json");
}

TEST_F(Http, HandshakeWithoutSubprotocolIsAccepted) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.protocols = {}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status(), 101);
  EXPECT_EQ(c->protocol(), "") << "a subprotocol was selected although none was offered";
  std::unique_ptr<WsClient> full = Join(port(), "plain", {.protocols = {}});
  ASSERT_TRUE(full) << "a client offering no subprotocol cannot register";
}

TEST_F(Http, OnlyAnotherSubprotocolIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.protocols = {"chat"}});
  ASSERT_TRUE(c);
  std::printf("offering only `chat`: HTTP %d %s\n", c->status(), c->handshake().body.c_str());
  EXPECT_EQ(c->status(), 400);
  EXPECT_EQ(c->protocol(), "");
  EXPECT_TRUE(ServerAlive());
}

TEST_F(Http, WebSocketEndpointsAreRootAndWs) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> a = Join(port(), "at-root", {.path = "/"});
  std::unique_ptr<WsClient> b = Join(port(), "at-ws", {.path = "/ws"});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->SendText(AppMsg("at-ws", "across")));
  ASSERT_TRUE(b->ReadUntil([](const Json& m) { return m.Str("seq") == "across"; }));
  for (const char* path : {"/other", "/ws/x", "/healthz"}) {
    std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.path = path});
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status(), 404) << path;
  }
}

TEST_F(Http, OriginAllowList) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--allowed-origin", "https://good.example"}));
  struct Case {
    const char* origin;
    int status;
  };
  const std::vector<Case> cases = {
      {"https://evil.example", 403}, {"https://good.example.evil.example", 403},
      {"http://good.example", 403},  {"null", 403},
      {"https://good.example", 101}, {"", 101},  // no Origin: not a browser page, allowed
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.origin);
    std::unique_ptr<WsClient> c = WsClient::Connect(port(), {.origin = k.origin});
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status(), k.status) << c->handshake().body;
  }
  // An allowed page works end to end; the refused one never got a connection at all.
  std::unique_ptr<WsClient> ok = Join(port(), "good", {.origin = "https://good.example"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(server_.Metric(R"(webrtc_call_handshakes_refused_total{reason="origin"})"), 4);
}

}  // namespace
}  // namespace wcc_test
