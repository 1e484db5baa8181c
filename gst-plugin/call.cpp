#include "call.h"

#include <gst/video/video.h>
#include <nice/nice.h>

#include <algorithm>
#include <cstring>

#include "codec-choice.h"
#include "gref.h"
#include "webrtccall.h"

GST_DEBUG_CATEGORY_EXTERN(webrtccall_debug);
#define GST_CAT_DEFAULT webrtccall_debug

namespace webrtccall {

namespace {

const char* media_kind(const GstSDPMessage* sdp, guint mline) {
  if (mline >= gst_sdp_message_medias_len(sdp)) return "";
  return gst_sdp_media_get_media(gst_sdp_message_get_media(sdp, mline));
}

// Finds the elements of `factory` inside `bin`, at any depth.
std::vector<GstElement*> find_elements(GstBin* bin, const char* factory) {
  std::vector<GstElement*> out;
  GstIterator* it = gst_bin_iterate_recurse(bin);
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) {
      out.push_back(GST_ELEMENT(gst_object_ref(e)));
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return out;
}

// Runs `fn` from an idle source on `context`: never at once, also when called on the thread
// that runs `context` (g_main_context_invoke would call it directly there).
void run_idle(GMainContext* context, std::function<void()> fn) {
  GSource* s = g_idle_source_new();
  g_source_set_callback(
      s,
      [](gpointer data) -> gboolean {
        (*static_cast<std::function<void()>*>(data))();
        return G_SOURCE_REMOVE;
      },
      new std::function<void()>(std::move(fn)),
      [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
  g_source_attach(s, context);
  g_source_unref(s);
}

void set_state_and_remove(GstBin* bin, GstElement* e) {
  gst_element_set_locked_state(e, TRUE);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_bin_remove(bin, e);
}

}  // namespace

std::string call_element_name(unsigned call_id, std::string_view what, unsigned n) {
  return "call" + std::to_string(call_id) + "-" + std::string(what) + "-" + std::to_string(n);
}

unsigned call_id_of_element(std::string_view name) {
  if (name.substr(0, 4) != "call") return 0;
  unsigned id = 0;
  std::size_t i = 4;
  for (; i < name.size() && i < 14 && name[i] >= '0' && name[i] <= '9'; ++i) {
    id = id * 10 + static_cast<unsigned>(name[i] - '0');
  }
  return i > 4 && i < name.size() && name[i] == '-' ? id : 0;
}

void Call::name_elements(const std::vector<GstElement*>& elements) {
  for (GstElement* e : elements) {
    GstElementFactory* f = gst_element_get_factory(e);
    std::string name =
        call_element_name(id_, f ? GST_OBJECT_NAME(f) : "element", named_.fetch_add(1));
    gst_object_set_name(GST_OBJECT(e), name.c_str());
  }
}

Call::Call(Engine& engine, std::string peer, unsigned id, bool offerer, Settings settings)
    : engine_(engine),
      peer_(std::move(peer)),
      id_(id),
      offerer_(offerer),
      settings_(std::move(settings)),
      negotiation_(engine.my_name(), peer_),
      started_us_(g_get_monotonic_time()) {}

Call::~Call() {
  if (remote_offer_) gst_sdp_message_free(remote_offer_);
  for (Offered& o : offered_) gst_object_unref(o.transceiver);
}

void Call::later(std::function<void(Call&)> fn) {
  Engine* engine = &engine_;
  unsigned id = id_;
  engine_.invoke([engine, id, fn = std::move(fn)] {
    if (Call* c = engine->find_call(id)) fn(*c);
  });
}

GstElement* Call::make_webrtcbin() {
  std::string name = call_element_name(id_, "webrtcbin", named_.fetch_add(1));
  GstElement* webrtc = make_element("webrtcbin", name.c_str());
  if (!webrtc) return nullptr;
  gst_util_set_object_arg(G_OBJECT(webrtc), "bundle-policy", "max-bundle");
  g_object_set(webrtc, "latency", settings_.latency_ms, nullptr);
  if (!settings_.stun_server.empty()) {
    g_object_set(webrtc, "stun-server", settings_.stun_server.c_str(), nullptr);
  }
  for (const std::string& turn : settings_.turn_servers) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(webrtc, "add-turn-server", turn.c_str(), &ok);
    if (!ok) GST_WARNING("TURN server %s refused by webrtcbin", turn.c_str());
  }
  return webrtc;
}

void Call::configure_ice_agent() {
  GstObject* ice = nullptr;
  g_object_get(webrtc_, "ice-agent", &ice, nullptr);
  if (!ice) return;
  GObject* agent = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
    g_object_get(ice, "agent", &agent, nullptr);
  }
  if (agent) {
    // libnice 0.1.21 maps ports with UPnP by default: a thread, 11 fds and SSDP multicast
    // on every interface per call. Off unless asked for.
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp")) {
      g_object_set(agent, "upnp", settings_.upnp ? TRUE : FALSE, nullptr);
    }
    if (!settings_.ice_tcp && g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "ice-tcp")) {
      g_object_set(agent, "ice-tcp", FALSE, nullptr);
    }
    for (const std::string& address : settings_.ice_addresses) {
      NiceAddress addr;
      if (nice_address_set_from_string(&addr, address.c_str())) {
        nice_agent_add_local_address(NICE_AGENT(agent), &addr);
      } else {
        GST_WARNING("ice-addresses: %s is not an IP address", address.c_str());
      }
    }
    g_object_unref(agent);
  }
  gst_object_unref(ice);
}

bool Call::start(std::string& error) {
  webrtc_ = make_webrtcbin();
  if (!webrtc_) {
    error = "webrtcbin is missing (install gstreamer1.0-plugins-bad and gstreamer1.0-nice)";
    return false;
  }
  gst_bin_add(engine_.bin(), webrtc_);
  configure_ice_agent();
  handlers_.push_back(
      g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(on_ice_candidate_cb), this));
  handlers_.push_back(g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added_cb), this));
  handlers_.push_back(
      g_signal_connect(webrtc_, "notify::connection-state", G_CALLBACK(on_state_cb), this));
  handlers_.push_back(
      g_signal_connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(on_state_cb), this));
  if (!gst_element_sync_state_with_parent(webrtc_)) {
    error = "webrtcbin cannot start";
    return false;
  }
  if (!offerer_) return true;  // branches are linked once the offer tells the payload types

  bool has[2] = {false, false};
  unsigned mlines = 0;
  {
    std::lock_guard lock(engine_.streams_mutex());
    for (Kind kind : {Kind::kVideo, Kind::kAudio}) {
      for (SinkStream* s : engine_.streams_of(kind)) {
        // Video we encode ourselves: every codec we can produce, the answer picks one.
        bool several = kind == Kind::kVideo && engine_.producible(s).size() > 1;
        // Each stream is one transceiver, m-lines in that order. The pads are named after
        // their m-line: a pad linked after the answer (link_offered) must find its
        // transceiver by m-line, and a pad of another m-line must not already have that name.
        std::string pad = "sink_" + std::to_string(mlines);
        bool ok = several ? offer_all_codecs(s)
                          : link_branch(s, configured_codec(s), configured_codec(s)->default_pt,
                                        pad.c_str());
        if (ok) {
          has[static_cast<int>(kind)] = true;
          ++mlines;
        }
      }
    }
  }
  // Nothing to send of a kind: still receive it.
  if (!has[0]) add_recvonly_transceiver(Kind::kVideo);
  if (!has[1]) add_recvonly_transceiver(Kind::kAudio);
  negotiation_.local_offer(g_get_monotonic_time());
  create_offer_or_answer(true);
  return true;
}

