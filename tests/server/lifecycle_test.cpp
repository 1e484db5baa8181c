// Process lifetime and scale: SIGTERM with open WebSockets (close 1001 to everyone, exit 0
// within 2 s), coalesced user lists when 50 clients register at once, and the project's own
// libsoup client (signaling::Client) against the real server.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "client.h"
#include "harness.h"
#include "protocol.h"

namespace wcc_test {
namespace {

using Lifecycle = ServerTest;
using Clock = std::chrono::steady_clock;

long long MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

void ExpectExitedZero(int st) {
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
      << "wait status " << st
      << (WIFSIGNALED(st) ? std::string(" signal ") + strsignal(WTERMSIG(st)) : "");
}

// The server says at start how it reads and writes connections (its `event=io` line).
std::string LoggedIoPath(ServerProcess& server, int port) {
  // The line is logged after the "Listening on" line StartServer() waits for: once a client
  // got in, it is written.
  std::unique_ptr<WsClient> alice = Join(port, "alice");
  EXPECT_TRUE(alice);
  std::string log = server.Log();
  std::size_t at = log.find("event=io msg=");
  EXPECT_NE(at, std::string::npos) << log;
  if (at == std::string::npos) return {};
  std::string io = log.substr(at + 13, log.find('\n', at) - at - 13);
  std::printf("I/O path: %s\n", io.c_str());
  return io;
}

TEST_F(Lifecycle, NoIoUringMeansOneSystemCallEach) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--no-io-uring"}));
  EXPECT_EQ(LoggedIoPath(server_, port()), "\"system calls (io_uring turned off)\"");
}

TEST_F(Lifecycle, TheIoPathIsIoUringOrSaysWhyNot) {
  const char* flags = g_getenv("WEBRTC_CALL_SERVER_FLAGS");
  if (flags && std::string_view(flags).find("--no-io-uring") != std::string_view::npos) {
    GTEST_SKIP() << "this run turns io_uring off for every server";
  }
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string io = LoggedIoPath(server_, port());
  // io_uring where the kernel allows it, else system calls with the reason; never "turned
  // off" without the flag.
  EXPECT_TRUE(io == "io_uring" || io.starts_with("\"system calls (")) << io;
  EXPECT_EQ(io.find("turned off"), std::string::npos) << io;
}

TEST_F(Lifecycle, SigtermClosesEveryWebSocketWith1001AndExitsZero) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<WsClient> alice = Join(port(), "alice");
  std::unique_ptr<WsClient> bob = Join(port(), "bob");
  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(alice->SendText(OfferMsg("bob")));  // a call in progress
  ASSERT_TRUE(bob->ReadUntil([](const Json& m) { return m.type() == "video-offer"; }));
  std::unique_ptr<WsClient> lurker = WsClient::Connect(port());  // open, never registered
  ASSERT_TRUE(lurker && lurker->Read());

  auto start = Clock::now();
  ASSERT_EQ(kill(server_.pid(), SIGTERM), 0);
  for (WsClient* c : {alice.get(), bob.get(), lurker.get()}) {
    SCOPED_TRACE(c->name.empty() ? "unregistered" : c->name);
    ASSERT_TRUE(c->WaitClosed(2000)) << "no close frame within 2 s of SIGTERM";
    EXPECT_EQ(c->close_code(), 1001) << c->close_reason();
  }
  int st = 0;
  ASSERT_TRUE(server_.WaitExit(std::max<int>(0, 2000 - static_cast<int>(MsSince(start))), &st))
      << "still running 2 s after SIGTERM";
  std::printf("exited %lld ms after SIGTERM\n", MsSince(start));
  ExpectExitedZero(st);
  // The clients answered the close, so the server had no reason to wait for its timeout.
  EXPECT_LT(MsSince(start), 1000);
}

TEST_F(Lifecycle, SigtermWithClientsThatNeverAnswerStillExitsWithin2s) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(Join(port(), "mute" + std::to_string(i)));
    ASSERT_TRUE(clients.back());
    clients.back()->set_echo_close(false);
  }
  auto start = Clock::now();
  ASSERT_EQ(kill(server_.pid(), SIGTERM), 0);
  int st = 0;
  ASSERT_TRUE(server_.WaitExit(2000, &st)) << "still running 2 s after SIGTERM";
  std::printf("exited %lld ms after SIGTERM\n", MsSince(start));
  ExpectExitedZero(st);
  for (auto& c : clients) {
    ASSERT_TRUE(c->WaitClosed(1000));
    EXPECT_EQ(c->close_code(), 1001);
  }
}

