// Codecs and the media chains around webrtcbin: what encodes a sink pad's input, what
// payloads it for a call, and what depayloads and decodes what a remote sends.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

namespace webrtccall {

enum class Kind { kVideo, kAudio };

struct Codec {
  const char* encoding_name;  // as in SDP rtpmap: "VP8", "H264", "VP9", "OPUS"
  Kind kind;
  int default_pt;
  int clock_rate;
  const char* encoded_caps;  // the elementary stream: "video/x-vp8", ...
  const char* encoder;       // element factory
  const char* parser;        // before payloading and after depayloading; may be null
  const char* payloader;
  const char* depayloader;
  const char* decoder;
};

// Codecs the element can send and receive. The first video entry is the default.
const std::vector<Codec>& codecs();
const Codec* codec_by_encoding_name(const char* encoding_name);
// The codec whose elementary stream `caps` are (encoded input), or null for raw or unknown.
const Codec* codec_for_encoded_caps(const GstCaps* caps);
const Codec& opus_codec();

// RTP caps for a codec with a payload type, as webrtcbin wants them on its sink pads.
GstCaps* rtp_caps(const Codec& codec, int pt);

// Creates `factory` or posts nothing and returns null; `what` names it in errors.
GstElement* make_element(const char* factory, const char* name = nullptr);

// The parser between an encoder (or encoded input) and the shared tee, with the stream format
// fixed where the codec has several (H.264: byte-stream); empty for codecs without a parser,
// or when an element is missing.
std::vector<GstElement*> make_send_parser(const Codec& codec);
// Elements that turn raw input into the codec's elementary stream (converter, encoder,
// parser as above), configured for real time at `bitrate_kbps`.
std::vector<GstElement*> make_encoder_chain(const Codec& codec, unsigned bitrate_kbps);
// Sets the bitrate of `element` if it is one of our video encoders (vp8enc, vp9enc:
// target-bitrate; openh264enc: bitrate; both take effect while playing) and the bitrate
// differs; other elements are left alone.
void set_encoder_bitrate(GstElement* element, unsigned kbps);
// Elements that turn the codec's RTP into its elementary stream (depayloader, parser) and,
// unless `encoded`, decode it.
std::vector<GstElement*> make_receive_chain(const Codec& codec, bool encoded);

// Adds `elements` to `bin`, links them in order, and syncs their state with the bin.
// Returns false (and removes them again) when linking fails.
bool add_and_link(GstBin* bin, const std::vector<GstElement*>& elements);

}  // namespace webrtccall