void Call::add_recvonly_transceiver(Kind kind) {
  GstCaps* caps = gst_caps_new_empty();
  for (const Codec& c : codecs()) {
    if (c.kind == kind) gst_caps_append(caps, rtp_caps(c, c.default_pt));
  }
  GstWebRTCRTPTransceiver* trans = nullptr;
  g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                        caps, &trans);
  gst_caps_unref(caps);
  if (trans) gst_object_unref(trans);
}

const Codec* Call::configured_codec(const SinkStream* stream) const {
  return stream->codec                  ? stream->codec
         : stream->kind == Kind::kVideo ? settings_.video_codec
                                        : &opus_codec();
}

// Must hold the streams mutex. webrtcbin 1.22 offers the codecs of a sink pad's caps, and a
// payloader sends one codec: a transceiver without a pad, whose codec-preferences list every
// codec we can produce (the configured one first), offers them all; once the answer says which
// the remote takes, a branch of that codec is linked to it (link_offered), so the call sends
// the codec the remote picked and nothing else.
bool Call::offer_all_codecs(SinkStream* stream) {
  GstCaps* caps = gst_caps_new_empty();
  for (const std::string& name :
       offer_order(engine_.producible(stream), configured_codec(stream)->encoding_name)) {
    const Codec* c = codec_by_encoding_name(name.c_str());
    gst_caps_append(caps, rtp_caps(*c, c->default_pt));
  }
  GstWebRTCRTPTransceiver* trans = nullptr;
  g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV,
                        caps, &trans);
  gst_caps_unref(caps);
  if (!trans) return false;
  offered_.push_back({stream, trans});
  return true;
}

// Offerer, once the answer is set: each stream offered with all its codecs is sent in the
// codec the remote took, or not at all (with a warning saying why).
void Call::link_offered() {
  std::vector<SdpMedia> media = sdp_media(remote_text_);
  std::lock_guard lock(engine_.streams_mutex());
  // Each offered stream is decided once, by the answer to the offer that carried it.
  std::vector<Offered> offered = std::exchange(offered_, {});
  for (Offered& o : offered) {
    guint mline = G_MAXUINT;
    g_object_get(o.transceiver, "mlineindex", &mline, nullptr);
    if (mline >= media.size()) continue;
    if (mline < rejected_mlines_.size() && rejected_mlines_[mline]) continue;  // warned
    CodecChoice choice =
        choose_codec(engine_.producible(o.stream), configured_codec(o.stream)->encoding_name,
                     media[mline].formats);
    if (!choice.ok()) {
      GST_ELEMENT_WARNING(engine_.element(), STREAM, CODEC_NOT_FOUND,
                          ("%s: %s is not sent to %s", choice.reason.c_str(),
                           o.stream->name.c_str(), peer_.c_str()),
                          ("m-line %u", mline));
      continue;
    }
    if (!choice.reason.empty()) {
      GST_INFO("call %u with %s: %s", id_, peer_.c_str(), choice.reason.c_str());
    }
    // webrtcbin 1.22 gives a send transceiver without a pad one of its own (when it makes the
    // offer): link to that one, else ask for the m-line's.
    GstPad* existing = nullptr;
    GstIterator* it = gst_element_iterate_sink_pads(webrtc_);
    GValue item = G_VALUE_INIT;
    while (!existing && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      auto* p = GST_PAD(g_value_get_object(&item));
      GstWebRTCRTPTransceiver* t = nullptr;
      if (g_object_class_find_property(G_OBJECT_GET_CLASS(p), "transceiver")) {
        g_object_get(p, "transceiver", &t, nullptr);
      }
      if (t == o.transceiver && !gst_pad_is_linked(p)) existing = GST_PAD(gst_object_ref(p));
      if (t) gst_object_unref(t);
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    std::string pad = "sink_" + std::to_string(mline);
    link_branch(o.stream, codec_by_encoding_name(choice.encoding.c_str()), choice.pt, pad.c_str(),
                existing);
    if (existing) gst_object_unref(existing);
  }
  for (Offered& o : offered) gst_object_unref(o.transceiver);
}

// Must hold the streams mutex.
bool Call::link_branch(SinkStream* stream, const Codec* codec, int pt, const char* sink_pad_name,
                       GstPad* existing_pad) {
  GstElement* tee = engine_.acquire_codec_tee(stream, codec);
  if (!tee) return false;
  auto give_back = [&] {
    // The engine may remove the encoder: not under the streams mutex, which we hold.
    Engine* engine = &engine_;
    engine_.defer([engine, stream, tee] { engine->release_codec_tee(stream, tee); });
  };
  GstElement* queue = make_element("queue");
  GstElement* pay = make_element(codec->payloader);
  GstElement* filter = make_element("capsfilter");
  if (!queue || !pay || !filter) {
    for (GstElement* e : {queue, pay, filter}) {
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    give_back();
    return false;
  }
  // A call that cannot keep up drops old data instead of stalling the other calls.
  g_object_set(queue, "max-size-buffers", 0u, "max-size-bytes", 0u, "max-size-time",
               static_cast<guint64>(200 * GST_MSECOND), nullptr);
  gst_util_set_object_arg(G_OBJECT(queue), "leaky", "downstream");
  g_object_set(pay, "pt", static_cast<guint>(pt), "mtu", 1200u, nullptr);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "picture-id-mode")) {
    gst_util_set_object_arg(G_OBJECT(pay), "picture-id-mode", "15-bit");
  }
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "config-interval")) {
    g_object_set(pay, "config-interval", -1, nullptr);
  }
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "aggregate-mode")) {
    gst_util_set_object_arg(G_OBJECT(pay), "aggregate-mode", "zero-latency");
  }
  GstCaps* caps = rtp_caps(*codec, pt);
  g_object_set(filter, "caps", caps, nullptr);
  gst_caps_unref(caps);

  std::vector<GstElement*> elements = {queue, pay, filter};
  name_elements(elements);
  if (!add_and_link(engine_.bin(), elements)) {
    give_back();
    return false;
  }
  GstPad* sink = existing_pad ? GST_PAD(gst_object_ref(existing_pad))
                              : gst_element_request_pad_simple(webrtc_, sink_pad_name);
  GstPad* src = gst_element_get_static_pad(filter, "src");
  bool ok = sink && gst_pad_link(src, sink) == GST_PAD_LINK_OK;
  gst_object_unref(src);
  GstPad* tee_pad = ok ? gst_element_request_pad_simple(tee, "src_%u") : nullptr;
  GstPad* queue_sink = gst_element_get_static_pad(queue, "sink");
  ok = tee_pad && gst_pad_link(tee_pad, queue_sink) == GST_PAD_LINK_OK;
  gst_object_unref(queue_sink);
  if (!ok) {
    GST_WARNING("call %u: cannot link %s to webrtcbin %s", id_, stream->name.c_str(),
                sink_pad_name);
    if (tee_pad) gst_element_release_request_pad(tee, tee_pad);
    for (GstElement* e : elements) set_state_and_remove(engine_.bin(), e);
    if (sink) {
      // A pad webrtcbin made itself (existing_pad) is not ours to release.
      if (!existing_pad) gst_element_release_request_pad(webrtc_, sink);
      gst_object_unref(sink);
    }
    give_back();
    return false;
  }
  sends_.push_back({stream, tee, codec, tee_pad, elements, sink, existing_pad != nullptr,
                    std::make_shared<BranchFlow>()});
  watch_branch(sends_.back());
  return true;
}

