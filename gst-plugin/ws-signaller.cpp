#include "ws-signaller.h"

#include <memory>
#include <string>

#include "client.h"
#include "gref.h"
#include "protocol.h"

GST_DEBUG_CATEGORY_STATIC(ws_signaller_debug);
#define GST_CAT_DEFAULT ws_signaller_debug

namespace protocol = signaling::protocol;

namespace {

constexpr guint kRegisterTimeoutMs = 10000;

enum { PROP_0, PROP_URI, PROP_TLS_CA_FILE };

// Runtime state, only touched on the signaling thread.
struct Session {
  std::unique_ptr<signaling::Client> client;
  std::string wanted_name;
  std::string name;  // the name the server gave us, once registered
  bool registered = false;
  GSource* register_timer = nullptr;
};

}  // namespace

struct _GstWebRTCCallWsSignaller {
  GObject parent;
  GMutex lock;  // guards uri and tls_ca_file, which the application may set from any thread
  gchar* uri;
  gchar* tls_ca_file;
  Session* session;  // signaling thread only
};

static void gst_webrtc_call_ws_signaller_iface_init(GstWebRTCCallSignallerInterface* iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(GstWebRTCCallWsSignaller, gst_webrtc_call_ws_signaller, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(GST_TYPE_WEBRTC_CALL_SIGNALLER,
                                                    gst_webrtc_call_ws_signaller_iface_init))

namespace {

GstWebRTCCallSignaller* as_signaller(GstWebRTCCallWsSignaller* self) {
  return GST_WEBRTC_CALL_SIGNALLER(self);
}

void fail(GstWebRTCCallWsSignaller* self, const std::string& message) {
  GError* error =
      g_error_new_literal(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ, message.c_str());
  gst_webrtc_call_signaller_emit_failed(as_signaller(self), error);
  g_error_free(error);
}

void clear_register_timer(Session* s) {
  gwc::clear_source(s->register_timer);
}

void set_registered(GstWebRTCCallWsSignaller* self, const std::string& name) {
  Session* s = self->session;
  clear_register_timer(s);
  if (s->registered && s->name == name) return;
  s->registered = true;
  s->name = name;
  gst_webrtc_call_signaller_emit_registered(as_signaller(self), name.c_str());
}

std::string json_of(JsonObject* o) {
  return protocol::to_text(o);
}

void send_object(GstWebRTCCallWsSignaller* self, JsonObject* o) {
  Session* s = self->session;
  if (!s || !s->client) return;
  std::string text = json_of(o);
  GST_LOG_OBJECT(self, "send %s", text.c_str());
  if (!s->client->send(text)) {
    GST_WARNING_OBJECT(self, "not connected: message dropped");
  }
}

void handle_relayed(GstWebRTCCallWsSignaller* self, protocol::RelayedMsg& msg) {
  JsonObject* o = msg.object.get();
  const std::string& peer = msg.name;
  // A server that stamps no sender name (MDN's) relays candidates without one: they reach the
  // element with an empty peer, which gives them to the only call in negotiation, if any.
  if (peer.empty() && msg.type != "new-ice-candidate") {
    GST_WARNING_OBJECT(self, "%s without a sender name: ignored", msg.type.c_str());
    return;
  }
  // Relayed messages are whatever another client sent: every member is read with its type
  // checked (an array where a string belongs is "absent", never a json-glib critical).
  if (msg.type == "video-offer" || msg.type == "video-answer") {
    JsonNode* sdp = json_object_get_member(o, "sdp");
    std::optional<std::string> text;
    if (sdp && JSON_NODE_HOLDS_OBJECT(sdp)) {
      text = protocol::string_member(json_node_get_object(sdp), "sdp");
    }
    // An unusable description still reaches the element (as empty text) so that it can
    // refuse the call with a clear reason instead of leaving the peer waiting.
    gst_webrtc_call_signaller_emit_description(
        as_signaller(self), peer.c_str(),
        msg.type == "video-offer" ? GST_WEBRTC_SDP_TYPE_OFFER : GST_WEBRTC_SDP_TYPE_ANSWER,
        text ? text->c_str() : "");
  } else if (msg.type == "new-ice-candidate") {
    JsonNode* cand = json_object_get_member(o, "candidate");
    if (!cand || !JSON_NODE_HOLDS_OBJECT(cand)) return;  // end of candidates
    JsonObject* c = json_node_get_object(cand);
    std::optional<std::string> candidate = protocol::string_member(c, "candidate");
    if (!candidate || candidate->empty()) return;
    std::optional<std::string> mid = protocol::string_member(c, "sdpMid");
    std::int64_t mline = protocol::int_member(c, "sdpMLineIndex").value_or(-1);
    if (mline > G_MAXINT) mline = -1;
    if (mline < 0 && !mid) return;
    gst_webrtc_call_signaller_emit_candidate(as_signaller(self), peer.c_str(),
                                             mline < 0 ? G_MAXUINT : static_cast<guint>(mline),
                                             mid ? mid->c_str() : nullptr, candidate->c_str());
  } else if (msg.type == "hang-up") {
    std::string reason = protocol::string_member(o, "reason").value_or("");
    gst_webrtc_call_signaller_emit_hang_up(as_signaller(self), peer.c_str(), reason.c_str());
  } else {
    GST_DEBUG_OBJECT(self, "ignoring application message %s from %s", msg.type.c_str(),
                     peer.c_str());
  }
}

void on_text(GstWebRTCCallWsSignaller* self, std::string_view text) {
  Session* s = self->session;
  GST_LOG_OBJECT(self, "received %.*s", static_cast<int>(text.size()), text.data());
  protocol::Limits limits;
  limits.max_message_bytes = 16 << 20;  // our own server's user lists can be long
  limits.max_depth = 64;
  auto parsed = protocol::parse_server(text, limits);
  if (auto* err = std::get_if<protocol::Error>(&parsed)) {
    GST_WARNING_OBJECT(self, "unusable message from the server: %s", err->message.c_str());
    return;
  }
  auto& msg = std::get<protocol::ServerMessage>(parsed);
  if (auto* id = std::get_if<protocol::IdMsg>(&msg)) {
    gwc::GRef<JsonObject> o = gwc::GRef<JsonObject>::adopt(json_object_new());
    json_object_set_string_member(o.get(), "type", "username");
    json_object_set_string_member(o.get(), "name", s->wanted_name.c_str());
    json_object_set_int_member(o.get(), "id", static_cast<gint64>(id->id));
    json_object_set_int_member(o.get(), "date", g_get_real_time() / 1000);
    send_object(self, o.get());
  } else if (auto* reject = std::get_if<protocol::RejectUsernameMsg>(&msg)) {
    set_registered(self, reject->name);
  } else if (auto* list = std::get_if<protocol::UserListMsg>(&msg)) {
    if (!s->registered) {
      for (const auto& u : list->users) {
        if (u == s->wanted_name) set_registered(self, u);
      }
    }
    std::vector<const char*> users;
    for (const auto& u : list->users) users.push_back(u.c_str());
    users.push_back(nullptr);
    gst_webrtc_call_signaller_emit_users(as_signaller(self), users.data());
  } else if (auto* e = std::get_if<protocol::ErrorMsg>(&msg)) {
    GST_WARNING_OBJECT(self, "server refused a request: %s: %s", e->code.c_str(),
                       e->message.c_str());
    if (!s->registered && (e->code == "bad-name" || e->code == "forbidden")) {
      fail(self, "cannot register \"" + s->wanted_name + "\": " + e->message);
      return;
    }
    gst_webrtc_call_signaller_emit_notice(as_signaller(self), e->code.c_str(), e->message.c_str());
  } else if (auto* relayed = std::get_if<protocol::RelayedMsg>(&msg)) {
    handle_relayed(self, *relayed);
  }
}

void ws_start(GstWebRTCCallSignaller* signaller, const gchar* username) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(signaller);
  g_return_if_fail(self->session == nullptr);
  signaling::ClientOptions options;
  g_mutex_lock(&self->lock);
  options.uri = self->uri ? self->uri : "";
  options.tls_ca_file = self->tls_ca_file ? self->tls_ca_file : "";
  g_mutex_unlock(&self->lock);

  self->session = new Session();
  self->session->wanted_name = username ? username : "";
  if (options.uri.empty()) {
    fail(self, "no signaling server: set the signaling-server property (ws:// or wss://)");
    return;
  }
  std::string uri = options.uri;
  self->session->client = std::make_unique<signaling::Client>(
      options, signaling::ClientCallbacks{
                   .on_open = [self] { GST_INFO_OBJECT(self, "connected to %s", self->uri); },
                   .on_text = [self](std::string_view text) { on_text(self, text); },
                   .on_closed =
                       [self, uri](unsigned short code, const std::string& reason) {
                         Session* s = self->session;
                         clear_register_timer(s);
                         if (code == 0) {
                           fail(self, "cannot connect to signaling server " + uri + ": " + reason);
                         } else {
                           fail(self, "connection to signaling server " + uri + " closed (" +
                                          std::to_string(code) +
                                          (reason.empty() ? "" : ": " + reason) + ")");
                         }
                       },
               });
  self->session->register_timer = gwc::add_timeout(
      kRegisterTimeoutMs,
      [](gpointer data) -> gboolean {
        auto* me = static_cast<GstWebRTCCallWsSignaller*>(data);
        gwc::clear_source(me->session->register_timer);
        fail(me, "signaling server " + me->session->client->uri() + " did not register \"" +
                     me->session->wanted_name + "\" within 10 s");
        return G_SOURCE_REMOVE;
      },
      self);
  self->session->client->connect();
}

void ws_stop(GstWebRTCCallSignaller* signaller) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(signaller);
  Session* s = std::exchange(self->session, nullptr);
  if (!s) return;
  clear_register_timer(s);
  delete s;  // the Client sends a close frame and calls nothing any more
}

