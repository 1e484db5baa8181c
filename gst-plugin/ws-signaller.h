// The default signaller: the username protocol (docs/protocol.md) over a WebSocket, on
// signaling::Client. Works with webrtc-call-server and with MDN's sample server.
#pragma once

#include "signaller.h"

G_BEGIN_DECLS

#define GST_TYPE_WEBRTC_CALL_WS_SIGNALLER (gst_webrtc_call_ws_signaller_get_type())
G_DECLARE_FINAL_TYPE(GstWebRTCCallWsSignaller, gst_webrtc_call_ws_signaller, GST,
                     WEBRTC_CALL_WS_SIGNALLER, GObject)

// Properties: "uri" (ws:// or wss://), "tls-ca-file" (PEM CAs to trust for wss).

G_END_DECLS
