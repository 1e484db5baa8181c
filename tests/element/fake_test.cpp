// The element against an in-process fake signaller: no signaling server, and a hub that can
// play man in the middle. WebRTC peers still need the test's network namespace.
#include <gtest/gtest.h>

#include <cstddef>

#include "fake-signaller.h"
#include "peer.h"

using test::Peer;

namespace {

bool received(Peer& p, int video, int audio, int timeout_ms = 20000) {
  return p.wait_until([&] { return p.video_buffers >= video && p.audio_buffers >= audio; },
                      timeout_ms);
}

}  // namespace

class FakeSignaller : public ::testing::Test {
 protected:
  void TearDown() override { test::fake_hub_reset(); }
};

TEST_F(FakeSignaller, CallWithoutAServer) {
  Peer bob("bob", "unused", {.fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  EXPECT_TRUE(received(alice, 20, 20));
  EXPECT_TRUE(received(bob, 20, 20));
  gchar** calls = nullptr;
  g_object_get(alice.element(), "calls", &calls, nullptr);
  ASSERT_TRUE(calls && calls[0]);
  EXPECT_STREQ(calls[0], "bob");
  EXPECT_EQ(calls[1], nullptr);
  g_strfreev(calls);
}

TEST_F(FakeSignaller, FingerprintMismatchEndsTheCall) {
  // A man in the middle swaps the fingerprint of alice's offer: bob's DTLS peer then shows a
  // certificate the SDP does not vouch for. webrtcbin 1.22 alone would carry on.
  test::fake_hub_set_tamper([](const std::string& from, const std::string&,
                               const std::string& sdp) {
    if (from != "alice") return sdp;
    std::string out = sdp;
    const std::string key = "a=fingerprint:sha-256 ";
    for (std::size_t pos = out.find(key); pos != std::string::npos; pos = out.find(key, pos + 1)) {
      char& c = out[pos + key.size()];
      c = c == 'A' ? 'B' : 'A';  // still a well-formed fingerprint, of another certificate
    }
    return out;
  });
  Peer bob("bob", "unused", {.fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", "unused", {.peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(alice.play());
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}, 20000);
  ASSERT_TRUE(ended);
  std::string reason = gst_structure_get_string(ended, "reason");
  EXPECT_NE(reason.find("does not match the SDP fingerprint"), std::string::npos) << reason;
  EXPECT_FALSE(bob.has_message("webrtccall-call-connected", {{"peer", "alice"}}));
  EXPECT_EQ(bob.video_buffers.load(), 0);
  EXPECT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));
}

TEST_F(FakeSignaller, FiftyCallsLeaveThreadsFdsAndMemoryAsTheyWere) {
  Peer bob("bob", "unused", {.fake_signaller = true});
  Peer alice("alice", "unused", {.fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));

  auto one_call = [&](int i) {
    int before = bob.video_buffers;
    alice.call("bob");
    bool ok = alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}) &&
              bob.wait_until([&] { return bob.video_buffers >= before + 3; });
    alice.hang_up("bob");
    ok = ok && bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}) &&
         alice.wait_until([&] { return alice.src_pads() == 0 && bob.src_pads() == 0; }, 5000);
    EXPECT_TRUE(ok) << "cycle " << i;
    return ok;
  };
  ASSERT_TRUE(one_call(0));  // warm-up: first-use allocations, the DTLS certificate
  test::wait_settled();
  int threads = test::count_threads(), fds = test::count_fds();
  long rss = test::memory_kib();
  const int cycles = g_getenv("WCC_CYCLES") ? atoi(g_getenv("WCC_CYCLES")) : 50;
  for (int i = 1; i <= cycles; ++i) {
    if (!one_call(i)) break;
  }
  // Torn-down calls finish in the background (threads join, sockets close): wait for it.
  EXPECT_TRUE(alice.wait_until([&] { return test::count_threads() <= threads; }, 10000))
      << test::count_threads() << " threads, " << threads << " before";
  EXPECT_TRUE(alice.wait_until([&] { return test::count_fds() <= fds; }, 10000))
      << test::count_fds() << " fds, " << fds << " before";
  long grown = test::memory_kib() - rss;
  if (g_getenv("WCC_SHOW_FDS")) test::show_fds();
  std::printf("after %d calls: threads %d (was %d), fds %d (was %d), RSS +%ld KiB\n", cycles,
              test::count_threads(), threads, test::count_fds(), fds, grown);
  EXPECT_LT(grown, 20 * 1024) << "RSS grew by " << grown << " KiB over 50 calls";
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int ret = RUN_ALL_TESTS();
  if (g_getenv("WCC_GST_DEINIT")) gst_deinit();  // with GST_TRACERS=leaks: what is left
  return ret;
}
