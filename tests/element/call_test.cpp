// The webrtccall element, element to element through the real server, inside a network
// namespace of the test's own (tests/netns-run.sh).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "client.h"
#include "peer.h"
#include "protocol.h"
#include "raw-client.h"

using test::Peer;
using test::PeerOptions;
using test::RawClient;
using test::ServerProcess;

namespace {

bool received_media(Peer& p, int video, int audio) {
  return p.wait_until([&] { return p.video_buffers >= video && p.audio_buffers >= audio; }, 20000);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

class ElementCall : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << "webrtc-call-server did not start"; }
  ServerProcess server_;
};

// A call that sends and receives reports what it sends by its own codec on both ends: in
// such a call webrtcbin 1.22's outbound-rtp entries point at a receive pad's (empty) codec
// and may call the audio video, which left video-codec empty and video-bitrate 0 (and so no
// bitrate policy for the calls of the demo and the web client).
TEST_F(ElementCall, StatisticsOfACallBothWaysNameWhatItSends) {
  Peer bob("bob", server_.ws_url(), {.extra = "stats-interval=300"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob", .extra = "stats-interval=300"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(received_media(alice, 30, 30));
  ASSERT_TRUE(received_media(bob, 30, 30));
  for (auto [p, remote] : {std::pair<Peer*, const char*>{&alice, "bob"}, {&bob, "alice"}}) {
    GstStructure* s =
        p->wait_message("webrtccall-stats", {{"peer", remote}, {"video-codec", "VP8"}});
    ASSERT_TRUE(s) << "no statistics of the call with " << remote << " name VP8";
    // Later rounds too, with the video's own share of the bitrate.
    GstStructure* later = p->wait_message("webrtccall-stats", {{"peer", remote}});
    ASSERT_TRUE(later);
    double video = 0, all = 0;
    gst_structure_get_double(later, "video-bitrate", &video);
    gst_structure_get_double(later, "bitrate", &all);
    EXPECT_STREQ(gst_structure_get_string(later, "video-codec"), "VP8");
    EXPECT_GT(video, 0.0) << remote;
    EXPECT_LT(video, all) << remote << ": the audio is not video";
  }
}

TEST_F(ElementCall, AudioAndVideoBothWaysHangUpAndCallAgain) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());

  ASSERT_TRUE(
      alice.wait_message("webrtccall-call-started", {{"peer", "bob"}, {"direction", "outgoing"}}));
  ASSERT_TRUE(
      bob.wait_message("webrtccall-call-started", {{"peer", "alice"}, {"direction", "incoming"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received_media(alice, 30, 30)) << alice.video_buffers << " " << alice.audio_buffers;
  ASSERT_TRUE(received_media(bob, 30, 30)) << bob.video_buffers << " " << bob.audio_buffers;
  EXPECT_NE(bob.video_caps().find("video/x-raw"), std::string::npos) << bob.video_caps();
  EXPECT_NE(bob.video_caps().find("width=(int)320"), std::string::npos) << bob.video_caps();
  EXPECT_NE(bob.audio_caps().find("audio/x-raw"), std::string::npos) << bob.audio_caps();
  EXPECT_NE(alice.video_caps().find("height=(int)240"), std::string::npos);
  EXPECT_EQ(alice.src_pads(), 2);
  EXPECT_EQ(bob.src_pads(), 2);

  // Alice hangs up: both sides end the call and drop the call's pads; pipelines keep going.
  alice.hang_up("bob");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}});
  ASSERT_TRUE(ended);
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "alice hung up");
  EXPECT_TRUE(bob.wait_until([&] { return bob.src_pads() == 0; }, 5000));
  EXPECT_TRUE(alice.wait_until([&] { return alice.src_pads() == 0; }, 5000));
  // The deliberate hang-up is not redialed by the peer property.
  EXPECT_FALSE(alice.has_message("webrtccall-call-started", {{"peer", "bob"}}));

  // The next call, the other way round, works in the same pipelines.
  int before = alice.video_buffers;
  bob.call("alice");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
  EXPECT_TRUE(alice.wait_until([&] { return alice.video_buffers > before + 30; }, 20000));
  bob.hang_up("");
  ASSERT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

TEST_F(ElementCall, AbsentUserEndsTheCallWithAClearReason) {
  Peer alice("alice", server_.ws_url());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));
  alice.call("nobody");
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "nobody"}}, 10000);
  ASSERT_TRUE(ended);
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "nobody is not online");
  EXPECT_TRUE(alice.errors().empty());
}

TEST_F(ElementCall, RefusedCall) {
  Peer bob("bob", server_.ws_url(), {.extra = "auto-answer=false"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}});
  ASSERT_TRUE(ended);
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "bob declined the call");
  EXPECT_TRUE(
      bob.wait_message("webrtccall-call-refused", {{"peer", "alice"}, {"reason", "declined"}}));
  EXPECT_EQ(bob.src_pads(), 0);
}

