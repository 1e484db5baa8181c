// The instance structure of GstWebRTCCall, shared by the GObject glue (webrtccall.cpp) and
// the engine. Properties are guarded by the object lock.
#pragma once

#include "engine.h"
#include "signaller.h"
#include "webrtccall.h"

struct _GstWebRTCCall {
  GstBin parent;

  // Properties (object lock).
  gchar* username;
  gchar* peer;
  gboolean auto_answer;
  guint max_calls;
  gchar* stun_server;
  GStrv turn_servers;
  GstWebRTCCallVideoCodec video_codec;
  guint video_bitrate;
  guint latency;
  guint call_timeout;
  guint max_reconnect_delay;
  guint connect_timeout;
  guint answer_timeout;
  guint unconnected_backoff;
  guint max_mlines;
  guint max_transports;
  guint max_sdp_size;
  guint max_candidates;
  guint max_candidate_size;
  guint offer_rate;
  guint offer_burst;
  guint refusal_rate;
  guint max_connecting;
  guint keyframe_interval_min;  // ms
  guint stall_timeout;          // s
  gboolean output_encoded;
  gboolean upnp;
  gboolean ice_tcp;
  GStrv ice_addresses;

  guint stats_interval;               // ms, 0: off
  guint min_video_bitrate;            // kbit/s, the bitrate policy's floor
  GstWebRTCCallSignaller* signaller;  // owned; replaceable in the NULL state

  webrtccall::Engine* engine;  // created in init, lives as long as the element
};

// Emits "incoming-call" (signaling thread, no lock held): TRUE to accept.
gboolean gst_webrtc_call_emit_incoming_call(GstWebRTCCall* self, const gchar* peer);
// Creates a source pad for a call's stream (see webrtccall.cpp).
GstPad* gst_webrtc_call_new_src_pad(GstWebRTCCall* self, const gchar* name, const gchar* peer,
                                    const gchar* kind, GstPad* target);
