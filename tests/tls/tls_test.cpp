// wss:// end to end: the server with --tls-cert/--tls-key, the project's libsoup client
// trusting a private CA through tls_ca_file, and refusing a server it cannot verify.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "client.h"
#include "gref.h"
#include "protocol.h"

namespace {

using gwc::GRef;

class TlsServer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = g_dir_make_tmp("wcc-tls-XXXXXX", nullptr);
    ASSERT_NE(dir_, nullptr);
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    std::string script =
        "set -e; cd '" + std::string(dir_) +
        "'; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-subj /CN=test-ca -keyout ca.key -out ca.pem 2>/dev/null; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 "
        "-keyout server.key -out server.csr 2>/dev/null; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile ext.cnf -out server.pem 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed";

    const char* server = g_getenv("WEBRTC_CALL_SERVER");
    ASSERT_NE(server, nullptr);
    std::string cert = std::string(dir_) + "/server.pem", key = std::string(dir_) + "/server.key";
    const char* argv[] = {server,       "--address",  "127.0.0.1", "--port",    "0",
                          "--tls-cert", cert.c_str(), "--tls-key", key.c_str(), nullptr};
    gwc::GErrorPtr err;
    proc_ = GRef<GSubprocess>::adopt(g_subprocess_newv(
        argv, static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_PIPE), gwc::out(err)));
    ASSERT_TRUE(proc_) << err->message;
    GRef<GDataInputStream> out = GRef<GDataInputStream>::adopt(
        g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc_.get())));
    gwc::GCharPtr line(g_data_input_stream_read_line(out.get(), nullptr, nullptr, nullptr));
    ASSERT_TRUE(line) << "server printed nothing";
    std::string l(line.get());
    ASSERT_TRUE(l.starts_with("Listening on https://127.0.0.1:")) << l;
    port_ = l.substr(l.rfind(':') + 1);
    port_.pop_back();  // the trailing '/'
  }

  void TearDown() override {
    if (proc_) {
      g_subprocess_send_signal(proc_.get(), SIGTERM);
      g_subprocess_wait(proc_.get(), nullptr, nullptr);
      EXPECT_TRUE(g_subprocess_get_if_exited(proc_.get()));
      EXPECT_EQ(g_subprocess_get_exit_status(proc_.get()), 0);
    }
    if (dir_) {
      std::string rm = "rm -rf '" + std::string(dir_) + "'";
      EXPECT_EQ(std::system(rm.c_str()), 0);
      g_free(dir_);
    }
  }

  // Runs the main context until `done` or the deadline; returns `done`.
  static bool run_until(const bool& done, guint timeout_ms) {
    return run_until([&done] { return done; }, timeout_ms);
  }
  static bool run_until(const std::function<bool()>& done, guint timeout_ms) {
    bool timed_out = false;
    guint timer = g_timeout_add(
        timeout_ms,
        [](gpointer flag) -> gboolean {
          *static_cast<bool*>(flag) = true;
          return G_SOURCE_REMOVE;
        },
        &timed_out);
    while (!done() && !timed_out) g_main_context_iteration(nullptr, TRUE);
    if (!timed_out) g_source_remove(timer);
    return done();
  }

  // A client of the server, trusting the test's private CA.
  signaling::ClientOptions WssOptions() const {
    signaling::ClientOptions opts;
    opts.uri = "wss://127.0.0.1:" + port_ + "/ws";
    opts.tls_ca_file = std::string(dir_) + "/ca.pem";
    return opts;
  }

  // The `username` message answering the server's `id`.
  static std::string Register(std::uint64_t id, const std::string& name) {
    return R"({"type":"username","name":")" + name + R"(","id":)" + std::to_string(id) + "}";
  }

  char* dir_ = nullptr;
  GRef<GSubprocess> proc_;
  std::string port_;
};

TEST_F(TlsServer, RegistersOverWssWithAPrivateCa) {
  const signaling::ClientOptions opts = WssOptions();
  bool got_list = false, closed = false;
  std::string close_reason;
  signaling::Client* self = nullptr;
  signaling::Client client(
      opts, {.on_open = {},
             .on_text =
                 [&](std::string_view text) {
                   auto r = signaling::protocol::parse_server(text, {});
                   auto* m = std::get_if<signaling::protocol::ServerMessage>(&r);
                   ASSERT_NE(m, nullptr);
                   if (auto* id = std::get_if<signaling::protocol::IdMsg>(m)) {
                     self->send(Register(id->id, "secure"));
                   } else if (auto* list = std::get_if<signaling::protocol::UserListMsg>(m)) {
                     got_list = list->users == std::vector<std::string>{"secure"};
                   }
                 },
             .on_closed =
                 [&](unsigned short, const std::string& reason) {
                   closed = true;
                   close_reason = reason;
                 }});
  self = &client;
  client.connect();
  ASSERT_TRUE(run_until(got_list, 10000))
      << "no user list over wss; closed: " << closed << " " << close_reason;
  EXPECT_TRUE(client.is_open());
}

