#include "fake-signaller.h"

#include <map>
#include <mutex>
#include <vector>

struct _TestFakeSignaller {
  GObject parent;
  GMainContext* context;  // the element's signaling thread, captured in start()
  std::string* name;
};

namespace {

struct Hub {
  std::mutex mutex;
  std::map<std::string, TestFakeSignaller*> members;
  test::SdpTamper tamper;
  std::vector<test::HubMessage> log;
  unsigned hold_offers = 0;
  std::vector<std::function<void()>> held;
};

Hub& hub() {
  static Hub h;
  return h;
}

void log_message(test::HubMessage m) {
  std::lock_guard lock(hub().mutex);
  hub().log.push_back(std::move(m));
}

// Runs `fn` with the signaller registered as `name` on its element's thread.
void deliver(const std::string& name, std::function<void(GstWebRTCCallSignaller*)> fn) {
  TestFakeSignaller* target = nullptr;
  GMainContext* context = nullptr;
  {
    std::lock_guard lock(hub().mutex);
    auto it = hub().members.find(name);
    if (it == hub().members.end()) return;
    target = TEST_FAKE_SIGNALLER(g_object_ref(it->second));
    context = g_main_context_ref(target->context);
  }
  struct Job {
    TestFakeSignaller* target;
    std::function<void(GstWebRTCCallSignaller*)> fn;
  };
  g_main_context_invoke_full(
      context, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto* job = static_cast<Job*>(data);
        bool alive;
        {
          std::lock_guard lock(hub().mutex);
          alive = hub().members.contains(*job->target->name) &&
                  hub().members[*job->target->name] == job->target;
        }
        if (alive) job->fn(GST_WEBRTC_CALL_SIGNALLER(job->target));
        return G_SOURCE_REMOVE;
      },
      new Job{target, std::move(fn)},
      [](gpointer data) {
        auto* job = static_cast<Job*>(data);
        g_object_unref(job->target);
        delete job;
      });
  g_main_context_unref(context);
}

void broadcast_users() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(hub().mutex);
    for (auto& [n, s] : hub().members) names.push_back(n);
  }
  for (const std::string& n : names) {
    deliver(n, [names](GstWebRTCCallSignaller* s) {
      std::vector<const char*> v;
      for (auto& x : names) v.push_back(x.c_str());
      v.push_back(nullptr);
      gst_webrtc_call_signaller_emit_users(s, v.data());
    });
  }
}

void fake_start(GstWebRTCCallSignaller* signaller, const gchar* username) {
  auto* self = TEST_FAKE_SIGNALLER(signaller);
  self->context = g_main_context_ref_thread_default();
  *self->name = username;
  {
    std::lock_guard lock(hub().mutex);
    hub().members[username] = self;
  }
  std::string name = username;
  deliver(name, [name](GstWebRTCCallSignaller* s) {
    gst_webrtc_call_signaller_emit_registered(s, name.c_str());
  });
  broadcast_users();
}

void fake_stop(GstWebRTCCallSignaller* signaller) {
  auto* self = TEST_FAKE_SIGNALLER(signaller);
  {
    std::lock_guard lock(hub().mutex);
    auto it = hub().members.find(*self->name);
    if (it != hub().members.end() && it->second == self) hub().members.erase(it);
  }
  broadcast_users();
}

