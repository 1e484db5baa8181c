// Which codec a call sends, from SDP text alone (gst-plugin/codec-choice.h).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "codec-choice.h"

using webrtccall::choose_codec;
using webrtccall::format_sendable;
using webrtccall::mend_rejected_mlines;
using webrtccall::offer_order;
using webrtccall::sdp_media;
using webrtccall::SdpFormat;

namespace {

std::string read_sdp(const std::string& name) {
  std::ifstream f(std::string(TEST_DATA_DIR) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string out;
  for (char c : ss.str()) {
    if (c == '\r') continue;
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const std::vector<std::string> kAll = {"VP8", "H264", "VP9"};

}  // namespace

TEST(CodecChoice, FirefoxOfferHasNoH264SoAnH264PipelineFallsBackToVp8) {
  auto media = sdp_media(read_sdp("firefox-153-offer-audio-video.sdp"));
  ASSERT_EQ(media.size(), 2u);
  EXPECT_EQ(media[0].kind, "audio");
  EXPECT_EQ(media[1].kind, "video");
  ASSERT_EQ(media[1].formats.size(), 9u);
  EXPECT_EQ(media[1].formats[0].pt, 120);
  EXPECT_EQ(media[1].formats[0].encoding, "VP8");
  EXPECT_EQ(media[1].formats[0].fmtp, "max-fs=12288;max-fr=60");

  auto c = choose_codec(kAll, "H264", media[1].formats);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.encoding, "VP8");
  EXPECT_EQ(c.pt, 120);
  EXPECT_EQ(c.reason, "H264 not offered: sending VP8");

  // Audio: opus, written in lower case by Firefox.
  auto a = choose_codec({"OPUS"}, "OPUS", media[0].formats);
  EXPECT_EQ(a.encoding, "OPUS");
  EXPECT_EQ(a.pt, 109);
  EXPECT_TRUE(a.reason.empty());
}

TEST(CodecChoice, ConfiguredCodecWinsWhenOfferedEvenIfNotFirst) {
  auto media = sdp_media(read_sdp("chromium-156-offer-audio-video.sdp"));
  const auto& video = media.at(1);
  auto c = choose_codec(kAll, "H264", video.formats);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.encoding, "H264");
  EXPECT_TRUE(c.reason.empty());
  // The pt is one whose fmtp we can send: constrained baseline, packetization mode 1.
  bool found = false;
  for (const SdpFormat& f : video.formats) {
    if (f.pt == c.pt) {
      found = true;
      EXPECT_TRUE(format_sendable(f)) << f.fmtp;
      EXPECT_NE(f.fmtp.find("packetization-mode=1"), std::string::npos) << f.fmtp;
      EXPECT_EQ(f.fmtp.find("profile-level-id=42"), f.fmtp.find("profile-level-id=")) << f.fmtp;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(choose_codec(kAll, "VP9", video.formats).encoding, "VP9");
}

TEST(CodecChoice, H264ProfilesAndModesWeCannotSendAreSkipped) {
  std::vector<SdpFormat> remote = {
      {100, "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"},
      {101, "H264", "profile-level-id=640032;packetization-mode=1"},
      {102, "H264", "packetization-mode=1; profile-level-id=42001f"},
  };
  auto c = choose_codec(kAll, "H264", remote);
  EXPECT_EQ(c.pt, 102);
  remote.pop_back();
  c = choose_codec(kAll, "H264", remote);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.reason,
            "no common codec: remote offers H264 (not constrained baseline, mode 1); we produce "
            "VP8, H264, VP9");
}

TEST(CodecChoice, EncodedInputOnlyItsOwnCodec) {
  // An H.264 camera to Firefox: nothing in common, and the reason names both sides.
  auto media = sdp_media(read_sdp("firefox-153-offer-audio-video.sdp"));
  auto c = choose_codec({"H264"}, "VP8", media[1].formats);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.encoding, "");
  EXPECT_EQ(c.reason, "no common codec: remote offers VP8, VP9, AV1; we produce H264");
}

TEST(CodecChoice, NotProducibleConfiguredCodecFallsBackWithItsReason) {
  std::vector<SdpFormat> remote = {{96, "VP8", ""}, {98, "VP9", ""}};
  auto c = choose_codec({"VP8", "VP9"}, "H264", remote);
  EXPECT_EQ(c.encoding, "VP8");
  EXPECT_EQ(c.reason, "cannot produce H264: sending VP8");
  // The remote's order is its preference when the configured one is not there.
  remote = {{98, "vp9", ""}, {96, "VP8", ""}};
  c = choose_codec({"VP8", "VP9"}, "H264", remote);
  EXPECT_EQ(c.encoding, "VP9");
  EXPECT_EQ(c.pt, 98);
}

TEST(CodecChoice, OfferOrderPutsTheConfiguredCodecFirst) {
  EXPECT_EQ(offer_order(kAll, "H264"), (std::vector<std::string>{"H264", "VP8", "VP9"}));
  EXPECT_EQ(offer_order(kAll, "VP8"), kAll);
  EXPECT_EQ(offer_order({"VP8"}, "H264"), (std::vector<std::string>{"VP8"}));
}

TEST(CodecChoice, RejectedLineGetsTheBundleCredentials) {
  // Firefox answering an offer whose video it cannot take: port 0, no ICE credentials, no
  // setup, and the line left out of the BUNDLE group.
  std::string answer =
      "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=fingerprint:sha-256 AA:BB\r\na=group:BUNDLE 1\r\n"
      "m=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:0\r\n"
      "a=rtpmap:0 PCMU/8000\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n"
      "a=ice-pwd:pwdpwd\r\na=ice-ufrag:ufrag1\r\na=mid:1\r\na=rtcp-mux\r\n"
      "a=rtpmap:109 opus/48000/2\r\na=setup:active\r\n";
  std::vector<unsigned> mended;
  std::string out = mend_rejected_mlines(answer, &mended);
  EXPECT_EQ(mended, std::vector<unsigned>{0});
  EXPECT_EQ(out,
            "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "a=fingerprint:sha-256 AA:BB\r\na=group:BUNDLE 1\r\n"
            "m=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n"
            "a=ice-ufrag:ufrag1\r\na=ice-pwd:pwdpwd\r\na=setup:active\r\n"
            "a=inactive\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n"
            "a=ice-pwd:pwdpwd\r\na=ice-ufrag:ufrag1\r\na=mid:1\r\na=rtcp-mux\r\n"
            "a=rtpmap:109 opus/48000/2\r\na=setup:active\r\n");
  auto media = sdp_media(out);
  EXPECT_TRUE(webrtccall::rejected(media[0]));
  EXPECT_FALSE(webrtccall::rejected(media[1]));
  // Mended once, nothing more to do; a whole answer is left as it is.
  EXPECT_EQ(mend_rejected_mlines(out, &mended), out);
  EXPECT_TRUE(mended.empty());
  std::string firefox = read_sdp("firefox-153-offer-audio-video.sdp");
  EXPECT_EQ(mend_rejected_mlines(firefox, &mended), firefox);
  EXPECT_TRUE(mended.empty());
}

TEST(CodecChoice, BundleOnlyLinesAreNotRejected) {
  std::string offer =
      "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\na=setup:actpass\r\n"
      "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\n";
  auto media = sdp_media(offer);
  ASSERT_EQ(media.size(), 2u);
  EXPECT_FALSE(webrtccall::rejected(media[1]));
  EXPECT_EQ(mend_rejected_mlines(offer), offer);
}

TEST(CodecChoice, GarbageDoesNotCrash) {
  for (const char* s :
       {"", "m=", "m=video", "m=video x y 1 2 3", "a=rtpmap:", "m=a 1 p 5\na=rtpmap:5",
        "m=a 1 p 5\na=fmtp:5", "m=a 0 p\nc=x", "\n\n\r\n"}) {
    auto media = sdp_media(s);
    (void)choose_codec(kAll, "VP8", media.empty() ? std::vector<SdpFormat>{} : media[0].formats);
    (void)mend_rejected_mlines(s);
  }
}