namespace {

guint64 buffers_in(GstPadProbeInfo* info) {
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    return gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  }
  return 1;
}

}  // namespace

guint64 Call::BranchFlow::dropped() const {
  // Read out before in: a buffer counted in after `out` was read cannot make it negative.
  guint64 left = out.load();
  guint64 entered = in.load();
  guint queued = 0;
  if (queue) g_object_get(queue, "current-level-buffers", &queued, nullptr);
  guint64 leaked = entered > left + queued ? entered - left - queued : 0;
  return leaked + gated.load();
}

void Call::watch_branch(SendBranch& branch) {
  BranchFlow* flow = branch.flow.get();
  flow->queue = branch.elements.front();
  flow->linked_us = g_get_monotonic_time();
  flow->video = branch.stream->kind == Kind::kVideo;
  flow->open = connected_;
  auto probe = [&branch](GstPad* pad, GstPadProbeCallback cb) {
    gst_pad_add_probe(
        pad,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        cb, new std::shared_ptr<BranchFlow>(branch.flow),
        [](gpointer data) { delete static_cast<std::shared_ptr<BranchFlow>*>(data); });
  };
  GstPad* sink = gst_element_get_static_pad(flow->queue, "sink");
  probe(sink, [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
    BranchFlow& f = **static_cast<std::shared_ptr<BranchFlow>*>(data);
    f.in += buffers_in(info);
    f.last_in_us = g_get_monotonic_time();
    return GST_PAD_PROBE_OK;
  });
  gst_object_unref(sink);
  GstPad* src = gst_element_get_static_pad(flow->queue, "src");
  probe(src, [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
    BranchFlow& f = **static_cast<std::shared_ptr<BranchFlow>*>(data);
    f.out += buffers_in(info);
    f.last_out_us = g_get_monotonic_time();
    if (!f.video || !(GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER)) {
      return GST_PAD_PROBE_OK;
    }
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    switch (f.gate.frame(f.open, !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT),
                         GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT))) {
      case KeyframeGate::Verdict::kPass:
        return GST_PAD_PROBE_OK;
      case KeyframeGate::Verdict::kSkip:
        ++f.skipped;
        return GST_PAD_PROBE_DROP;
      case KeyframeGate::Verdict::kDrop:
        ++f.gated;
        return GST_PAD_PROBE_DROP;
      case KeyframeGate::Verdict::kDropAndRequest: {
        // The frames this one references were leaked: ask for a keyframe (paced with the
        // other calls' requests at the encoder).
        ++f.gated;
        GstPad* queue_sink = gst_element_get_static_pad(f.queue, "sink");
        gst_pad_push_event(
            queue_sink, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
        gst_object_unref(queue_sink);
        return GST_PAD_PROBE_DROP;
      }
    }
    return GST_PAD_PROBE_OK;
  });
  gst_object_unref(src);
}

guint64 Call::dropped_buffers() const {
  guint64 n = detached_dropped_;
  for (const SendBranch& b : sends_) n += b.flow->dropped();
  return n;
}

guint64 Call::skipped_before_keyframe() const {
  guint64 n = detached_skipped_;
  for (const SendBranch& b : sends_) n += b.flow->skipped.load();
  return n;
}

GstPromise* Call::promise_then(std::function<void(Call&, const GstStructure* reply)> fn) {
  // The reply arrives on a webrtcbin thread: copy it over to the signaling thread, where the
  // call may have ended meanwhile.
  struct Ctx {
    Engine* engine;
    unsigned id;
    std::function<void(Call&, const GstStructure*)> fn;
  };
  return gst_promise_new_with_change_func(
      [](GstPromise* p, gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        const GstStructure* reply = gst_promise_get_reply(p);
        std::shared_ptr<GstStructure> copy(reply ? gst_structure_copy(reply) : nullptr,
                                           [](GstStructure* s) {
                                             if (s) gst_structure_free(s);
                                           });
        Engine* engine = ctx->engine;
        unsigned id = ctx->id;
        auto handler = ctx->fn;
        engine->invoke([engine, id, handler, copy] {
          if (Call* c = engine->find_call(id)) handler(*c, copy.get());
        });
      },
      new Ctx{&engine_, id_, std::move(fn)}, [](gpointer data) { delete static_cast<Ctx*>(data); });
}

// The error a promise reply carries, or empty.
static std::string reply_error(const GstStructure* reply) {
  GError* error = nullptr;
  if (reply) gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
  std::string why = error ? error->message : "";
  if (error) g_error_free(error);
  return why;
}

void Call::create_offer_or_answer(bool offer) {
  const char* field = offer ? "offer" : "answer";
  GstPromise* promise = promise_then([field](Call& c, const GstStructure* reply) {
    GstWebRTCSessionDescription* desc = nullptr;
    if (reply) {
      gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
    }
    if (!desc) {
      std::string why = reply_error(reply);
      why = "negotiation failed: " + (why.empty() ? "webrtcbin made no description" : why);
      if (g_str_equal(field, "offer")) {
        // A re-offer webrtcbin cannot make leaves the call as it was.
        Negotiation::Step step = c.negotiation_.offer_failed(why);
        if (step.action == Negotiation::Action::kNone) {
          GST_ELEMENT_WARNING(
              c.engine_.element(), STREAM, FAILED,
              ("New offer to %s failed: the call goes on unchanged", c.peer_.c_str()),
              ("%s", why.c_str()));
          return;
        }
      }
      c.engine_.call_ended(&c, why);
      return;
    }
    c.on_description_created(desc);
    gst_webrtc_session_description_free(desc);
  });
  g_signal_emit_by_name(webrtc_, offer ? "create-offer" : "create-answer", nullptr, promise);
  gst_promise_unref(promise);
}

