// webrtccall: a GstBin that places and answers WebRTC calls by username.
//
// It registers `username` on a signaling server (webrtc-call-server or any server speaking
// MDN's webrtc-from-chat protocol), calls users (`peer`, the "call" action signal) or answers
// their calls, sends what the pipeline feeds its request sink pads (video_%u, audio_%u; raw
// input is encoded, VP8/VP9/H.264/Opus input is sent as is) and outputs what each remote sends
// on sometimes source pads (video_src_%u, audio_src_%u; decoded unless `output-encoded`).
// One webrtcbin per call.
//
// Threads and locks:
// - Properties live in the instance and are guarded by the object lock.
// - Everything about calls runs on the element's signaling thread (its own GMainContext):
//   the signaller, call setup and teardown. webrtcbin's callbacks (streaming threads) hand
//   their work to that thread and never change webrtcbin's state themselves.
// - Lock order: the object lock is a leaf: never held while calling out, emitting a signal or
//   posting a message.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_WEBRTC_CALL (gst_webrtc_call_get_type())
G_DECLARE_FINAL_TYPE(GstWebRTCCall, gst_webrtc_call, GST, WEBRTC_CALL, GstBin)

GST_ELEMENT_REGISTER_DECLARE(webrtccall);

// The video codec for raw video input.
typedef enum {
  GST_WEBRTC_CALL_VIDEO_CODEC_VP8,
  GST_WEBRTC_CALL_VIDEO_CODEC_H264,
  GST_WEBRTC_CALL_VIDEO_CODEC_VP9,
} GstWebRTCCallVideoCodec;

#define GST_TYPE_WEBRTC_CALL_VIDEO_CODEC (gst_webrtc_call_video_codec_get_type())
GType gst_webrtc_call_video_codec_get_type(void);

G_END_DECLS
