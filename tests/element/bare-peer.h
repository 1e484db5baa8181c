// A WebRTC peer that is not our element: a bare webrtcbin in the test process, speaking the
// username protocol's messages (video-offer, video-answer, new-ice-candidate) the way MDN's
// sample client does. It offers and answers only what its own sink pads carry, like a browser
// without some codecs: video is VP8 only, audio Opus; it decodes VP8 and Opus and nothing else.
// Options make it MDN's sample (re-offering at once after its answer, adding its camera), a
// client that sends no name with its candidates, or Firefox answering a video m-line it cannot
// take (port 0). Header-only; the caller carries the messages (a RawClient through our server:
// BareClient below, or the permissive MDN-like server of signaller_test.cpp) and pumps the
// default main context, where everything of this class runs except the counting of what it
// receives. Used by renegotiation_test.cpp, codec_test.cpp and signaller_test.cpp.
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "protocol.h"
#include "raw-client.h"

namespace test {

struct BarePeerOptions {
  // Live test sources on sink pads from the start: "video" (VP8), "audio" (Opus).
  std::vector<std::string> send;
  // Answers a video m-line the way Firefox does for one whose codecs it lacks: port 0,
  // a=inactive, no ICE credentials, no DTLS setup, left out of the BUNDLE group.
  bool reject_video = false;
};

class BarePeer {
 public:
  // `send` carries one message (JSON text) to the server; it must outlive the peer.
  BarePeer(std::string name, std::function<void(const std::string&)> send,
           BarePeerOptions options = {})
      : name_(std::move(name)), send_(std::move(send)), options_(std::move(options)) {
    pipeline_ = gst_pipeline_new(("bare-" + name_).c_str());
    webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
    gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
    gst_bin_add(GST_BIN(pipeline_), webrtc_);
    g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(on_ice_candidate), this);
    g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
    for (const std::string& kind : options_.send) add_send(kind);
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }
  ~BarePeer() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
    // Candidates queued for sending hold this object: send them now (the carrier outlives us).
    while (g_main_context_iteration(nullptr, FALSE)) {
    }
  }
  BarePeer(const BarePeer&) = delete;
  BarePeer& operator=(const BarePeer&) = delete;

  // MDN's sample: it answers an offer, then adds its camera with addTransceiver() and, its
  // signaling state stable again, re-offers in the same call. `reoffer_adding` is what it
  // adds then ("video", "audio"), or empty for a peer that only answers.
  std::string reoffer_adding;
  // Candidates of the remote are not given to webrtcbin (a test that needs the remote to
  // learn ours from the signaling).
  bool ignore_remote_candidates = false;
  // Candidates are sent with "name" (as our server stamps anyway) or without (MDN's client).
  bool name_on_candidates = true;

  // Calls `remote`: an offer of what its sink pads carry; with none, an offer that receives
  // video (and sends nothing yet).
  void call(const std::string& remote) {
    remote_ = remote;
    if (options_.send.empty()) {
      GstCaps* caps = gst_caps_from_string(
          "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000");
      GstWebRTCRTPTransceiver* trans = nullptr;
      g_signal_emit_by_name(webrtc_, "add-transceiver",
                            GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
      gst_caps_unref(caps);
      if (trans) gst_object_unref(trans);
    }
    offer();
  }

  // Adds a live test source of `kind` ("video": VP8, "audio": Opus) on a new sink pad.
  void add_send(const std::string& kind) {
    std::string desc =
        kind == "video"
            ? "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,"
              "framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ! "
              "capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,"
              "clock-rate=90000\""
            : "audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1 ! "
              "opusenc ! rtpopuspay pt=111 ! "
              "capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
              "clock-rate=48000\"";
    GError* error = nullptr;
    GstElement* bin = gst_parse_bin_from_description(desc.c_str(), TRUE, &error);
    if (error) {
      errors.push_back(std::string("add_send: ") + error->message);
      g_error_free(error);
    }
    if (!bin) return;
    gst_bin_add(GST_BIN(pipeline_), bin);
    GstPad* src = gst_element_get_static_pad(bin, "src");
    GstPad* sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
    if (!sink || gst_pad_link(src, sink) != GST_PAD_LINK_OK) {
      errors.push_back("add_send: cannot link " + kind + " to webrtcbin");
    }
    // The codecs, for an offer made before the source's caps reach webrtcbin.
    GstWebRTCRTPTransceiver* trans = nullptr;
    if (sink) g_object_get(sink, "transceiver", &trans, nullptr);
    if (trans) {
      GstCaps* caps = gst_pad_query_caps(src, nullptr);
      g_object_set(trans, "codec-preferences", caps, nullptr);
      gst_caps_unref(caps);
      gst_object_unref(trans);
    }
    gst_object_unref(src);
    if (sink) gst_object_unref(sink);
    gst_element_sync_state_with_parent(bin);
  }

  // Creates an offer, applies it and sends it.
  void offer() {
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, p);
    gst_promise_wait(p);
    GstWebRTCSessionDescription* desc = nullptr;
    if (const GstStructure* reply = gst_promise_get_reply(p)) {
      gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
    }
    gst_promise_unref(p);
    if (!desc) {
      errors.push_back("create-offer failed");
      return;
    }
    apply_local(desc);
    offers_sent++;
  }

  // A relayed message from the remote.
  void handle(JsonObject* msg) {
    std::string type = signaling::protocol::string_member(msg, "type").value_or("");
    if (type == "video-offer" || type == "video-answer") {
      if (remote_.empty()) remote_ = signaling::protocol::string_member(msg, "name").value_or("");
      JsonNode* sdp = json_object_get_member(msg, "sdp");
      if (!sdp || !JSON_NODE_HOLDS_OBJECT(sdp)) return;
      std::string text =
          signaling::protocol::string_member(json_node_get_object(sdp), "sdp").value_or("");
      bool offer = type == "video-offer";
      if (offer) {
        offers_received++;
        last_remote_offer = text;
      } else {
        answers_received++;
        last_remote_answer = text;
      }
      if (!apply_remote(offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, text)) {
        return;
      }
      if (offer) answer();
    } else if (type == "new-ice-candidate") {
      JsonNode* c = json_object_get_member(msg, "candidate");
      if (!c || !JSON_NODE_HOLDS_OBJECT(c) || ignore_remote_candidates) return;
      JsonObject* o = json_node_get_object(c);
      auto cand = signaling::protocol::string_member(o, "candidate");
      auto mline = signaling::protocol::int_member(o, "sdpMLineIndex");
      if (cand && !cand->empty() && mline) {
        g_signal_emit_by_name(webrtc_, "add-ice-candidate", static_cast<guint>(*mline),
                              cand->c_str());
      }
    }
  }

  std::string signaling_state() const {
    GstWebRTCSignalingState state;
    g_object_get(webrtc_, "signaling-state", &state, nullptr);
    return state == GST_WEBRTC_SIGNALING_STATE_STABLE ? "stable" : "not-stable";
  }
  GstElement* webrtc() const { return webrtc_; }

  // What it received, decoded: video frames and audio buffers, and the longest time between
  // two video frames since the first (a gap in the media).
  std::atomic<int> video_frames{0}, audio_buffers{0};
  gint64 max_video_gap_us() const {
    std::lock_guard lock(mutex_);
    gint64 gap = max_gap_us_;
    if (last_frame_us_) gap = std::max(gap, g_get_monotonic_time() - last_frame_us_);
    return gap;
  }
  // The encoding name of the last video stream that arrived (decoded or not).
  std::string received_video_encoding() const {
    std::lock_guard lock(mutex_);
    return video_encoding_;
  }
  int offers_sent = 0, answers_sent = 0, offers_received = 0, answers_received = 0;
  // The descriptions as sent and received (with reject_video, the answer as sent: port 0).
  std::string last_remote_offer, last_remote_answer, last_local_offer, last_local_answer;
  std::vector<std::string> errors;

 private:
  void answer() {
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "create-answer", nullptr, p);
    gst_promise_wait(p);
    GstWebRTCSessionDescription* desc = nullptr;
    if (const GstStructure* reply = gst_promise_get_reply(p)) {
      gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
    }
    gst_promise_unref(p);
    if (!desc) {
      errors.push_back("create-answer failed");
      return;
    }
    apply_local(desc);
    answers_sent++;
    // Stable again: MDN's client adds its camera now and re-offers at once.
    if (!reoffer_adding.empty()) {
      add_send(std::exchange(reoffer_adding, ""));
      offer();
    }
  }

  void apply_local(GstWebRTCSessionDescription* desc) {
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-local-description", desc, p);
    gst_promise_wait(p);
    gst_promise_unref(p);
    bool offer = desc->type == GST_WEBRTC_SDP_TYPE_OFFER;
    gchar* sdp_text = gst_sdp_message_as_text(desc->sdp);
    std::string text = sdp_text;
    g_free(sdp_text);
    if (options_.reject_video && !offer) text = reject_video(text);
    (offer ? last_local_offer : last_local_answer) = text;
    JsonObject* o = json_object_new();
    json_object_set_string_member(o, "type", offer ? "video-offer" : "video-answer");
    json_object_set_string_member(o, "name", name_.c_str());
    json_object_set_string_member(o, "target", remote_.c_str());
    JsonObject* sdp = json_object_new();
    json_object_set_string_member(sdp, "type", offer ? "offer" : "answer");
    json_object_set_string_member(sdp, "sdp", text.c_str());
    json_object_set_object_member(o, "sdp", sdp);
    send_(signaling::protocol::to_text(o));
    json_object_unref(o);
    gst_webrtc_session_description_free(desc);
  }

  bool apply_remote(GstWebRTCSDPType type, const std::string& text) {
    GstSDPMessage* sdp = nullptr;
    gst_sdp_message_new(&sdp);
    if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(text.data()),
                                     static_cast<guint>(text.size()), sdp) != GST_SDP_OK) {
      gst_sdp_message_free(sdp);
      errors.push_back("unparsable SDP");
      return false;
    }
    GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(type, sdp);
    GstPromise* p = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", desc, p);
    gst_promise_wait(p);
    const GstStructure* reply = gst_promise_get_reply(p);
    GError* error = nullptr;
    if (reply) gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
    if (error) {
      errors.push_back(std::string("set-remote-description: ") + error->message);
      g_error_free(error);
    }
    gst_promise_unref(p);
    gst_webrtc_session_description_free(desc);
    return errors.empty();
  }

  // Firefox's answer to a video line it cannot take: port 0, a=inactive, no ICE credentials
  // nor setup nor candidates, and out of the BUNDLE group.
  std::string reject_video(const std::string& sdp) {
    std::vector<std::string> lines;
    std::string line;
    for (char c : sdp) {
      if (c == '\n') {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    std::string out, video_mid;
    bool in_video = false;
    int index = -1;
    for (const std::string& l : lines) {
      if (l.rfind("m=", 0) == 0) {
        ++index;
        in_video = l.rfind("m=video", 0) == 0;
        if (in_video) {
          rejected_mline_ = index;
          // m=video 0 <proto> <first pt>
          std::size_t port = l.find(' ') + 1;
          std::string rest = l.substr(l.find(' ', port) + 1);
          out += "m=video 0 " + rest + "\r\n";
          continue;
        }
      }
      if (in_video) {
        if (l.rfind("a=mid:", 0) == 0) video_mid = l.substr(6);
        if (l.rfind("a=ice-", 0) == 0 || l.rfind("a=setup", 0) == 0 ||
            l.rfind("a=candidate", 0) == 0 || l.rfind("a=end-of-candidates", 0) == 0 ||
            l == "a=sendrecv" || l == "a=recvonly" || l == "a=sendonly" || l == "a=inactive" ||
            l.rfind("a=ssrc", 0) == 0 || l.rfind("a=msid", 0) == 0) {
          continue;
        }
        if (l.rfind("c=", 0) == 0) {
          out += l + "\r\na=inactive\r\n";
          continue;
        }
      }
      out += l + "\r\n";
    }
    // Out of the BUNDLE group.
    std::size_t g = out.find("a=group:BUNDLE");
    if (g != std::string::npos && !video_mid.empty()) {
      std::size_t end = out.find("\r\n", g);
      std::string group = out.substr(g, end - g), mended = "a=group:BUNDLE";
      std::string mids = group.substr(strlen("a=group:BUNDLE"));
      std::size_t pos = 0;
      while (pos < mids.size()) {
        std::size_t sp = mids.find(' ', pos);
        if (sp == std::string::npos) sp = mids.size();
        std::string mid = mids.substr(pos, sp - pos);
        if (!mid.empty() && mid != video_mid) mended += " " + mid;
        pos = sp + 1;
      }
      out.replace(g, end - g, mended);
    }
    return out;
  }

  // Default main context: one candidate of webrtcbin's to the remote.
  void send_candidate(guint mline, const char* candidate) {
    // With video rejected, our candidates belong to the first m-line the bundle keeps.
    if (options_.reject_video && static_cast<int>(mline) == rejected_mline_) {
      mline = rejected_mline_ == 0 ? 1 : 0;
    }
    if (remote_.empty()) return;
    JsonObject* o = json_object_new();
    json_object_set_string_member(o, "type", "new-ice-candidate");
    if (name_on_candidates) json_object_set_string_member(o, "name", name_.c_str());
    json_object_set_string_member(o, "target", remote_.c_str());
    JsonObject* c = json_object_new();
    json_object_set_string_member(c, "candidate", candidate);
    json_object_set_int_member(c, "sdpMLineIndex", mline);
    json_object_set_object_member(o, "candidate", c);
    send_(signaling::protocol::to_text(o));
    json_object_unref(o);
  }

  // webrtcbin's thread: the candidate goes out from the default main context.
  static void on_ice_candidate(GstElement*, guint mline, gchar* candidate, gpointer data) {
    struct Ctx {
      BarePeer* self;
      guint mline;
      std::string candidate;
    };
    // An idle source, never g_main_context_invoke(): that runs the function at once on this
    // thread whenever the test's thread does not hold the context (while it waits on a
    // promise), and the carrier (libsoup) is not thread-safe.
    GSource* source = g_idle_source_new();
    g_source_set_callback(
        source,
        [](gpointer d) -> gboolean {
          auto* ctx = static_cast<Ctx*>(d);
          ctx->self->send_candidate(ctx->mline, ctx->candidate.c_str());
          return G_SOURCE_REMOVE;
        },
        new Ctx{static_cast<BarePeer*>(data), mline, candidate},
        [](gpointer d) { delete static_cast<Ctx*>(d); });
    g_source_attach(source, nullptr);
    g_source_unref(source);
  }

  // Streaming thread: decode what arrives and count it.
  static void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<BarePeer*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    const char* enc = gst_structure_get_string(s, "encoding-name");
    std::string encoding = enc ? enc : "";
    if (g_strcmp0(gst_structure_get_string(s, "media"), "video") == 0) {
      std::lock_guard lock(self->mutex_);
      self->video_encoding_ = encoding;
    }
    gst_caps_unref(caps);
    bool video = encoding == "VP8";
    std::string desc = video                ? "rtpvp8depay ! vp8dec ! fakesink name=sink"
                       : encoding == "OPUS" ? "rtpopusdepay ! opusdec ! fakesink name=sink"
                                            : "fakesink name=sink";
    GError* error = nullptr;
    GstElement* bin = gst_parse_bin_from_description(desc.c_str(), TRUE, &error);
    if (error) g_error_free(error);
    if (!bin) return;
    GstElement* sink = gst_bin_get_by_name(GST_BIN(bin), "sink");
    g_object_set(sink, "sync", FALSE, "async", FALSE, "signal-handoffs", TRUE, nullptr);
    if (video) {
      g_signal_connect(sink, "handoff",
                       G_CALLBACK(+[](GstElement*, GstBuffer*, GstPad*, gpointer d) {
                         auto* me = static_cast<BarePeer*>(d);
                         gint64 now = g_get_monotonic_time();
                         std::lock_guard lock(me->mutex_);
                         if (me->last_frame_us_) {
                           me->max_gap_us_ = std::max(me->max_gap_us_, now - me->last_frame_us_);
                         }
                         me->last_frame_us_ = now;
                         me->video_frames++;
                       }),
                       self);
    } else if (encoding == "OPUS") {
      g_signal_connect(sink, "handoff",
                       G_CALLBACK(+[](GstElement*, GstBuffer*, GstPad*, gpointer d) {
                         static_cast<BarePeer*>(d)->audio_buffers++;
                       }),
                       self);
    }
    gst_object_unref(sink);
    gst_bin_add(GST_BIN(self->pipeline_), bin);
    gst_element_sync_state_with_parent(bin);
    GstPad* bin_sink = gst_element_get_static_pad(bin, "sink");
    gst_pad_link(pad, bin_sink);
    gst_object_unref(bin_sink);
  }

  std::string name_, remote_;
  std::function<void(const std::string&)> send_;
  BarePeerOptions options_;
  GstElement* pipeline_ = nullptr;
  GstElement* webrtc_ = nullptr;
  int rejected_mline_ = -1;
  mutable std::mutex mutex_;
  gint64 last_frame_us_ = 0, max_gap_us_ = 0;
  std::string video_encoding_;
};

// A bare peer and its raw client through our server, on the default main context of the
// test's thread.
struct BareClient {
  BareClient(const std::string& url, const std::string& name, BarePeerOptions options = {})
      : client(url, name),
        peer(
            name, [this](const std::string& text) { client.send(text); }, std::move(options)) {
    client.on_relayed = [this](const signaling::protocol::RelayedMsg& m) {
      peer.handle(m.object.get());
    };
  }
  ~BareClient() { client.on_relayed = nullptr; }
  // Pumps the default context (the raw client, the bare peer) until `pred`.
  bool until(const std::function<bool()>& pred, int timeout_ms = 20000) {
    return client.run_until(pred, timeout_ms);
  }
  RawClient client;
  BarePeer peer;
};

}  // namespace test