// Sets every a=setup of `sdp` (session and media level) to `value`.
static void set_dtls_setup(GstSDPMessage* sdp, const char* value) {
  auto rewrite = [value](guint n, auto get, auto replace) {
    for (guint i = 0; i < n; ++i) {
      const GstSDPAttribute* attr = get(i);
      if (g_strcmp0(attr->key, "setup") != 0 || g_strcmp0(attr->value, value) == 0) continue;
      GstSDPAttribute copy;
      gst_sdp_attribute_set(&copy, "setup", value);
      replace(i, &copy);
    }
  };
  rewrite(
      gst_sdp_message_attributes_len(sdp),
      [sdp](guint i) { return gst_sdp_message_get_attribute(sdp, i); },
      [sdp](guint i, GstSDPAttribute* a) { gst_sdp_message_replace_attribute(sdp, i, a); });
  for (guint m = 0; m < gst_sdp_message_medias_len(sdp); ++m) {
    auto* media = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, m));
    rewrite(
        gst_sdp_media_attributes_len(media),
        [media](guint i) { return gst_sdp_media_get_attribute(media, i); },
        [media](guint i, GstSDPAttribute* a) { gst_sdp_media_replace_attribute(media, i, a); });
  }
}

void Call::on_description_created(GstWebRTCSessionDescription* desc) {
  if (desc->type == GST_WEBRTC_SDP_TYPE_ANSWER) {
    if (dtls_role_ == DtlsRole::kUnknown) {
      // Our answer to the first offer: its a=setup is our role from now on.
      gchar* text = gst_sdp_message_as_text(desc->sdp);
      dtls_role_ = dtls_role_from_answer(first_setup(text), true);
      g_free(text);
    } else {
      // An answer to a re-offer keeps the role (negotiation.h, DtlsRole).
      set_dtls_setup(desc->sdp, answer_setup(dtls_role_));
    }
  }
  g_signal_emit_by_name(webrtc_, "set-local-description", desc, nullptr);
  gst_webrtc_call_signaller_send_description(engine_.signaller(), peer_.c_str(), desc);
  if (desc->type == GST_WEBRTC_SDP_TYPE_ANSWER) {
    negotiated();
    run(negotiation_.local_answer(g_get_monotonic_time()));
  }
}

void Call::run(const Negotiation::Step& step) {
  switch (step.action) {
    case Negotiation::Action::kSendOffer:
      renegotiate();
      break;
    case Negotiation::Action::kRefuse:
      engine_.call_ended(this, step.reason);
      break;
    default:
      break;
  }
}

// An offer of ours during the call: the streams added meanwhile get their branches (new
// transceivers: webrtcbin adds m-lines for them), released ones are recvonly already.
void Call::renegotiate() {
  GST_INFO("call %u with %s: renegotiating", id_, peer_.c_str());
  {
    std::lock_guard lock(engine_.streams_mutex());
    for (SinkStream* s : std::exchange(pending_adds_, {})) {
      if (sends(s)) continue;
      std::vector<SinkStream*> live = engine_.streams_of(s->kind);
      if (std::find(live.begin(), live.end(), s) == live.end()) continue;  // released since
      const Codec* codec = configured_codec(s);
      link_branch(s, codec, codec->default_pt, "sink_%u");
    }
  }
  create_offer_or_answer(true);
}

// An offer/answer exchange finished: a video branch linked by it needs a key frame.
void Call::negotiated() {
  if (connected_) request_keyframes();
}

void Call::add_stream(SinkStream* stream) {
  if (sends(stream)) return;
  pending_adds_.push_back(stream);
  Negotiation::Step step = negotiation_.negotiation_needed(g_get_monotonic_time());
  GST_INFO("call %u with %s: %s added: %s", id_, peer_.c_str(), stream->name.c_str(),
           to_string(step.action));
  run(step);
}

bool Call::detach_stream(SinkStream* stream, std::function<void()> detached) {
  std::erase(pending_adds_, stream);
  auto it = std::find_if(sends_.begin(), sends_.end(),
                         [stream](const SendBranch& b) { return b.stream == stream; });
  if (it == sends_.end()) return false;
  struct Ctx {
    GstPad* queue_sink;
    GMainContext* context;
    std::function<void()> detached;
  };
  gst_pad_add_probe(
      it->tee_pad, GST_PAD_PROBE_TYPE_IDLE,
      [](GstPad* pad, GstPadProbeInfo*, gpointer data) -> GstPadProbeReturn {
        auto* ctx = static_cast<Ctx*>(data);
        gst_pad_unlink(pad, ctx->queue_sink);
        run_idle(ctx->context, std::move(ctx->detached));
        return GST_PAD_PROBE_REMOVE;
      },
      new Ctx{gst_element_get_static_pad(it->elements.front(), "sink"),
              g_main_context_ref_thread_default(), std::move(detached)},
      [](gpointer data) {
        auto* ctx = static_cast<Ctx*>(data);
        gst_object_unref(ctx->queue_sink);
        g_main_context_unref(ctx->context);
        delete ctx;
      });
  return true;
}

void Call::finish_detach(SinkStream* stream) {
  auto it = std::find_if(sends_.begin(), sends_.end(),
                         [stream](const SendBranch& b) { return b.stream == stream; });
  if (it == sends_.end()) return;
  SendBranch b = *it;
  sends_.erase(it);
  detached_dropped_ += b.flow->dropped();
  detached_skipped_ += b.flow->skipped.load();
  // webrtcbin 1.22 keeps a released pad's transceiver sendrecv (it only drops the pad), and
  // refuses to change the direction of a negotiated m-line ("transceiver direction changes
  // are not implemented" when the answer is applied): the m-line stays, carrying nothing of
  // ours, and what the remote sends on it is still received. Without its pad the
  // transceiver's codecs come from a caps query into our receive chain: the branch's caps
  // become its codec preferences instead. Nor can the m-line take a new pad (webrtcbin 1.22
  // builds its encoders again: "duplicate call to create a fec encoder"): a stream requested
  // later gets a new m-line.
  GstWebRTCRTPTransceiver* trans = nullptr;
  g_object_get(b.webrtc_pad, "transceiver", &trans, nullptr);
  if (trans) {
    GstCaps* caps = nullptr;
    g_object_get(b.elements.back(), "caps", &caps, nullptr);  // the capsfilter
    if (caps) {
      g_object_set(trans, "codec-preferences", caps, nullptr);
      gst_caps_unref(caps);
    }
    released_mlines_.push_back(mline_of(b.webrtc_pad));
    gst_object_unref(trans);
  }
  gst_element_release_request_pad(b.tee, b.tee_pad);
  gst_object_unref(b.tee_pad);
  remove_branch_elements(b);
  // A pad webrtcbin made itself (for a transceiver offered with all our codecs) was not
  // requested: it stays with its transceiver.
  if (!b.webrtc_made_pad) gst_element_release_request_pad(webrtc_, b.webrtc_pad);
  gst_object_unref(b.webrtc_pad);
  engine_.release_codec_tee(stream, b.tee);  // the last call of an encoder removes it
  // No re-offer: in webrtcbin 1.22 it could change nothing (the m-line stays sendrecv), and
  // making it asks the pad-less transceiver's codecs from a caps query that webrtcbin
  // sometimes sends to another m-line's source pad ("Caps negotiation on pad src_0 failed",
  // seen 1 run in 5 under ASan), leaking that m-line's strings. The next offer either side
  // makes carries the change (no a=ssrc for it).
  GST_INFO("call %u with %s: %s released", id_, peer_.c_str(), stream->name.c_str());
}

