// The signaling server goes away and comes back: established calls keep flowing (they are peer
// to peer), the elements reconnect with backoff, re-register their names, and new calls work.
// Inside a network namespace of the test's own (tests/netns-run.sh).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "peer.h"

using test::Peer;
using test::PeerOptions;
using test::ServerProcess;

namespace {

using Clock = std::chrono::steady_clock;

bool received_media(Peer& p, int video, int audio) {
  return p.wait_until([&] { return p.video_buffers >= video && p.audio_buffers >= audio; }, 20000);
}

// Keeps `p` under watch for `duration`: in every second of it, both kinds of media must arrive.
// Returns the seconds in which one of them did not.
int seconds_without_media(std::vector<Peer*> peers, std::chrono::seconds duration) {
  int gaps = 0;
  auto end = Clock::now() + duration;
  while (Clock::now() < end) {
    auto window_end = std::min(end, Clock::now() + std::chrono::seconds(1));
    for (Peer* p : peers) {
      int v = p->video_buffers, a = p->audio_buffers;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(window_end - Clock::now());
      if (!p->wait_until([&] { return p->video_buffers > v + 5 && p->audio_buffers > a + 5; },
                         std::max<int>(1, static_cast<int>(left.count())))) {
        ++gaps;
      }
    }
    std::this_thread::sleep_until(window_end);
  }
  return gaps;
}

}  // namespace

TEST(ServerOutage, CallsFlowThroughAnOutageAndBothSidesComeBack) {
  auto server = std::make_unique<ServerProcess>();
  ASSERT_TRUE(server->ok());
  unsigned port = server->port();
  // A small backoff cap keeps the test short and shows the property at work: after the
  // restart, each element is back within one step of at most 4 s.
  const std::string props = "max-calls=2 max-reconnect-delay=4";
  Peer bob("bob", server->ws_url(), {.extra = props});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  Peer alice("alice", server->ws_url(), {.peer = "bob", .extra = props});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-started", {{"peer", "bob"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received_media(alice, 30, 30));
  ASSERT_TRUE(received_media(bob, 30, 30));

  // The server dies (no close frames) and stays away for 8 s.
  server->stop(SIGKILL);
  server.reset();
  ASSERT_TRUE(alice.wait_message("webrtccall-disconnected", {}, 5000));
  ASSERT_TRUE(bob.wait_message("webrtccall-disconnected", {}, 5000));
  int alice_v = alice.video_buffers, bob_v = bob.video_buffers;
  EXPECT_EQ(seconds_without_media({&alice, &bob}, std::chrono::seconds(8)), 0);
  EXPECT_GT(alice.video_buffers, alice_v + 8 * 20);
  EXPECT_GT(bob.video_buffers, bob_v + 8 * 20);
  EXPECT_TRUE(alice.errors().empty()) << alice.errors()[0];
  EXPECT_TRUE(bob.errors().empty()) << bob.errors()[0];
  EXPECT_FALSE(alice.has_message("webrtccall-call-ended", {}));
  EXPECT_FALSE(bob.has_message("webrtccall-call-ended", {}));

  // Back on the same port: both register their own names again within one backoff step.
  server = std::make_unique<ServerProcess>(std::vector<std::string>{}, port);
  ASSERT_TRUE(server->ok()) << "could not restart the server on port " << port;
  auto restarted = Clock::now();
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}, 6000));
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}, 6000));
  auto back_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted).count();
  std::fprintf(stderr, "both registered again %lld ms after the restart\n",
               static_cast<long long>(back_ms));

  // The call that never needed the server is still the one call, still flowing.
  EXPECT_EQ(seconds_without_media({&alice, &bob}, std::chrono::seconds(2)), 0);
  EXPECT_FALSE(alice.has_message("webrtccall-call-ended", {}));
  EXPECT_FALSE(alice.has_message("webrtccall-call-started", {}));  // no redial, no second call

  // A new call through the new server.
  Peer carol("carol", server->ws_url());
  ASSERT_TRUE(carol.play());
  ASSERT_TRUE(carol.wait_message("webrtccall-registered", {{"name", "carol"}}));
  carol.call("alice");
  ASSERT_TRUE(carol.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "carol"}}));
  ASSERT_TRUE(received_media(carol, 30, 30));
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

TEST(ServerOutage, PeerIsCalledOnceTheServerIsBack) {
  auto server = std::make_unique<ServerProcess>();
  ASSERT_TRUE(server->ok());
  unsigned port = server->port();
  Peer alice("alice", server->ws_url(), {.peer = "bob", .extra = "max-reconnect-delay=2"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}));

  // A graceful restart this time (close frames, 1001).
  server->stop(SIGTERM);
  server.reset();
  ASSERT_TRUE(alice.wait_message("webrtccall-disconnected", {}, 5000));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the outage: several failed attempts
  server = std::make_unique<ServerProcess>(std::vector<std::string>{}, port);
  ASSERT_TRUE(server->ok());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}, 4000));

  // Bob only exists on the new server; the peer property calls him there.
  Peer bob("bob", server->ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(received_media(bob, 30, 30));
  EXPECT_TRUE(alice.errors().empty()) << alice.errors()[0];
}

TEST(ServerOutage, AServerNeverReachedAtStartIsStillAnError) {
  // Nothing listens on the discard port: the first registration fails, which is an error as
  // before, not an endless retry.
  Peer alice("alice", "ws://127.0.0.1:9/ws", {.extra = "max-reconnect-delay=1"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_until([&] { return !alice.errors().empty(); }, 10000));
  EXPECT_NE(alice.errors()[0].find("Could not register"), std::string::npos) << alice.errors()[0];
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