void ws_send_description(GstWebRTCCallSignaller* signaller, const gchar* peer,
                         GstWebRTCSessionDescription* description) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(signaller);
  if (!self->session) return;
  gwc::GCharPtr text(gst_sdp_message_as_text(description->sdp));
  bool offer = description->type == GST_WEBRTC_SDP_TYPE_OFFER;
  gwc::GRef<JsonObject> o = gwc::GRef<JsonObject>::adopt(json_object_new());
  json_object_set_string_member(o.get(), "type", offer ? "video-offer" : "video-answer");
  json_object_set_string_member(o.get(), "name", self->session->name.c_str());
  json_object_set_string_member(o.get(), "target", peer);
  JsonObject* sdp = json_object_new();
  json_object_set_string_member(sdp, "type", offer ? "offer" : "answer");
  json_object_set_string_member(sdp, "sdp", text.get());
  json_object_set_object_member(o.get(), "sdp", sdp);
  send_object(self, o.get());
}

void ws_send_candidate(GstWebRTCCallSignaller* signaller, const gchar* peer, guint mline_index,
                       const gchar* mid, const gchar* candidate) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(signaller);
  if (!self->session) return;
  gwc::GRef<JsonObject> o = gwc::GRef<JsonObject>::adopt(json_object_new());
  json_object_set_string_member(o.get(), "type", "new-ice-candidate");
  json_object_set_string_member(o.get(), "target", peer);
  if (candidate) {
    JsonObject* c = json_object_new();
    json_object_set_string_member(c, "candidate", candidate);
    if (mid) {
      json_object_set_string_member(c, "sdpMid", mid);
    } else {
      json_object_set_null_member(c, "sdpMid");
    }
    json_object_set_int_member(c, "sdpMLineIndex", mline_index);
    json_object_set_object_member(o.get(), "candidate", c);
  } else {
    json_object_set_null_member(o.get(), "candidate");
  }
  send_object(self, o.get());
}

