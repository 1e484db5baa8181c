// Hostile HTTP clients (the server faces the internet): each test runs a bounded hostile
// pattern against the real server, then a real client must still register, and the server's
// file descriptors, threads and memory (read from /proc/<pid>) are back within a stated bound.
// The bounds' flags are short here so that the tests run in seconds.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `done` every 20 ms until it holds or timeout_ms passed; returns `done()`.
bool WaitFor(const std::function<bool()>& done, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Open descriptors may exceed the baseline by this much once the hostile clients are gone
// (the metrics request, a registered client's socket).
constexpr int kFdSlack = 4;
// Resident memory may exceed the baseline by this much after an attack: freed memory may stay
// with the allocator, and AddressSanitizer keeps freed blocks in quarantine for a while.
#if defined(__SANITIZE_ADDRESS__)
constexpr long kRssSlackKiB = 64 * 1024;
#else
constexpr long kRssSlackKiB = 16 * 1024;
#endif

class Hostile : public ServerTest {
 protected:
  // Starts the server and takes the baseline after one request (lazily opened files).
  void Start(const std::vector<std::string>& flags) {
    ASSERT_NO_FATAL_FAILURE(StartServer(flags));
    ASSERT_EQ(HttpGet(port(), "/healthz").status, 200);
    base_fds_ = server_.FdCount();
    base_threads_ = server_.ThreadCount();
    // The peak from here on (the baseline's own RSS).
    server_.ResetPeakRss();
    base_hwm_ = server_.PeakRssKiB();
    base_rss_ = server_.RssKiB();
    ASSERT_GT(base_fds_, 0);
  }

  // A real client still registers, and the descriptors come back to the baseline.
  void ExpectRecovered(const char* name) {
    std::unique_ptr<WsClient> c = Join(port(), name);
    EXPECT_NE(c, nullptr) << "a real client could not register after the attack";
    c.reset();
    EXPECT_TRUE(WaitFor([&] { return server_.FdCount() <= base_fds_ + kFdSlack; }, 5000))
        << "fds " << server_.FdCount() << ", baseline " << base_fds_;
    // Only the /metrics request itself is an HTTP connection.
    EXPECT_EQ(server_.Metric("webrtc_call_http_connections"), 1);
    // GLib's worker threads may stay (they idle out after 15 s): bounded, not back to base.
    EXPECT_LE(server_.ThreadCount(), base_threads_ + 12);
    EXPECT_LE(server_.RssKiB(), base_rss_ + kRssSlackKiB) << "baseline " << base_rss_ << " KiB";
    EXPECT_TRUE(ServerAlive());
  }

  double Closed(const char* reason) {
    return server_.Metric(std::string("webrtc_call_http_closed_total{reason=\"") + reason + "\"}");
  }

  std::string KeepAliveGet(const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port()) + "\r\n\r\n";
  }

  int base_fds_ = 0;
  int base_threads_ = 0;
  long base_hwm_ = 0;
  long base_rss_ = 0;
};

// Finding 1: an HTTP/1.1 client that closes its connection after the response (keep-alive by
// default) left the server's end in CLOSE-WAIT for ever: 300 requests, 300 fds more.
TEST_F(Hostile, ConnectionsClosedAfterTheirResponseFreeTheirFds) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  for (int i = 0; i < 300; ++i) {
    int fd = TcpConnect(port());
    ASSERT_GE(fd, 0);
    // Alternately /healthz and a refused upgrade (400: no Sec-WebSocket-Key).
    std::string req = i % 2 ? KeepAliveGet("/healthz")
                            : "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\n";
    ASSERT_TRUE(SendAll(fd, req));
    std::string rx;
    // The server answers and closes the connection itself: one request per connection.
    EXPECT_TRUE(WaitPeerClosed(fd, 2000, &rx)) << "request " << i << " left open: " << rx;
    EXPECT_NE(rx.find("Connection: close"), std::string::npos) << rx;
    close(fd);
    if (HasFailure()) break;
  }
  // The upgrade's answer says only `Connection: Upgrade`.
  std::unique_ptr<WsClient> ws = WsClient::Connect(port());
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->status(), 101);
  EXPECT_EQ(ws->handshake().Header("connection"), "Upgrade");
  ws.reset();
  ExpectRecovered("after-keepalive");
}

