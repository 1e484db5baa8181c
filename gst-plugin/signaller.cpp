#include "signaller.h"

G_DEFINE_INTERFACE(GstWebRTCCallSignaller, gst_webrtc_call_signaller, G_TYPE_OBJECT)

namespace {

enum {
  SIGNAL_REGISTERED,
  SIGNAL_USERS,
  SIGNAL_DESCRIPTION,
  SIGNAL_CANDIDATE,
  SIGNAL_HANG_UP,
  SIGNAL_FAILED,
  SIGNAL_NOTICE,
  N_SIGNALS
};
guint signals[N_SIGNALS];

}  // namespace

static void gst_webrtc_call_signaller_default_init(GstWebRTCCallSignallerInterface* iface) {
  GType type = G_TYPE_FROM_INTERFACE(iface);
  signals[SIGNAL_REGISTERED] = g_signal_new("registered", type, G_SIGNAL_RUN_LAST, 0, nullptr,
                                            nullptr, nullptr, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_USERS] = g_signal_new("users", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
                                       nullptr, G_TYPE_NONE, 1, G_TYPE_STRV);
  signals[SIGNAL_DESCRIPTION] =
      g_signal_new("description", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr, nullptr,
                   G_TYPE_NONE, 3, G_TYPE_STRING, GST_TYPE_WEBRTC_SDP_TYPE, G_TYPE_STRING);
  signals[SIGNAL_CANDIDATE] =
      g_signal_new("candidate", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE,
                   4, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_STRING, G_TYPE_STRING);
  signals[SIGNAL_HANG_UP] = g_signal_new("hang-up", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
                                         nullptr, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  signals[SIGNAL_FAILED] = g_signal_new("failed", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
                                        nullptr, G_TYPE_NONE, 1, G_TYPE_ERROR);
  signals[SIGNAL_NOTICE] = g_signal_new("notice", type, G_SIGNAL_RUN_LAST, 0, nullptr, nullptr,
                                        nullptr, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

#define CALL_VFUNC(self, name, ...)                                                     \
  do {                                                                                  \
    GstWebRTCCallSignallerInterface* iface = GST_WEBRTC_CALL_SIGNALLER_GET_IFACE(self); \
    if (iface->name) iface->name(self __VA_OPT__(, ) __VA_ARGS__);                      \
  } while (0)

void gst_webrtc_call_signaller_start(GstWebRTCCallSignaller* self, const gchar* username) {
  CALL_VFUNC(self, start, username);
}
void gst_webrtc_call_signaller_stop(GstWebRTCCallSignaller* self) {
  CALL_VFUNC(self, stop);
}
void gst_webrtc_call_signaller_send_description(GstWebRTCCallSignaller* self, const gchar* peer,
                                                GstWebRTCSessionDescription* description) {
  CALL_VFUNC(self, send_description, peer, description);
}
void gst_webrtc_call_signaller_send_candidate(GstWebRTCCallSignaller* self, const gchar* peer,
                                              guint mline_index, const gchar* mid,
                                              const gchar* candidate) {
  CALL_VFUNC(self, send_candidate, peer, mline_index, mid, candidate);
}
void gst_webrtc_call_signaller_send_hang_up(GstWebRTCCallSignaller* self, const gchar* peer,
                                            const gchar* reason) {
  CALL_VFUNC(self, send_hang_up, peer, reason);
}

void gst_webrtc_call_signaller_emit_registered(GstWebRTCCallSignaller* self, const gchar* name) {
  g_signal_emit(self, signals[SIGNAL_REGISTERED], 0, name);
}
void gst_webrtc_call_signaller_emit_users(GstWebRTCCallSignaller* self, const gchar* const* users) {
  g_signal_emit(self, signals[SIGNAL_USERS], 0, users);
}
void gst_webrtc_call_signaller_emit_description(GstWebRTCCallSignaller* self, const gchar* peer,
                                                GstWebRTCSDPType type, const gchar* sdp) {
  g_signal_emit(self, signals[SIGNAL_DESCRIPTION], 0, peer, type, sdp);
}
void gst_webrtc_call_signaller_emit_candidate(GstWebRTCCallSignaller* self, const gchar* peer,
                                              guint mline_index, const gchar* mid,
                                              const gchar* candidate) {
  g_signal_emit(self, signals[SIGNAL_CANDIDATE], 0, peer, mline_index, mid, candidate);
}
void gst_webrtc_call_signaller_emit_hang_up(GstWebRTCCallSignaller* self, const gchar* peer,
                                            const gchar* reason) {
  g_signal_emit(self, signals[SIGNAL_HANG_UP], 0, peer, reason);
}
void gst_webrtc_call_signaller_emit_failed(GstWebRTCCallSignaller* self, const GError* error) {
  g_signal_emit(self, signals[SIGNAL_FAILED], 0, error);
}
void gst_webrtc_call_signaller_emit_notice(GstWebRTCCallSignaller* self, const gchar* code,
                                           const gchar* message) {
  g_signal_emit(self, signals[SIGNAL_NOTICE], 0, code, message);
}
