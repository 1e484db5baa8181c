// GObject glue of the webrtccall element: properties, pads, signals, state changes and the
// child proxy. The work is done by webrtccall::Engine (engine.cpp) and Call (call.cpp).
#include "webrtccall.h"

#include <gst/gst.h>

#include <atomic>
#include <optional>
#include <string>

#include "call.h"
#include "engine.h"
#include "webrtccall-private.h"
#include "ws-signaller.h"

GST_DEBUG_CATEGORY(webrtccall_debug);
#define GST_CAT_DEFAULT webrtccall_debug

namespace {

constexpr gboolean kDefaultAutoAnswer = TRUE;
constexpr guint kDefaultMaxCalls = 1;
constexpr GstWebRTCCallVideoCodec kDefaultVideoCodec = GST_WEBRTC_CALL_VIDEO_CODEC_VP8;
constexpr guint kDefaultVideoBitrate = 1000;  // kbit/s
constexpr guint kDefaultLatency = 50;         // ms; webrtcbin's own default is 200
constexpr guint kDefaultCallTimeout = 10;     // s
constexpr gboolean kDefaultOutputEncoded = FALSE;
constexpr gboolean kDefaultUpnp = FALSE;
constexpr gboolean kDefaultIceTcp = TRUE;
constexpr guint kDefaultMaxReconnectDelay = 30;  // s
// What a remote may cost (see README, "Limits on remote peers").
constexpr guint kDefaultConnectTimeout = 10;      // s; ICE+DTLS takes well under 1 s on a LAN
constexpr guint kDefaultAnswerTimeout = 30;       // s; a person answering a browser
constexpr guint kDefaultUnconnectedBackoff = 60;  // s
constexpr guint kDefaultMaxMlines = 16;
constexpr guint kDefaultMaxTransports = 4;  // about 10 fds and 3 threads each
constexpr guint kDefaultMaxSdpSize = 65536;
constexpr guint kDefaultMaxCandidates = 64;
constexpr guint kDefaultMaxCandidateSize = 512;
constexpr guint kDefaultOfferRate = 5;  // per second
constexpr guint kDefaultOfferBurst = 20;
constexpr guint kDefaultMaxConnecting = 8;  // calls between offer/answer and connected at once
constexpr guint kDefaultRefusalRate = 10;  // per second, burst 4x: under the server's 50/s, 100
constexpr guint kDefaultKeyframeIntervalMin = 1000;  // ms: one keyframe a second for all calls
constexpr guint kDefaultStallTimeout = 5;            // s

constexpr guint kDefaultStatsInterval = 1000;   // ms
constexpr guint kDefaultMinVideoBitrate = 150;  // kbit/s

enum {
  PROP_0,
  PROP_SIGNALING_SERVER,
  PROP_USERNAME,
  PROP_PEER,
  PROP_AUTO_ANSWER,
  PROP_MAX_CALLS,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_VIDEO_CODEC,
  PROP_VIDEO_BITRATE,
  PROP_LATENCY,
  PROP_CALL_TIMEOUT,
  PROP_MAX_RECONNECT_DELAY,
  PROP_CONNECT_TIMEOUT,
  PROP_ANSWER_TIMEOUT,
  PROP_UNCONNECTED_BACKOFF,
  PROP_MAX_MLINES,
  PROP_MAX_TRANSPORTS,
  PROP_MAX_SDP_SIZE,
  PROP_MAX_CANDIDATES,
  PROP_MAX_CANDIDATE_SIZE,
  PROP_OFFER_RATE,
  PROP_OFFER_BURST,
  PROP_REFUSAL_RATE,
  PROP_KEYFRAME_INTERVAL_MIN,
  PROP_STALL_TIMEOUT,
  PROP_OUTPUT_ENCODED,
  PROP_UPNP,
  PROP_ICE_TCP,
  PROP_ICE_ADDRESSES,
  PROP_TLS_CA_FILE,
  PROP_SIGNALLER,
  PROP_USERS,
  PROP_CALLS,
  PROP_ENCODERS,
  PROP_MAX_CONNECTING,
  PROP_STATS_INTERVAL,
  PROP_MIN_VIDEO_BITRATE,
  PROP_STATS,
  N_PROPS
};
GParamSpec* properties[N_PROPS];

// The limits on remote peers: plain uint properties, read once per call or offer.
struct UintField {
  int prop;
  guint _GstWebRTCCall::*field;
};
constexpr UintField kLimitFields[] = {
    {PROP_CONNECT_TIMEOUT, &_GstWebRTCCall::connect_timeout},
    {PROP_ANSWER_TIMEOUT, &_GstWebRTCCall::answer_timeout},
    {PROP_UNCONNECTED_BACKOFF, &_GstWebRTCCall::unconnected_backoff},
    {PROP_MAX_MLINES, &_GstWebRTCCall::max_mlines},
    {PROP_MAX_TRANSPORTS, &_GstWebRTCCall::max_transports},
    {PROP_MAX_SDP_SIZE, &_GstWebRTCCall::max_sdp_size},
    {PROP_MAX_CANDIDATES, &_GstWebRTCCall::max_candidates},
    {PROP_MAX_CANDIDATE_SIZE, &_GstWebRTCCall::max_candidate_size},
    {PROP_OFFER_RATE, &_GstWebRTCCall::offer_rate},
    {PROP_OFFER_BURST, &_GstWebRTCCall::offer_burst},
    {PROP_REFUSAL_RATE, &_GstWebRTCCall::refusal_rate},
    {PROP_MAX_CONNECTING, &_GstWebRTCCall::max_connecting},
    // Not limits, but plain uint properties read by the signaling thread too.
    {PROP_STATS_INTERVAL, &_GstWebRTCCall::stats_interval},
    {PROP_MIN_VIDEO_BITRATE, &_GstWebRTCCall::min_video_bitrate},
    {PROP_KEYFRAME_INTERVAL_MIN, &_GstWebRTCCall::keyframe_interval_min},
    {PROP_STALL_TIMEOUT, &_GstWebRTCCall::stall_timeout},
};
guint _GstWebRTCCall::*limit_field(guint prop_id) {
  for (const UintField& f : kLimitFields) {
    if (f.prop == static_cast<int>(prop_id)) return f.field;
  }
  return nullptr;
}

enum { SIGNAL_CALL, SIGNAL_HANG_UP, SIGNAL_INCOMING_CALL, N_SIGNALS };
guint signals[N_SIGNALS];

GstStaticPadTemplate video_sink_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
    GST_STATIC_CAPS("video/x-raw(ANY); video/x-vp8; video/x-vp9; "
                    "video/x-h264, stream-format = (string) { avc, byte-stream }, "
                    "alignment = (string) au"));