// Finding 4: silent TCP connections and slow headers (slowloris) were never closed.
TEST_F(Hostile, SilentAndSlowHeaderConnectionsAreClosedAtTheHeaderTimeout) {
  ASSERT_NO_FATAL_FAILURE(Start({"--header-timeout", "1"}));
  std::vector<int> silent, slow;
  for (int i = 0; i < 60; ++i) silent.push_back(TcpConnect(port(), "127.0.0.2"));
  for (int i = 0; i < 20; ++i) {
    slow.push_back(TcpConnect(port(), "127.0.0.3"));
    ASSERT_TRUE(SendAll(slow.back(), "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  // The slow ones send a byte of header every 100 ms; all must be closed within 4 s.
  auto start = Clock::now();
  std::vector<bool> closed(slow.size(), false);
  int closed_count = 0;
  while (closed_count < static_cast<int>(slow.size()) &&
         Clock::now() - start < std::chrono::seconds(4)) {
    for (std::size_t i = 0; i < slow.size(); ++i) {
      if (closed[i]) continue;
      if (!PeerOpen(slow[i]) || !SendAll(slow[i], "a", 100)) {
        closed[i] = true;
        closed_count++;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(closed_count, static_cast<int>(slow.size())) << "slow-header connections left open";
  for (int fd : silent) {
    EXPECT_TRUE(WaitPeerClosed(fd, 3000)) << "a silent connection was left open";
  }
  EXPECT_GE(Closed("header-timeout"), 80);
  for (int fd : silent) close(fd);
  for (int fd : slow) close(fd);
  ExpectRecovered("after-slowloris");
}

// Connections of one address that are not WebSockets (yet) are bounded like its WebSockets.
TEST_F(Hostile, ConnectionsBeforeTheUpgradeAreLimitedPerAddress) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max-connections-per-address", "10"}));
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) fds.push_back(TcpConnect(port(), "127.0.0.2"));
  int refused = 0;
  for (int fd : fds) refused += WaitPeerClosed(fd, 300) ? 1 : 0;
  EXPECT_EQ(refused, 30);
  EXPECT_EQ(Closed("per-address-limit"), 30);
  // Another address is not affected while they stay.
  std::unique_ptr<WsClient> other = Join(port(), "other-address");
  EXPECT_NE(other, nullptr);
  other.reset();
  for (int fd : fds) close(fd);
  ExpectRecovered("after-per-address");
}

// And in all (--max-connections), from many addresses.
TEST_F(Hostile, ConnectionsBeforeTheUpgradeAreLimitedInAll) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max-connections", "10"}));
  std::vector<int> fds;
  for (int i = 1; i <= 30; ++i) {
    fds.push_back(TcpConnect(port(), ("127.0.5." + std::to_string(i)).c_str()));
  }
  int refused = 0;
  for (int fd : fds) refused += WaitPeerClosed(fd, 300) ? 1 : 0;
  EXPECT_EQ(refused, 20);
  for (int fd : fds) close(fd);
  // (While the ten stay, /metrics itself would be one too many.)
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port(), "/healthz").status == 200; }, 3000));
  EXPECT_GE(Closed("limit"), 20);  // (and the /healthz tries refused before the closes were seen)
  ExpectRecovered("after-limit");
}

