// wss:// end to end: the server with --tls-cert/--tls-key, the project's libsoup client
// trusting a private CA through tls_ca_file, and refusing a server it cannot verify.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client.h"
#include "gref.h"
#include "protocol.h"

namespace {

using gwc::GRef;

class TlsServer : public ::testing::Test {
 protected:
  // Flags added to the server's command line.
  virtual std::vector<std::string> Flags() const { return {}; }
  // Variables added to the server's environment.
  virtual std::vector<std::pair<std::string, std::string>> Env() const { return {}; }

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
    std::vector<std::string> args = {server,       "--address", "127.0.0.1", "--port", "0",
                                     "--tls-cert", cert,        "--tls-key", key};
    for (const std::string& f : Flags()) args.push_back(f);
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    gwc::GErrorPtr err;
    GRef<GSubprocessLauncher> launcher =
        GRef<GSubprocessLauncher>::adopt(g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE));
    for (const auto& [name, value] : Env()) {
      g_subprocess_launcher_setenv(launcher.get(), name.c_str(), value.c_str(), TRUE);
    }
    proc_ = GRef<GSubprocess>::adopt(
        g_subprocess_launcher_spawnv(launcher.get(), argv.data(), gwc::out(err)));
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

// ---- Hostile TLS clients ----

// A TCP connection to the server from `source` (a loopback address: another client address).
int ConnectFrom(const char* source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// True when the server ended the connection (EOF or reset) within timeout_ms.
bool ServerClosed(int fd, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

// A real ClientHello (the first TLS record openssl s_client sends), caught on a socket of ours.
std::string RealClientHello() {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof a;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(lfd);
    return {};
  }
  std::string target = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const char* argv[] = {"openssl", "s_client", "-connect", target.c_str(), nullptr};
  GRef<GSubprocess> s = GRef<GSubprocess>::adopt(
      g_subprocess_newv(argv,
                        static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                      G_SUBPROCESS_FLAGS_STDERR_SILENCE),
                        nullptr));
  std::string hello;
  pollfd p{lfd, POLLIN, 0};
  if (s && poll(&p, 1, 5000) == 1) {
    int fd = accept(lfd, nullptr, nullptr);
    char buf[16384];
    auto whole = [&hello] {
      if (hello.size() < 5) return false;
      std::size_t record = (static_cast<std::size_t>(static_cast<unsigned char>(hello[3])) << 8) |
                           static_cast<unsigned char>(hello[4]);
      return hello.size() >= 5 + record;
    };
    while (fd >= 0 && !whole()) {
      pollfd q{fd, POLLIN, 0};
      if (poll(&q, 1, 5000) != 1) break;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      hello.append(buf, static_cast<std::size_t>(n));
    }
    if (fd >= 0) close(fd);
  }
  if (s) {
    g_subprocess_force_exit(s.get());
    g_subprocess_wait(s.get(), nullptr, nullptr);
  }
  close(lfd);
  return hello;
}

class TlsHostile : public TlsServer {
 protected:
  std::vector<std::string> Flags() const override {
    return {"--tls-handshake-timeout", "4", "--header-timeout", "1"};
  }
#if defined(__SANITIZE_ADDRESS__)
  // LeakSanitizer's own tracer crashes ("Tracer caught signal 11") at the exit of a server
  // that ran these handshakes, in its scan of thread-local storage: with use_tls=0 it
  // completes and reports only allocations of GLib's that live in thread-local storage.
  // Leaks are looked for in the other TLS tests; memory errors here too.
  std::vector<std::pair<std::string, std::string>> Env() const override {
    const char* asan = g_getenv("ASAN_OPTIONS");
    return {{"ASAN_OPTIONS", std::string(asan ? asan : "") + ":detect_leaks=0"}};
  }
#endif