void fake_send_description(GstWebRTCCallSignaller* signaller, const gchar* peer,
                           GstWebRTCSessionDescription* desc) {
  auto* self = TEST_FAKE_SIGNALLER(signaller);
  gchar* text = gst_sdp_message_as_text(desc->sdp);
  std::string sdp = text;
  g_free(text);
  test::SdpTamper tamper;
  {
    std::lock_guard lock(hub().mutex);
    tamper = hub().tamper;
  }
  GstWebRTCSDPType type = desc->type;
  log_message({*self->name, peer, type == GST_WEBRTC_SDP_TYPE_OFFER ? "offer" : "answer", sdp});
  if (tamper) sdp = tamper(*self->name, peer, sdp);
  std::string from = *self->name, to = peer;
  auto send = [from, to, type, sdp] {
    deliver(to, [from, type, sdp](GstWebRTCCallSignaller* s) {
      gst_webrtc_call_signaller_emit_description(s, from.c_str(), type, sdp.c_str());
    });
  };
  std::vector<std::function<void()>> release;
  {
    std::lock_guard lock(hub().mutex);
    if (type == GST_WEBRTC_SDP_TYPE_OFFER && hub().hold_offers > 0) {
      hub().held.push_back(send);
      if (hub().held.size() < hub().hold_offers) return;
      hub().hold_offers = 0;
      release.swap(hub().held);
    }
  }
  if (release.empty()) {
    send();
  } else {
    for (auto& fn : release) fn();
  }
}

void fake_send_candidate(GstWebRTCCallSignaller* signaller, const gchar* peer, guint mline,
                         const gchar* mid, const gchar* candidate) {
  auto* self = TEST_FAKE_SIGNALLER(signaller);
  if (!candidate) return;
  log_message({*self->name, peer, "candidate", candidate});
  std::string from = *self->name, m = mid ? mid : "", c = candidate;
  deliver(peer, [from, mline, m, c](GstWebRTCCallSignaller* s) {
    gst_webrtc_call_signaller_emit_candidate(s, from.c_str(), mline,
                                             m.empty() ? nullptr : m.c_str(), c.c_str());
  });
}

void fake_send_hang_up(GstWebRTCCallSignaller* signaller, const gchar* peer, const gchar* reason) {
  auto* self = TEST_FAKE_SIGNALLER(signaller);
  std::string from = *self->name, r = reason ? reason : "";
  log_message({from, peer, "hang-up", r});
  deliver(peer, [from, r](GstWebRTCCallSignaller* s) {
    gst_webrtc_call_signaller_emit_hang_up(s, from.c_str(), r.c_str());
  });
}

void fake_iface_init(GstWebRTCCallSignallerInterface* iface) {
  iface->start = fake_start;
  iface->stop = fake_stop;
  iface->send_description = fake_send_description;
  iface->send_candidate = fake_send_candidate;
  iface->send_hang_up = fake_send_hang_up;
}

}  // namespace

G_DEFINE_FINAL_TYPE_WITH_CODE(TestFakeSignaller, test_fake_signaller, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(GST_TYPE_WEBRTC_CALL_SIGNALLER,
                                                    fake_iface_init))

static void test_fake_signaller_finalize(GObject* object) {
  auto* self = TEST_FAKE_SIGNALLER(object);
  if (self->context) g_main_context_unref(self->context);
  delete self->name;
  G_OBJECT_CLASS(test_fake_signaller_parent_class)->finalize(object);
}

static void test_fake_signaller_class_init(TestFakeSignallerClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = test_fake_signaller_finalize;
}

static void test_fake_signaller_init(TestFakeSignaller* self) {
  self->name = new std::string();
}

namespace test {

void fake_hub_set_tamper(SdpTamper tamper) {
  std::lock_guard lock(hub().mutex);
  hub().tamper = std::move(tamper);
}

void fake_hub_reset() {
  std::lock_guard lock(hub().mutex);
  hub().tamper = nullptr;
  hub().log.clear();
  hub().hold_offers = 0;
  hub().held.clear();
}

void fake_hub_hold_offers(unsigned count) {
  std::lock_guard lock(hub().mutex);
  hub().hold_offers = count;
}

std::vector<HubMessage> fake_hub_log() {
  std::lock_guard lock(hub().mutex);
  return hub().log;
}

TestFakeSignaller* fake_signaller_new() {
  return TEST_FAKE_SIGNALLER(g_object_new(TEST_TYPE_FAKE_SIGNALLER, nullptr));
}

}  // namespace test
