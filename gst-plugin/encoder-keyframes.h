// The keyframe requests that reach one shared encoder (or, for encoded input, the pipeline's
// source), paced across every call it feeds (keyframe-pacer.h decides, this applies it).
//
// A call asks for a keyframe by pushing a force-key-unit event upstream from its branch
// (when it connects, after a renegotiation, after its queue leaked); webrtcbin's rtpsession
// turns each PLI/FIR of a viewer into one too. All of them pass the tee that fans the
// encoded stream out to the calls: a probe on that tee's sink pad lets through the request
// the pacer allows at once and swallows the others, and a timer on the element's signaling
// thread sends one at the end of the window for those it swallowed. The same probe sees
// every keyframe the encoder puts out (a buffer without DELTA_UNIT), which closes the window
// and serves what is pending.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <memory>
#include <mutex>

#include "keyframe-pacer.h"

namespace webrtccall {

class KeyframeControl {
 public:
  // `tee_sink`: the sink pad of the tee of the encoded stream. `context`: where the timer
  // runs. `min_interval_us`: keyframe-interval-min now (read at every request; any thread).
  static std::shared_ptr<KeyframeControl> attach(GstPad* tee_sink, GMainContext* context,
                                                 std::function<gint64()> min_interval_us);
  ~KeyframeControl();
  // Removes the probe and the timer; requests pass unpaced afterwards. Any thread.
  void detach();
  KeyframePacer::Counts counts();

  KeyframeControl(GstPad* tee_sink, GMainContext* context, std::function<gint64()> interval);

 private:
  static GstPadProbeReturn on_probe(GstPad* pad, GstPadProbeInfo* info, gpointer data);
  static gboolean on_timer(gpointer data);
  // Lock held: arms the timer for a kWait step.
  void follow(const KeyframePacer::Step& step);
  void send_paced();

  GstPad* pad_;
  GMainContext* context_;
  std::function<gint64()> interval_;
  std::weak_ptr<KeyframeControl> self_;
  std::mutex mutex_;
  KeyframePacer pacer_;
  GSource* timer_ = nullptr;
  gint64 timer_at_ = 0;
  gulong probe_ = 0;
  bool detached_ = false;
};

}  // namespace webrtccall