GstStaticPadTemplate audio_sink_template = GST_STATIC_PAD_TEMPLATE(
    "audio_%u", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS("audio/x-raw(ANY); audio/x-opus"));
GstStaticPadTemplate video_src_template = GST_STATIC_PAD_TEMPLATE(
    "video_src_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS("video/x-raw(ANY); video/x-vp8; video/x-vp9; video/x-h264"));
GstStaticPadTemplate audio_src_template =
    GST_STATIC_PAD_TEMPLATE("audio_src_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
                            GST_STATIC_CAPS("audio/x-raw(ANY); audio/x-opus"));

}  // namespace

// ---- Source pads: a ghost pad that says which call and which kind it carries ----

#define GST_TYPE_WEBRTC_CALL_SRC_PAD (gst_webrtc_call_src_pad_get_type())
G_DECLARE_FINAL_TYPE(GstWebRTCCallSrcPad, gst_webrtc_call_src_pad, GST, WEBRTC_CALL_SRC_PAD,
                     GstGhostPad)

struct _GstWebRTCCallSrcPad {
  GstGhostPad parent;
  gchar* peer;
  gchar* kind;
};

G_DEFINE_FINAL_TYPE(GstWebRTCCallSrcPad, gst_webrtc_call_src_pad, GST_TYPE_GHOST_PAD)

enum { PAD_PROP_0, PAD_PROP_PEER, PAD_PROP_KIND };