// Finding 3: the server takes no request bodies, and refuses them from the headers, before
// reading a byte: 8 clients sending 32 MiB each of a declared 1 GiB POST grew it by 190 MiB.
TEST_F(Hostile, DeclaredBodiesAreRefusedBeforeTheyAreRead) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  const std::string chunk(1 << 20, 'x');
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    int fd = TcpConnect(port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"));
    fds.push_back(fd);
  }
  // Up to 32 MiB each, as long as the server takes them (it closes, so writes fail early).
  for (int fd : fds) {
    for (int mb = 0; mb < 32; ++mb) {
      if (!SendAll(fd, chunk, 500)) break;
    }
  }
  for (int fd : fds) {
    std::string rx;
    WaitPeerClosed(fd, 3000, &rx);
    EXPECT_TRUE(rx.starts_with("HTTP/1.1 413")) << rx.substr(0, 200);
    close(fd);
  }
  long grown = server_.PeakRssKiB() - base_hwm_;
  EXPECT_LT(grown, 16 * 1024) << "peak RSS grew by " << grown << " KiB";
  EXPECT_EQ(server_.Metric("webrtc_call_http_refused_total{reason=\"body\"}"), 8);

  // Chunked, and a body on a path that exists (it was buffered whole before the 405).
  HttpResponse chunked = HttpExchange(
      port(), "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n");
  EXPECT_EQ(chunked.status, 413);
  std::string big = "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n";
  big += std::string(1 << 20, 'y');
  EXPECT_EQ(HttpExchange(port(), big).status, 413);
  ExpectRecovered("after-bodies");
}

// Finding 3: `Expect: 100-continue` with a 10 GB length was answered `100 Continue`.
TEST_F(Hostile, ExpectationsAreNotMet) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  HttpResponse r = HttpExchange(port(),
                                "PUT /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                "Content-Length: 10000000000\r\n\r\n");
  EXPECT_EQ(r.status, 413) << "first answer " << r.status;
  HttpResponse bare =
      HttpExchange(port(), "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(bare.status, 417);
  EXPECT_EQ(server_.Metric("webrtc_call_http_refused_total{reason=\"expect\"}"), 1);
  ExpectRecovered("after-expect");
}

// Finding 3: a 3 KB Range header of 1,000 ranges made a 128 KiB file a 66 MB answer. One
// range is served; a header with more is ignored (the whole file, 200).
TEST_F(Hostile, OnlyASingleRangeIsServed) {
  TempDir web;
  const std::string file(128 * 1024, 'f');
  web.Write("big.txt", file);
  ASSERT_NO_FATAL_FAILURE(Start({"--web-root", web.path()}));
  std::string ranges = "Range: bytes=0-";
  for (int i = 1; i < 1000; ++i) ranges += ",0-";
  HttpResponse many = HttpGet(port(), "/big.txt", {ranges});
  EXPECT_EQ(many.status, 200);
  EXPECT_EQ(many.body.size(), file.size());
  EXPECT_EQ(server_.Metric("webrtc_call_http_ranges_ignored_total"), 1);
  HttpResponse one = HttpGet(port(), "/big.txt", {"Range: bytes=100-199"});
  EXPECT_EQ(one.status, 206);
  EXPECT_EQ(one.body, file.substr(100, 100));
  ExpectRecovered("after-ranges");
}

// Finding 4: a client that asks for a file and never reads the answer held its connection
// (and the file's bytes) for ever; the idle timeout ends it.
TEST_F(Hostile, AClientThatDoesNotReadItsAnswerIsClosedAtTheIdleTimeout) {
  TempDir web;
  web.Write("large.bin", std::string(6 << 20, 'L'));
  ASSERT_NO_FATAL_FAILURE(Start({"--web-root", web.path(), "--http-idle-timeout", "1"}));
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    int fd = TcpConnect(port(), "127.0.0.2");
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ASSERT_TRUE(SendAll(fd, KeepAliveGet("/large.bin")));
    fds.push_back(fd);
  }
  EXPECT_TRUE(WaitFor([&] { return Closed("idle-timeout") == 2; }, 5000)) << Closed("idle-timeout");
  for (int fd : fds) close(fd);
  ExpectRecovered("after-idle");
}

