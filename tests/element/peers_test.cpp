// `peer` as a list (gst-plugin/peer-list.h): one sender with peer="a,b,c" max-calls=3 calls
// three viewers that wait; one viewer's pipeline restarts and it is called again, the other
// two calls go on undisturbed. Inside a network namespace of the test's own (netns-run.sh).
#include <gtest/gtest.h>

#include <memory>

#include "peer.h"

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

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