static void gst_webrtc_call_src_pad_get_property(GObject* object, guint id, GValue* value,
                                                 GParamSpec* pspec) {
  auto* pad = GST_WEBRTC_CALL_SRC_PAD(object);
  switch (id) {
    case PAD_PROP_PEER:
      g_value_set_string(value, pad->peer);
      break;
    case PAD_PROP_KIND:
      g_value_set_string(value, pad->kind);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void gst_webrtc_call_src_pad_finalize(GObject* object) {
  auto* pad = GST_WEBRTC_CALL_SRC_PAD(object);
  g_free(pad->peer);
  g_free(pad->kind);
  G_OBJECT_CLASS(gst_webrtc_call_src_pad_parent_class)->finalize(object);
}

static void gst_webrtc_call_src_pad_class_init(GstWebRTCCallSrcPadClass* klass) {
  GObjectClass* oc = G_OBJECT_CLASS(klass);
  oc->get_property = gst_webrtc_call_src_pad_get_property;
  oc->finalize = gst_webrtc_call_src_pad_finalize;
  g_object_class_install_property(
      oc, PAD_PROP_PEER,
      g_param_spec_string("peer", "Peer", "The user of the call this pad outputs", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      oc, PAD_PROP_KIND,
      g_param_spec_string("kind", "Kind", "\"video\" or \"audio\"", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
}

static void gst_webrtc_call_src_pad_init(GstWebRTCCallSrcPad*) {}

// ---- The element ----

static void gst_webrtc_call_child_proxy_init(GstChildProxyInterface* iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(GstWebRTCCall, gst_webrtc_call, GST_TYPE_BIN,
                              G_IMPLEMENT_INTERFACE(GST_TYPE_CHILD_PROXY,
                                                    gst_webrtc_call_child_proxy_init)
                                  GST_DEBUG_CATEGORY_INIT(webrtccall_debug, "webrtccall", 0,
                                                          "WebRTC calls by username"));

GST_ELEMENT_REGISTER_DEFINE(webrtccall, "webrtccall", GST_RANK_NONE, GST_TYPE_WEBRTC_CALL);

GType gst_webrtc_call_video_codec_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {GST_WEBRTC_CALL_VIDEO_CODEC_VP8, "VP8 (every browser)", "vp8"},
      {GST_WEBRTC_CALL_VIDEO_CODEC_H264, "H.264 constrained baseline (openh264)", "h264"},
      {GST_WEBRTC_CALL_VIDEO_CODEC_VP9, "VP9", "vp9"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    g_once_init_leave(&type, g_enum_register_static("GstWebRTCCallVideoCodec", values));
  }
  return type;
}

gboolean gst_webrtc_call_emit_incoming_call(GstWebRTCCall* self, const gchar* peer) {
  GST_OBJECT_LOCK(self);
  gboolean accept = self->auto_answer;
  GST_OBJECT_UNLOCK(self);
  if (g_signal_has_handler_pending(self, signals[SIGNAL_INCOMING_CALL], 0, TRUE)) {
    // Handlers decide; any handler returning FALSE refuses.
    accept = TRUE;
    g_signal_emit(self, signals[SIGNAL_INCOMING_CALL], 0, peer, &accept);
  }
  return accept;
}

GstPad* gst_webrtc_call_new_src_pad(GstWebRTCCall* self, const gchar* name, const gchar* peer,
                                    const gchar* kind, GstPad* target) {
  GstPadTemplate* templ = gst_element_class_get_pad_template(
      GST_ELEMENT_GET_CLASS(self), g_str_equal(kind, "video") ? "video_src_%u" : "audio_src_%u");
  auto* pad =
      GST_WEBRTC_CALL_SRC_PAD(g_object_new(GST_TYPE_WEBRTC_CALL_SRC_PAD, "name", name, "direction",
                                           GST_PAD_SRC, "template", templ, nullptr));
  pad->peer = g_strdup(peer);
  pad->kind = g_strdup(kind);
  gst_ghost_pad_set_target(GST_GHOST_PAD(pad), target);
  // Nobody linked it (gst-launch links only the first call's pads): drop the data instead of
  // letting not-linked stop webrtcbin's streaming threads.
  gst_pad_add_probe(
      target,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      [](GstPad*, GstPadProbeInfo*, gpointer ghost) {
        return gst_pad_is_linked(GST_PAD(ghost)) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
      },
      pad, nullptr);
  gst_pad_set_active(GST_PAD(pad), TRUE);
  gst_element_add_pad(GST_ELEMENT(self), GST_PAD(pad));
  return GST_PAD(pad);
}

static GstPad* gst_webrtc_call_request_new_pad(GstElement* element, GstPadTemplate* templ,
                                               const gchar* name, const GstCaps*) {
  auto* self = GST_WEBRTC_CALL(element);
  bool video = g_str_equal(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video_%u");
  static std::atomic<unsigned> counter[2];
  std::string pad_name =
      name ? name
           : std::string(video ? "video_" : "audio_") + std::to_string(counter[video ? 0 : 1]++);
  if (GstPad* existing = gst_element_get_static_pad(element, pad_name.c_str())) {
    gst_object_unref(existing);
    GST_WARNING_OBJECT(self, "pad %s exists already", pad_name.c_str());
    return nullptr;
  }
  GstPad* pad = self->engine->request_sink_pad(
      video ? webrtccall::Kind::kVideo : webrtccall::Kind::kAudio, pad_name.c_str());
  if (!pad) return nullptr;
  gst_pad_set_active(pad, TRUE);
  gst_element_add_pad(element, pad);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
  return pad;
}

static void gst_webrtc_call_release_pad(GstElement* element, GstPad* pad) {
  GST_WEBRTC_CALL(element)->engine->release_sink_pad(pad);
  if (element->numsinkpads == 0) GST_OBJECT_FLAG_UNSET(element, GST_ELEMENT_FLAG_SINK);
}

// The application ends the pipeline's sources (gst-launch -e, gst_element_send_event(EOS)):
// we are one too, so the received streams end with EOS and downstream sinks can finish.
static gboolean gst_webrtc_call_send_event(GstElement* element, GstEvent* event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    GST_INFO_OBJECT(element, "EOS sent to the element: ending the received streams");
    GST_WEBRTC_CALL(element)->engine->end_outputs();
    gst_event_unref(event);
    return TRUE;
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_SEEK) {
    // To our inputs, as a sink does (GstBin would send it to webrtcbin's network sinks).
    gboolean ok = GST_WEBRTC_CALL(element)->engine->seek_inputs(event);
    gst_event_unref(event);
    return ok;
  }
  return GST_ELEMENT_CLASS(gst_webrtc_call_parent_class)->send_event(element, event);
}

// EOS of inner elements (webrtcbin's) is not ours: the engine posts the element's own.
// The child of `bin` that `object` is or is inside of (a new reference), or null.
static GstObject* child_of(GstBin* bin, GstObject* object) {
  GstObject* o = object ? GST_OBJECT(gst_object_ref(object)) : nullptr;
  while (o) {
    GstObject* parent = gst_object_get_parent(o);
    if (parent == GST_OBJECT(bin)) {
      gst_object_unref(parent);
      return o;
    }
    gst_object_unref(o);
    o = parent;
  }
  return nullptr;
}

static void gst_webrtc_call_handle_message(GstBin* bin, GstMessage* message) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(message) != GST_OBJECT(bin)) {
    gst_message_unref(message);
    return;
  }
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    // An error inside one call (its decoders, webrtcbin's transports: what a remote sends or
    // does) ends that call, not the pipeline: the application sees it as a warning.
    GstObject* child = child_of(bin, GST_MESSAGE_SRC(message));
    unsigned call_id = child ? webrtccall::call_id_of_element(GST_OBJECT_NAME(child)) : 0;
    if (child) gst_object_unref(child);
    if (call_id) {
      GError* error = nullptr;
      gchar* debug = nullptr;
      gst_message_parse_error(message, &error, &debug);
      GST_WARNING_OBJECT(bin, "call %u: %s (%s): ending the call", call_id, error->message,
                         debug ? debug : "");
      GstMessage* warning = gst_message_new_warning(GST_MESSAGE_SRC(message), error, debug);
      GST_WEBRTC_CALL(bin)->engine->call_error(call_id, error->message);
      g_error_free(error);
      g_free(debug);
      gst_message_unref(message);
      GST_BIN_CLASS(gst_webrtc_call_parent_class)->handle_message(bin, warning);
      return;
    }
  }
  GST_BIN_CLASS(gst_webrtc_call_parent_class)->handle_message(bin, message);
}

static GstStateChangeReturn gst_webrtc_call_change_state(GstElement* element,
                                                         GstStateChange transition) {
  auto* self = GST_WEBRTC_CALL(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !self->engine->start()) {
    return GST_STATE_CHANGE_FAILURE;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_webrtc_call_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) self->engine->stop();
  // A call is a live source: what the remote sends comes in real time, never in PAUSED.
  // Without this, a pipeline whose sinks wait for our (not yet existing) source pads would
  // stay in PAUSED forever, and so would webrtcbin's network sinks.
  if ((transition == GST_STATE_CHANGE_READY_TO_PAUSED ||
       transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED) &&
      ret == GST_STATE_CHANGE_SUCCESS) {
    ret = GST_STATE_CHANGE_NO_PREROLL;
  }
  if (ret == GST_STATE_CHANGE_FAILURE && transition == GST_STATE_CHANGE_NULL_TO_READY) {
    self->engine->stop();
  }
  return ret;
}

static void set_signaller_property(GstWebRTCCall* self, const char* name, const GValue* value) {
  GST_OBJECT_LOCK(self);
  GObject* signaller = self->signaller ? G_OBJECT(gst_object_ref(self->signaller)) : nullptr;
  GST_OBJECT_UNLOCK(self);
  if (!signaller) return;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(signaller), name)) {
    g_object_set_property(signaller, name, value);
  } else {
    GST_WARNING_OBJECT(self, "the signaller has no %s property", name);
  }
  g_object_unref(signaller);
}

