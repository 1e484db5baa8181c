#include "media.h"

#include <cstring>

namespace webrtccall {

namespace {

// Sets a property only when the element has it (encoder versions differ).
template <typename T>
void set_if(GstElement* e, const char* property, T value) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), property)) {
    g_object_set(e, property, value, nullptr);
  }
}

void set_enum_if(GstElement* e, const char* property, const char* nick) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), property)) {
    gst_util_set_object_arg(G_OBJECT(e), property, nick);
  }
}

}  // namespace

const std::vector<Codec>& codecs() {
  static const std::vector<Codec> kCodecs = {
      {"VP8", Kind::kVideo, 96, 90000, "video/x-vp8", "vp8enc", nullptr, "rtpvp8pay", "rtpvp8depay",
       "vp8dec"},
      {"H264", Kind::kVideo, 102, 90000, "video/x-h264", "openh264enc", "h264parse", "rtph264pay",
       "rtph264depay", "openh264dec"},
      {"VP9", Kind::kVideo, 98, 90000, "video/x-vp9", "vp9enc", nullptr, "rtpvp9pay", "rtpvp9depay",
       "vp9dec"},
      {"OPUS", Kind::kAudio, 111, 48000, "audio/x-opus", "opusenc", nullptr, "rtpopuspay",
       "rtpopusdepay", "opusdec"},
  };
  return kCodecs;
}

const Codec* codec_by_encoding_name(const char* encoding_name) {
  if (!encoding_name) return nullptr;
  for (const Codec& c : codecs()) {
    if (g_ascii_strcasecmp(c.encoding_name, encoding_name) == 0) return &c;
  }
  return nullptr;
}

const Codec* codec_for_encoded_caps(const GstCaps* caps) {
  if (!caps || gst_caps_is_empty(caps)) return nullptr;
  const char* name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  for (const Codec& c : codecs()) {
    if (g_str_equal(name, c.encoded_caps)) return &c;
  }
  return nullptr;
}

const Codec& opus_codec() {
  return codecs().back();
}

GstCaps* rtp_caps(const Codec& codec, int pt) {
  GstCaps* caps = gst_caps_new_simple(
      "application/x-rtp", "media", G_TYPE_STRING, codec.kind == Kind::kVideo ? "video" : "audio",
      "encoding-name", G_TYPE_STRING, codec.encoding_name, "payload", G_TYPE_INT, pt, "clock-rate",
      G_TYPE_INT, codec.clock_rate, nullptr);
  if (g_str_equal(codec.encoding_name, "H264")) {
    // What every browser decodes: constrained baseline, packetization mode 1.
    gst_caps_set_simple(caps, "packetization-mode", G_TYPE_STRING, "1", "profile-level-id",
                        G_TYPE_STRING, "42e01f", "level-asymmetry-allowed", G_TYPE_STRING, "1",
                        nullptr);
  } else if (g_str_equal(codec.encoding_name, "OPUS")) {
    gst_caps_set_simple(caps, "encoding-params", G_TYPE_STRING, "2", "minptime", G_TYPE_STRING,
                        "10", "useinbandfec", G_TYPE_STRING, "1", nullptr);
  }
  return caps;
}

GstElement* make_element(const char* factory, const char* name) {
  GstElement* e = gst_element_factory_make(factory, name);
  if (!e) GST_WARNING("element %s is missing (install its GStreamer plugin)", factory);
  return e;
}

std::vector<GstElement*> make_send_parser(const Codec& codec) {
  if (!codec.parser) return {};
  GstElement* parser = make_element(codec.parser);
  if (!parser) return {};
  set_if(parser, "config-interval", -1);
  if (!g_str_equal(codec.encoding_name, "H264")) return {parser};
  // One stream format for every call: byte-stream access units with SPS/PPS in band. Left to
  // negotiation, h264parse picks what the branches' payloaders accept together, and a call
  // that joins while a sibling renegotiates could get avc caps whose SPS/PPS the payloader
  // cannot turn into its output caps: not-negotiated, back through the tee into the shared
  // encoder (seen under AddressSanitizer, whose slowness widens the window).
  GstElement* filter = make_element("capsfilter");
  if (!filter) {
    gst_object_unref(gst_object_ref_sink(parser));
    return {};
  }
  GstCaps* caps = gst_caps_from_string("video/x-h264,stream-format=byte-stream,alignment=au");
  g_object_set(filter, "caps", caps, nullptr);
  gst_caps_unref(caps);
  return {parser, filter};
}

void set_encoder_bitrate(GstElement* element, unsigned kbps) {
  GstElementFactory* factory = gst_element_get_factory(element);
  if (!factory) return;
  const char* name = GST_OBJECT_NAME(factory);
  if (g_str_equal(name, "vp8enc") || g_str_equal(name, "vp9enc")) {
    gint now = 0;
    g_object_get(element, "target-bitrate", &now, nullptr);
    auto bps = static_cast<gint>(kbps * 1000);
    if (now != bps) g_object_set(element, "target-bitrate", bps, nullptr);
  } else if (g_str_equal(name, "openh264enc")) {
    guint now = 0;
    g_object_get(element, "bitrate", &now, nullptr);
    if (now != kbps * 1000) g_object_set(element, "bitrate", kbps * 1000, nullptr);
  }
}