TEST_F(TlsServer, UntrustedCertificateIsRefused) {
  signaling::ClientOptions opts = WssOptions();
  opts.tls_ca_file = "/etc/ssl/certs/ca-certificates.crt";  // not our private CA
  bool closed = false, opened = false;
  unsigned short code = 1;
  std::string reason;
  signaling::Client client(opts, {.on_open = [&] { opened = true; },
                                  .on_text = {},
                                  .on_closed =
                                      [&](unsigned short c, const std::string& r) {
                                        closed = true;
                                        code = c;
                                        reason = r;
                                      }});
  client.connect();
  ASSERT_TRUE(run_until(closed, 10000));
  EXPECT_FALSE(opened);
  EXPECT_EQ(code, 0);  // never connected
  EXPECT_FALSE(reason.empty());
  std::printf("refused as expected: %s\n", reason.c_str());
}

// Large messages over wss: the server reads several TLS records per message and writes 8 MiB
// to one receiver in a burst. Every message arrives whole and in order.
TEST_F(TlsServer, LargeMessagesAreRelayedWholeAndInOrder) {
  constexpr int kMessages = 40;
  const std::string pad(200 * 1024, 'x');  // under the 256 KiB message limit
  const signaling::ClientOptions opts = WssOptions();
  struct Peer {
    std::unique_ptr<signaling::Client> client;
    bool listed_both = false;
    bool closed = false;
  };
  Peer a, b;
  int received = 0;
  bool in_order = true, whole = true;
  auto make = [&](Peer& p, const char* name, bool receiver) {
    p.client = std::make_unique<signaling::Client>(
        opts,
        signaling::ClientCallbacks{
            .on_open = {},
            .on_text =
                [&p, name, receiver, &received, &in_order, &whole, &pad](std::string_view t) {
                  auto r = signaling::protocol::parse_server(t, {.max_message_bytes = 1 << 20});
                  auto* m = std::get_if<signaling::protocol::ServerMessage>(&r);
                  if (auto* id = m ? std::get_if<signaling::protocol::IdMsg>(m) : nullptr) {
                    p.client->send(Register(id->id, name));
                  } else if (auto* list =
                                 m ? std::get_if<signaling::protocol::UserListMsg>(m) : nullptr) {
                    p.listed_both = list->users == std::vector<std::string>{"a", "b"};
                  } else if (receiver && t.find(R"("type":"app")") != std::string_view::npos) {
                    std::string seq = R"("seq":)" + std::to_string(received) + ",";
                    in_order = in_order && t.find(seq) != std::string_view::npos;
                    whole = whole && t.find(pad) != std::string_view::npos;
                    received++;
                  }
                },
            .on_closed = [&p](unsigned short, const std::string&) { p.closed = true; }});
    p.client->connect();
  };
  make(a, "a", false);
  make(b, "b", true);
  bool listed = run_until([&] { return a.listed_both && b.listed_both; }, 10000);
  ASSERT_TRUE(listed) << "a and b never both saw the list of both";
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(a.client->send(R"({"type":"app","target":"b","seq":)" + std::to_string(i) +
                               R"(,"pad":")" + pad + "\"}"));
  }
  run_until([&] { return received >= kMessages || b.closed; }, 20000);
  EXPECT_EQ(received, kMessages);
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(whole);
  EXPECT_FALSE(a.closed);
  EXPECT_FALSE(b.closed);
}

TEST_F(TlsServer, InvalidUriIsAClearError) {
  bool closed = false;
  std::string reason;
  signaling::Client client(
      {.uri = "ftp://nowhere"},
      {.on_open = {}, .on_text = {}, .on_closed = [&](unsigned short, const std::string& r) {
         closed = true;
         reason = r;
       }});
  client.connect();
  ASSERT_TRUE(closed);
  EXPECT_NE(reason.find("ftp://nowhere"), std::string::npos) << reason;
}

}  // namespace