static void get_signaller_property(GstWebRTCCall* self, const char* name, GValue* value) {
  GST_OBJECT_LOCK(self);
  GObject* signaller = self->signaller ? G_OBJECT(gst_object_ref(self->signaller)) : nullptr;
  GST_OBJECT_UNLOCK(self);
  if (signaller && g_object_class_find_property(G_OBJECT_GET_CLASS(signaller), name)) {
    g_object_get_property(signaller, name, value);
  }
  if (signaller) g_object_unref(signaller);
}

static void replace_string(GstWebRTCCall* self, gchar** field, const GValue* value) {
  GST_OBJECT_LOCK(self);
  g_free(*field);
  *field = g_value_dup_string(value);
  GST_OBJECT_UNLOCK(self);
}

// Lists are GstValueArrays of strings, so that gst-launch can set them: <"a", "b">.
static void replace_strv(GstWebRTCCall* self, GStrv* field, const GValue* value) {
  guint n = gst_value_array_get_size(value);
  GStrv list = g_new0(gchar*, n + 1);
  for (guint i = 0; i < n; ++i) list[i] = g_value_dup_string(gst_value_array_get_value(value, i));
  GST_OBJECT_LOCK(self);
  g_strfreev(*field);
  *field = list;
  GST_OBJECT_UNLOCK(self);
}

static void get_strv(GValue* value, const GStrv list) {
  for (gchar** p = list; p && *p; ++p) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_string(&v, *p);
    gst_value_array_append_and_take_value(value, &v);
  }
}

static GStrv to_strv(const std::vector<std::string>& list) {
  GStrv out = g_new0(gchar*, list.size() + 1);
  for (std::size_t i = 0; i < list.size(); ++i) out[i] = g_strdup(list[i].c_str());
  return out;
}

static void gst_webrtc_call_set_property(GObject* object, guint prop_id, const GValue* value,
                                         GParamSpec* pspec) {
  auto* self = GST_WEBRTC_CALL(object);
  switch (prop_id) {
    case PROP_SIGNALING_SERVER:
      set_signaller_property(self, "uri", value);
      break;
    case PROP_TLS_CA_FILE:
      set_signaller_property(self, "tls-ca-file", value);
      break;
    case PROP_USERNAME:
      replace_string(self, &self->username, value);
      break;
    case PROP_PEER:
      replace_string(self, &self->peer, value);
      break;
    case PROP_STUN_SERVER:
      replace_string(self, &self->stun_server, value);
      break;
    case PROP_TURN_SERVERS:
      replace_strv(self, &self->turn_servers, value);
      break;
    case PROP_ICE_ADDRESSES:
      replace_strv(self, &self->ice_addresses, value);
      break;
    case PROP_SIGNALLER: {
      GST_OBJECT_LOCK(self);
      if (GST_STATE(self) != GST_STATE_NULL) {
        GST_OBJECT_UNLOCK(self);
        g_warning("webrtccall: the signaller can only be replaced in the NULL state");
        break;
      }
      auto* s = static_cast<GstWebRTCCallSignaller*>(g_value_dup_object(value));
      GstWebRTCCallSignaller* old = self->signaller;
      self->signaller = s;
      GST_OBJECT_UNLOCK(self);
      if (old) g_object_unref(old);
      break;
    }
    default: {
      GST_OBJECT_LOCK(self);
      if (auto field = limit_field(prop_id)) {
        self->*field = g_value_get_uint(value);
        GST_OBJECT_UNLOCK(self);
        break;
      }
      switch (prop_id) {
        case PROP_AUTO_ANSWER:
          self->auto_answer = g_value_get_boolean(value);
          break;
        case PROP_MAX_CALLS:
          self->max_calls = g_value_get_uint(value);
          break;
        case PROP_VIDEO_CODEC:
          self->video_codec = static_cast<GstWebRTCCallVideoCodec>(g_value_get_enum(value));
          break;
        case PROP_VIDEO_BITRATE:
          self->video_bitrate = g_value_get_uint(value);
          break;
        case PROP_LATENCY:
          self->latency = g_value_get_uint(value);
          break;
        case PROP_CALL_TIMEOUT:
          self->call_timeout = g_value_get_uint(value);
          break;
        case PROP_MAX_RECONNECT_DELAY:
          self->max_reconnect_delay = g_value_get_uint(value);
          break;
        case PROP_OUTPUT_ENCODED:
          self->output_encoded = g_value_get_boolean(value);
          break;
        case PROP_UPNP:
          self->upnp = g_value_get_boolean(value);
          break;
        case PROP_ICE_TCP:
          self->ice_tcp = g_value_get_boolean(value);
          break;
        default:
          G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
          break;
      }
      GST_OBJECT_UNLOCK(self);
      break;
    }
  }
}