int Call::mline_of(GstPad* pad) {
  GstWebRTCRTPTransceiver* trans = nullptr;
  g_object_get(pad, "transceiver", &trans, nullptr);
  if (!trans) return -1;
  guint mline = G_MAXUINT;
  g_object_get(trans, "mlineindex", &mline, nullptr);
  gst_object_unref(trans);
  return mline == G_MAXUINT ? -1 : static_cast<int>(mline);
}

bool Call::check_remote(const std::string& sdp, std::string& error) {
  SdpView view;
  error = check_remote_sdp(sdp, settings_.remote_limits, &view);
  if (!error.empty()) return false;
  remote_mlines_ = view.media.size();
  candidates_ = std::max(candidates_, view.candidates);  // a re-offer repeats the first's
  return true;
}

Negotiation::Step Call::remote_offer(const std::string& sdp, std::string& error) {
  Negotiation::Step step = negotiation_.remote_offer();
  if (step.action == Negotiation::Action::kApplyRemoteOffer &&
      !apply_remote(GST_WEBRTC_SDP_TYPE_OFFER, sdp, error)) {
    return negotiation_.description_failed(error);
  }
  if (step.action == Negotiation::Action::kRefuse) error = step.reason;
  return step;
}

bool Call::remote_answer(const std::string& sdp, std::string& error) {
  Negotiation::Step step = negotiation_.remote_answer();
  if (step.action != Negotiation::Action::kApplyRemoteAnswer) {
    error = step.reason.empty() ? "an answer the call does not wait for" : step.reason;
    return false;
  }
  if (!apply_remote(GST_WEBRTC_SDP_TYPE_ANSWER, sdp, error)) return false;
  // webrtcbin runs its operations in order: whatever follows (a re-offer of the remote's,
  // a queued one of ours) sees the answer applied.
  run(negotiation_.answer_applied(g_get_monotonic_time()));
  return true;
}

bool Call::apply_remote(GstWebRTCSDPType type, const std::string& text, std::string& error) {
  if (!check_remote(text, error)) return false;
  // A remote that rejects an m-line (port 0) keeps the others. Firefox leaves the ICE
  // credentials and DTLS setup out of a rejected line, which webrtcbin 1.22 refuses for the
  // whole answer; when that line was our BUNDLE tag (the first, video) and the others
  // bundle-only, the whole call failed. Mending the answer (the bundle's credentials copied
  // into the rejected line, which carries nothing) is local to the description and works
  // whichever line the remote rejects; making sure a line the remote may reject never carries
  // the bundle alone would instead depend on which kinds the remote accepts, unknown when we
  // offer.
  std::string mended_text = text;
  if (type == GST_WEBRTC_SDP_TYPE_ANSWER) {
    std::vector<unsigned> mended;
    mended_text = mend_rejected_mlines(text, &mended);
    if (!mended.empty()) {
      GST_INFO("call %u: answer of %s mended: %zu rejected m-lines without ICE credentials", id_,
               peer_.c_str(), mended.size());
    }
    std::vector<SdpMedia> media = sdp_media(text);
    rejected_mlines_.assign(media.size(), false);
    for (std::size_t i = 0; i < media.size(); ++i) {
      if (!rejected(media[i])) continue;
      rejected_mlines_[i] = true;
      GST_ELEMENT_WARNING(engine_.element(), STREAM, CODEC_NOT_FOUND,
                          ("%s rejected %s (m-line %zu): the call goes on without it",
                           peer_.c_str(), media[i].kind.c_str(), i),
                          (nullptr));
    }
  }
  remote_text_ = mended_text;
  GstSDPMessage* sdp = nullptr;
  gst_sdp_message_new(&sdp);
  if (mended_text.empty() ||
      gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(mended_text.data()),
                                   static_cast<guint>(mended_text.size()), sdp) != GST_SDP_OK ||
      gst_sdp_message_medias_len(sdp) == 0) {
    gst_sdp_message_free(sdp);
    error = "invalid SDP (no media)";
    return false;
  }
  std::vector<Fingerprint> fingerprints = sdp_fingerprints(sdp);
  if (fingerprints.empty()) {
    // webrtcbin 1.22 would accept it and never authenticate the peer.
    gst_sdp_message_free(sdp);
    error = "SDP without a=fingerprint refused (DTLS peer could not be authenticated)";
    return false;
  }
  TransportIdentity identity = transport_identity(text);
  if (remote_us_ != 0) {
    // A later description of the same call: its transports must stay what they are.
    error = check_reoffer(identity_, identity);
    if (!error.empty()) {
      gst_sdp_message_free(sdp);
      return false;
    }
  } else {
    identity_ = std::move(identity);
    remote_fingerprints_ = std::move(fingerprints);
    // connect-timeout counts from the first description; re-offers never extend it.
    remote_us_ = g_get_monotonic_time();
  }
  if (type == GST_WEBRTC_SDP_TYPE_ANSWER && dtls_role_ == DtlsRole::kUnknown) {
    // The remote's answer to our first offer sets the DTLS role of the call.
    dtls_role_ = dtls_role_from_answer(first_setup(text), false);
  }
  if (type == GST_WEBRTC_SDP_TYPE_OFFER) {
    if (remote_offer_) gst_sdp_message_free(remote_offer_);
    remote_offer_ = nullptr;
    gst_sdp_message_copy(sdp, &remote_offer_);
  }
  GstWebRTCSessionDescription* desc = gst_webrtc_session_description_new(type, sdp);
  GstPromise* promise = promise_then([type](Call& c, const GstStructure* reply) {
    std::string why = reply_error(reply);
    if (!why.empty()) {
      c.engine_.call_ended(&c, "remote description refused: " + why);
      return;
    }
    c.on_remote_description_set(type);
  });
  g_signal_emit_by_name(webrtc_, "set-remote-description", desc, promise);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(desc);
  return true;
}

void Call::on_remote_description_set(GstWebRTCSDPType type) {
  remote_set_ = true;
  flush_pending_candidates();
  if (type == GST_WEBRTC_SDP_TYPE_ANSWER) {
    link_offered();
    negotiated();
    return;
  }
  link_offered_lines();
  create_offer_or_answer(false);
}

