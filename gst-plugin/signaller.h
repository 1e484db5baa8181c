// The signaller: what the webrtccall element needs from a signaling channel.
//
// An interface, so the element never sees WebSocket frames or JSON: the default
// implementation (GstWebRTCCallWsSignaller, ws-signaller.h) speaks the username protocol over
// signaling::Client; tests plug in an in-process fake. The element exposes its signaller as
// the child "signaller" (GstChildProxy), so `webrtccall signaller::uri=...` works in
// gst-launch.
//
// Threading: the element calls every method, and the signaller emits every signal, on the
// element's signaling thread (its own GMainContext, thread-default while methods run).
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

G_BEGIN_DECLS

// The signaller API is exported from the plugin so that other signallers (and tests) can
// implement it.
#define GST_WEBRTC_CALL_API __attribute__((visibility("default")))

#define GST_TYPE_WEBRTC_CALL_SIGNALLER (gst_webrtc_call_signaller_get_type())
GST_WEBRTC_CALL_API
G_DECLARE_INTERFACE(GstWebRTCCallSignaller, gst_webrtc_call_signaller, GST, WEBRTC_CALL_SIGNALLER,
                    GObject)

struct _GstWebRTCCallSignallerInterface {
  GTypeInterface parent_iface;

  // Connects and registers `username`. Answers with "registered" or "error".
  void (*start)(GstWebRTCCallSignaller* self, const gchar* username);
  // Disconnects. No signal is emitted after it returns.
  void (*stop)(GstWebRTCCallSignaller* self);
  // An offer or answer for `peer`.
  void (*send_description)(GstWebRTCCallSignaller* self, const gchar* peer,
                           GstWebRTCSessionDescription* description);
  // A trickled ICE candidate for `peer`; `candidate` NULL: end of candidates.
  void (*send_candidate)(GstWebRTCCallSignaller* self, const gchar* peer, guint mline_index,
                         const gchar* mid, const gchar* candidate);
  // Ends (or refuses) the call with `peer`.
  void (*send_hang_up)(GstWebRTCCallSignaller* self, const gchar* peer, const gchar* reason);
};

GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_start(GstWebRTCCallSignaller* self,
                                                         const gchar* username);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_stop(GstWebRTCCallSignaller* self);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_send_description(
    GstWebRTCCallSignaller* self, const gchar* peer, GstWebRTCSessionDescription* description);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_send_candidate(GstWebRTCCallSignaller* self,
                                                                  const gchar* peer,
                                                                  guint mline_index,
                                                                  const gchar* mid,
                                                                  const gchar* candidate);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_send_hang_up(GstWebRTCCallSignaller* self,
                                                                const gchar* peer,
                                                                const gchar* reason);

// Signals, emitted by implementations through these helpers:
//   "registered"   (const gchar* name)            the name the server gave us
//   "users"        (GStrv users)                  who is online now (ourselves included)
//   "description"  (const gchar* peer, GstWebRTCSDPType type, const gchar* sdp)  offer or answer
//                                                 received; the element parses and validates it
//   "candidate"    (const gchar* peer, guint mline_index, const gchar* mid, const gchar* candidate)
//                                                 peer "" when the server stamped no sender name
//   "hang-up"      (const gchar* peer, const gchar* reason)  the peer ended or refused the call
//                                                 (reason: "user-unavailable", "declined", ...)
//   "failed"       (GError* error)                the connection failed or was lost
//   "notice"       (const gchar* code, const gchar* message)  the server refused a request
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_registered(GstWebRTCCallSignaller* self,
                                                                   const gchar* name);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_users(GstWebRTCCallSignaller* self,
                                                              const gchar* const* users);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_description(GstWebRTCCallSignaller* self,
                                                                    const gchar* peer,
                                                                    GstWebRTCSDPType type,
                                                                    const gchar* sdp);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_candidate(GstWebRTCCallSignaller* self,
                                                                  const gchar* peer,
                                                                  guint mline_index,
                                                                  const gchar* mid,
                                                                  const gchar* candidate);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_hang_up(GstWebRTCCallSignaller* self,
                                                                const gchar* peer,
                                                                const gchar* reason);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_failed(GstWebRTCCallSignaller* self,
                                                               const GError* error);
GST_WEBRTC_CALL_API void gst_webrtc_call_signaller_emit_notice(GstWebRTCCallSignaller* self,
                                                               const gchar* code,
                                                               const gchar* message);

G_END_DECLS