TEST_F(ElementCall, GlareEndsInOneConnectedCall) {
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  Peer bob("bob", server_.ws_url(), {.peer = "alice"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 30000));
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}, 30000));
  // Over 2 s of media: longer than the first redial (1 s) of the peer property.
  EXPECT_TRUE(received_media(alice, 60, 60));
  EXPECT_TRUE(received_media(bob, 60, 60));
  // On the first attempt, whether or not the offers crossed (tests/element/rules_test.cpp
  // makes them cross for sure): each side started at most one call of each direction (a
  // redial would be a second outgoing one), exactly one side answered, and the only call that
  // ended is an offer dropped for glare.
  int answered = 0;
  for (Peer* p : {&alice, &bob}) {
    const std::string other = p == &alice ? "bob" : "alice";
    EXPECT_LE(p->count_messages("webrtccall-call-started", {{"direction", "outgoing"}}), 1);
    int incoming = p->count_messages("webrtccall-call-started", {{"direction", "incoming"}});
    EXPECT_LE(incoming, 1);
    answered += incoming;
    EXPECT_EQ(p->count_messages("webrtccall-call-ended",
                                {{"reason", "glare: answering the call of " + other + " instead"}}),
              p->count_messages("webrtccall-call-ended", {}));
  }
  EXPECT_EQ(answered, 1);
}

TEST_F(ElementCall, SettingNullMidCallReturnsQuickly) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(received_media(bob, 10, 10));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(gst_element_set_state(alice.pipeline(), GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5));
  std::printf(
      "set_state(NULL) mid-call took %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  // Bob hears about it through the hang-up.
  EXPECT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}));
}

TEST_F(ElementCall, UnreachableServerIsAnErrorNamingTheUri) {
  Peer alice("alice", "ws://127.0.0.1:9/ws");
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_until([&] { return !alice.errors().empty(); }, 10000));
  EXPECT_NE(alice.errors()[0].find("ws://127.0.0.1:9/ws"), std::string::npos) << alice.errors()[0];
}

TEST_F(ElementCall, OfferWithoutFingerprintOrGarbageIsRefused) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.run_until([&] { return contains(mallory.users, "bob"); }));

  // A valid-looking offer without a=fingerprint: webrtcbin 1.22 would take it.
  mallory.send(
      R"({"type":"video-offer","target":"bob","sdp":{"type":"offer","sdp":"v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"}})");
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "mallory"}});
  ASSERT_TRUE(ended);
  EXPECT_NE(std::string(gst_structure_get_string(ended, "reason")).find("fingerprint"),
            std::string::npos);
  EXPECT_TRUE(mallory.run_until([&] { return contains(mallory.types, "hang-up"); }));

  mallory.types.clear();
  mallory.send(R"({"type":"video-offer","target":"bob","sdp":{"type":"offer","sdp":"garbage"}})");
  ended = bob.wait_message("webrtccall-call-ended", {{"peer", "mallory"}});
  ASSERT_TRUE(ended);
  EXPECT_TRUE(mallory.run_until([&] { return contains(mallory.types, "hang-up"); }));
  EXPECT_TRUE(bob.errors().empty());
  EXPECT_EQ(bob.src_pads(), 0);
}

// A remote in another process (gst-launch-1.0), so that it can be killed or frozen.
class ProcessPeer {
 public:
  ProcessPeer(const std::string& name, const std::string& url) {
    std::string launch = "gst-launch-1.0 -q webrtccall name=c username=" + name +
                         " signaling-server=" + url +
                         " videotestsrc is-live=true ! video/x-raw,width=320,height=240,"
                         "framerate=30/1 ! c.video_0 audiotestsrc is-live=true ! c.audio_0";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + launch).c_str(), nullptr);
      _exit(127);
    }
  }
  ~ProcessPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGCONT);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) { kill(pid_, sig); }

 private:
  pid_t pid_ = -1;
};

TEST_F(ElementCall, RemoteKilledEndsTheCall) {
  ProcessPeer bob("bob", server_.ws_url());
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 20000));
  ASSERT_TRUE(received_media(alice, 10, 10));
  auto start = std::chrono::steady_clock::now();
  bob.signal(SIGKILL);
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}, 15000);
  ASSERT_TRUE(ended);
  std::printf("SIGKILL: call ended after %lld ms: %s\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count()),
              gst_structure_get_string(ended, "reason"));
  EXPECT_TRUE(alice.wait_until([&] { return alice.src_pads() == 0; }, 5000));
  EXPECT_TRUE(alice.errors().empty());
}

