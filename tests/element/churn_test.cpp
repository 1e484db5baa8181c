// Calls that churn: offer, answer, hang-up at the instant the answer is applied, the next
// offer at once. Two webrtccall elements in this process talk through the in-process fake
// signaller (fake-signaller.h), or through webrtc-call-server, inside the test's network
// namespace (tests/netns-run.sh).
// What a user would check afterwards: the process has the threads, fds and memory it had,
// neither element holds a webrtcbin, and a real call still decodes frames.
#include <gtest/gtest.h>

#include <functional>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "fake-signaller.h"
#include "peer.h"

using test::Peer;

namespace {

// Elements made by `factory` anywhere inside `bin`.
int count_elements(GstElement* bin, const char* factory) {
  int n = 0;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) ++n;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

int env_int(const char* name, int fallback) {
  const char* v = g_getenv(name);
  return v ? atoi(v) : fallback;
}

// Runs WCC_CHURN_CYCLES (100) quick calls after 3 of warm-up, then checks that alice and bob
// are back where they were: threads, fds, memory, no webrtcbin left. `what` names the cycles in
// the printed figures.
void expect_churn_leaves_nothing(Peer& alice, Peer& bob, const std::function<bool(int)>& quick_call,
                                 const char* what) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(quick_call(-i));  // warm-up of the quick path
  test::wait_settled();
  int threads = test::count_threads(), fds = test::count_fds();
  long rss = test::memory_kib();

  const int cycles = env_int("WCC_CHURN_CYCLES", 100);
  int done = 0;
  while (done < cycles && quick_call(done)) ++done;
  ASSERT_EQ(done, cycles);

  // Torn-down calls finish in the background (threads join, sockets close): wait for it.
  bool threads_back = alice.wait_until([&] { return test::count_threads() <= threads; }, 15000);
  bool fds_back = alice.wait_until([&] { return test::count_fds() <= fds; }, 15000);
  long grown = test::memory_kib() - rss;
  std::printf(
      "after %d %s: threads %d (was %d), fds %d (was %d), RSS %+ld KiB, "
      "webrtcbins alice %d bob %d\n",
      cycles, what, test::count_threads(), threads, test::count_fds(), fds, grown,
      count_elements(alice.element(), "webrtcbin"), count_elements(bob.element(), "webrtcbin"));
  if (g_getenv("WCC_SHOW_FDS")) test::show_fds();
  EXPECT_TRUE(threads_back) << test::count_threads() << " threads, " << threads << " before";
  EXPECT_TRUE(fds_back) << test::count_fds() << " fds, " << fds << " before";
  EXPECT_LT(grown, 20 * 1024) << "RSS grew by " << grown << " KiB over " << cycles << " calls";
  EXPECT_EQ(count_elements(alice.element(), "webrtcbin"), 0);
  EXPECT_EQ(count_elements(bob.element(), "webrtcbin"), 0);
}

}  // namespace

class Churn : public ::testing::Test {
 protected:
  void TearDown() override { test::fake_hub_reset(); }
};

// Bob takes every offer: the churn is the point here, not the per-caller offer rate (5/s,
// burst 20 by default) that would cut it short, nor the unconnected-backoff, which refuses a
// caller whose calls held a slot unconnected for connect-timeout (10 s) in total: 100 calls
// cut short at the answer reach that under ASan (about 100 ms each, encoders started per
// call), and bob then answers "busy".
constexpr const char* kTakeEveryOffer = "offer-rate=0 unconnected-backoff=0";

