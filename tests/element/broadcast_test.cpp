// One sender, many viewers (issue 10): a 640x480@30 moving pattern from a webrtccall with
// max-calls=16 to 10 wcc-viewer viewers in another network namespace
// (tests/netns-pair-run.sh: sender 10.77.1.1, viewers 10.77.1.2). All decode; one viewer
// process is SIGKILLed (the server tells the sender at once: its WebSocket closed), another
// frozen with SIGSTOP (its WebSocket stays: call-timeout ends its call), and the others go on
// without a gap over 1 s while the threads and fds of both calls go; a late viewer decodes
// its first frame within 1 s of connecting; the sender's encoder stays one VP8 encoder
// throughout.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "../viewer/viewer-process.h"
#include "peer.h"

using test::Peer;
using test::PeerOptions;
using test::ServerProcess;
using test::ViewerEvent;
using test::ViewerProcess;

namespace {

std::vector<std::string> strv_property(GstElement* e, const char* name) {
  gchar** v = nullptr;
  g_object_get(e, name, &v, nullptr);
  std::vector<std::string> out;
  for (gchar** p = v; p && *p; ++p) out.emplace_back(*p);
  g_strfreev(v);
  return out;
}

// Viewers that printed a first frame.
int decoding(const ViewerProcess& p) {
  std::set<std::string> names;
  for (const ViewerEvent& e : p.events()) {
    if (e.event == "first-frame") names.insert(e.viewer);
  }
  return static_cast<int>(names.size());
}

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

}  // namespace