static void gst_webrtc_call_get_property(GObject* object, guint prop_id, GValue* value,
                                         GParamSpec* pspec) {
  auto* self = GST_WEBRTC_CALL(object);
  switch (prop_id) {
    case PROP_SIGNALING_SERVER:
      get_signaller_property(self, "uri", value);
      return;
    case PROP_TLS_CA_FILE:
      get_signaller_property(self, "tls-ca-file", value);
      return;
    case PROP_USERS:
      g_value_take_boxed(value, to_strv(self->engine->users()));
      return;
    case PROP_CALLS:
      g_value_take_boxed(value, to_strv(self->engine->calls()));
      return;
    case PROP_ENCODERS:
      g_value_take_boxed(value, to_strv(self->engine->encoders()));
      return;
    case PROP_STATS:
      if (GstStructure* stats = self->engine->stats()) {
        g_value_take_boxed(value, stats);
      } else {
        g_value_take_boxed(value, gst_structure_new_empty("webrtccall-stats-all"));
      }
      return;
    default:
      break;
  }
  GST_OBJECT_LOCK(self);
  if (auto field = limit_field(prop_id)) {
    g_value_set_uint(value, self->*field);
    GST_OBJECT_UNLOCK(self);
    return;
  }
  switch (prop_id) {
    case PROP_USERNAME:
      g_value_set_string(value, self->username);
      break;
    case PROP_PEER:
      g_value_set_string(value, self->peer);
      break;
    case PROP_AUTO_ANSWER:
      g_value_set_boolean(value, self->auto_answer);
      break;
    case PROP_MAX_CALLS:
      g_value_set_uint(value, self->max_calls);
      break;
    case PROP_STUN_SERVER:
      g_value_set_string(value, self->stun_server);
      break;
    case PROP_TURN_SERVERS:
      get_strv(value, self->turn_servers);
      break;
    case PROP_VIDEO_CODEC:
      g_value_set_enum(value, self->video_codec);
      break;
    case PROP_VIDEO_BITRATE:
      g_value_set_uint(value, self->video_bitrate);
      break;
    case PROP_LATENCY:
      g_value_set_uint(value, self->latency);
      break;
    case PROP_CALL_TIMEOUT:
      g_value_set_uint(value, self->call_timeout);
      break;
    case PROP_MAX_RECONNECT_DELAY:
      g_value_set_uint(value, self->max_reconnect_delay);
      break;
    case PROP_OUTPUT_ENCODED:
      g_value_set_boolean(value, self->output_encoded);
      break;
    case PROP_UPNP:
      g_value_set_boolean(value, self->upnp);
      break;
    case PROP_ICE_TCP:
      g_value_set_boolean(value, self->ice_tcp);
      break;
    case PROP_ICE_ADDRESSES:
      get_strv(value, self->ice_addresses);
      break;
    case PROP_SIGNALLER:
      g_value_set_object(value, self->signaller);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_webrtc_call_finalize(GObject* object) {
  auto* self = GST_WEBRTC_CALL(object);
  delete self->engine;
  g_free(self->username);
  g_free(self->peer);
  g_free(self->stun_server);
  g_strfreev(self->turn_servers);
  g_strfreev(self->ice_addresses);
  g_clear_object(&self->signaller);
  G_OBJECT_CLASS(gst_webrtc_call_parent_class)->finalize(object);
}

static void action_call(GstWebRTCCall* self, const gchar* username) {
  if (!username || !*username) {
    GST_WARNING_OBJECT(self, "call: no username");
    return;
  }
  self->engine->call(username);
}

static void action_hang_up(GstWebRTCCall* self, const gchar* username) {
  self->engine->hang_up(username ? std::optional<std::string>(username) : std::nullopt);
}

static void gst_webrtc_call_class_init(GstWebRTCCallClass* klass) {
  GObjectClass* oc = G_OBJECT_CLASS(klass);
  GstElementClass* ec = GST_ELEMENT_CLASS(klass);
  oc->set_property = gst_webrtc_call_set_property;
  oc->get_property = gst_webrtc_call_get_property;
  oc->finalize = gst_webrtc_call_finalize;
  ec->change_state = gst_webrtc_call_change_state;
  ec->request_new_pad = gst_webrtc_call_request_new_pad;
  ec->release_pad = gst_webrtc_call_release_pad;
  GST_BIN_CLASS(klass)->handle_message = gst_webrtc_call_handle_message;
  ec->send_event = gst_webrtc_call_send_event;

  auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                     GST_PARAM_MUTABLE_READY);
  auto rw_playing = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                             GST_PARAM_MUTABLE_PLAYING);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  properties[PROP_SIGNALING_SERVER] = g_param_spec_string(
      "signaling-server", "Signaling server",
      "WebSocket URI of the signaling server, ws:// or wss:// (the signaller's uri)", nullptr, rw);
  properties[PROP_USERNAME] = g_param_spec_string(
      "username", "Username",
      "The name to register (the server may append a number when it is taken)", nullptr, rw);
  properties[PROP_PEER] = g_param_spec_string(
      "peer", "Peer",
      "Users to call, comma-separated (\"alice\" or \"a,b,c\"), each as soon as it is online; "
      "each called again with its own backoff when its call fails or it comes back, but not "
      "after it hung up or declined",
      nullptr, rw_playing);
  properties[PROP_AUTO_ANSWER] = g_param_spec_boolean(
      "auto-answer", "Auto answer", "Accept incoming calls (when no incoming-call handler decides)",
      kDefaultAutoAnswer, rw_playing);
  properties[PROP_MAX_CALLS] = g_param_spec_uint(
      "max-calls", "Max calls", "Calls at once; further incoming calls are refused as busy", 1,
      1000, kDefaultMaxCalls, rw_playing);
  properties[PROP_STUN_SERVER] =
      g_param_spec_string("stun-server", "STUN server",
                          "stun://host:port (no default: no public server is used)", nullptr, rw);
  properties[PROP_TURN_SERVERS] = gst_param_spec_array(
      "turn-servers", "TURN servers",
      "turn(s)://user:password@host:port, any number (gst-launch: <\"turn://u:p@host:3478\">)",
      g_param_spec_string("turn-server", "TURN server", "A TURN server URI", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)),
      rw);
  properties[PROP_VIDEO_CODEC] = g_param_spec_enum(
      "video-codec", "Video codec",
      "Preferred codec for raw video input: offered first, sent whenever the remote takes "
      "it, else another the remote takes (encoded input is sent as is)",
      GST_TYPE_WEBRTC_CALL_VIDEO_CODEC, kDefaultVideoCodec, rw);
  properties[PROP_VIDEO_BITRATE] = g_param_spec_uint("video-bitrate", "Video bitrate",
                                                     "Target bitrate of encoded video in kbit/s",
                                                     50, 50000, kDefaultVideoBitrate, rw);
  properties[PROP_LATENCY] =
      g_param_spec_uint("latency", "Latency", "Jitter buffer of received streams in ms", 0, 10000,
                        kDefaultLatency, rw);
  properties[PROP_CALL_TIMEOUT] = g_param_spec_uint(
      "call-timeout", "Call timeout",
      "Seconds without any packet from the remote after which a call ends (a vanished peer)", 2,
      3600, kDefaultCallTimeout, rw_playing);
  properties[PROP_MAX_RECONNECT_DELAY] = g_param_spec_uint(
      "max-reconnect-delay", "Maximum reconnect delay",
      "Once registered, a lost or unreachable signaling server is tried again after 1 s, 2 s, "
      "4 s ... (each with random jitter) up to this many seconds between attempts; calls go on "
      "meanwhile",
      1, 3600, kDefaultMaxReconnectDelay, rw_playing);
  properties[PROP_CONNECT_TIMEOUT] = g_param_spec_uint(
      "connect-timeout", "Connect timeout",
      "Seconds a call may take to connect (ICE and DTLS) once both descriptions are known: "
      "from the offer for incoming calls, from the answer for outgoing ones; re-offers never "
      "extend it",
      1, 3600, kDefaultConnectTimeout, rw_playing);
  properties[PROP_ANSWER_TIMEOUT] = g_param_spec_uint(
      "answer-timeout", "Answer timeout", "Seconds an outgoing call waits for the remote to answer",
      1, 3600, kDefaultAnswerTimeout, rw_playing);
  properties[PROP_UNCONNECTED_BACKOFF] = g_param_spec_uint(
      "unconnected-backoff", "Unconnected backoff",
      "Seconds a caller is refused as busy after its incoming calls held a slot for "
      "connect-timeout in total without connecting (0: never)",
      0, 86400, kDefaultUnconnectedBackoff, rw_playing);
  properties[PROP_MAX_MLINES] =
      g_param_spec_uint("max-mlines", "Max m-lines",
                        "m-lines a remote description may have (see also max-transports)", 1, 1024,
                        kDefaultMaxMlines, rw_playing);
  properties[PROP_MAX_TRANSPORTS] = g_param_spec_uint(
      "max-transports", "Max transports",
      "ICE/DTLS transports a remote description may need: its BUNDLE group counts one, each "
      "active m-line outside it one (about 10 fds and 3 threads each)",
      1, 1024, kDefaultMaxTransports, rw_playing);
  properties[PROP_MAX_SDP_SIZE] =
      g_param_spec_uint("max-sdp-size", "Max SDP size", "Bytes a remote description may have", 1024,
                        16 << 20, kDefaultMaxSdpSize, rw_playing);
  properties[PROP_MAX_CANDIDATES] = g_param_spec_uint(
      "max-candidates", "Max candidates",
      "Remote ICE candidates taken per call (trickled and in the SDP); further ones are ignored", 1,
      10000, kDefaultMaxCandidates, rw_playing);
  properties[PROP_MAX_CANDIDATE_SIZE] = g_param_spec_uint(
      "max-candidate-size", "Max candidate size", "Bytes one remote ICE candidate may have", 64,
      65536, kDefaultMaxCandidateSize, rw_playing);
  properties[PROP_OFFER_RATE] = g_param_spec_uint(
      "offer-rate", "Offer rate",
      "Offers per second taken from one remote user (after offer-burst); further ones are "
      "dropped unanswered (0: no limit)",
      0, 1000, kDefaultOfferRate, rw_playing);
  properties[PROP_OFFER_BURST] =
      g_param_spec_uint("offer-burst", "Offer burst",
                        "Offers one remote user may send at once before offer-rate applies", 1,
                        10000, kDefaultOfferBurst, rw_playing);
  properties[PROP_REFUSAL_RATE] = g_param_spec_uint(
      "refusal-rate", "Refusal rate",
      "Refusals (busy, declined, invalid-sdp) sent per second to all remote users together, "
      "with a burst of four times as many; offers beyond are dropped unanswered (0: no limit)",
      0, 1000, kDefaultRefusalRate, rw_playing);
  properties[PROP_MAX_CONNECTING] = g_param_spec_uint(
      "max-connecting", "Max connecting",
      "Calls between offer/answer and connected at once (join pacing); further incoming offers "
      "wait in line, answered as calls connect, refused (timeout) after connect-timeout; calls "
      "of the peer list wait too (0: no limit)",
      0, 1000, kDefaultMaxConnecting, rw_playing);
  properties[PROP_KEYFRAME_INTERVAL_MIN] = g_param_spec_uint(
      "keyframe-interval-min", "Minimum keyframe interval",
      "Milliseconds between the keyframes asked of one shared encoder (or of an encoded "
      "input's source), for all its calls together: calls joining and PLI/FIR from viewers "
      "within that time get one keyframe at its end (0: no limit)",
      0, 60000, kDefaultKeyframeIntervalMin, rw_playing);
  properties[PROP_STALL_TIMEOUT] = g_param_spec_uint(
      "stall-timeout", "Stall timeout",
      "Seconds a connected call may send nothing while its input flows (its branch is blocked "
      "downstream) before it ends as stalled (0: never)",
      0, 3600, kDefaultStallTimeout, rw_playing);
  properties[PROP_OUTPUT_ENCODED] = g_param_spec_boolean(
      "output-encoded", "Output encoded",
      "Source pads give the received streams encoded (VP8/VP9/H.264/Opus), for recording "
      "without transcoding",
      kDefaultOutputEncoded, rw);
  properties[PROP_UPNP] = g_param_spec_boolean(
      "upnp", "UPnP", "Let libnice map ports with UPnP (costs a thread and multicast per call)",
      kDefaultUpnp, rw);
  properties[PROP_ICE_TCP] = g_param_spec_boolean(
      "ice-tcp", "ICE-TCP",
      "Gather and pair TCP candidates too; off, each call has one listening socket and one TCP "
      "connection less (for many calls where UDP gets through)",
      kDefaultIceTcp, rw);
  properties[PROP_ICE_ADDRESSES] = gst_param_spec_array(
      "ice-addresses", "ICE addresses",
      "Local IP addresses ICE may use (default: every interface); 127.0.0.1 enables loopback "
      "(gst-launch: <\"10.0.0.2\", \"127.0.0.1\">)",
      g_param_spec_string("ice-address", "ICE address", "A local IP address", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)),
      rw);
  properties[PROP_TLS_CA_FILE] = g_param_spec_string(
      "tls-ca-file", "TLS CA file",
      "PEM certificate authorities to trust for wss:// (a private CA)", nullptr, rw);
  properties[PROP_SIGNALLER] = g_param_spec_object(
      "signaller", "Signaller", "The signaling implementation (child \"signaller\")",
      GST_TYPE_WEBRTC_CALL_SIGNALLER,
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  properties[PROP_USERS] =
      g_param_spec_boxed("users", "Users", "Who is online now", G_TYPE_STRV, ro);
  properties[PROP_CALLS] =
      g_param_spec_boxed("calls", "Calls", "The users we are in a call with", G_TYPE_STRV, ro);
  properties[PROP_ENCODERS] = g_param_spec_boxed(
      "encoders", "Encoders",
      "The encoders running, one per input and codec that some call sends, as "
      "\"<sink pad>:<codec>\" (\"video_0:H264\"); encoded input is never re-encoded",
      G_TYPE_STRV, ro);
  properties[PROP_STATS_INTERVAL] = g_param_spec_uint(
      "stats-interval", "Statistics interval",
      "Milliseconds between statistics of every call (webrtccall-stats and "
      "webrtccall-stats-total on the bus, the stats property) and adjustments of the shared "
      "video encoders' bitrate (0: off)",
      0, 3600000, kDefaultStatsInterval, rw_playing);
  properties[PROP_MIN_VIDEO_BITRATE] = g_param_spec_uint(
      "min-video-bitrate", "Minimum video bitrate",
      "Lowest bitrate in kbit/s the bitrate policy lowers a shared video encoder to when its "
      "viewers lose packets (video-bitrate is the highest; equal to it: a fixed bitrate)",
      50, 50000, kDefaultMinVideoBitrate, rw_playing);
  properties[PROP_STATS] = g_param_spec_boxed(
      "stats", "Statistics",
      "The latest statistics: webrtccall-stats-all, calls=< webrtccall-stats per call >, "
      "total=webrtccall-stats-total (see README)",
      GST_TYPE_STRUCTURE, ro);
  g_object_class_install_properties(oc, N_PROPS, properties);

  /**
   * webrtccall::call:
   * @username: the user to call
   *
   * Calls a user. Progress and the outcome are posted on the bus (webrtccall-call-*).
   */
  signals[SIGNAL_CALL] = g_signal_new_class_handler(
      "call", G_TYPE_FROM_CLASS(klass),
      static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION), G_CALLBACK(action_call),
      nullptr, nullptr, nullptr, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * webrtccall::hang-up:
   * @username: the user to hang up on, or NULL for every call
   */
  signals[SIGNAL_HANG_UP] = g_signal_new_class_handler(
      "hang-up", G_TYPE_FROM_CLASS(klass),
      static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION), G_CALLBACK(action_hang_up),
      nullptr, nullptr, nullptr, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * webrtccall::incoming-call:
   * @username: who calls
   *
   * Emitted on the element's signaling thread when a user calls. Return FALSE to refuse
   * (the caller gets a hang-up with reason "declined"). Without a handler, auto-answer decides.
   */
  signals[SIGNAL_INCOMING_CALL] =
      g_signal_new("incoming-call", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, nullptr,
                   nullptr, nullptr, G_TYPE_BOOLEAN, 1, G_TYPE_STRING);

  gst_element_class_add_static_pad_template(ec, &video_sink_template);
  gst_element_class_add_static_pad_template(ec, &audio_sink_template);
  gst_element_class_add_static_pad_template(ec, &video_src_template);
  gst_element_class_add_static_pad_template(ec, &audio_src_template);
  gst_element_class_set_static_metadata(
      ec, "WebRTC call", "Network/Source/Sink/Bin",
      "Places and answers WebRTC calls by username through a signaling server: sends the sink "
      "pads' media, outputs each remote's media on source pads",
      "gst-webrtc-call developers");
  gst_type_mark_as_plugin_api(GST_TYPE_WEBRTC_CALL_VIDEO_CODEC, static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_WEBRTC_CALL_SIGNALLER, static_cast<GstPluginAPIFlags>(0));
}