void ws_send_hang_up(GstWebRTCCallSignaller* signaller, const gchar* peer, const gchar* reason) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(signaller);
  if (!self->session) return;
  gwc::GRef<JsonObject> o = gwc::GRef<JsonObject>::adopt(json_object_new());
  json_object_set_string_member(o.get(), "type", "hang-up");
  json_object_set_string_member(o.get(), "name", self->session->name.c_str());
  json_object_set_string_member(o.get(), "target", peer);
  if (reason && *reason) json_object_set_string_member(o.get(), "reason", reason);
  send_object(self, o.get());
}

}  // namespace

static void gst_webrtc_call_ws_signaller_iface_init(GstWebRTCCallSignallerInterface* iface) {
  iface->start = ws_start;
  iface->stop = ws_stop;
  iface->send_description = ws_send_description;
  iface->send_candidate = ws_send_candidate;
  iface->send_hang_up = ws_send_hang_up;
}

static void gst_webrtc_call_ws_signaller_set_property(GObject* object, guint prop_id,
                                                      const GValue* value, GParamSpec* pspec) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(object);
  g_mutex_lock(&self->lock);
  switch (prop_id) {
    case PROP_URI:
      g_free(self->uri);
      self->uri = g_value_dup_string(value);
      break;
    case PROP_TLS_CA_FILE:
      g_free(self->tls_ca_file);
      self->tls_ca_file = g_value_dup_string(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  g_mutex_unlock(&self->lock);
}

static void gst_webrtc_call_ws_signaller_get_property(GObject* object, guint prop_id, GValue* value,
                                                      GParamSpec* pspec) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(object);
  g_mutex_lock(&self->lock);
  switch (prop_id) {
    case PROP_URI:
      g_value_set_string(value, self->uri);
      break;
    case PROP_TLS_CA_FILE:
      g_value_set_string(value, self->tls_ca_file);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  g_mutex_unlock(&self->lock);
}

static void gst_webrtc_call_ws_signaller_finalize(GObject* object) {
  auto* self = GST_WEBRTC_CALL_WS_SIGNALLER(object);
  // stop() must have run on the signaling thread; a Session left here is a bug.
  g_warn_if_fail(self->session == nullptr);
  g_free(self->uri);
  g_free(self->tls_ca_file);
  g_mutex_clear(&self->lock);
  G_OBJECT_CLASS(gst_webrtc_call_ws_signaller_parent_class)->finalize(object);
}

static void gst_webrtc_call_ws_signaller_class_init(GstWebRTCCallWsSignallerClass* klass) {
  GObjectClass* object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = gst_webrtc_call_ws_signaller_set_property;
  object_class->get_property = gst_webrtc_call_ws_signaller_get_property;
  object_class->finalize = gst_webrtc_call_ws_signaller_finalize;

  g_object_class_install_property(
      object_class, PROP_URI,
      g_param_spec_string("uri", "URI", "WebSocket URI of the signaling server (ws:// or wss://)",
                          nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      object_class, PROP_TLS_CA_FILE,
      g_param_spec_string("tls-ca-file", "TLS CA file",
                          "PEM file of certificate authorities to trust for wss:// instead of "
                          "the system's (for a private CA)",
                          nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  GST_DEBUG_CATEGORY_INIT(ws_signaller_debug, "webrtccall-signaling", 0,
                          "webrtccall WebSocket signaller");
}

static void gst_webrtc_call_ws_signaller_init(GstWebRTCCallWsSignaller* self) {
  g_mutex_init(&self->lock);
}