  // CPU time (user + system) the server has used, in seconds.
  double ServerCpu() const {
    std::ifstream in(std::string("/proc/") + g_subprocess_get_identifier(proc_.get()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    long ticks = 0;
    for (int i = 3; fields >> f && i <= 15; ++i) {
      if (i == 14 || i == 15) ticks += std::atol(f.c_str());
    }
    return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  int ServerThreads() const {
    std::ifstream in(std::string("/proc/") + g_subprocess_get_identifier(proc_.get()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("Threads:")) return std::atoi(line.c_str() + 8);
    }
    return -1;
  }

  int ServerFds() const {
    std::string dir = std::string("/proc/") + g_subprocess_get_identifier(proc_.get()) + "/fd";
    GDir* d = g_dir_open(dir.c_str(), 0, nullptr);
    int n = 0;
    while (d && g_dir_read_name(d)) n++;
    if (d) g_dir_close(d);
    return n;
  }

  // Registers `name` over wss; true once its user list arrived within timeout_ms.
  bool RegisterOverWss(const std::string& name, guint timeout_ms) {
    bool listed = false;
    signaling::Client* self = nullptr;
    signaling::Client client(WssOptions(),
                             {.on_open = {},
                              .on_text =
                                  [&](std::string_view text) {
                                    auto r = signaling::protocol::parse_server(text, {});
                                    auto* m = std::get_if<signaling::protocol::ServerMessage>(&r);
                                    if (!m) return;
                                    if (auto* id = std::get_if<signaling::protocol::IdMsg>(m)) {
                                      self->send(Register(id->id, name));
                                    } else if (std::get_if<signaling::protocol::UserListMsg>(m)) {
                                      listed = true;
                                    }
                                  },
                              .on_closed = {}});
    self = &client;
    client.connect();
    return run_until(listed, timeout_ms);
  }
};

// Finding 2: 100 connections that send nothing or half a ClientHello kept every new wss
// client from registering for as long as they stayed (the handshakes ran in glib-networking's
// small thread pool and nothing timed them out). Now a ClientHello is awaited on the main loop,
// without a thread; a complete one that stalls after it holds one of a few threads per
// address; all of them end at --tls-handshake-timeout.
TEST_F(TlsHostile, StalledHandshakesNeitherBlockNewClientsNorStay) {
  ASSERT_TRUE(RegisterOverWss("warm-up", 10000));  // the pool's threads exist
  const int base_fds = ServerFds();
  const int base_threads = ServerThreads();
  const std::string hello = RealClientHello();
  ASSERT_GT(hello.size(), 5u) << "openssl s_client sent no ClientHello";
  std::vector<int> stalled;
  // Each from an address of its own (the per-address bounds do not help here).
  for (int i = 1; i <= 50; ++i) {
    stalled.push_back(ConnectFrom(("127.0.1." + std::to_string(i)).c_str(), std::stoi(port_)));
  }
  for (int i = 1; i <= 50; ++i) {
    int fd = ConnectFrom(("127.0.2." + std::to_string(i)).c_str(), std::stoi(port_));
    // A record header announcing 512 bytes, and 2 of them.
    send(fd, "\x16\x03\x01\x02\x00\x01\x00", 7, MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  // And 30 complete ClientHellos from one address, stalling after it.
  for (int i = 0; i < 30; ++i) {
    int fd = ConnectFrom("127.0.0.4", std::stoi(port_));
    send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  for (int fd : stalled) ASSERT_GE(fd, 0);
  // A real client registers while they all stall (well before their deadline).
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(RegisterOverWss("during-the-stall", 2500))
      << "a wss client could not register while handshakes stalled";
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
  std::printf("registered in %lld ms during 130 stalled handshakes\n",
              static_cast<long long>(took));
  // The 30 that hold a handshake thread hold at most 4 (--max-tls-handshakes-per-address).
  EXPECT_LE(ServerThreads(), base_threads + 6) << "baseline " << base_threads;
  // Waiting for the rest of a ClientHello costs no CPU to speak of (no spinning on a socket
  // that stays readable).
  double cpu0 = ServerCpu();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  double cpu = ServerCpu() - cpu0;
  std::printf("server CPU during the stall: %.2f s in 1 s\n", cpu);
  EXPECT_LT(cpu, 0.3) << "the server used " << cpu << " s of CPU in 1 s of stalled handshakes";
  // Then every stalled one is closed by the deadline.
  int closed = 0;
  for (int fd : stalled) closed += ServerClosed(fd, 7000) ? 1 : 0;
  EXPECT_EQ(closed, static_cast<int>(stalled.size()));
  for (int fd : stalled) close(fd);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (ServerFds() > base_fds + 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(ServerFds(), base_fds + 2) << "baseline " << base_fds;
  EXPECT_TRUE(RegisterOverWss("after-the-stall", 5000));
}

// After its handshake, a client that sends no request is closed at --header-timeout.
TEST_F(TlsHostile, AClientSilentAfterItsHandshakeIsClosedAtTheHeaderTimeout) {
  std::string target = "127.0.0.1:" + port_;
  std::vector<GRef<GSubprocess>> clients;
  for (int i = 0; i < 5; ++i) {
    // openssl s_client does the handshake, then waits for its (open, silent) stdin.
    const char* argv[] = {"openssl", "s_client", "-brief", "-connect", target.c_str(), nullptr};
    gwc::GErrorPtr err;
    clients.push_back(GRef<GSubprocess>::adopt(
        g_subprocess_newv(argv,
                          static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDERR_MERGE),
                          gwc::out(err))));
    ASSERT_TRUE(clients.back()) << err->message;
  }
  for (GRef<GSubprocess>& c : clients) {
    // s_client exits when the server ends the connection.
    bool exited = false;
    g_subprocess_wait_async(
        c.get(), nullptr,
        [](GObject*, GAsyncResult*, gpointer flag) { *static_cast<bool*>(flag) = true; }, &exited);
    bool in_time = run_until(exited, 5000);
    if (!in_time) g_subprocess_force_exit(c.get());
    run_until(exited, 5000);
    char* out = nullptr;
    g_subprocess_communicate_utf8(c.get(), nullptr, nullptr, &out, nullptr, nullptr);
    std::string text = out ? out : "";
    g_free(out);
    EXPECT_TRUE(in_time) << "a silent client was still connected after 5 s";
    EXPECT_NE(text.find("CONNECTION ESTABLISHED"), std::string::npos)
        << "the handshake did not finish: " << text;
  }
  EXPECT_TRUE(RegisterOverWss("after-silent", 5000));
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
