// Statistics and the bitrate policy of the shared encoder (issue 10), seen as a broadcaster
// sees them: a sender element with five viewers in another network namespace
// (tests/netns-pair-run.sh), each a process of its own (this program with --viewer) that
// counts the video bytes it receives. webrtccall-stats arrive every stats-interval per call
// with plausible values; with 20 % of one viewer's packets dropped (nftables in the viewers'
// namespace, matching the address only that viewer uses) its packets-lost and loss rise and
// the others' do not; with five viewers the shared VP8 encoder keeps its bitrate, with two
// (one of them the lossy one) it backs off.
//
// The viewers are wcc-viewer processes (tests/viewer) with --no-decode, one per viewer so that
// some can be killed; each tick says how many video bytes it received.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "../viewer/viewer-process.h"
#include "peer.h"

using test::Peer;
using test::PeerOptions;
using test::ServerProcess;

namespace {

const char* env(const char* name, const char* fallback) {
  const char* v = g_getenv(name);
  return v && *v ? v : fallback;
}

constexpr unsigned kIntervalMs = 500;
constexpr unsigned kMaxKbps = 600;
const char* kLossyAddress = "10.77.1.3";  // added to the viewers' end of the veth

// A viewer: wcc-viewer calling the sender (tests/viewer/viewer-process.h).
struct Viewer {
  Viewer(const std::string& viewer_name, const std::string& url, const std::string& address)
      : name(viewer_name),
        process({"--server", url, "--name", viewer_name, "--call", "sender", "--ice-address",
                 address, "--no-decode"}) {}
  // The video kbit/s it received over its last `ticks` ticks (one a second), or -1.
  double kbps_over(std::size_t ticks) const {
    std::vector<double> bytes;
    for (const auto& e : process.events()) {
      if (e.event == "tick") bytes.push_back(e.num("bytes", 0));
    }
    if (bytes.size() < ticks) return -1;
    double sum = 0;
    for (std::size_t i = bytes.size() - ticks; i < bytes.size(); ++i) sum += bytes[i];
    return sum * 8 / 1000 / static_cast<double>(ticks);
  }
  std::string name;
  test::ViewerProcess process;
};

int run(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc != 0) std::fprintf(stderr, "command failed (%d): %s\n", rc, command.c_str());
  return rc;
}

double number(const GstStructure* s, const char* field) {
  const GValue* v = gst_structure_get_value(s, field);
  if (!v) return -12345;
  GValue d = G_VALUE_INIT;
  g_value_init(&d, G_TYPE_DOUBLE);
  double out = g_value_transform(v, &d) ? g_value_get_double(&d) : -12345;
  g_value_unset(&d);
  return out;
}

// vp8enc's target-bitrate in kbit/s (the one encoder the sender runs), or -1.
int encoder_kbps(GstElement* bin) {
  int kbps = -1;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "vp8enc")) {
      gint bps = 0;
      g_object_get(e, "target-bitrate", &bps, nullptr);
      kbps = bps / 1000;
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return kbps;
}

}  // namespace

class Stats : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!g_getenv("WCC_VIEWERS_EXEC")) GTEST_SKIP() << "needs tests/netns-pair-run.sh";
    ASSERT_TRUE(server_.ok()) << "webrtc-call-server did not start";
    // The lossy viewer's own address, so that nftables can drop its packets only.
    ASSERT_EQ(run(std::string(env("WCC_VIEWERS_EXEC", "")) + " ip addr add " + kLossyAddress +
                  "/24 dev wccv0"),
              0);
  }
  void TearDown() override {
    if (g_getenv("WCC_VIEWERS_EXEC")) {
      run(std::string(env("WCC_VIEWERS_EXEC", "")) + " nft delete table inet wcc_loss 2>/dev/null");
    }
  }
  // Every viewer (all may share 10.77.1.2) connects through one address.
  ServerProcess server_{{"--address", env("WCC_SENDER_ADDRESS", "10.77.1.1"),
                         "--max-connections-per-address", "1000", "--max-rate", "1000",
                         "--max-burst", "1000"}};
};

