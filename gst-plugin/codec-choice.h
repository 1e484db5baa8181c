// Which codec a call sends, decided from SDP text alone: pure C++ (no GStreamer), unit-tested
// in tests/unit/codec_choice_test.cpp.
//
// - When we offer, every video codec the element can produce for the stream is offered, the
//   configured one first (offer_order). The remote's answer then says which it takes.
// - When we answer (or read the answer), the codec is the configured one if the remote lists
//   it, else the first one we can produce in the remote's order (its preference), else none,
//   with a sentence saying why (choose_codec).
// - A remote that rejects an m-line (port 0) often leaves out its ICE credentials and DTLS
//   setup there (Firefox does, for a video line whose codecs it lacks), which webrtcbin 1.22
//   refuses for the whole description ("media 0 is missing or contains an empty 'ice-ufrag'
//   attribute"): mend_rejected_mlines copies them from a line that has them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace webrtccall {

// One payload type of an m-line, as a=rtpmap and a=fmtp describe it.
struct SdpFormat {
  int pt = -1;
  std::string encoding;  // "VP8", "H264", "opus", "rtx", ... as written
  std::string fmtp;      // the a=fmtp parameters after the payload type, or empty
};

// The m-lines of an SDP, in order: their kind ("audio", "video", ...), port and formats in
// the order of the m= line (the sender's preference).
struct SdpMedia {
  std::string kind;
  unsigned port = 0;
  bool bundle_only = false;
  std::vector<SdpFormat> formats;
};
std::vector<SdpMedia> sdp_media(std::string_view sdp);

// Whether we can send `f` as its encoding: H.264 only as constrained baseline
// (profile-level-id 42xxxx) in packetization mode 1, what every browser decodes and what the
// element's H.264 payloader sends.
bool format_sendable(const SdpFormat& f);

struct CodecChoice {
  std::string encoding;  // as in `producible` ("VP8"), empty when none
  int pt = -1;
  // Set when the configured codec was not taken: why ("remote offers VP8, VP9, AV1; we
  // produce H264" when nothing is common; "H264 not offered: sending VP8" for a fallback).
  std::string reason;
  bool ok() const { return pt >= 0; }
};

// `producible`: the encoding names the element can send for the stream (raw input: every
// codec whose encoder and payloader exist; encoded input: its own codec only). `configured`:
// the preferred one (video-codec), possibly not producible. `remote`: the remote's formats for
// the m-line.
CodecChoice choose_codec(const std::vector<std::string>& producible, const std::string& configured,
                         const std::vector<SdpFormat>& remote);

// The codecs to offer, best first: `configured` (when producible), then the others in order.
std::vector<std::string> offer_order(const std::vector<std::string>& producible,
                                     const std::string& configured);

// Whether m-line `media` is rejected: port 0 and not bundle-only.
inline bool rejected(const SdpMedia& media) {
  return media.port == 0 && !media.bundle_only;
}

// `sdp` with every rejected m-line given the a=ice-ufrag, a=ice-pwd and a=setup of the first
// m-line that has them, where it lacks them (nothing else changes); `mended` (if given) gets
// the indexes of the m-lines changed. Returns `sdp` unchanged when nothing is missing.
std::string mend_rejected_mlines(std::string_view sdp, std::vector<unsigned>* mended = nullptr);

}  // namespace webrtccall