TEST_F(ElementCall, RemoteFrozenWithoutHangUpEndsWithinTheTimeout) {
  // A frozen process sends nothing, not even a TCP reset: like a browser tab whose peer
  // connection was closed while signaling stays up. Only the silence tells.
  ProcessPeer bob("bob", server_.ws_url());
  Peer alice("alice", server_.ws_url(), {.peer = "bob", .extra = "call-timeout=3"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 20000));
  ASSERT_TRUE(received_media(alice, 10, 10));
  auto start = std::chrono::steady_clock::now();
  bob.signal(SIGSTOP);
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}, 10000);
  ASSERT_TRUE(ended);
  auto took = std::chrono::steady_clock::now() - start;
  std::string reason = gst_structure_get_string(ended, "reason");
  EXPECT_NE(reason.find("remote gone"), std::string::npos) << reason;
  EXPECT_LT(took, std::chrono::seconds(3 + 2));  // the timeout, checked every second
  EXPECT_GE(took, std::chrono::seconds(2));
}

TEST_F(ElementCall, PeerIsCalledWhenItComesOnlineAndAgainWhenItComesBack) {
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {}));
  {
    Peer bob("bob", server_.ws_url());
    ASSERT_TRUE(bob.play());
    ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}));
    ASSERT_TRUE(received_media(bob, 5, 5));
  }  // bob's pipeline stops: not a deliberate hang-up of bob's user
  ASSERT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));
  Peer bob_again("bob", server_.ws_url());
  ASSERT_TRUE(bob_again.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "bob"}}, 40000));
  EXPECT_TRUE(received_media(bob_again, 5, 5));
}

// Releasing an input pad mid-call detaches its branch from every call: the call goes on with
// the other input (it ended the call before, "input removed"; tests/element/
// renegotiation_test.cpp checks the offers that follow).
TEST_F(ElementCall, ReleasingAnInputPadMidCallKeepsTheCallWithTheOtherInputs) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(received_media(bob, 10, 10));
  GstPad* pad = gst_element_get_static_pad(alice.element(), "video_0");
  ASSERT_TRUE(pad);
  GstPad* peer = gst_pad_get_peer(pad);
  // The source goes on pushing: drop its buffers, or the first one pushed after the unlink
  // fails the source with not-linked (every time under ASan, which is slower).
  gst_pad_add_probe(
      peer, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_DROP; }, nullptr, nullptr);
  gst_pad_unlink(peer, pad);
  gst_object_unref(peer);
  gst_element_release_request_pad(alice.element(), pad);
  gst_object_unref(pad);
  int audio = bob.audio_buffers;
  EXPECT_TRUE(received_media(bob, 0, audio + 100));  // over 2 s of audio after the release
  EXPECT_FALSE(alice.has_message("webrtccall-call-ended", {}));
  EXPECT_FALSE(bob.has_message("webrtccall-call-ended", {}));
  EXPECT_EQ(alice.calls(), std::vector<std::string>{"bob"});
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
}

class ElementCodec : public ElementCall, public ::testing::WithParamInterface<const char*> {};

TEST_P(ElementCodec, VideoBothWays) {
  std::string extra = std::string("video-codec=") + GetParam();
  Peer bob("bob", server_.ws_url(), {.extra = extra});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob", .extra = extra});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(received_media(alice, 20, 10));
  ASSERT_TRUE(received_media(bob, 20, 10));
  EXPECT_NE(bob.video_caps().find("width=(int)320"), std::string::npos) << bob.video_caps();
}

INSTANTIATE_TEST_SUITE_P(Codecs, ElementCodec, ::testing::Values("vp8", "h264", "vp9"));

TEST_F(ElementCall, TakenNameIsRenamedByTheServer) {
  Peer first("carol", server_.ws_url(), {.send_video = false, .send_audio = false});
  ASSERT_TRUE(first.play());
  ASSERT_TRUE(first.wait_message("webrtccall-registered", {{"name", "carol"}}));
  Peer second("carol", server_.ws_url(), {.send_video = false, .send_audio = false});
  ASSERT_TRUE(second.play());
  GstStructure* reg = second.wait_message("webrtccall-registered", {{"name", "carol1"}});
  ASSERT_TRUE(reg);
  gboolean renamed = FALSE;
  gst_structure_get_boolean(reg, "renamed", &renamed);
  EXPECT_TRUE(renamed);
}

