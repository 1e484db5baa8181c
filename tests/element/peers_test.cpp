// `peer` as a list (gst-plugin/peer-list.h): one sender with peer="a,b,c" max-calls=3 calls
// three viewers that wait; one viewer's pipeline restarts and it is called again, the other
// two calls go on undisturbed. Join pacing (max-connecting, join-pacer.h). Inside a network
// namespace of the test's own (netns-run.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>

#include "peer.h"
#include "raw-client.h"

using test::Peer;
using test::PeerOptions;
using test::ServerProcess;

namespace {

std::unique_ptr<Peer> viewer(const std::string& name, const std::string& url) {
  auto p = std::make_unique<Peer>(name, url, PeerOptions{.send_video = false, .send_audio = false});
  EXPECT_TRUE(p->play());
  EXPECT_TRUE(p->wait_message("webrtccall-registered", {{"name", name}}));
  return p;
}

bool gets_video(Peer& p, int frames) {
  int start = p.video_buffers;
  return p.wait_until([&] { return p.video_buffers >= start + frames; }, 20000);
}

}  // namespace

TEST(ElementPeers, ListCallsEachAndRedialsARestartedOne) {
  ServerProcess server;
  ASSERT_TRUE(server.ok());
  const std::string url = server.ws_url();
  auto a = viewer("a", url);
  auto b = viewer("b", url);
  auto c = viewer("c", url);
  Peer cam("cam", url, {.send_audio = false, .peer = "\"a, b,c\"", .extra = "max-calls=3"});
  ASSERT_TRUE(cam.play());
  for (Peer* v : {a.get(), b.get(), c.get()}) {
    ASSERT_TRUE(v->wait_message("webrtccall-call-connected", {{"peer", "cam"}}));
    ASSERT_TRUE(gets_video(*v, 30));
  }
  EXPECT_EQ(cam.calls(), (std::vector<std::string>{"a", "b", "c"}));

  // b's pipeline stops (it hangs up "stopped": not deliberate, so it is redialed) and comes
  // back under the same name.
  b.reset();
  ASSERT_TRUE(cam.wait_message("webrtccall-call-ended", {{"peer", "b"}}));
  b = viewer("b", url);
  ASSERT_TRUE(b->wait_message("webrtccall-call-connected", {{"peer", "cam"}}, 20000));
  ASSERT_TRUE(gets_video(*b, 30));
  // a and c were never interrupted, and still get video.
  EXPECT_FALSE(cam.has_message("webrtccall-call-ended", {{"peer", "a"}}));
  EXPECT_FALSE(cam.has_message("webrtccall-call-ended", {{"peer", "c"}}));
  EXPECT_TRUE(gets_video(*a, 30));
  EXPECT_TRUE(gets_video(*c, 30));
  EXPECT_EQ(cam.calls().size(), 3u);

  // A deliberate hang-up from c: c is not called again (a redial would start within 1 s), the
  // others stay.
  ASSERT_TRUE(cam.wait_message("webrtccall-call-started", {{"peer", "c"}}));  // the first call
  c->hang_up("cam");
  ASSERT_TRUE(cam.wait_message("webrtccall-call-ended", {{"peer", "c"}}));
  EXPECT_FALSE(cam.wait_message("webrtccall-call-started", {{"peer", "c"}}, 3000));
  EXPECT_EQ(cam.calls(), (std::vector<std::string>{"a", "b"}));
}

// Join pacing: with max-connecting=1, four viewers calling at once are answered one after
// the other (each once the one before connected), and all get video. Without pacing
// (max-connecting=0) the four are connecting at once: the check is not vacuous.
static int most_connecting(Peer& cam) {
  std::set<std::string> connecting;
  std::size_t most = 0;
  for (const std::string& m : cam.message_log()) {
    std::string name = m.substr(0, m.find(' ')), peer = m.substr(m.find(' ') + 1);
    if (name == "webrtccall-call-started") connecting.insert(peer);
    if (name == "webrtccall-call-connected" || name == "webrtccall-call-ended") {
      connecting.erase(peer);
    }
    most = std::max(most, connecting.size());
  }
  return static_cast<int>(most);
}

