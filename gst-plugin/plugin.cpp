// The webrtccall plugin.
#include <gst/gst.h>

#include "webrtccall.h"

#ifndef PACKAGE
#define PACKAGE "gst-webrtc-call"
#endif

static gboolean plugin_init(GstPlugin* plugin) {
  return GST_ELEMENT_REGISTER(webrtccall, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, webrtccall,
                  "Place and answer WebRTC calls by username", plugin_init, PLUGIN_VERSION, "LGPL",
                  "gst-webrtc-call", "https://example.invalid/gst-webrtc-call")