TEST_F(Lifecycle, FiftyClientsRegisteringAtOnceGetCoalescedUserLists) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  constexpr int kClients = 50;
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::string> names;
  for (int i = 0; i < kClients; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "user%02d", i);
    names.emplace_back(name);
    clients.push_back(WsClient::Connect(port()));
    ASSERT_TRUE(clients.back());
    ASSERT_EQ(clients.back()->status(), 101);
  }
  for (auto& c : clients) {
    std::optional<Json> id = c->Read();
    ASSERT_TRUE(id && id->type() == "id");
  }
  // All registrations back to back.
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->SendText(R"({"type":"username","name":")" + names[i] + "\"}"));
  }
  int userlists = 0;
  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(names[i]);
    std::optional<Json> full = clients[i]->ReadUntil([&](const Json& m) {
      if (m.type() != "userlist") {
        ADD_FAILURE() << "unexpected " << m.text();
        return false;
      }
      ++userlists;
      return m.Users().size() == kClients;
    });
    ASSERT_TRUE(full) << "never saw all " << kClients << " users";
    EXPECT_EQ(full->Users(), names);
  }
  // Nothing changes any more: whatever is still queued is a (stale-free) full list.
  for (auto& c : clients) {
    for (const Json& m : c->Drain(0)) {
      ++userlists;
      EXPECT_EQ(m.Users().size(), static_cast<std::size_t>(kClients)) << m.text();
    }
  }
  std::printf("%d user list messages for %d clients (uncoalesced: up to %d)\n", userlists, kClients,
              kClients * (kClients + 1) / 2);
  EXPECT_LT(userlists, kClients * kClients / 4);
  std::printf("server counted %g user list broadcasts\n",
              server_.Metric("webrtc_call_userlist_broadcasts_total"));
}

// ---- The project's libsoup client ----

// Runs the default main context until `done` or the deadline; returns `done`.
bool RunUntil(const std::function<bool()>& done, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done() && Clock::now() < deadline) {
    if (!g_main_context_iteration(nullptr, FALSE)) g_usleep(1000);
  }
  return done();
}

struct SoupPeer {
  std::unique_ptr<signaling::Client> client;
  std::string name;
  bool opened = false, closed = false;
  std::vector<signaling::protocol::ServerMessage> got;

  SoupPeer(const std::string& uri, std::string n) : name(std::move(n)) {
    signaling::ClientOptions options;
    options.uri = uri;
    client = std::make_unique<signaling::Client>(
        options, signaling::ClientCallbacks{
                     .on_open = [this] { opened = true; },
                     .on_text =
                         [this](std::string_view text) {
                           auto r = signaling::protocol::parse_server(text, {});
                           auto* m = std::get_if<signaling::protocol::ServerMessage>(&r);
                           if (!m) {
                             ADD_FAILURE() << name << " cannot parse " << text;
                             return;
                           }
                           if (auto* id = std::get_if<signaling::protocol::IdMsg>(m)) {
                             client->send(R"({"type":"username","name":")" + name + R"(","id":)" +
                                          std::to_string(id->id) + "}");
                           }
                           got.push_back(*m);
                         },
                     .on_closed = [this](unsigned short, const std::string&) { closed = true; }});
    client->connect();
  }

  const signaling::protocol::UserListMsg* LastUserlist() const {
    for (auto it = got.rbegin(); it != got.rend(); ++it) {
      if (auto* l = std::get_if<signaling::protocol::UserListMsg>(&*it)) return l;
    }
    return nullptr;
  }
  bool Lists(const std::vector<std::string>& users) const {
    const auto* l = LastUserlist();
    return l && l->users == users;
  }
};

TEST_F(Lifecycle, TheProjectsLibsoupClientRegistersAndExchangesMessages) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string uri = "ws://127.0.0.1:" + std::to_string(port()) + "/";
  SoupPeer alice(uri, "alice");
  SoupPeer bob(uri, "bob");
  ASSERT_TRUE(RunUntil(
      [&] {
        return alice.Lists({"alice", "bob"}) && bob.Lists({"alice", "bob"});
      },
      kTimeoutMs))
      << "the libsoup clients did not both register (open: " << alice.opened << bob.opened
      << ", closed: " << alice.closed << bob.closed << ")";

  ASSERT_TRUE(alice.client->send(
      R"({"type":"video-offer","name":"alice","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\n"}})"));
  const signaling::protocol::RelayedMsg* offer = nullptr;
  ASSERT_TRUE(RunUntil(
      [&] {
        for (auto& m : bob.got) {
          if (auto* r = std::get_if<signaling::protocol::RelayedMsg>(&m)) offer = r;
        }
        return offer != nullptr;
      },
      kTimeoutMs))
      << "bob's libsoup client never received the offer";
  EXPECT_EQ(offer->type, "video-offer");
  EXPECT_EQ(offer->name, "alice");

  // A clean close from the libsoup client: alice is hung up and bob leaves her list.
  bob.client->close();
  ASSERT_TRUE(RunUntil([&] { return bob.closed && alice.Lists({"alice"}); }, kTimeoutMs));
  bool hung_up = false;
  for (auto& m : alice.got) {
    if (auto* r = std::get_if<signaling::protocol::RelayedMsg>(&m)) {
      hung_up = hung_up || (r->type == "hang-up" && r->name == "bob");
    }
  }
  EXPECT_TRUE(hung_up) << "alice's libsoup client got no hang-up from bob's departure";
  alice.client.reset();
  bob.client.reset();
  RunUntil([] { return false; }, 50);  // let libsoup finish its close
}

}  // namespace
}  // namespace wcc_test