std::vector<GstElement*> make_encoder_chain(const Codec& codec, unsigned bitrate_kbps) {
  std::vector<GstElement*> out;
  auto add = [&](const char* factory) {
    GstElement* e = make_element(factory);
    if (e) out.push_back(e);
    return e;
  };
  bool missing = false;
  if (codec.kind == Kind::kVideo) {
    missing |= !add("videoconvert");
    // Encoding on its own thread; never more than one frame behind (latency over smoothness).
    if (GstElement* q = add("queue")) {
      g_object_set(q, "max-size-buffers", 1u, "max-size-bytes", 0u, "max-size-time",
                   G_GUINT64_CONSTANT(0), nullptr);
      gst_util_set_object_arg(G_OBJECT(q), "leaky", "downstream");
    }
    GstElement* enc = add(codec.encoder);
    missing |= !enc;
    if (enc) {
      guint bps = bitrate_kbps * 1000;
      if (g_str_equal(codec.encoder, "vp8enc") || g_str_equal(codec.encoder, "vp9enc")) {
        set_if(enc, "deadline", static_cast<gint64>(1));  // real time
        set_if(enc, "cpu-used", 8);
        set_enum_if(enc, "end-usage", "cbr");
        set_if(enc, "target-bitrate", static_cast<gint>(bps));
        set_if(enc, "lag-in-frames", 0);
        set_if(enc, "keyframe-max-dist", 300);
        // One thread: libvpx's threads busy-wait for each other, and on a 2-core machine two
        // encoders with threads=2 dropped two thirds of the frames (bench/call-setup:
        // glass-to-glass p50 110-125 ms with 2 threads, 7.5 ms with 1).
        set_if(enc, "threads", 1);
        set_if(enc, "undershoot", 95);
        set_if(enc, "buffer-size", 1000);
        set_if(enc, "buffer-initial-size", 500);
        set_if(enc, "buffer-optimal-size", 600);
        set_enum_if(enc, "error-resilient", "default");
        if (g_str_equal(codec.encoder, "vp9enc")) set_if(enc, "row-mt", TRUE);
      } else if (g_str_equal(codec.encoder, "openh264enc")) {
        set_if(enc, "bitrate", bps);
        set_enum_if(enc, "complexity", "low");
        set_enum_if(enc, "rate-control", "bitrate");
        set_enum_if(enc, "usage-type", "camera");
        set_if(enc, "gop-size", 300u);
        set_if(enc, "multi-thread", 2u);
      }
    }
    std::vector<GstElement*> parse = make_send_parser(codec);
    missing |= codec.parser && parse.empty();
    out.insert(out.end(), parse.begin(), parse.end());
  } else {
    missing |= !add("audioconvert");
    missing |= !add("audioresample");
    GstElement* enc = add(codec.encoder);
    missing |= !enc;
    if (enc) {
      set_if(enc, "bitrate", 64000);
      set_enum_if(enc, "frame-size", "20");
      set_if(enc, "inband-fec", TRUE);
    }
  }
  if (missing) {
    for (GstElement* e : out) gst_object_unref(gst_object_ref_sink(e));
    out.clear();
  }
  return out;
}

std::vector<GstElement*> make_receive_chain(const Codec& codec, bool encoded) {
  std::vector<GstElement*> out;
  bool missing = false;
  auto add = [&](const char* factory) {
    GstElement* e = make_element(factory);
    missing |= !e;
    if (e) out.push_back(e);
    return e;
  };
  add(codec.depayloader);
  if (codec.parser) add(codec.parser);
  if (!encoded) {
    const char* decoder = codec.decoder;
    // FFmpeg's H.264 decoder is faster and more tolerant when it is installed.
    if (g_str_equal(codec.encoding_name, "H264")) {
      if (GstElementFactory* f = gst_element_factory_find("avdec_h264")) {
        decoder = "avdec_h264";
        gst_object_unref(f);
      }
    }
    add(decoder);
  }
  if (missing) {
    for (GstElement* e : out) gst_object_unref(gst_object_ref_sink(e));
    out.clear();
  }
  return out;
}

bool add_and_link(GstBin* bin, const std::vector<GstElement*>& elements) {
  for (GstElement* e : elements) gst_bin_add(bin, e);
  for (std::size_t i = 1; i < elements.size(); ++i) {
    if (!gst_element_link(elements[i - 1], elements[i])) {
      GST_WARNING("cannot link %s to %s", GST_ELEMENT_NAME(elements[i - 1]),
                  GST_ELEMENT_NAME(elements[i]));
      for (GstElement* e : elements) {
        gst_element_set_state(e, GST_STATE_NULL);
        gst_bin_remove(bin, e);
      }
      return false;
    }
  }
  for (auto it = elements.rbegin(); it != elements.rend(); ++it) {
    gst_element_sync_state_with_parent(*it);
  }
  return true;
}

}  // namespace webrtccall
