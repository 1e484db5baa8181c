// A remote peer that is a bare webrtcbin (not our element), signaling over the protocol
// through a RawClient: it offers and answers only what its own pads carry, like a browser
// without some codecs. Video is VP8 only (or none); audio is Opus. It can also answer the
// video m-line the way Firefox does for a video line whose codecs it lacks: port 0, no ICE
// credentials, no DTLS setup, left out of the BUNDLE group. Header-only; runs inside
// tests/netns-run.sh like every element test. Its callbacks run on the default main context,
// which run_until iterates.
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "raw-client.h"

namespace test {

struct Vp8PeerOptions {
  bool video = true;          // a VP8 video m-line (sendrecv); false: none of its own
  bool reject_video = false;  // answer a video m-line with port 0, as Firefox does
};

class Vp8Peer {
 public:
  Vp8Peer(const std::string& url, const std::string& name, Vp8PeerOptions o = {})
      : options_(o), client_(url, name) {
    std::string desc = "webrtcbin name=w bundle-policy=max-bundle latency=50 ";
    if (o.video && !o.reject_video) {
      desc +=
          "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
          "framerate=30/1 ! videoconvert ! vp8enc deadline=1 cpu-used=8 threads=1 ! "
          "rtpvp8pay pt=96 picture-id-mode=15-bit ! application/x-rtp,media=video,"
          "encoding-name=VP8,payload=96,clock-rate=90000 ! w. ";
    }
    desc +=
        "audiotestsrc is-live=true wave=ticks ! audioconvert ! audioresample ! opusenc ! "
        "rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
        "clock-rate=48000,encoding-params=(string)2 ! w.";
    GError* err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    if (err) {
      std::fprintf(stderr, "vp8 peer pipeline: %s\n", err->message);
      g_error_free(err);
    }
    webrtc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "w");
    g_signal_connect(webrtc_, "on-ice-candidate",
                     G_CALLBACK(+[](GstElement*, guint mline, gchar* cand, gpointer self) {
                       auto* p = static_cast<Vp8Peer*>(self);
                       std::string c = cand;
                       p->later([p, mline, c] { p->send_candidate(mline, c); });
                     }),
                     this);
    g_signal_connect(webrtc_, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer self) {
                       static_cast<Vp8Peer*>(self)->on_pad_added(pad);
                     }),
                     this);
    client_.on_relayed = [this](const signaling::protocol::RelayedMsg& m) { on_message(m); };
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }

  ~Vp8Peer() {
    client_.on_relayed = nullptr;
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(webrtc_);
    gst_object_unref(pipeline_);
    // Deferred work still queued refers to this peer: run it out before it goes.
    alive_->store(false);
    while (g_main_context_iteration(nullptr, FALSE)) {
    }
  }

  bool run_until(const std::function<bool()>& pred, int timeout_ms = 20000) {
    return client_.run_until(pred, timeout_ms);
  }
  RawClient& client() { return client_; }

  // Calls `target`: our offer (VP8 video if any, Opus audio).
  void call(const std::string& target) {
    target_ = target;
    GstPromise* promise = gst_promise_new_with_change_func(
        [](GstPromise* p, gpointer self) {
          auto* bare = static_cast<Vp8Peer*>(self);
          GstWebRTCSessionDescription* offer = nullptr;
          gst_structure_get(gst_promise_get_reply(p), "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                            &offer, nullptr);
          gst_promise_unref(p);
          bare->later([bare, offer] {
            g_signal_emit_by_name(bare->webrtc_, "set-local-description", offer, nullptr);
            bare->send_description("video-offer", "offer", offer);
            gst_webrtc_session_description_free(offer);
          });
        },
        this, nullptr);
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  }

  std::atomic<int> video_frames{0}, audio_buffers{0};
  std::string received_video_encoding() {
    std::lock_guard lock(mutex_);
    return video_encoding_;
  }
  std::string remote_sdp() {
    std::lock_guard lock(mutex_);
    return remote_sdp_;
  }
  std::string sent_sdp() {
    std::lock_guard lock(mutex_);
    return sent_sdp_;
  }

 private:
  // Runs `fn` on the default main context later (from any thread), unless the peer is gone.
  void later(std::function<void()> fn) {
    struct Ctx {
      std::function<void()> fn;
      std::shared_ptr<std::atomic<bool>> alive;
    };
    GSource* s = g_idle_source_new();
    g_source_set_callback(
        s,
        [](gpointer d) -> gboolean {
          auto* ctx = static_cast<Ctx*>(d);
          if (ctx->alive->load()) ctx->fn();
          return G_SOURCE_REMOVE;
        },
        new Ctx{std::move(fn), alive_}, [](gpointer d) { delete static_cast<Ctx*>(d); });
    g_source_attach(s, nullptr);
    g_source_unref(s);
  }

  static std::string json(JsonBuilder* b) {
    JsonNode* root = json_builder_get_root(b);
    std::string text = signaling::protocol::to_text(root);
    json_node_unref(root);
    g_object_unref(b);
    return text;
  }

  void send_description(const char* msg_type, const char* sdp_type,
                        GstWebRTCSessionDescription* desc) {
    gchar* text = gst_sdp_message_as_text(desc->sdp);
    std::string sdp = text;
    g_free(text);
    if (options_.reject_video && std::string(sdp_type) == "answer") sdp = reject_video(sdp);
    {
      std::lock_guard lock(mutex_);
      sent_sdp_ = sdp;
    }
    JsonBuilder* b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, msg_type);
    json_builder_set_member_name(b, "target");
    json_builder_add_string_value(b, target_.c_str());
    json_builder_set_member_name(b, "sdp");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, sdp_type);
    json_builder_set_member_name(b, "sdp");
    json_builder_add_string_value(b, sdp.c_str());
    json_builder_end_object(b);
    json_builder_end_object(b);
    client_.send(json(b));
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

  void send_candidate(guint mline, const std::string& candidate) {
    // With video rejected, our candidates belong to the first m-line the bundle keeps.
    if (options_.reject_video && static_cast<int>(mline) == rejected_mline_) {
      mline = rejected_mline_ == 0 ? 1 : 0;
    }
    JsonBuilder* b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "new-ice-candidate");
    json_builder_set_member_name(b, "target");
    json_builder_add_string_value(b, target_.c_str());
    json_builder_set_member_name(b, "candidate");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "candidate");
    json_builder_add_string_value(b, candidate.c_str());
    json_builder_set_member_name(b, "sdpMLineIndex");
    json_builder_add_int_value(b, mline);
    json_builder_end_object(b);
    json_builder_end_object(b);
    if (target_.empty()) return;
    client_.send(json(b));
  }

  void on_message(const signaling::protocol::RelayedMsg& m) {
    JsonObject* o = m.object.get();
    if (m.type == "video-offer" || m.type == "video-answer") {
      JsonNode* sdp_node = json_object_get_member(o, "sdp");
      if (!sdp_node || !JSON_NODE_HOLDS_OBJECT(sdp_node)) return;
      auto text = signaling::protocol::string_member(json_node_get_object(sdp_node), "sdp");
      if (!text) return;
      {
        std::lock_guard lock(mutex_);
        remote_sdp_ = *text;
      }
      bool offer = m.type == "video-offer";
      if (offer) target_ = m.name;
      GstSDPMessage* sdp = nullptr;
      gst_sdp_message_new_from_text(text->c_str(), &sdp);
      GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(
          offer ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
      GstPromise* promise = nullptr;
      if (offer) {
        promise = gst_promise_new_with_change_func(
            [](GstPromise* p, gpointer self) {
              gst_promise_unref(p);
              auto* bare = static_cast<Vp8Peer*>(self);
              bare->later([bare] { bare->answer(); });
            },
            this, nullptr);
      }
      g_signal_emit_by_name(webrtc_, "set-remote-description", desc, promise);
      gst_webrtc_session_description_free(desc);
    } else if (m.type == "new-ice-candidate") {
      JsonNode* c = json_object_get_member(o, "candidate");
      if (!c || !JSON_NODE_HOLDS_OBJECT(c)) return;
      JsonObject* co = json_node_get_object(c);
      auto cand = signaling::protocol::string_member(co, "candidate");
      auto mline = signaling::protocol::int_member(co, "sdpMLineIndex");
      if (!cand || !mline || cand->empty()) return;
      g_signal_emit_by_name(webrtc_, "add-ice-candidate", static_cast<guint>(*mline),
                            cand->c_str());
    }
  }

  void answer() {
    GstPromise* promise = gst_promise_new_with_change_func(
        [](GstPromise* p, gpointer self) {
          auto* bare = static_cast<Vp8Peer*>(self);
          GstWebRTCSessionDescription* answer = nullptr;
          gst_structure_get(gst_promise_get_reply(p), "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                            &answer, nullptr);
          gst_promise_unref(p);
          bare->later([bare, answer] {
            if (!answer) return;
            g_signal_emit_by_name(bare->webrtc_, "set-local-description", answer, nullptr);
            bare->send_description("video-answer", "answer", answer);
            gst_webrtc_session_description_free(answer);
          });
        },
        this, nullptr);
    g_signal_emit_by_name(webrtc_, "create-answer", nullptr, promise);
  }

  // Streaming thread: decodebin into a counting fakesink.
  void on_pad_added(GstPad* pad) {
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    bool video = g_strcmp0(gst_structure_get_string(s, "media"), "video") == 0;
    if (video) {
      std::lock_guard lock(mutex_);
      video_encoding_ = gst_structure_get_string(s, "encoding-name");
    }
    gst_caps_unref(caps);
    GstElement* decode = gst_element_factory_make("decodebin", nullptr);
    struct Ctx {
      Vp8Peer* peer;
      bool video;
    };
    g_signal_connect_data(
        decode, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* dpad, gpointer d) {
          auto* ctx = static_cast<Ctx*>(d);
          GstElement* sink = gst_element_factory_make("fakesink", nullptr);
          g_object_set(sink, "sync", FALSE, "async", FALSE, "signal-handoffs", TRUE, nullptr);
          g_signal_connect(sink, "handoff",
                           G_CALLBACK(+[](GstElement*, GstBuffer*, GstPad*, gpointer c) {
                             auto* cx = static_cast<Ctx*>(c);
                             (cx->video ? cx->peer->video_frames : cx->peer->audio_buffers)++;
                           }),
                           ctx);
          gst_bin_add(GST_BIN(ctx->peer->pipeline_), sink);
          gst_element_sync_state_with_parent(sink);
          GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
          gst_pad_link(dpad, sinkpad);
          gst_object_unref(sinkpad);
        }),
        new Ctx{this, video}, [](gpointer d, GClosure*) { delete static_cast<Ctx*>(d); },
        static_cast<GConnectFlags>(0));
    gst_bin_add(GST_BIN(pipeline_), decode);
    gst_element_sync_state_with_parent(decode);
    GstPad* sink = gst_element_get_static_pad(decode, "sink");
    gst_pad_link(pad, sink);
    gst_object_unref(sink);
  }

  Vp8PeerOptions options_;
  RawClient client_;
  GstElement* pipeline_ = nullptr;
  GstElement* webrtc_ = nullptr;
  std::string target_;
  int rejected_mline_ = -1;
  std::mutex mutex_;
  std::string video_encoding_, remote_sdp_, sent_sdp_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace test