// Answerer (first offer or re-offer): send our streams on the offered m-lines that carry
// nothing of ours yet, in the codec codec-choice picks from the offer (video-codec if offered,
// else the first the offer lists that we can produce) with the offer's payload type.
// webrtcbin 1.22 creates the transceivers of a remote offer only when answering; asking for
// "sink_<m-line>" now creates one bound to that m-line, which the answer then uses. Media on
// the other m-lines goes on.
void Call::link_offered_lines() {
  std::vector<SdpMedia> lines = sdp_media(remote_text_);
  std::lock_guard lock(engine_.streams_mutex());
  std::vector<int> sending;
  for (SendBranch& b : sends_) sending.push_back(mline_of(b.webrtc_pad));
  // A released pad's m-line cannot take a new one (webrtcbin 1.22: see finish_detach).
  sending.insert(sending.end(), released_mlines_.begin(), released_mlines_.end());
  for (guint mline = 0; mline < gst_sdp_message_medias_len(remote_offer_); ++mline) {
    if (std::find(sending.begin(), sending.end(), static_cast<int>(mline)) != sending.end()) {
      continue;
    }
    const char* media = media_kind(remote_offer_, mline);
    Kind kind;
    if (g_str_equal(media, "video")) {
      kind = Kind::kVideo;
    } else if (g_str_equal(media, "audio")) {
      kind = Kind::kAudio;
    } else {
      continue;
    }
    if (mline >= lines.size() || rejected(lines[mline])) continue;
    for (SinkStream* s : engine_.streams_of(kind)) {
      if (sends(s)) continue;
      CodecChoice choice = choose_codec(engine_.producible(s), configured_codec(s)->encoding_name,
                                        lines[mline].formats);
      if (!choice.ok()) {
        GST_ELEMENT_WARNING(
            engine_.element(), STREAM, CODEC_NOT_FOUND,
            ("%s: %s is not sent to %s", choice.reason.c_str(), s->name.c_str(), peer_.c_str()),
            ("m-line %u", mline));
        continue;
      }
      if (!choice.reason.empty()) {
        GST_INFO("call %u with %s: %s", id_, peer_.c_str(), choice.reason.c_str());
      }
      // A transceiver this m-line already has that only receives cannot send: webrtcbin
      // 1.22 refuses to change the direction of a negotiated m-line.
      bool receive_only = false;
      GArray* transceivers = nullptr;
      g_signal_emit_by_name(webrtc_, "get-transceivers", &transceivers);
      for (guint i = 0; transceivers && i < transceivers->len; ++i) {
        auto* trans = g_array_index(transceivers, GstWebRTCRTPTransceiver*, i);
        guint trans_mline = G_MAXUINT;
        GstWebRTCRTPTransceiverDirection dir;
        g_object_get(trans, "mlineindex", &trans_mline, "direction", &dir, nullptr);
        receive_only |=
            trans_mline == mline && (dir == GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY ||
                                     dir == GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE);
      }
      if (transceivers) g_array_unref(transceivers);
      if (receive_only) break;
      std::string pad = "sink_" + std::to_string(mline);
      if (link_branch(s, codec_by_encoding_name(choice.encoding.c_str()), choice.pt, pad.c_str())) {
        sending.push_back(static_cast<int>(mline));
      }
      break;
    }
  }
}

void Call::remote_candidate(guint mline, const char* mid, const char* candidate) {
  // Refused cheaply, before anything is stored or handed to libnice; the log is rate-limited.
  std::string why = check_candidate(candidate ? candidate : "", settings_.remote_limits);
  gint64 now = g_get_monotonic_time();
  if (why.empty() && mline != G_MAXUINT && remote_mlines_ && mline >= remote_mlines_) {
    why = "no m-line " + std::to_string(mline);
  }
  if (why.empty() && mid && strlen(mid) > 64) why = "sdpMid over 64 bytes";  // stored if pending
  if (!why.empty()) {
    if (candidate_log_.allow(now)) {
      GST_WARNING("call %u: candidate from %s refused: %s (and %u more)", id_, peer_.c_str(),
                  why.c_str(), candidate_log_.suppressed());
    }
    return;
  }
  if (candidates_ >= settings_.remote_limits.max_candidates) {
    if (!std::exchange(candidates_full_warned_, true)) {
      GST_ELEMENT_WARNING(engine_.element(), STREAM, FAILED,
                          ("%s sent more than max-candidates (%u) ICE candidates: the rest are "
                           "ignored",
                           peer_.c_str(), settings_.remote_limits.max_candidates),
                          (nullptr));
    }
    return;
  }
  ++candidates_;
  add_candidate(mline, mid, candidate);
}

void Call::add_candidate(guint mline, const char* mid, const char* candidate) {
  if (!remote_set_) {
    pending_candidates_.push_back({mline, mid ? mid : "", candidate});
    return;
  }
  if (mline == G_MAXUINT && mid) {
    // Only a mid: find its m-line.
    GArray* transceivers = nullptr;
    g_signal_emit_by_name(webrtc_, "get-transceivers", &transceivers);
    for (guint i = 0; transceivers && i < transceivers->len; ++i) {
      auto* trans = g_array_index(transceivers, GstWebRTCRTPTransceiver*, i);
      gchar* trans_mid = nullptr;
      guint trans_mline = G_MAXUINT;
      g_object_get(trans, "mid", &trans_mid, "mlineindex", &trans_mline, nullptr);
      if (g_strcmp0(trans_mid, mid) == 0) mline = trans_mline;
      g_free(trans_mid);
    }
    if (transceivers) g_array_unref(transceivers);
    if (mline == G_MAXUINT) return;
  }
  g_signal_emit_by_name(webrtc_, "add-ice-candidate", mline, candidate);
}

void Call::flush_pending_candidates() {
  auto pending = std::move(pending_candidates_);
  for (auto& p : pending) {
    if (p.mline != G_MAXUINT && p.mline >= remote_mlines_) continue;  // no such m-line
    add_candidate(p.mline, p.mid.empty() ? nullptr : p.mid.c_str(), p.candidate.c_str());
  }
}

void Call::on_ice_candidate_cb(GstElement*, guint mline, gchar* candidate, gpointer data) {
  auto* self = static_cast<Call*>(data);
  std::string cand = candidate ? candidate : "";
  self->later([mline, cand](Call& c) {
    std::string mid;
    GstWebRTCRTPTransceiver* trans = nullptr;
    g_signal_emit_by_name(c.webrtc_, "get-transceiver", static_cast<gint>(mline), &trans);
    if (trans) {
      gchar* trans_mid = nullptr;
      g_object_get(trans, "mid", &trans_mid, nullptr);
      if (trans_mid) mid = trans_mid;
      g_free(trans_mid);
      gst_object_unref(trans);
    }
    gst_webrtc_call_signaller_send_candidate(c.engine_.signaller(), c.peer_.c_str(), mline,
                                             mid.empty() ? nullptr : mid.c_str(), cand.c_str());
  });
}

void Call::on_state_cb(GObject*, GParamSpec*, gpointer data) {
  static_cast<Call*>(data)->later([](Call& c) { c.on_connection_state(); });
}