// Huge or endless request heads are bounded (libsoup refuses a head over 64 KiB; the header
// timeout ends one that never ends).
TEST_F(Hostile, HugeHeadersAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start({"--header-timeout", "2"}));
  int fd = TcpConnect(port());
  ASSERT_TRUE(SendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "));
  const std::string line(64 * 1024, 'h');
  int sent = 0;
  while (sent < 64 && SendAll(fd, line, 500)) sent++;
  EXPECT_TRUE(WaitPeerClosed(fd, 4000)) << "a 4 MiB header line was still being read";
  close(fd);
  long grown = server_.PeakRssKiB() - base_hwm_;
  EXPECT_LT(grown, 8 * 1024) << "peak RSS grew by " << grown << " KiB";
  // A 100 KB URL.
  HttpResponse url =
      HttpExchange(port(), "GET /" + std::string(100000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(url.status, 200);
  // Many headers.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 20000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  HttpResponse r = HttpExchange(port(), many + "\r\n");
  EXPECT_NE(r.status, 200);
  ExpectRecovered("after-huge-headers");
}

// Finding 5: a WebSocket that answers pings but never registers stayed for ever.
TEST_F(Hostile, UnregisteredWebSocketsAreClosedAtTheRegistrationTimeout) {
  ASSERT_NO_FATAL_FAILURE(Start(
      {"--registration-timeout", "1", "--keepalive-interval", "1", "--keepalive-timeout", "5"}));
  std::unique_ptr<WsClient> member = Join(port(), "member");
  ASSERT_NE(member, nullptr);
  std::vector<std::unique_ptr<WsClient>> idle;
  for (int i = 0; i < 10; ++i) {
    idle.push_back(WsClient::Connect(port()));
    ASSERT_NE(idle.back(), nullptr);
    ASSERT_EQ(idle.back()->status(), 101);
  }
  for (auto& c : idle) {
    ASSERT_TRUE(c->WaitClosed(4000)) << "an unregistered WebSocket stayed open";
    EXPECT_EQ(c->close_code(), 1008);
    EXPECT_EQ(c->close_reason(), "registration timeout");
  }
  EXPECT_EQ(server_.Metric("webrtc_call_unregistered_closed_total"), 10);
  // The registered one, older than all of them, stays.
  EXPECT_FALSE(member->WaitClosed(1500)) << "the registered client was closed too";
  idle.clear();
  member.reset();
  ExpectRecovered("after-unregistered");
}

// CPU time (user + system) the process has used, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::atol(f.c_str());
    if (i == 15) {
      stime = std::atol(f.c_str());
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Out of file descriptors (here: a limit just above what it has), the server stops accepting
// for a moment instead of spinning on a listening socket that stays readable, and accepts
// again once descriptors are free.
TEST_F(Hostile, RunningOutOfDescriptorsNeitherSpinsNorStopsTheServer) {
  ASSERT_NO_FATAL_FAILURE(Start({"--header-timeout", "2"}));
  rlimit low{static_cast<rlim_t>(base_fds_ + 16), static_cast<rlim_t>(base_fds_ + 16)};
  ASSERT_EQ(prlimit(server_.pid(), RLIMIT_NOFILE, &low, nullptr), 0);
  std::vector<int> fds;
  for (int i = 1; i <= 60; ++i) {
    fds.push_back(TcpConnect(port(), ("127.0.4." + std::to_string(i)).c_str()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the accepts are done
  double cpu0 = CpuSeconds(server_.pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  double used = CpuSeconds(server_.pid()) - cpu0;
  EXPECT_LT(used, 0.5) << "the server spun for " << used << " s of CPU in 1.5 s";
  for (int fd : fds) close(fd);
  // The header timeout frees what was accepted; the rest of the backlog is accepted then.
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port(), "/healthz").status == 200; }, 8000));
  EXPECT_GE(server_.Metric("webrtc_call_accept_pauses_total"), 1);
  ExpectRecovered("after-emfile");  // (still under the low limit)
}

}  // namespace
}  // namespace wcc_test
