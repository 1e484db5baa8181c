// Renegotiation on the same webrtcbin, both ways, with media flowing throughout:
// - a peer that is not our element (a bare webrtcbin behaving like MDN's sample client,
//   through our server with the raw protocol) answers the element's offer and re-offers at
//   once adding its video; and calls the element, then re-offers adding audio;
// - two elements: a sink pad requested mid-call (audio added) and released again.
// Frames are counted across every renegotiation: no gap over 1 s, no call ended.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "bare-peer.h"
#include "fake-signaller.h"
#include "peer.h"
#include "raw-client.h"

using test::BareClient;
using test::HubMessage;
using test::Peer;
using test::RawClient;
using test::ServerProcess;

namespace {

constexpr gint64 kMaxGapUs = 1000 * 1000;

int count_lines(const std::string& sdp, const std::string& prefix) {
  std::istringstream in(sdp);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0;
  return n;
}

// The direction attribute of m-line `index` (sendrecv, recvonly, ...).
std::string direction_of(const std::string& sdp, int index) {
  std::istringstream in(sdp);
  std::string line;
  int m = -1;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("m=", 0) == 0) ++m;
    if (m != index) continue;
    for (const char* d : {"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"}) {
      if (line == d) return line.substr(2);
    }
  }
  return "";
}

}  // namespace

class Renegotiation : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }
  ServerProcess server_;
};

// The element calls a peer that answers and at once re-offers adding its own video (MDN's
// sample: addTransceiver() after setRemoteDescription()). The element answers the re-offer on
// the same webrtcbin: one call, no glare, and the peer's video arrives on a new source pad
// while the element's video goes on reaching the peer.
TEST_F(Renegotiation, ElementCallsAPeerThatReoffersAddingItsVideo) {
  BareClient mdn(server_.ws_url(), "mdn");
  mdn.peer.reoffer_adding = "video";
  Peer alice("alice", server_.ws_url(), {.peer = "mdn"});
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.answers_sent == 1; }));
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.offers_sent == 1; }));
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.answers_received == 1; }))
      << "the element did not answer the re-offer";
  EXPECT_EQ(count_lines(mdn.peer.last_remote_answer, "m="), 3);
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= 30; }));
  int before = mdn.peer.video_frames;
  // The element receives the peer's video (sent only since the re-offer).
  ASSERT_TRUE(mdn.until([&] { return alice.video_buffers >= 30; }));
  EXPECT_GE(alice.src_pads(), 1);
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= before + 60; }));
  std::printf("largest gap between video frames at the peer: %.0f ms\n",
              mdn.peer.max_video_gap_us() / 1000.0);
  EXPECT_LT(mdn.peer.max_video_gap_us(), kMaxGapUs);
  EXPECT_EQ(alice.count_messages("webrtccall-call-started", {}), 1);
  EXPECT_EQ(alice.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_TRUE(alice.wait_message("webrtccall-call-connected", {{"peer", "mdn"}}, 1000));
  EXPECT_TRUE(mdn.client.hang_ups.empty());
  EXPECT_EQ(mdn.peer.offers_received, 1);
  EXPECT_TRUE(mdn.peer.errors.empty()) << mdn.peer.errors.front();
  EXPECT_TRUE(alice.errors().empty());
}

// The peer calls the element (receiving video only), then re-offers adding audio: the
// element answers on the same webrtcbin, sends its audio on the new m-line and receives the
// peer's; the element's video goes on.
TEST_F(Renegotiation, APeerCallsTheElementThenReoffersAddingAudio) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  BareClient mdn(server_.ws_url(), "mdn");
  ASSERT_TRUE(mdn.client.registered_with("bob"));
  mdn.peer.call("bob");
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.answers_received == 1; }));
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= 30; }));
  EXPECT_EQ(mdn.peer.audio_buffers, 0);  // no audio m-line yet
  int before = mdn.peer.video_frames;

  mdn.peer.add_send("audio");
  mdn.peer.offer();
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.answers_received == 2; }))
      << "the element did not answer the re-offer";
  EXPECT_EQ(direction_of(mdn.peer.last_remote_answer, 1), "sendrecv")
      << mdn.peer.last_local_offer << "\n-> answer:\n"
      << mdn.peer.last_remote_answer << (mdn.peer.errors.empty() ? "" : mdn.peer.errors[0]);
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.audio_buffers >= 20; }))
      << "the element's audio did not come on the new m-line";
  ASSERT_TRUE(mdn.until([&] { return bob.audio_buffers >= 20; }))
      << "the peer's audio did not reach the element";
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= before + 60; }));
  std::printf("largest gap between video frames at the peer: %.0f ms\n",
              mdn.peer.max_video_gap_us() / 1000.0);
  EXPECT_LT(mdn.peer.max_video_gap_us(), kMaxGapUs);
  EXPECT_EQ(bob.count_messages("webrtccall-call-started", {}), 1);
  EXPECT_EQ(bob.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_TRUE(mdn.client.hang_ups.empty());
  EXPECT_TRUE(mdn.peer.errors.empty()) << mdn.peer.errors.front();
  EXPECT_TRUE(bob.errors().empty());
}

