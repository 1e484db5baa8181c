// Codecs the remote can take (issue 9): the element falls back to a codec the remote offers or
// answers, encodes raw input once per codec in use, never transcodes encoded input, and keeps
// the call when the remote rejects the video m-line. Remotes are our element and a bare
// webrtcbin that has VP8 only (bare-peer.h), through the real server, inside a network
// namespace of the test's own (tests/netns-run.sh).
#include <gtest/gtest.h>

#include <algorithm>

#include "bare-peer.h"
#include "codec-choice.h"
#include "peer.h"

using test::BareClient;
using test::Peer;
using test::PeerOptions;
using test::ServerProcess;

namespace {

// The remote with VP8 only: a VP8 camera and an Opus microphone.
const test::BarePeerOptions kVp8AndOpus{.send = {"video", "audio"}};

std::vector<std::string> strv_property(GstElement* e, const char* name) {
  gchar** v = nullptr;
  g_object_get(e, name, &v, nullptr);
  std::vector<std::string> out;
  for (gchar** p = v; p && *p; ++p) out.emplace_back(*p);
  g_strfreev(v);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> encoders(Peer& p) {
  return strv_property(p.element(), "encoders");
}

// Elements of `factory` anywhere inside the element's bin.
int count_factory(GstElement* bin, const char* factory) {
  int n = 0;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) ++n;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

// The encoding names of m-line `kind` of `sdp`, in order.
std::vector<std::string> codecs_of(const std::string& sdp, const std::string& kind) {
  std::vector<std::string> out;
  for (const auto& m : webrtccall::sdp_media(sdp)) {
    if (m.kind != kind) continue;
    for (const auto& f : m.formats) {
      if (f.encoding != "rtx" && f.encoding != "red" && f.encoding != "ulpfec") {
        out.push_back(f.encoding);
      }
    }
  }
  return out;
}

bool has_warning(Peer& p, const std::string& part) {
  for (const std::string& w : p.warnings()) {
    if (w.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

class Codecs : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << "webrtc-call-server did not start"; }
  ServerProcess server_;
};

TEST_F(Codecs, H264ElementAnswersAVp8OnlyOfferWithVp8) {
  Peer gst("gst", server_.ws_url(), {.extra = "video-codec=h264"});
  ASSERT_TRUE(gst.play());
  BareClient vp8(server_.ws_url(), "vp8peer", kVp8AndOpus);
  ASSERT_TRUE(vp8.client.registered_with("gst"));
  vp8.peer.call("gst");
  ASSERT_TRUE(vp8.until([&] {
    return vp8.peer.video_frames > 30 && vp8.peer.audio_buffers > 30 && gst.video_buffers > 30 &&
           gst.audio_buffers > 30;
  })) << vp8.peer.video_frames
      << " " << vp8.peer.audio_buffers << " " << gst.video_buffers << " " << gst.audio_buffers;
  EXPECT_EQ(vp8.peer.received_video_encoding(), "VP8");
  EXPECT_EQ(codecs_of(vp8.peer.last_remote_answer, "video"), std::vector<std::string>{"VP8"})
      << vp8.peer.last_remote_answer;
  // Only the codec in use is encoded: no H.264 encoder runs for nobody.
  EXPECT_EQ(encoders(gst), (std::vector<std::string>{"audio_0:OPUS", "video_0:VP8"}));
  EXPECT_EQ(count_factory(gst.element(), "openh264enc"), 0);
  EXPECT_TRUE(gst.errors().empty());
}

TEST_F(Codecs, H264ElementCallingAVp8OnlyPeerOffersAllAndSendsVp8) {
  BareClient vp8(server_.ws_url(), "vp8peer", kVp8AndOpus);
  Peer gst("gst", server_.ws_url(), {.peer = "vp8peer", .extra = "video-codec=h264"});
  ASSERT_TRUE(gst.play());
  ASSERT_TRUE(vp8.until([&] {
    return vp8.peer.video_frames > 30 && vp8.peer.audio_buffers > 30 && gst.video_buffers > 30 &&
           gst.audio_buffers > 30;
  })) << vp8.peer.video_frames
      << " " << vp8.peer.audio_buffers << " " << gst.video_buffers << " " << gst.audio_buffers;
  // Our offer: every codec we produce, the configured one first.
  std::vector<std::string> offered = codecs_of(vp8.peer.last_remote_offer, "video");
  ASSERT_FALSE(offered.empty()) << vp8.peer.last_remote_offer;
  EXPECT_EQ(offered.front(), "H264");
  EXPECT_NE(std::find(offered.begin(), offered.end(), "VP8"), offered.end());
  // Its answer: VP8 only; that is what we send, and all we encode.
  EXPECT_EQ(codecs_of(vp8.peer.last_local_answer, "video"), std::vector<std::string>{"VP8"});
  EXPECT_EQ(vp8.peer.received_video_encoding(), "VP8");
  EXPECT_EQ(encoders(gst), (std::vector<std::string>{"audio_0:OPUS", "video_0:VP8"}));
  EXPECT_TRUE(gst.errors().empty());
}

TEST_F(Codecs, OneEncoderPerCodecInUseRemovedWithItsLastCall) {
  Peer gst("gst", server_.ws_url(), {.extra = "video-codec=h264 max-calls=2"});
  ASSERT_TRUE(gst.play());
  ASSERT_TRUE(gst.wait_message("webrtccall-registered", {}));
  Peer h264("h264peer", server_.ws_url(), {.peer = "gst", .extra = "video-codec=h264"});
  ASSERT_TRUE(h264.play());
  ASSERT_TRUE(h264.wait_until([&] { return h264.video_buffers > 30; }, 20000));
  EXPECT_EQ(encoders(gst), (std::vector<std::string>{"audio_0:OPUS", "video_0:H264"}));

  {
    BareClient vp8(server_.ws_url(), "vp8peer", kVp8AndOpus);
    ASSERT_TRUE(vp8.client.registered_with("gst"));
    vp8.peer.call("gst");
    int before = h264.video_buffers;
    ASSERT_TRUE(vp8.until([&] {
      return vp8.peer.video_frames > 30 && vp8.peer.audio_buffers > 30;
    })) << vp8.peer.video_frames
        << " " << vp8.peer.audio_buffers;
    EXPECT_EQ(vp8.peer.received_video_encoding(), "VP8");
    // Two calls, two codecs: one encoder each (and one Opus encoder for both).
    EXPECT_EQ(encoders(gst),
              (std::vector<std::string>{"audio_0:OPUS", "video_0:H264", "video_0:VP8"}));
    EXPECT_EQ(count_factory(gst.element(), "openh264enc"), 1);
    EXPECT_EQ(count_factory(gst.element(), "vp8enc"), 1);
    EXPECT_EQ(count_factory(gst.element(), "opusenc"), 1);
    EXPECT_GT(h264.video_buffers, before + 30) << "the H.264 call stalled while VP8 started";
    vp8.client.send(R"({"type":"hang-up","target":"gst"})");
    ASSERT_TRUE(vp8.until([&] {
      return gst.has_message("webrtccall-call-ended", {{"peer", "vp8peer"}});
    }));
  }
  // The VP8 encoder goes with its last call; the H.264 call keeps decoding across it.
  ASSERT_TRUE(gst.wait_until(
      [&] {
        return encoders(gst) == std::vector<std::string>{"audio_0:OPUS", "video_0:H264"};
      },
      5000))
      << encoders(gst).size();
  int before = h264.video_buffers;
  EXPECT_TRUE(h264.wait_until([&] { return h264.video_buffers > before + 60; }, 10000))
      << before << " -> " << h264.video_buffers;
  EXPECT_TRUE(gst.wait_until([&] { return count_factory(gst.element(), "vp8enc") == 0; }, 5000));
  EXPECT_EQ(count_factory(gst.element(), "openh264enc"), 1);
  EXPECT_EQ(gst.calls(), std::vector<std::string>{"h264peer"});
  EXPECT_TRUE(gst.errors().empty());
  EXPECT_TRUE(h264.errors().empty());
}

TEST_F(Codecs, RemoteRejectingVideoKeepsTheAudio) {
  BareClient rejecter(server_.ws_url(), "rejecter", {.send = {"audio"}, .reject_video = true});
  Peer gst("gst", server_.ws_url(), {.peer = "rejecter", .extra = "video-codec=h264"});
  ASSERT_TRUE(gst.play());
  ASSERT_TRUE(rejecter.until([&] {
    return rejecter.peer.audio_buffers > 50 && gst.audio_buffers > 50;
  })) << rejecter.peer.audio_buffers
      << " " << gst.audio_buffers << " " << (gst.warnings().empty() ? "" : gst.warnings().back());
  // The answer is what Firefox sends for a video line it cannot take.
  auto media = webrtccall::sdp_media(rejecter.peer.last_local_answer);
  ASSERT_EQ(media.size(), 2u);
  EXPECT_TRUE(webrtccall::rejected(media[0])) << rejecter.peer.last_local_answer;
  EXPECT_EQ(rejecter.peer.last_local_answer.find("a=ice-ufrag",
                                                 rejecter.peer.last_local_answer.find("m=video")),
            rejecter.peer.last_local_answer.find("a=ice-ufrag",
                                                 rejecter.peer.last_local_answer.find("m=audio")));
  EXPECT_TRUE(has_warning(gst, "rejecter rejected video"));
  EXPECT_FALSE(gst.has_message("webrtccall-call-ended", {}));
  EXPECT_EQ(gst.calls(), std::vector<std::string>{"rejecter"});
  EXPECT_EQ(rejecter.peer.video_frames, 0);
  // Nothing encodes video for nobody.
  EXPECT_EQ(encoders(gst), std::vector<std::string>{"audio_0:OPUS"});
  EXPECT_TRUE(gst.errors().empty());
}

TEST_F(Codecs, EncodedInputIsNeverTranscoded) {
  // An H.264 camera (openh264enc in the application's pipeline) and a remote with VP8 only.
  Peer gst("gst", server_.ws_url(),
           {.send_video = false,
            .extra = "videotestsrc is-live=true ! video/x-raw,width=320,height=240,"
                     "framerate=30/1 ! openh264enc ! video/x-h264,profile=constrained-baseline "
                     "! call.video_0"});
  ASSERT_TRUE(gst.play());
  BareClient vp8(server_.ws_url(), "vp8peer", kVp8AndOpus);
  ASSERT_TRUE(vp8.client.registered_with("gst"));
  vp8.peer.call("gst");
  ASSERT_TRUE(vp8.until([&] { return vp8.peer.audio_buffers > 50 && gst.audio_buffers > 50; }))
      << vp8.peer.audio_buffers << " " << gst.audio_buffers;
  EXPECT_TRUE(has_warning(gst, "no common codec: remote offers VP8; we produce H264"))
      << (gst.warnings().empty() ? "no warning" : gst.warnings().back());
  EXPECT_EQ(vp8.peer.video_frames, 0);
  // No encoder in the bin but Opus (the raw audio's): the H.264 input is not re-encoded.
  EXPECT_EQ(encoders(gst), std::vector<std::string>{"audio_0:OPUS"});
  EXPECT_EQ(count_factory(gst.element(), "vp8enc"), 0);
  EXPECT_EQ(count_factory(gst.element(), "openh264enc"), 0);
  // What the remote sends still arrives.
  EXPECT_TRUE(vp8.until([&] { return gst.video_buffers > 30; }));
  EXPECT_TRUE(gst.errors().empty());
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