TEST_F(Churn, CallsHungUpRightAfterTheAnswerLeaveNothingBehind) {
  Peer bob("bob", "unused", {.extra = kTakeEveryOffer, .fake_signaller = true});
  Peer alice("alice", "unused", {.fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));

  // A full call first: first-use allocations, the DTLS certificate, the codecs' threads.
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= 3; }));
  alice.hang_up("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));

  // From now on alice hangs up on its own signaling thread right after bob's answer was handed
  // to it (set-remote-description emitted, nothing else processed in between).
  test::fake_hub_set_after_description(
      [&](const std::string&, const std::string& to, GstWebRTCSDPType type) {
        if (to == "alice" && type == GST_WEBRTC_SDP_TYPE_ANSWER) alice.hang_up("bob");
      });
  auto quick_call = [&](int i) {
    alice.call("bob");
    bool ok = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}, 10000) &&
              bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}, 10000);
    EXPECT_TRUE(ok) << "cycle " << i;
    return ok;
  };
  expect_churn_leaves_nothing(alice, bob, quick_call, "quick calls");
  if (HasFatalFailure()) return;
  EXPECT_EQ(alice.src_pads(), 0);
  EXPECT_EQ(bob.src_pads(), 0);

  // A real call still works, with frames decoded both ways.
  test::fake_hub_set_after_description(nullptr);
  int bob_video = bob.video_buffers, alice_video = alice.video_buffers;
  int bob_audio = bob.audio_buffers, alice_audio = alice.audio_buffers;
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  EXPECT_TRUE(bob.wait_until(
      [&] { return bob.video_buffers >= bob_video + 30 && bob.audio_buffers >= bob_audio + 30; }));
  EXPECT_TRUE(alice.wait_until([&] {
    return alice.video_buffers >= alice_video + 30 && alice.audio_buffers >= alice_audio + 30;
  }));
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

// The same through webrtc-call-server: bob's answer reaches alice over the WebSocket; alice
// hangs up from inside its webrtcbin's set-remote-description (signaling state back to
// stable), and bob gets the hang-up moments after sending that answer. A call a few ms long
// sends some 10 messages (offer, candidates, hang-up): the server's rate limit (50/s) would
// refuse most of them, so it is raised here.
TEST(ChurnThroughServer, CallsHungUpAtTheAnswerLeaveNothingBehind) {
  test::ServerProcess server({"--max-rate", "100000", "--max-burst", "100000"});
  ASSERT_TRUE(server.ok()) << "webrtc-call-server did not start";
  Peer bob("bob", server.ws_url(), {.extra = kTakeEveryOffer});
  Peer alice("alice", server.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}));
  ASSERT_TRUE(alice.wait_until([&] {
    gchar** users = nullptr;
    g_object_get(alice.element(), "users", &users, nullptr);
    bool online = users && g_strv_contains(users, "bob");
    g_strfreev(users);
    return online;
  }));

  struct Hook {
    Peer* alice;
    std::atomic<bool> armed{false};
  } hook{&alice};
  g_signal_connect(alice.pipeline(), "deep-element-added",
                   G_CALLBACK(+[](GstBin*, GstBin*, GstElement* e, gpointer data) {
                     GstElementFactory* f = gst_element_get_factory(e);
                     if (!f || !g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) return;
                     g_signal_connect(e, "notify::signaling-state",
                                      G_CALLBACK(+[](GstElement* webrtc, GParamSpec*, gpointer d) {
                                        auto* h = static_cast<Hook*>(d);
                                        GstWebRTCSignalingState state;
                                        g_object_get(webrtc, "signaling-state", &state, nullptr);
                                        if (state == GST_WEBRTC_SIGNALING_STATE_STABLE &&
                                            h->armed.exchange(false))
                                          h->alice->hang_up("bob");
                                      }),
                                      data);
                   }),
                   &hook);
  auto quick_call = [&](int i) {
    hook.armed = true;
    alice.call("bob");
    bool ok = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}, 10000) &&
              bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}, 10000);
    EXPECT_TRUE(ok) << "cycle " << i;
    return ok;
  };
  expect_churn_leaves_nothing(alice, bob, quick_call,
                              "calls hung up at the answer through the server");
  if (::testing::Test::HasFatalFailure()) return;

  // A real call still works.
  int bob_video = bob.video_buffers, alice_video = alice.video_buffers;
  alice.call("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  EXPECT_TRUE(bob.wait_until([&] { return bob.video_buffers >= bob_video + 30; }));
  EXPECT_TRUE(alice.wait_until([&] { return alice.video_buffers >= alice_video + 30; }));
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int ret = RUN_ALL_TESTS();
  if (g_getenv("WCC_GST_DEINIT")) gst_deinit();  // with GST_TRACERS=leaks: what is left
  return ret;
}
