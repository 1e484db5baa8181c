// Keepalive (PROTOCOL.md rule 7): the server pings, and a peer that stops answering is
// dropped: it leaves the others' user list, its call partner is hung up, and its socket is
// closed even though it never answers the close either. Small intervals keep the test short:
// --keepalive-interval 1 --keepalive-timeout 2.
#include <chrono>
#include <string>
#include <vector>

#include "harness.h"

namespace wcc_test {
namespace {

using Keepalive = ServerTest;
using Clock = std::chrono::steady_clock;

long long MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST_F(Keepalive, ASilentPeerIsDroppedAndItsSocketClosed) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--keepalive-interval", "1", "--keepalive-timeout", "2"}));
  std::unique_ptr<WsClient> watcher = Join(port(), "watcher");
  ASSERT_TRUE(watcher);
  std::unique_ptr<WsClient> silent = Join(port(), "silent");
  ASSERT_TRUE(silent);
  silent->set_auto_pong(false);
  silent->set_echo_close(false);
  // A call in progress: the silent peer called the watcher.
  ASSERT_TRUE(silent->SendText(OfferMsg("watcher")));
  ASSERT_TRUE(watcher->ReadUntil([](const Json& m) { return m.type() == "video-offer"; }));
  auto silent_since = Clock::now();

  // From now on the silent peer reads nothing and answers nothing. The watcher keeps reading
  // (and answering pings) until the server drops the silent one.
  std::vector<Json> seen;
  std::optional<Json> list = watcher->ReadUntil(
      [](const Json& m) { return IsUserlistWith(m, {"watcher"}, {"silent"}); }, 10000, &seen);
  ASSERT_TRUE(list) << "the silent peer was still listed after 10 s";
  long long dropped_after = MsSince(silent_since);
  std::printf("silent peer left the user list after %lld ms; watcher answered %d pings\n",
              dropped_after, watcher->pings_received());
  EXPECT_GE(dropped_after, 1500) << "dropped before the keepalive timeout";
  bool hung_up = false;
  for (const Json& m : seen) {
    if (m.type() == "hang-up") {
      hung_up = true;
      EXPECT_EQ(m.Str("name"), "silent") << m.text();
      EXPECT_EQ(m.Str("reason"), "disconnected") << m.text();
    }
  }
  EXPECT_TRUE(hung_up) << "the dead peer's call partner got no hang-up";

  // The watcher, which answered the pings, is still connected and registered.
  EXPECT_GT(watcher->pings_received(), 0) << "the server sent no pings";
  EXPECT_FALSE(watcher->closed());

  // The silent peer reads again (still answering nothing): the server pinged it, then
  // closed with 1001, and as it never answers the close, the server ends the TCP connection
  // itself. Meanwhile the watcher goes on answering pings.
  auto start = Clock::now();
  long long close_frame_ms = -1;
  while (!silent->eof() && MsSince(start) < 10000) {
    silent->ReadFrame(50);
    if (close_frame_ms < 0 && silent->close_code() >= 0) close_frame_ms = MsSince(start);
    while (std::optional<Json> m = watcher->Read(0)) {
      EXPECT_TRUE(m->type() == "userlist") << m->text();
    }
  }
  EXPECT_GT(silent->pings_received(), 0);
  EXPECT_EQ(silent->close_code(), 1001) << silent->close_reason();
  EXPECT_TRUE(silent->eof()) << "the server never closed the dead peer's socket";
  std::printf("close frame read after %lld ms, socket closed after %lld ms\n", close_frame_ms,
              MsSince(start));
  ASSERT_FALSE(watcher->closed());

  EXPECT_EQ(server_.Metric("webrtc_call_dead_peers_dropped_total"), 1);
  EXPECT_EQ(server_.Metric("webrtc_call_registered_users"), 1);
  // The watcher stayed through all of it.
  std::unique_ptr<WsClient> late = Join(port(), "late");
  ASSERT_TRUE(late);
  list =
      watcher->ReadUntil([](const Json& m) { return m.type() == "userlist" && m.HasUser("late"); });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->Users(), (std::vector<std::string>{"late", "watcher"}));
}

TEST_F(Keepalive, APeerAnsweringPingsStaysWithoutSendingAnything) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--keepalive-interval", "1", "--keepalive-timeout", "2"}));
  std::unique_ptr<WsClient> quiet = Join(port(), "quiet");
  ASSERT_TRUE(quiet);
  // Read (and so answer pings) for one and a half times the timeout; nothing but pings may
  // arrive.
  auto start = Clock::now();
  while (MsSince(start) < 3200) {
    std::optional<Json> m = quiet->Read(100);
    if (m) {
      EXPECT_EQ(m->type(), "userlist") << m->text();
    }
    ASSERT_FALSE(quiet->closed()) << "a peer answering pings was dropped (code "
                                  << quiet->close_code() << ")";
  }
  EXPECT_GE(quiet->pings_received(), 2);
  EXPECT_EQ(server_.Metric("webrtc_call_dead_peers_dropped_total"), 0);
  EXPECT_EQ(server_.Metric("webrtc_call_registered_users"), 1);
}

}  // namespace
}  // namespace wcc_test