void Call::on_connection_state() {
  GstWebRTCPeerConnectionState state;
  GstWebRTCICEConnectionState ice;
  g_object_get(webrtc_, "connection-state", &state, "ice-connection-state", &ice, nullptr);
  GST_DEBUG("call %u with %s: connection %d ice %d", id_, peer_.c_str(), state, ice);
  if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED ||
      state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
    engine_.call_ended(this, "ICE failed: no network path to " + peer_);
    return;
  }
  if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !connected_) {
    std::string error;
    if (!verify_fingerprint(error)) {
      engine_.call_ended(this, error);
      return;
    }
    connected_ = true;
    connected_us_ = g_get_monotonic_time();
    for (SendBranch& b : sends_) b.flow->open = true;
    watch_incoming_packets();
    request_keyframes();
    engine_.call_connected(this);
  }
}

bool Call::verify_fingerprint(std::string& error) {
  GArray* transceivers = nullptr;
  g_signal_emit_by_name(webrtc_, "get-transceivers", &transceivers);
  bool checked = false, ok = true;
  for (guint i = 0; transceivers && i < transceivers->len; ++i) {
    auto* trans = g_array_index(transceivers, GstWebRTCRTPTransceiver*, i);
    GstWebRTCRTPSender* sender = nullptr;
    g_object_get(trans, "sender", &sender, nullptr);
    if (!sender) continue;
    GstWebRTCDTLSTransport* transport = nullptr;
    g_object_get(sender, "transport", &transport, nullptr);
    gst_object_unref(sender);
    if (!transport) continue;
    gchar* pem = nullptr;
    g_object_get(transport, "remote-certificate", &pem, nullptr);
    gst_object_unref(transport);
    if (!pem) continue;
    checked = true;
    if (!certificate_matches(pem, remote_fingerprints_)) ok = false;
    g_free(pem);
  }
  if (transceivers) g_array_unref(transceivers);
  if (!checked) {
    error = "DTLS connected but the remote certificate is not available: call refused";
    return false;
  }
  if (!ok) {
    error = "DTLS certificate of " + peer_ + " does not match the SDP fingerprint: call refused";
    return false;
  }
  return true;
}

void Call::watch_incoming_packets() {
  // webrtcbin 1.22 never notices a browser's pc.close(): its states stay "connected". Any
  // packet from the peer (RTP, RTCP, STUN consent checks every few seconds) proves it is
  // there; silence longer than the call timeout ends the call.
  last_rx_us_ = g_get_monotonic_time();
  for (GstElement* src : find_elements(GST_BIN(webrtc_), "nicesrc")) {
    GstPad* pad = gst_element_get_static_pad(src, "src");
    if (pad) {
      gulong probe = gst_pad_add_probe(
          pad,
          static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
          [](GstPad*, GstPadProbeInfo*, gpointer data) {
            static_cast<std::atomic<gint64>*>(data)->store(g_get_monotonic_time());
            return GST_PAD_PROBE_OK;
          },
          &last_rx_us_, nullptr);
      rx_probes_.push_back({pad, probe});
    }
    gst_object_unref(src);
  }
}

void Call::request_keyframes() {
  // A call that joins a running encoder needs a key frame to start decoding.
  for (SendBranch& b : sends_) {
    if (b.stream->kind != Kind::kVideo || b.elements.empty()) continue;
    GstPad* sink = gst_element_get_static_pad(b.elements.front(), "sink");
    gst_pad_push_event(sink,  // from the sink pad: upstream, through the tee to the encoder
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    gst_object_unref(sink);
  }
}

std::string Call::check_health(gint64 now_us) {
  // A re-offer of ours nobody answers (a collision neither side can roll back, a remote
  // that ignores it): the call cannot change any more.
  gint64 offered = negotiation_.offer_pending_since_us();
  if (negotiation_.established() && offered &&
      now_us - offered > static_cast<gint64>(settings_.answer_timeout_s) * G_USEC_PER_SEC) {
    return negotiation_.unanswered_reason(peer_);
  }
  if (!connected_) {
    if (remote_us_ == 0) {  // our offer is not answered yet
      bool late =
          now_us - started_us_ > static_cast<gint64>(settings_.answer_timeout_s) * G_USEC_PER_SEC;
      return late ? "no answer from " + peer_ : "";
    }
    // Counted from the remote description, never restarted (re-offers are not taken).
    bool late =
        now_us - remote_us_ > static_cast<gint64>(settings_.connect_timeout_s) * G_USEC_PER_SEC;
    return late ? "could not connect to " + peer_ : "";
  }
  if (settings_.stall_timeout_s > 0) {
    // A branch that forwards nothing while its input flows: something downstream of its
    // queue blocks (the queue leaks meanwhile, so the other calls never notice).
    gint64 limit = static_cast<gint64>(settings_.stall_timeout_s) * G_USEC_PER_SEC;
    for (const SendBranch& b : sends_) {
      BranchTimes t{b.flow->last_in_us.load(), b.flow->last_out_us.load(), b.flow->linked_us,
                    connected_us_};
      std::int64_t stalled = stalled_for_s(t, now_us, limit);
      if (stalled >= 0) {
        return "stalled: nothing sent to " + peer_ + " for " + std::to_string(stalled) +
               " s while " + b.stream->name + " flows";
      }
    }
  }
  gint64 silent = now_us - last_rx_us_.load();
  if (silent > static_cast<gint64>(settings_.call_timeout_s) * G_USEC_PER_SEC) {
    return "nothing received from " + peer_ + " for " + std::to_string(silent / G_USEC_PER_SEC) +
           " s: remote gone";
  }
  return "";
}

void Call::on_pad_added_cb(GstElement*, GstPad* pad, gpointer data) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  static_cast<Call*>(data)->build_receive_chain(pad);
}