static int join_at_once(const std::string& max_connecting) {
  ServerProcess server;
  EXPECT_TRUE(server.ok());
  const std::string url = server.ws_url();
  Peer cam("cam", url,
           {.send_audio = false, .extra = "max-calls=5 max-connecting=" + max_connecting});
  EXPECT_TRUE(cam.play());
  EXPECT_TRUE(cam.wait_message("webrtccall-registered", {}));
  std::vector<std::unique_ptr<Peer>> viewers;
  for (const char* n : {"v1", "v2", "v3", "v4"}) {
    viewers.push_back(std::make_unique<Peer>(
        n, url, PeerOptions{.send_video = false, .send_audio = false, .peer = "cam"}));
  }
  for (auto& v : viewers) EXPECT_TRUE(v->play());
  for (auto& v : viewers) {
    EXPECT_TRUE(v->wait_message("webrtccall-call-connected", {{"peer", "cam"}}, 30000));
    EXPECT_TRUE(gets_video(*v, 10));
  }
  EXPECT_EQ(cam.calls().size(), 4u);
  EXPECT_FALSE(cam.has_message("webrtccall-call-refused", {}));
  return most_connecting(cam);
}

TEST(ElementPeers, MaxConnectingAnswersOneAfterTheOther) {
  EXPECT_EQ(join_at_once("1"), 1);
}

TEST(ElementPeers, WithoutPacingTheyConnectAtOnce) {
  EXPECT_GT(join_at_once("0"), 1);
}

// An offer held for connect-timeout is refused with "timeout", and the viewer redials until
// a slot frees. The one slot (max-connecting=1) is held by an outgoing call to mallory, a raw
// client that never answers (answer-timeout 30 s).
TEST(ElementPeers, HeldTooLongIsRefusedAndTheViewerRedials) {
  ServerProcess server;
  ASSERT_TRUE(server.ok());
  const std::string url = server.ws_url();
  auto mallory = std::make_unique<test::RawClient>(url, "mallory");
  Peer cam("cam", url,
           {.send_audio = false,
            .peer = "mallory",
            .extra = "max-calls=3 max-connecting=1 connect-timeout=2 answer-timeout=30"});
  ASSERT_TRUE(cam.play());
  ASSERT_TRUE(mallory->run_until([&] { return !mallory->types.empty(); }));  // cam's offer
  EXPECT_EQ(mallory->types.front(), "video-offer");
  ASSERT_TRUE(cam.wait_message("webrtccall-call-started", {{"peer", "mallory"}}));

  Peer v("v", url, {.send_video = false, .send_audio = false, .peer = "cam"});
  ASSERT_TRUE(v.play());
  ASSERT_TRUE(v.wait_message("webrtccall-call-started", {{"peer", "cam"}}));
  auto offered = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      cam.wait_message("webrtccall-call-refused", {{"peer", "v"}, {"reason", "timeout"}}, 10000));
  EXPECT_GE(std::chrono::steady_clock::now() - offered, std::chrono::milliseconds(1500));
  EXPECT_FALSE(cam.has_message("webrtccall-call-started", {{"peer", "v"}}));  // never answered
  GstStructure* ended = v.wait_message("webrtccall-call-ended", {{"peer", "cam"}});
  ASSERT_NE(ended, nullptr);
  EXPECT_STREQ(gst_structure_get_string(ended, "reason"), "cam ended the call: timeout");
  // It redials (and is held again while mallory's call holds the slot).
  ASSERT_TRUE(v.wait_message("webrtccall-call-started", {{"peer", "cam"}}, 5000));

  // mallory leaves: its call ends, the slot is free, v's offer is answered.
  mallory.reset();
  ASSERT_TRUE(cam.wait_message("webrtccall-call-ended", {{"peer", "mallory"}}));
  ASSERT_TRUE(v.wait_message("webrtccall-call-connected", {{"peer", "cam"}}, 20000));
  EXPECT_TRUE(gets_video(v, 10));
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