TEST_F(ElementCall, IceRestrictedToLoopback) {
  // ice-addresses limits ICE to the given addresses; 127.0.0.1 makes loopback usable, which
  // libnice never gathers by itself.
  Peer bob("bob", server_.ws_url(), {.extra = "ice-addresses=<\"127.0.0.1\">"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  Peer alice("alice", server_.ws_url(), {.peer = "bob", .extra = "ice-addresses=<\"127.0.0.1\">"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(received_media(bob, 10, 10));
}

// A call that fails inside webrtcbin (here: it refuses the answer) is redialed by the peer
// property. The failure path ends the call from within the Call, whose teardown can finish at
// once and free it: the engine used to compare the freed peer name and never redial.
TEST_F(ElementCall, PeerRedialsAfterACallFailsInWebrtcbin) {
  RawClient mallory(server_.ws_url(), "mallory");
  ASSERT_TRUE(mallory.run_until([&] { return mallory.users.size() == 1; }));
  // Nothing to send: no branch to detach, so the failed call's teardown is immediate.
  Peer alice("alice", server_.ws_url(),
             {.send_video = false, .send_audio = false, .peer = "mallory"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(mallory.run_until([&] { return contains(mallory.types, "video-offer"); }));
  // One m-line for an offer of two: webrtcbin refuses it (after our own checks pass).
  mallory.send(
      R"({"type":"video-answer","target":"alice","sdp":{"type":"answer","sdp":"v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:active\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 OPUS/48000/2\r\n"}})");
  GstStructure* ended = alice.wait_message("webrtccall-call-ended", {{"peer", "mallory"}});
  ASSERT_TRUE(ended);
  mallory.types.clear();
  EXPECT_TRUE(mallory.run_until([&] { return contains(mallory.types, "video-offer"); }, 5000))
      << "alice did not call mallory again";
  EXPECT_TRUE(alice.errors().empty());
}

// An error inside one call (here nicesrc's, as when a transport fails mid-call; a decoder fed a
// corrupt stream is the same) ends that call and reaches the application as a warning: the
// pipeline goes on and takes the next call.
TEST_F(ElementCall, AnErrorInsideACallEndsTheCallNotThePipeline) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  Peer alice("alice", server_.ws_url());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(alice.wait_message("webrtccall-registered", {{"name", "alice"}}));
  alice.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  ASSERT_TRUE(received_media(bob, 10, 10));

  GstElement* nicesrc = nullptr;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bob.element()));
  GValue item = G_VALUE_INIT;
  while (!nicesrc && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "nicesrc")) nicesrc = GST_ELEMENT(gst_object_ref(e));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  ASSERT_TRUE(nicesrc);
  GError* error = g_error_new_literal(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
                                      "Could not read from resource.");
  gst_element_post_message(nicesrc,
                           gst_message_new_error(GST_OBJECT(nicesrc), error, "posted by the test"));
  g_error_free(error);
  gst_object_unref(nicesrc);

  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}});
  ASSERT_TRUE(ended);
  EXPECT_NE(std::string(gst_structure_get_string(ended, "reason")).find("Could not read"),
            std::string::npos)
      << gst_structure_get_string(ended, "reason");
  EXPECT_TRUE(bob.errors().empty()) << bob.errors()[0];
  GstState state = GST_STATE_NULL;
  gst_element_get_state(bob.pipeline(), &state, nullptr, 0);
  EXPECT_EQ(state, GST_STATE_PLAYING);

  ASSERT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}));
  int before = bob.video_buffers;
  alice.call("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  EXPECT_TRUE(bob.wait_until([&] { return bob.video_buffers > before + 10; }, 20000));
  EXPECT_TRUE(bob.errors().empty());
}

// The calls property tells when a call starts as well as when it ends (notify::calls).
TEST_F(ElementCall, CallsPropertyIsNotifiedWhenACallStartsAndEnds) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {{"name", "bob"}}));
  struct Seen {
    std::mutex mutex;
    std::vector<std::vector<std::string>> lists;
  } seen;
  g_signal_connect(bob.element(), "notify::calls",
                   G_CALLBACK(+[](GObject* e, GParamSpec*, gpointer data) {
                     auto* s = static_cast<Seen*>(data);
                     gchar** calls = nullptr;
                     g_object_get(e, "calls", &calls, nullptr);
                     std::vector<std::string> list;
                     for (gchar** c = calls; c && *c; ++c) list.emplace_back(*c);
                     g_strfreev(calls);
                     std::lock_guard lock(s->mutex);
                     s->lists.push_back(list);
                   }),
                   &seen);
  Peer alice("alice", server_.ws_url(), {.peer = "bob"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}));
  alice.hang_up("bob");
  ASSERT_TRUE(bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}));
  g_signal_handlers_disconnect_by_data(bob.element(), &seen);
  std::lock_guard lock(seen.mutex);
  ASSERT_EQ(seen.lists.size(), 2u);
  EXPECT_EQ(seen.lists[0], std::vector<std::string>{"alice"});
  EXPECT_TRUE(seen.lists[1].empty());
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
