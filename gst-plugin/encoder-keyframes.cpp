#include "encoder-keyframes.h"

#include <gst/video/video.h>

#include <algorithm>
#include <utility>

GST_DEBUG_CATEGORY_EXTERN(webrtccall_debug);
#define GST_CAT_DEFAULT webrtccall_debug

namespace webrtccall {

namespace {

// Marks the requests the pacer sends itself, which its probe lets through.
constexpr const char* kPacedField = "webrtccall-paced";

}  // namespace

KeyframeControl::KeyframeControl(GstPad* tee_sink, GMainContext* context,
                                 std::function<gint64()> interval)
    : pad_(GST_PAD(gst_object_ref(tee_sink))),
      context_(g_main_context_ref(context)),
      interval_(std::move(interval)),
      pacer_(interval_()) {}

KeyframeControl::~KeyframeControl() {
  gst_object_unref(pad_);
  g_main_context_unref(context_);
}

std::shared_ptr<KeyframeControl> KeyframeControl::attach(GstPad* tee_sink, GMainContext* context,
                                                         std::function<gint64()> min_interval_us) {
  auto control = std::make_shared<KeyframeControl>(tee_sink, context, std::move(min_interval_us));
  control->self_ = control;
  std::lock_guard lock(control->mutex_);
  control->probe_ = gst_pad_add_probe(
      tee_sink,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_UPSTREAM | GST_PAD_PROBE_TYPE_BUFFER),
      on_probe, new std::shared_ptr<KeyframeControl>(control),
      [](gpointer data) { delete static_cast<std::shared_ptr<KeyframeControl>*>(data); });
  return control;
}

void KeyframeControl::detach() {
  gulong probe = 0;
  {
    std::lock_guard lock(mutex_);
    if (std::exchange(detached_, true)) return;
    if (timer_) {
      g_source_destroy(timer_);
      g_source_unref(timer_);
      timer_ = nullptr;
    }
    probe = std::exchange(probe_, 0);
  }
  if (probe) gst_pad_remove_probe(pad_, probe);
}

KeyframePacer::Counts KeyframeControl::counts() {
  std::lock_guard lock(mutex_);
  return pacer_.counts();
}

GstPadProbeReturn KeyframeControl::on_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  KeyframeControl& self = **static_cast<std::shared_ptr<KeyframeControl>*>(data);
  gint64 now = g_get_monotonic_time();
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT)) {
      std::lock_guard lock(self.mutex_);
      self.pacer_.keyframe_out(now);
    }
    return GST_PAD_PROBE_OK;
  }
  GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!gst_video_event_is_force_key_unit(event) ||
      GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_UPSTREAM) {
    return GST_PAD_PROBE_OK;
  }
  const GstStructure* s = gst_event_get_structure(event);
  if (gst_structure_has_field(s, kPacedField)) return GST_PAD_PROBE_OK;
  gint64 interval = self.interval_();
  std::lock_guard lock(self.mutex_);
  if (self.detached_) return GST_PAD_PROBE_OK;
  KeyframePacer::Step step = self.pacer_.request(now);
  if (interval != self.pacer_.min_interval_us()) {
    // keyframe-interval-min changed: a request held by the old window may be due now.
    KeyframePacer::Step changed = self.pacer_.set_min_interval(interval, now);
    if (changed.action != KeyframePacer::Action::kNone) step = changed;
  }
  if (step.action == KeyframePacer::Action::kSendNow) {
    GST_DEBUG_OBJECT(self.pad_, "keyframe request passed to the encoder");
    return GST_PAD_PROBE_OK;  // this request is the one sent
  }
  GST_DEBUG_OBJECT(self.pad_, "keyframe request held until the window ends");
  self.follow(step);
  return GST_PAD_PROBE_DROP;
}

void KeyframeControl::follow(const KeyframePacer::Step& step) {
  if (step.action != KeyframePacer::Action::kWait) return;
  if (timer_ && timer_at_ == step.wake_us) return;  // the window's timer is set already
  if (timer_) {
    g_source_destroy(timer_);
    g_source_unref(timer_);
  }
  gint64 delay_ms = std::max<gint64>(0, (step.wake_us - g_get_monotonic_time() + 999) / 1000);
  timer_ = g_timeout_source_new(static_cast<guint>(delay_ms));
  timer_at_ = step.wake_us;
  g_source_set_callback(timer_, on_timer, new std::weak_ptr<KeyframeControl>(self_),
                        [](gpointer d) { delete static_cast<std::weak_ptr<KeyframeControl>*>(d); });
  g_source_attach(timer_, context_);
}

gboolean KeyframeControl::on_timer(gpointer data) {
  std::shared_ptr<KeyframeControl> self =
      static_cast<std::weak_ptr<KeyframeControl>*>(data)->lock();
  if (!self) return G_SOURCE_REMOVE;
  bool send = false;
  {
    std::lock_guard lock(self->mutex_);
    if (self->detached_) return G_SOURCE_REMOVE;
    if (self->timer_) {
      g_source_unref(self->timer_);
      self->timer_ = nullptr;
    }
    KeyframePacer::Step step = self->pacer_.tick(g_get_monotonic_time());
    send = step.action == KeyframePacer::Action::kSendNow;
    if (step.action == KeyframePacer::Action::kWait) self->follow(step);
  }
  if (send) self->send_paced();
  return G_SOURCE_REMOVE;
}

void KeyframeControl::send_paced() {
  GstEvent* event = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0);
  gst_structure_set(gst_event_writable_structure(event), kPacedField, G_TYPE_BOOLEAN, TRUE,
                    nullptr);
  GST_DEBUG_OBJECT(pad_, "sending the keyframe request held for the window");
  gst_pad_push_event(pad_, event);  // upstream, from the tee's sink pad to the encoder
}

}  // namespace webrtccall