TEST(Broadcast, TenViewersOneKilledOneLate) {
  if (!std::getenv("WCC_VIEWERS_EXEC")) GTEST_SKIP() << "needs tests/netns-pair-run.sh";
  const std::string sender_addr = env_or("WCC_SENDER_ADDRESS", "10.77.1.1");
  const std::string viewers_addr = env_or("WCC_VIEWERS_ADDRESS", "10.77.1.2");
  // Every viewer comes from one address.
  ServerProcess server({"--address", sender_addr, "--max-connections-per-address", "1000"});
  ASSERT_TRUE(server.ok());
  const std::string url = server.ws_url();

  PeerOptions o;
  o.send_audio = false;
  o.width = 640;
  o.height = 480;
  // call-timeout stays 10 s: a receive-only viewer sends nothing but RTCP receiver reports,
  // every 5 s or so (randomized up to 7.5 s); with call-timeout=4, six of eight healthy
  // viewers were ended as "remote gone".
  o.extra = "max-calls=16 video-codec=vp8 ice-addresses=<\"" + sender_addr + "\">";
  Peer cam("cam", url, o);
  ASSERT_TRUE(cam.play());
  ASSERT_TRUE(cam.wait_message("webrtccall-registered", {}));

  // The encoders, polled all along: never more than one, VP8 once a call sends.
  std::atomic<bool> polling{true};
  std::mutex enc_mutex;
  std::set<std::vector<std::string>> seen_encoders;
  std::thread poller([&] {
    while (polling) {
      auto e = strv_property(cam.element(), "encoders");
      {
        std::lock_guard lock(enc_mutex);
        seen_encoders.insert(e);
      }
      g_usleep(100 * 1000);
    }
  });

  auto viewer_args = [&](const std::string& name, int count) {
    std::vector<std::string> a = {"--server", url,   "--name",        name,
                                  "--call",   "cam", "--ice-address", viewers_addr};
    if (count > 1) {
      a.push_back("--count");
      a.push_back(std::to_string(count));
    }
    return a;
  };
  // Eight viewers in one process, and two of their own: one to be killed, one frozen.
  ViewerProcess eight(viewer_args("v", 8));
  ASSERT_TRUE(eight.wait([&] { return decoding(eight) == 8; }, 60000))
      << decoding(eight) << " of 8 viewers decode";
  test::wait_settled();
  const int threads_before = test::count_threads(), fds_before = test::count_fds();

  auto killed = std::make_unique<ViewerProcess>(viewer_args("killed", 1));
  auto frozen = std::make_unique<ViewerProcess>(viewer_args("frozen", 1));
  ASSERT_TRUE(killed->wait([&] { return decoding(*killed) == 1; }, 30000));
  ASSERT_TRUE(frozen->wait([&] { return decoding(*frozen) == 1; }, 30000));
  ASSERT_TRUE(cam.wait_until([&] { return cam.calls().size() == 10; }, 5000));
  // Ten decode. From here on the eight must tick with frames and without a gap.
  auto since_ten = std::chrono::steady_clock::now();

  // SIGKILL: the kernel closes its WebSocket, the server tells the sender at once.
  auto killed_at = std::chrono::steady_clock::now();
  killed->stop(SIGKILL);
  killed.reset();  // its reader thread and pipe are the test's, not the sender's
  GstStructure* ended = cam.wait_message("webrtccall-call-ended", {{"peer", "killed"}}, 15000);
  ASSERT_NE(ended, nullptr);
  EXPECT_LE(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(3));
  std::fprintf(stderr, "killed: %s\n", gst_structure_get_string(ended, "reason"));

  // SIGSTOP: the WebSocket stays open and nothing arrives: call-timeout (10 s) ends the call.
  auto frozen_at = std::chrono::steady_clock::now();
  kill(frozen->pid(), SIGSTOP);
  ended = cam.wait_message("webrtccall-call-ended", {{"peer", "frozen"}}, 20000);
  ASSERT_NE(ended, nullptr);
  auto ended_at = std::chrono::steady_clock::now();
  EXPECT_GE(ended_at - frozen_at, std::chrono::seconds(9)) << "ended before call-timeout";
  const std::string reason = gst_structure_get_string(ended, "reason");
  EXPECT_NE(reason.find("remote gone"), std::string::npos) << reason;
  frozen->stop(SIGKILL);
  frozen.reset();
  EXPECT_EQ(cam.calls().size(), 8u);
  // Two more ticks of every viewer after the end.
  ASSERT_TRUE(eight.wait(
      [&] {
        std::map<std::string, int> ticks;
        for (const ViewerEvent& e : eight.events()) {
          if (e.event == "tick" && e.received > ended_at) ticks[e.viewer]++;
        }
        return ticks.size() == 8 &&
               std::all_of(ticks.begin(), ticks.end(), [](auto& t) { return t.second >= 2; });
      },
      10000));

  // The others went on: every tick from the tenth join on has frames and no gap over 1 s.
  std::map<std::string, int> ticks;
  for (const ViewerEvent& e : eight.events()) {
    if (e.event != "tick" || e.received <= since_ten) continue;
    ticks[e.viewer]++;
    EXPECT_GT(e.num("frames"), 0) << e.viewer << " got no frame in a second";
    EXPECT_LE(e.num("max_gap_ms"), 1000) << e.viewer << " had a gap";
  }
  EXPECT_EQ(ticks.size(), 8u);
  for (auto& [v, n] : ticks) EXPECT_GE(n, 10) << v;  // the 10 s of call-timeout and 2 more

  // The ended calls left nothing behind on the sender.
  test::wait_settled();
  EXPECT_LE(test::count_threads(), threads_before + 1) << "threads of the ended calls left";
  EXPECT_LE(test::count_fds(), fds_before + 1) << "fds of the ended calls left";

  // A late viewer: its first frame within 1 s of connecting, and a keyframe.
  ViewerProcess late(viewer_args("late", 1));
  ASSERT_TRUE(late.wait([&] { return decoding(late) == 1; }, 30000));
  for (const ViewerEvent& e : late.events()) {
    if (e.event != "first-frame") continue;
    EXPECT_GE(e.num("ms_after_connected"), 0);
    EXPECT_LE(e.num("ms_after_connected"), 1000);
  }
  EXPECT_EQ(cam.calls().size(), 9u);

  polling = false;
  poller.join();
  {
    std::lock_guard lock(enc_mutex);
    for (const auto& e : seen_encoders) {
      EXPECT_LE(e.size(), 1u) << "more than one encoder";
      if (!e.empty()) {
        EXPECT_EQ(e[0], "video_0:VP8");
      }
    }
    EXPECT_TRUE(seen_encoders.contains({"video_0:VP8"}));
  }
  // Clean exits: SIGTERM tears every pipeline down and exits 0.
  int status = late.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  status = eight.stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(cam.errors().empty());
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