// Re-offers are limited like offers (offer-rate), and one that changes the call's DTLS
// fingerprint is refused with a reason: the call ends, invalid-sdp to the remote.
TEST_F(Renegotiation, AReofferWithAnotherFingerprintEndsTheCallWithAReason) {
  Peer bob("bob", server_.ws_url());
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  BareClient mdn(server_.ws_url(), "mdn");
  ASSERT_TRUE(mdn.client.registered_with("bob"));
  mdn.peer.call("bob");
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= 10; }));
  // The same offer again, with another certificate's fingerprint.
  GstWebRTCSessionDescription* local = nullptr;
  g_object_get(mdn.peer.webrtc(), "current-local-description", &local, nullptr);
  ASSERT_TRUE(local);
  gchar* text = gst_sdp_message_as_text(local->sdp);
  gst_webrtc_session_description_free(local);
  std::string sdp = text;
  g_free(text);
  std::size_t at = sdp.find("a=fingerprint:sha-256 ");
  ASSERT_NE(at, std::string::npos);
  at += 22;
  sdp[at] = sdp[at] == 'A' ? 'B' : 'A';
  JsonObject* o = json_object_new();
  json_object_set_string_member(o, "type", "video-offer");
  json_object_set_string_member(o, "target", "bob");
  JsonObject* d = json_object_new();
  json_object_set_string_member(d, "type", "offer");
  json_object_set_string_member(d, "sdp", sdp.c_str());
  json_object_set_object_member(o, "sdp", d);
  mdn.client.send(signaling::protocol::to_text(o));
  json_object_unref(o);
  ASSERT_TRUE(mdn.until([&] {
    return bob.has_message("webrtccall-call-ended", {{"peer", "mdn"}});
  }));
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "mdn"}}, 0);
  ASSERT_TRUE(ended);
  EXPECT_NE(std::string(gst_structure_get_string(ended, "reason")).find("DTLS fingerprint"),
            std::string::npos)
      << gst_structure_get_string(ended, "reason");
  ASSERT_TRUE(mdn.until([&] { return !mdn.client.hang_ups.empty(); }));
  EXPECT_EQ(mdn.client.hang_ups.back(), "invalid-sdp");
}

// Re-offers count against offer-rate like offers: beyond the burst they are dropped
// unanswered (the call goes on), and answered again once the bucket refills.
TEST_F(Renegotiation, ReoffersCountAgainstOfferRate) {
  Peer bob("bob", server_.ws_url(), {.extra = "offer-rate=1 offer-burst=3"});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-registered", {}));
  BareClient mdn(server_.ws_url(), "mdn");
  ASSERT_TRUE(mdn.client.registered_with("bob"));
  mdn.peer.call("bob");  // one token
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.answers_received == 1; }));
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= 10; }));
  for (int i = 0; i < 4; ++i) {
    int answers = mdn.peer.answers_received;
    mdn.peer.offer();
    mdn.until([&] { return mdn.peer.answers_received > answers; }, 400);
  }
  EXPECT_EQ(mdn.peer.answers_received, 3) << "the burst of 3 is 1 offer and 2 re-offers";
  // Refilled (1/s): answered again, and the video never stopped.
  int answers = mdn.peer.answers_received;
  EXPECT_TRUE(mdn.until(
      [&] {
        mdn.peer.offer();
        return mdn.until([&] { return mdn.peer.answers_received > answers; }, 300);
      },
      5000));
  int frames = mdn.peer.video_frames;
  ASSERT_TRUE(mdn.until([&] { return mdn.peer.video_frames >= frames + 30; }));
  std::printf("largest gap between video frames at the peer: %.0f ms\n",
              mdn.peer.max_video_gap_us() / 1000.0);
  EXPECT_LT(mdn.peer.max_video_gap_us(), kMaxGapUs);
  EXPECT_FALSE(bob.has_message("webrtccall-call-ended", {}));
}