// Streaming thread: data follows as soon as this returns, so the chain is built here. Only
// our own new elements change state; webrtcbin is left alone.
void Call::build_receive_chain(GstPad* pad) {
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  const Codec* codec = codec_by_encoding_name(gst_structure_get_string(s, "encoding-name"));
  std::string caps_str = gwc::GCharPtr(gst_caps_to_string(caps)).get();
  GST_INFO("call %u: receiving %s on %s", id_, caps_str.c_str(), GST_PAD_NAME(pad));
  gst_caps_unref(caps);

  std::lock_guard lock(receive_mutex_);
  if (tearing_down_) return;
  GstBin* bin = engine_.bin();
  std::vector<GstElement*> elements;
  if (codec) elements = make_receive_chain(*codec, settings_.output_encoded);
  if (elements.empty()) {
    // Unknown or undecodable: swallow it so webrtcbin never sees not-linked.
    GST_ELEMENT_WARNING(engine_.element(), STREAM, CODEC_NOT_FOUND,
                        ("cannot receive %s from %s", caps_str.c_str(), peer_.c_str()), (nullptr));
    elements.push_back(make_element("fakesink"));
    g_object_set(elements.back(), "async", FALSE, "sync", FALSE, nullptr);
  }
  name_elements(elements);
  if (!add_and_link(bin, elements)) return;
  GstPad* sink = gst_element_get_static_pad(elements.front(), "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);

  Receive r{elements, nullptr};
  if (codec &&
      !g_str_equal(GST_OBJECT_NAME(gst_element_get_factory(elements.back())), "fakesink")) {
    GstPad* target = gst_element_get_static_pad(elements.back(), "src");
    r.ghost = engine_.add_src_pad(this, codec->kind, target);
    gst_object_unref(target);
  }
  receives_.push_back(std::move(r));
}

void Call::end_outputs() {
  std::lock_guard lock(receive_mutex_);
  GST_INFO("call %u with %s: ending %zu received streams", id_, peer_.c_str(), receives_.size());
  for (Receive& r : receives_) {
    GstPad* sink = gst_element_get_static_pad(r.elements.front(), "sink");
    gst_pad_send_event(sink, gst_event_new_eos());
    gst_object_unref(sink);
  }
}

void Call::teardown(std::function<void()> done) {
  teardown_done_ = std::move(done);
  {
    std::lock_guard lock(receive_mutex_);
    tearing_down_ = true;
  }
  if (webrtc_) {
    for (gulong h : handlers_) g_signal_handler_disconnect(webrtc_, h);
    handlers_.clear();
  }
  for (auto& [pad, probe] : rx_probes_) {
    gst_pad_remove_probe(pad, probe);
    gst_object_unref(pad);
  }
  rx_probes_.clear();

  // Every wait ends on the signaling thread from an idle source, never inside this function
  // (a probe may run at once, a promise be answered at once): the last one deletes the call.
  teardown_waits_ = static_cast<unsigned>(sends_.size()) + (webrtc_ ? 1 : 0);
  if (teardown_waits_ == 0) {
    finish_teardown();
    return;
  }
  if (webrtc_) drain_webrtcbin();
  // Detach from the shared tees only when no buffer is passing (idle probe); the other calls
  // keep streaming.
  for (SendBranch& b : sends_) {
    // Nothing of the call itself: it may be gone (Engine::stop gives up after 3 s) when the
    // probe runs.
    struct Ctx {
      Engine* engine;
      unsigned id;
      GstPad* queue_sink;
      GMainContext* context;
    };
    // The probe may run at once (here) or later on the streaming thread.
    gst_pad_add_probe(
        b.tee_pad, GST_PAD_PROBE_TYPE_IDLE,
        [](GstPad* pad, GstPadProbeInfo*, gpointer data) -> GstPadProbeReturn {
          auto* ctx = static_cast<Ctx*>(data);
          gst_pad_unlink(pad, ctx->queue_sink);
          Engine* engine = ctx->engine;
          unsigned id = ctx->id;
          run_idle(ctx->context, [engine, id] {
            if (Call* c = engine->find_call_any(id)) c->teardown_wait_done();
          });
          return GST_PAD_PROBE_REMOVE;
        },
        new Ctx{&engine_, id_, gst_element_get_static_pad(b.elements.front(), "sink"),
                g_main_context_ref_thread_default()},
        [](gpointer data) {
          auto* ctx = static_cast<Ctx*>(data);
          gst_object_unref(ctx->queue_sink);
          g_main_context_unref(ctx->context);
          delete ctx;
        });
  }
}

// Downstream first: a branch blocked after its queue (the payloader's push waiting in
// webrtcbin, or held by a blocking probe) is released when the pad it waits on flushes, so
// the queue's streaming thread can be stopped after it. Queue first, its thread never returns
// and the signaling thread waits for it forever (element-keyframes, the stalled viewer).
void Call::remove_branch_elements(const SendBranch& b) {
  for (auto it = b.elements.rbegin(); it != b.elements.rend(); ++it) {
    set_state_and_remove(engine_.bin(), *it);
  }
}

void Call::teardown_wait_done() {
  if (teardown_waits_ > 0 && --teardown_waits_ == 0) finish_teardown();
}

// webrtcbin 1.22 leaks a TransportReceiveBin, with its nicesrc, dtlssrtpdec, DTLS connection
// and the ICE agent's sockets (about 7 fds a call), when the bin is told to block its input
// after it went to NULL: that pad block (utils.c _create_pad_block) holds a reference on the
// bin itself, dropped only by the bin's READY->NULL or once ICE connects. A call ended right
// after its offer or answer did just that: the description is applied on webrtcbin's own
// thread, where _set_description_task asks the receive bins for PASS (BLOCK while ICE is not
// connected), and gst_element_set_state(NULL) had already taken the bins to NULL meanwhile
// (webrtcbin stops that thread only after its children). So teardown first waits until every
// operation queued on webrtcbin so far has run.

// Queues an operation on webrtcbin's thread behind all the others; the wait ends when webrtcbin
// lets go of it: it ran (and was answered), or webrtcbin dropped it unrun when it stopped its
// thread (going to NULL), or refused it at once because it is closed. Any of these means no
// operation queued before it can still run.
void Call::drain_webrtcbin() {
  struct Ctx {
    Engine* engine;
    unsigned id;
    GMainContext* context;
  };
  GstPromise* promise = gst_promise_new_with_change_func(
      [](GstPromise*, gpointer) {}, new Ctx{&engine_, id_, g_main_context_ref_thread_default()},
      [](gpointer data) {  // the promise is freed
        auto* ctx = static_cast<Ctx*>(data);
        Engine* engine = ctx->engine;
        unsigned id = ctx->id;
        run_idle(ctx->context, [engine, id] {
          if (Call* c = engine->find_call_any(id)) c->teardown_wait_done();
        });
        g_main_context_unref(ctx->context);
        delete ctx;
      });
  // get-stats is queued like any other operation; its reply is not needed.
  g_signal_emit_by_name(webrtc_, "get-stats", nullptr, promise);
  gst_promise_unref(promise);
}

void Call::finish_teardown() {
  GstBin* bin = engine_.bin();
  for (SendBranch& b : sends_) {
    gst_element_release_request_pad(b.tee, b.tee_pad);
    gst_object_unref(b.tee_pad);
    gst_object_unref(b.webrtc_pad);
  }
  if (webrtc_) set_state_and_remove(bin, webrtc_);
  webrtc_ = nullptr;
  for (SendBranch& b : sends_) {
    remove_branch_elements(b);
    // The last call of an encoder removes it.
    engine_.release_codec_tee(b.stream, b.tee);
  }
  sends_.clear();
  std::vector<Receive> receives;
  {
    std::lock_guard lock(receive_mutex_);
    receives = std::move(receives_);
  }
  for (Receive& r : receives) {
    if (r.ghost) engine_.remove_src_pad(r.ghost);
    for (GstElement* e : r.elements) set_state_and_remove(bin, e);
  }
  if (auto done = std::exchange(teardown_done_, nullptr)) done();
}

}  // namespace webrtccall