TEST_F(Stats, PerCallStatisticsAndTheSharedEncodersBitrate) {
  PeerOptions so;
  so.send_audio = false;
  so.extra = "max-calls=10 ice-addresses=<\"" + std::string(env("WCC_SENDER_ADDRESS", "")) +
             "\"> stats-interval=" + std::to_string(kIntervalMs) +
             " video-bitrate=" + std::to_string(kMaxKbps) + " min-video-bitrate=150";
  so.width = 640;
  so.height = 360;
  Peer sender("sender", server_.ws_url(), so);
  ASSERT_TRUE(sender.play());
  ASSERT_TRUE(sender.wait_message("webrtccall-registered", {}));

  std::vector<std::unique_ptr<Viewer>> viewers;
  const std::string viewers_address = env("WCC_VIEWERS_ADDRESS", "10.77.1.2");
  for (int i = 1; i <= 4; ++i) {
    viewers.push_back(
        std::make_unique<Viewer>("viewer" + std::to_string(i), server_.ws_url(), viewers_address));
  }
  viewers.push_back(std::make_unique<Viewer>("lossy", server_.ws_url(), kLossyAddress));
  for (auto& v : viewers) {
    ASSERT_TRUE(sender.wait_message("webrtccall-call-connected", {{"peer", v->name}}, 30000))
        << v->name << " did not connect";
  }

  // Every interval, one webrtccall-stats per call: over 4 s (8 intervals), at least 6 each
  // (a loaded machine may delay a round), and the values of a clean link.
  for (auto& v : viewers) {
    while (sender.wait_message("webrtccall-stats", {{"peer", v->name}}, 0)) {
    }
  }
  while (sender.wait_message("webrtccall-stats-total", {}, 0)) {
  }
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, int> counts;
  std::this_thread::sleep_for(std::chrono::seconds(4));  // lets messages accumulate
  for (auto& v : viewers) {
    counts[v->name] = sender.count_messages("webrtccall-stats", {{"peer", v->name}});
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& [name, n] : counts) {
    EXPECT_GE(n, static_cast<int>(seconds * 1000 / kIntervalMs) - 2) << name;
    EXPECT_LE(n, static_cast<int>(seconds * 1000 / kIntervalMs) + 2) << name;
  }
  // The latest of each: bitrate close to what the viewer counted over the same 3 s (the
  // sender counts RTP headers too), RTT > 0, nothing lost.
  for (auto& v : viewers) {
    std::vector<const GstStructure*> got;
    while (const GstStructure* s =
               sender.wait_message("webrtccall-stats", {{"peer", v->name}}, 0)) {
      got.push_back(s);
    }
    double received_kbps = v->kbps_over(3);
    ASSERT_GE(got.size(), 6u) << v->name;
    double sent_kbps = 0;
    for (std::size_t i = got.size() - 6; i < got.size(); ++i) {
      sent_kbps += number(got[i], "video-bitrate") / 6;
    }
    const GstStructure* last = got.back();
    gchar* text = gst_structure_to_string(last);
    std::fprintf(stderr, "%s: %s; sent %.0f kbit/s, the viewer counted %.0f\n", v->name.c_str(),
                 text, sent_kbps, received_kbps);
    g_free(text);
    EXPECT_GT(sent_kbps, 20) << v->name;
    EXPECT_GT(received_kbps, 0.6 * sent_kbps) << v->name;
    EXPECT_LT(received_kbps, 1.5 * sent_kbps) << v->name;
    // RTT needs a receiver report answering a sender report: a receive-only viewer sends one
    // every few seconds, so the first may come later.
    auto rtt_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (number(last, "rtt") <= 0 && std::chrono::steady_clock::now() < rtt_deadline) {
      const GstStructure* next = sender.wait_message("webrtccall-stats", {{"peer", v->name}}, 2000);
      if (!next) break;
      last = next;
    }
    EXPECT_GT(number(last, "rtt"), 0) << v->name;
    EXPECT_LT(number(last, "rtt"), 500) << v->name;
    EXPECT_EQ(number(last, "packets-lost"), 0) << v->name;
    EXPECT_GT(number(last, "packets-sent"), 20) << v->name;
    EXPECT_STREQ(gst_structure_get_string(last, "video-codec"), "VP8");
    EXPECT_TRUE(gst_structure_has_field_typed(last, "dropped-buffers", G_TYPE_UINT64));
  }
  GstStructure* total = nullptr;
  while (GstStructure* t = sender.wait_message("webrtccall-stats-total", {}, 0)) total = t;
  ASSERT_TRUE(total);
  gchar* total_text = gst_structure_to_string(total);
  std::fprintf(stderr, "total: %s\n", total_text);
  g_free(total_text);
  EXPECT_EQ(number(total, "calls"), 5);
  // The property: the same, one structure per call.
  GstStructure* all = nullptr;
  g_object_get(sender.element(), "stats", &all, nullptr);
  ASSERT_TRUE(all);
  const GValue* calls = gst_structure_get_value(all, "calls");
  ASSERT_TRUE(calls && GST_VALUE_HOLDS_ARRAY(calls));
  EXPECT_EQ(gst_value_array_get_size(calls), 5u);
  EXPECT_TRUE(gst_structure_has_field_typed(all, "total", GST_TYPE_STRUCTURE));
  gst_structure_free(all);
  EXPECT_EQ(encoder_kbps(sender.element()), static_cast<int>(kMaxKbps));

  // 20 % of what reaches the lossy viewer dropped (its address only).
  std::string nft = std::string(env("WCC_VIEWERS_EXEC", "")) + " nft ";
  ASSERT_EQ(run(nft + "add table inet wcc_loss"), 0);
  ASSERT_EQ(run(nft + "'add chain inet wcc_loss in { type filter hook input priority 0; }'"), 0);
  ASSERT_EQ(run(nft + "add rule inet wcc_loss in ip daddr " + kLossyAddress +
                " meta l4proto udp numgen random mod 100 '<' 20 drop"),
            0);
  // Its receiver reports say so within a few seconds; the others' do not.
  bool lossy_seen = false;
  int lossy_reports = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  while (std::chrono::steady_clock::now() < deadline && lossy_reports < 6) {
    GstStructure* s = sender.wait_message("webrtccall-stats", {{"peer", "lossy"}}, 2000);
    if (!s) continue;
    if (number(s, "packets-lost") > 0 && number(s, "loss") > 0.1) {
      lossy_seen = true;
      ++lossy_reports;
    }
  }
  ASSERT_TRUE(lossy_seen) << "the lossy viewer's loss never showed";
  // Five viewers, one lossy: the encoder keeps its bitrate (the lossy one's estimate fell to
  // the floor meanwhile: 0.9 per report).
  EXPECT_EQ(encoder_kbps(sender.element()), static_cast<int>(kMaxKbps));
  EXPECT_FALSE(sender.has_message("webrtccall-bitrate", {}));
  for (auto& v : viewers) {
    if (v->name == "lossy") continue;
    const GstStructure* last = nullptr;
    while (const GstStructure* s =
               sender.wait_message("webrtccall-stats", {{"peer", v->name}}, 0)) {
      last = s;
    }
    ASSERT_TRUE(last) << v->name;
    EXPECT_EQ(number(last, "packets-lost"), 0) << v->name;
    EXPECT_LT(number(last, "loss"), 0.02) << v->name;
  }

  // Two viewers left, one of them lossy: the encoder follows the weakest and backs off.
  for (int i = 1; i <= 3; ++i) viewers[i]->process.stop(SIGKILL);
  GstStructure* change = sender.wait_message("webrtccall-bitrate", {{"codec", "VP8"}}, 20000);
  ASSERT_TRUE(change) << "the encoder's bitrate never changed";
  EXPECT_LT(number(change, "bitrate"), kMaxKbps);
  EXPECT_LT(encoder_kbps(sender.element()), static_cast<int>(kMaxKbps));
  EXPECT_GE(encoder_kbps(sender.element()), 150);

  // stats-interval=0 while playing: no more statistics, the encoder back at video-bitrate.
  g_object_set(sender.element(), "stats-interval", 0u, nullptr);
  EXPECT_TRUE(sender.wait_until(
      [&] { return encoder_kbps(sender.element()) == static_cast<int>(kMaxKbps); }, 5000));
  while (sender.wait_message("webrtccall-stats", {}, 0)) {
  }
  EXPECT_FALSE(sender.wait_message("webrtccall-stats", {}, 4 * kIntervalMs))
      << "statistics went on with stats-interval=0";
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