static void gst_webrtc_call_init(GstWebRTCCall* self) {
  self->auto_answer = kDefaultAutoAnswer;
  self->max_calls = kDefaultMaxCalls;
  self->video_codec = kDefaultVideoCodec;
  self->video_bitrate = kDefaultVideoBitrate;
  self->latency = kDefaultLatency;
  self->call_timeout = kDefaultCallTimeout;
  self->max_reconnect_delay = kDefaultMaxReconnectDelay;
  self->connect_timeout = kDefaultConnectTimeout;
  self->answer_timeout = kDefaultAnswerTimeout;
  self->unconnected_backoff = kDefaultUnconnectedBackoff;
  self->max_mlines = kDefaultMaxMlines;
  self->max_transports = kDefaultMaxTransports;
  self->max_sdp_size = kDefaultMaxSdpSize;
  self->max_candidates = kDefaultMaxCandidates;
  self->max_candidate_size = kDefaultMaxCandidateSize;
  self->offer_rate = kDefaultOfferRate;
  self->offer_burst = kDefaultOfferBurst;
  self->refusal_rate = kDefaultRefusalRate;
  self->max_connecting = kDefaultMaxConnecting;
  self->stats_interval = kDefaultStatsInterval;
  self->min_video_bitrate = kDefaultMinVideoBitrate;
  self->keyframe_interval_min = kDefaultKeyframeIntervalMin;
  self->stall_timeout = kDefaultStallTimeout;
  self->output_encoded = kDefaultOutputEncoded;
  self->upnp = kDefaultUpnp;
  self->ice_tcp = kDefaultIceTcp;
  self->signaller =
      GST_WEBRTC_CALL_SIGNALLER(g_object_new(GST_TYPE_WEBRTC_CALL_WS_SIGNALLER, nullptr));
  self->engine = new webrtccall::Engine(self);
  // Our sink/source flags say what the element is, not what webrtcbin inside is (see
  // Engine::stream_eos).
  gst_bin_set_suppressed_flags(
      GST_BIN(self), static_cast<GstElementFlags>(GST_ELEMENT_FLAG_SINK | GST_ELEMENT_FLAG_SOURCE));
  // A source of what the remotes send: the pipeline's EOS event reaches us (send_event).
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

// ---- GstChildProxy: "signaller" ----

static GObject* child_by_name(GstChildProxy* proxy, const gchar* name) {
  auto* self = GST_WEBRTC_CALL(proxy);
  if (g_str_equal(name, "signaller")) {
    GST_OBJECT_LOCK(self);
    GObject* s = self->signaller ? G_OBJECT(g_object_ref(self->signaller)) : nullptr;
    GST_OBJECT_UNLOCK(self);
    return s;
  }
  GstElement* child = gst_bin_get_by_name(GST_BIN(self), name);
  return child ? G_OBJECT(child) : nullptr;
}

static GObject* child_by_index(GstChildProxy* proxy, guint index) {
  if (index != 0) return nullptr;
  return child_by_name(proxy, "signaller");
}

static guint children_count(GstChildProxy*) {
  return 1;
}

static void gst_webrtc_call_child_proxy_init(GstChildProxyInterface* iface) {
  iface->get_child_by_name = child_by_name;
  iface->get_child_by_index = child_by_index;
  iface->get_children_count = children_count;
}
