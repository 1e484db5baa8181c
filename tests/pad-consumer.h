// Shared by the test and bench programs that host webrtccall elements (tests/element/peer.cpp,
// tests/viewer/viewer.cpp, bench/soak/call-soak.cpp): what an application does when one of
// the element's source pads goes (a call ended): the element that consumed it goes too.
#pragma once

#include <gst/gst.h>

namespace test {

// The element linked to `pad` is stopped and removed from `pipeline`. Nothing if unlinked.
inline void remove_pad_consumer(GstElement* pipeline, GstPad* pad) {
  GstPad* peer = gst_pad_get_peer(pad);
  if (!peer) return;
  GstElement* sink = gst_pad_get_parent_element(peer);
  gst_object_unref(peer);
  if (!sink) return;
  gst_element_set_locked_state(sink, TRUE);
  gst_element_set_state(sink, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(pipeline), sink);
  gst_object_unref(sink);
}

// Connects remove_pad_consumer to `call`'s pad-removed, `*pipeline` read when a pad goes.
inline void remove_consumers_of_removed_pads(GstElement* call, GstElement* const* pipeline) {
  g_signal_connect(call, "pad-removed", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer data) {
                     remove_pad_consumer(*static_cast<GstElement* const*>(data), pad);
                   }),
                   const_cast<GstElement**>(pipeline));
}

}  // namespace test