class ElementRenegotiation : public ::testing::Test {
 protected:
  void SetUp() override { test::fake_hub_reset(); }
  void TearDown() override { test::fake_hub_reset(); }
};

std::vector<HubMessage> offers_from(const std::string& from) {
  std::vector<HubMessage> out;
  for (HubMessage& m : test::fake_hub_log()) {
    if (m.type == "offer" && m.from == from) out.push_back(std::move(m));
  }
  return out;
}

// Two elements in a call with video only; alice's pipeline adds audio mid-call (a sink pad
// requested): alice re-offers with a new m-line, bob receives the audio on a new source pad,
// video keeps counting. Alice releases the pad again: its branch is unlinked, the call goes on
// (no re-offer: the m-line stays, unused); audio requested again comes on a new m-line.
TEST_F(ElementRenegotiation, ASinkPadRequestedAndReleasedMidCallRenegotiates) {
  Peer bob("bob", "unused", {.send_audio = false, .fake_signaller = true});
  Peer alice("alice", "unused", {.send_audio = false, .peer = "bob", .fake_signaller = true});
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}, 30000));
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= 30; }));
  EXPECT_EQ(bob.audio_buffers, 0);
  ASSERT_EQ(offers_from("alice").size(), 1u);
  int pads = bob.src_pads();

  // Audio added to alice's running pipeline.
  GstElement* src = gst_parse_bin_from_description(
      "audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1", TRUE, nullptr);
  ASSERT_TRUE(src);
  gst_bin_add(GST_BIN(alice.pipeline()), src);
  GstPad* pad = gst_element_request_pad_simple(alice.element(), "audio_%u");
  ASSERT_TRUE(pad);
  GstPad* src_pad = gst_element_get_static_pad(src, "src");
  ASSERT_EQ(gst_pad_link(src_pad, pad), GST_PAD_LINK_OK);
  gst_element_sync_state_with_parent(src);
  ASSERT_TRUE(bob.wait_until([&] { return bob.audio_buffers >= 20; }, 20000))
      << "bob never received the audio added mid-call";
  EXPECT_EQ(bob.src_pads(), pads + 1);
  std::vector<HubMessage> offers = offers_from("alice");
  ASSERT_EQ(offers.size(), 2u);
  EXPECT_EQ(count_lines(offers[1].detail, "m="), 3) << offers[1].detail;
  int video = bob.video_buffers;
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= video + 30; }));

  // Released again: the source is unlinked first, as an application does.
  gulong drop = gst_pad_add_probe(
      src_pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_DROP; }, nullptr, nullptr);
  gst_pad_unlink(src_pad, pad);
  gst_object_unref(src_pad);
  gst_element_release_request_pad(alice.element(), pad);
  gst_object_unref(pad);
  video = bob.video_buffers;
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= video + 60; }));
  int audio = bob.audio_buffers;

  // Audio again: on a new m-line (webrtcbin 1.22 cannot give the old one a new pad).
  pad = gst_element_request_pad_simple(alice.element(), "audio_%u");
  ASSERT_TRUE(pad);
  src_pad = gst_element_get_static_pad(src, "src");
  gst_pad_remove_probe(src_pad, drop);
  ASSERT_EQ(gst_pad_link(src_pad, pad), GST_PAD_LINK_OK);
  gst_object_unref(src_pad);
  gst_object_unref(pad);
  // The release made no offer (in webrtcbin 1.22 it could change nothing: see
  // Call::finish_detach); this one adds the new m-line, the released one stays, sendrecv.
  ASSERT_TRUE(bob.wait_until([&] { return offers_from("alice").size() == 3u; }));
  offers = offers_from("alice");
  EXPECT_EQ(count_lines(offers[2].detail, "m="), 4) << offers[2].detail;
  EXPECT_EQ(direction_of(offers[2].detail, 2), "sendrecv") << offers[2].detail;
  ASSERT_TRUE(bob.wait_until([&] { return bob.audio_buffers >= audio + 20; }, 20000))
      << "the audio added again did not arrive";
  EXPECT_EQ(alice.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_EQ(bob.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_EQ(alice.calls(), std::vector<std::string>{"bob"});
  EXPECT_TRUE(alice.errors().empty());
  EXPECT_TRUE(bob.errors().empty());
  gst_element_set_state(src, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(alice.pipeline()), src);
}

// Glare between two elements, whichever starts first: the offers cross (the hub holds both),
// the smaller name keeps its offer, the other answers it on a new webrtcbin; one call each,
// media both ways, exactly one answer and no hang-up.
class ElementGlare : public ElementRenegotiation,
                     public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(ElementGlare, OneCallMediaBothWays) {
  const std::string first = GetParam().first, second = GetParam().second;
  const std::string keeper = std::min(first, second), answerer = std::max(first, second);
  test::fake_hub_hold_offers(2);
  Peer a(first, "unused", {.peer = second, .fake_signaller = true});
  ASSERT_TRUE(a.play());
  Peer b(second, "unused", {.peer = first, .fake_signaller = true});
  ASSERT_TRUE(b.play());
  for (Peer* p : {&a, &b}) {
    ASSERT_TRUE(p->wait_message("webrtccall-call-connected", {}, 30000));
    EXPECT_TRUE(p->wait_until([&] { return p->video_buffers >= 60 && p->audio_buffers >= 60; }));
  }
  std::vector<HubMessage> log = test::fake_hub_log();
  int answers = 0;
  for (const HubMessage& m : log) {
    if (m.type == "answer") {
      ++answers;
      EXPECT_EQ(m.from, answerer);
    }
    EXPECT_NE(m.type, "hang-up");
  }
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(offers_from(first).size(), 1u);
  EXPECT_EQ(offers_from(second).size(), 1u);
  Peer& keep = keeper == first ? a : b;
  Peer& yield = keeper == first ? b : a;
  EXPECT_EQ(keep.count_messages("webrtccall-call-ended", {}), 0);
  EXPECT_EQ(
      yield.count_messages("webrtccall-call-ended",
                           {{"reason", "glare: answering the call of " + keeper + " instead"}}),
      1);
  EXPECT_EQ(yield.count_messages("webrtccall-call-started", {{"direction", "incoming"}}), 1);
  EXPECT_EQ(a.calls(), std::vector<std::string>{second});
  EXPECT_EQ(b.calls(), std::vector<std::string>{first});
}

INSTANTIATE_TEST_SUITE_P(BothNameOrders, ElementGlare,
                         ::testing::Values(std::make_pair("amy", "zed"),
                                           std::make_pair("zed", "amy")));

// A renegotiation collision between two elements (both add a pad at once, the re-offers
// cross): neither can roll back, so both keep their offers; media goes on meanwhile and the
// call ends after answer-timeout with a reason that says so, instead of hanging forever.
TEST_F(ElementRenegotiation, ACollisionOfReoffersEndsAfterAnswerTimeoutWithAReason) {
  Peer bob("bob", "unused",
           {.send_audio = false, .extra = "answer-timeout=3", .fake_signaller = true});
  Peer alice("alice", "unused",
             {.send_audio = false,
              .peer = "bob",
              .extra = "answer-timeout=8",
              .fake_signaller = true});  // bob's runs out first
  ASSERT_TRUE(bob.play());
  ASSERT_TRUE(alice.play());
  ASSERT_TRUE(bob.wait_message("webrtccall-call-connected", {{"peer", "alice"}}, 30000));
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= 30; }));
  test::fake_hub_hold_offers(2);
  std::vector<GstElement*> sources;
  for (Peer* p : {&alice, &bob}) {
    GstElement* src = gst_parse_bin_from_description(
        "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1", TRUE, nullptr);
    gst_bin_add(GST_BIN(p->pipeline()), src);
    GstPad* pad = gst_element_request_pad_simple(p->element(), "audio_%u");
    GstPad* src_pad = gst_element_get_static_pad(src, "src");
    ASSERT_EQ(gst_pad_link(src_pad, pad), GST_PAD_LINK_OK);
    gst_object_unref(src_pad);
    gst_object_unref(pad);
    gst_element_sync_state_with_parent(src);
  }
  int video = bob.video_buffers;
  ASSERT_TRUE(bob.wait_until([&] { return bob.video_buffers >= video + 30; }));  // goes on
  GstStructure* ended = bob.wait_message("webrtccall-call-ended", {{"peer", "alice"}}, 10000);
  ASSERT_TRUE(ended);
  std::string reason = gst_structure_get_string(ended, "reason");
  // bob is polite (the greater name): he ignored alice's offer, expecting her to roll back.
  EXPECT_NE(reason.find("renegotiation collision"), std::string::npos) << reason;
  EXPECT_TRUE(alice.wait_message("webrtccall-call-ended", {{"peer", "bob"}}, 10000));
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
