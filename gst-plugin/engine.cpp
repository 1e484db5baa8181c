#include "engine.h"

#include <algorithm>
#include <condition_variable>

#include "call.h"
#include "encoder-keyframes.h"
#include "gref.h"
#include "hangup-reason.h"
#include "webrtccall-private.h"

GST_DEBUG_CATEGORY_EXTERN(webrtccall_debug);
#define GST_CAT_DEFAULT webrtccall_debug

namespace webrtccall {

namespace {

// DTLS certificate generation costs 140-480 ms and happens once per process, on the first
// dtlsdec. Pay it in the background when an element starts, not on the first call.
struct CertificateThread {
  std::mutex mutex;
  std::condition_variable cond;
  bool started = false;
  bool done = false;
};

CertificateThread& certificate_thread() {
  static CertificateThread* t = new CertificateThread();  // never destroyed: used at exit
  return *t;
}

void pregenerate_dtls_certificate() {
  CertificateThread& ct = certificate_thread();
  {
    std::lock_guard lock(ct.mutex);
    if (std::exchange(ct.started, true)) return;
  }
  GThread* t = g_thread_new(
      "webrtccall-cert",
      [](gpointer) -> gpointer {
        if (GstElement* dec = gst_element_factory_make("dtlsdec", nullptr)) {
          gst_object_unref(gst_object_ref_sink(dec));
        }
        CertificateThread& state = certificate_thread();
        std::lock_guard lock(state.mutex);
        state.done = true;
        state.cond.notify_all();
        return nullptr;
      },
      nullptr);
  g_thread_unref(t);
}

// A process that stops its pipeline and exits while the certificate is still being made
// would tear OpenSSL down under that thread (a crash in exit()): stopping waits for it.
void wait_for_dtls_certificate() {
  CertificateThread& ct = certificate_thread();
  std::unique_lock lock(ct.mutex);
  ct.cond.wait(lock, [&] { return !ct.started || ct.done; });
}

struct Invocation {
  std::function<void()> fn;
};

// Runs `fn` on `context`'s thread and waits for it.
void run_sync(GMainContext* context, std::function<void()> fn) {
  struct Sync {
    std::function<void()> fn;
    GMutex lock;
    GCond cond;
    bool done = false;
  } sync;
  sync.fn = std::move(fn);
  g_mutex_init(&sync.lock);
  g_cond_init(&sync.cond);
  g_main_context_invoke_full(
      context, G_PRIORITY_HIGH,
      [](gpointer data) -> gboolean {
        auto* s = static_cast<Sync*>(data);
        s->fn();
        g_mutex_lock(&s->lock);
        s->done = true;
        g_cond_signal(&s->cond);
        g_mutex_unlock(&s->lock);
        return G_SOURCE_REMOVE;
      },
      &sync, nullptr);
  g_mutex_lock(&sync.lock);
  while (!sync.done) g_cond_wait(&sync.cond, &sync.lock);
  g_mutex_unlock(&sync.lock);
  g_mutex_clear(&sync.lock);
  g_cond_clear(&sync.cond);
}

}  // namespace

Engine::Engine(GstWebRTCCall* element) : element_(element) {}

Engine::~Engine() {
  stop();
}

GstBin* Engine::bin() const {
  return GST_BIN(element_);
}

Settings Engine::settings() const {
  Settings s;
  GST_OBJECT_LOCK(element_);
  s.username = element_->username ? element_->username : "";
  s.peer = element_->peer ? element_->peer : "";
  s.auto_answer = element_->auto_answer;
  s.max_calls = element_->max_calls;
  s.stun_server = element_->stun_server ? element_->stun_server : "";
  for (char** t = element_->turn_servers; t && *t; ++t) s.turn_servers.emplace_back(*t);
  switch (element_->video_codec) {
    case GST_WEBRTC_CALL_VIDEO_CODEC_H264:
      s.video_codec = codec_by_encoding_name("H264");
      break;
    case GST_WEBRTC_CALL_VIDEO_CODEC_VP9:
      s.video_codec = codec_by_encoding_name("VP9");
      break;
    default:
      s.video_codec = codec_by_encoding_name("VP8");
      break;
  }
  s.video_bitrate_kbps = element_->video_bitrate;
  s.latency_ms = element_->latency;
  s.call_timeout_s = element_->call_timeout;
  s.max_reconnect_delay_s = element_->max_reconnect_delay;
  s.connect_timeout_s = element_->connect_timeout;
  s.max_connecting = element_->max_connecting;
  s.answer_timeout_s = element_->answer_timeout;
  s.stall_timeout_s = element_->stall_timeout;
  s.remote_limits.max_mlines = element_->max_mlines;
  s.remote_limits.max_transports = element_->max_transports;
  s.remote_limits.max_sdp_bytes = element_->max_sdp_size;
  s.remote_limits.max_candidates = element_->max_candidates;
  s.remote_limits.max_candidate_bytes = element_->max_candidate_size;
  s.admission.rate_per_second = element_->offer_rate;
  s.admission.burst = element_->offer_burst;
  s.admission.refusal_rate = element_->refusal_rate;
  s.admission.refusal_burst = 4 * element_->refusal_rate;
  s.admission.connect_timeout_us = static_cast<gint64>(element_->connect_timeout) * G_USEC_PER_SEC;
  s.admission.backoff_us = static_cast<gint64>(element_->unconnected_backoff) * G_USEC_PER_SEC;
  s.output_encoded = element_->output_encoded;
  s.upnp = element_->upnp;
  s.ice_tcp = element_->ice_tcp;
  for (char** a = element_->ice_addresses; a && *a; ++a) s.ice_addresses.emplace_back(*a);
  s.stats_interval_ms = element_->stats_interval;
  s.min_video_bitrate_kbps = element_->min_video_bitrate;
  GST_OBJECT_UNLOCK(element_);
  return s;
}

void Engine::invoke(std::function<void()> fn) {
  if (!context_) return;
  g_main_context_invoke_full(
      context_, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        static_cast<Invocation*>(data)->fn();
        return G_SOURCE_REMOVE;
      },
      new Invocation{std::move(fn)}, [](gpointer data) { delete static_cast<Invocation*>(data); });
}

void Engine::defer(std::function<void()> fn) {
  if (!context_) return;
  GSource* source = g_idle_source_new();
  g_source_set_callback(
      source,
      [](gpointer data) -> gboolean {
        static_cast<Invocation*>(data)->fn();
        return G_SOURCE_REMOVE;
      },
      new Invocation{std::move(fn)}, [](gpointer data) { delete static_cast<Invocation*>(data); });
  g_source_attach(source, context_);
  g_source_unref(source);
}

void Engine::post(GstStructure* s) {
  gst_element_post_message(GST_ELEMENT(element_), gst_message_new_element(GST_OBJECT(element_), s));
}

gpointer Engine::thread_main(gpointer data) {
  auto* self = static_cast<Engine*>(data);
  g_main_context_push_thread_default(self->context_);
  g_main_loop_run(self->loop_);
  g_main_context_pop_thread_default(self->context_);
  return nullptr;
}

bool Engine::start() {
  if (thread_) return true;
  pregenerate_dtls_certificate();
  GST_OBJECT_LOCK(element_);
  signaller_ = element_->signaller ? GST_WEBRTC_CALL_SIGNALLER(gst_object_ref(element_->signaller))
                                   : nullptr;
  GST_OBJECT_UNLOCK(element_);
  if (!signaller_) {
    GST_ELEMENT_ERROR(element_, LIBRARY, SETTINGS, ("no signaller"), (nullptr));
    return false;
  }
  Settings s = settings();
  if (s.username.empty()) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Set the username property"),
                      ("a username is needed to register on the signaling server"));
    g_clear_object(&signaller_);
    return false;
  }
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  thread_ = g_thread_new("webrtccall", thread_main, this);
  {
    // Encoded inputs that got their caps before a restart: their pacers' timers need the new
    // signaling thread.
    std::lock_guard lock(streams_mutex_);
    for (auto& stream : streams_) {
      if (!stream->keyframes) continue;
      stream->keyframes->detach();
      stream->keyframes = pace_keyframes(stream->tee);
    }
  }
  run_sync(context_, [this, name = s.username] {
    connect_signaller();
    gst_webrtc_call_signaller_start(signaller_, name.c_str());
    health_source_ = gwc::add_timeout(
        1000,
        [](gpointer data) -> gboolean {
          auto* self = static_cast<Engine*>(data);
          gint64 now = g_get_monotonic_time();
          std::vector<std::pair<std::string, std::string>> ended;
          for (auto& [peer, call] : self->calls_) {
            std::string why = call->check_health(now);
            if (!why.empty()) ended.emplace_back(peer, why);
          }
          for (auto& [peer, why] : ended) self->end_call(peer, why, "timeout");
          return G_SOURCE_CONTINUE;
        },
        this);
    stats_.start();
  });
  return true;
}

void Engine::stop() {
  if (!thread_) return;
  run_sync(context_, [this] {
    stats_.stop();
    end_calls_and_wait(nullptr, "pipeline stopped");
    if (!dying_.empty())
      GST_WARNING_OBJECT(element_, "%zu calls did not finish tearing down", dying_.size());
    dying_.clear();
    gwc::clear_source(health_source_);
    gwc::clear_source(peer_retry_source_);
    gwc::clear_source(pacer_source_);
    held_.clear();
    pacer_ = JoinPacer();
    gwc::clear_source(reconnect_source_);
    gst_webrtc_call_signaller_stop(signaller_);
    disconnect_signaller();
    registered_ = false;
    ever_registered_ = false;
    lost_ = false;
    reconnect_backoff_.reset();
  });
  g_main_loop_quit(loop_);
  g_thread_join(thread_);
  thread_ = nullptr;
  // Invocations queued meanwhile die with the context.
  g_main_loop_unref(loop_);
  loop_ = nullptr;
  g_main_context_unref(context_);
  context_ = nullptr;
  g_clear_object(&signaller_);
  {
    std::lock_guard lock(state_mutex_);
    users_copy_.clear();
    calls_copy_.clear();
  }
  wait_for_dtls_certificate();
}

// ---- signaller ----

void Engine::connect_signaller() {
  auto on = [this](const char* name, GCallback cb) {
    signaller_handlers_.push_back(g_signal_connect_swapped(signaller_, name, cb, this));
  };
  on("registered", G_CALLBACK(+[](Engine* e, const char* name) { e->on_registered(name); }));
  on("users", G_CALLBACK(+[](Engine* e, const char* const* users) { e->on_users(users); }));
  on("description", G_CALLBACK(+[](Engine* e, const char* peer, int type, const char* sdp) {
       e->on_description(peer, type, sdp);
     }));
  on("candidate",
     G_CALLBACK(+[](Engine* e, const char* peer, guint mline, const char* mid,
                    const char* candidate) { e->on_candidate(peer, mline, mid, candidate); }));
  on("hang-up", G_CALLBACK(+[](Engine* e, const char* peer, const char* reason) {
       e->on_remote_hang_up(peer, reason);
     }));
  on("failed", G_CALLBACK(+[](Engine* e, const GError* error) { e->on_failed(error); }));
  on("notice", G_CALLBACK(+[](Engine* e, const char* code, const char* message) {
       e->on_notice(code, message);
     }));
}

void Engine::disconnect_signaller() {
  for (gulong h : signaller_handlers_) g_signal_handler_disconnect(signaller_, h);
  signaller_handlers_.clear();
}

void Engine::on_registered(const char* name) {
  Settings s = settings();
  bool renamed = s.username != name;
  my_name_ = name;
  registered_ = true;
  ever_registered_ = true;
  if (std::exchange(lost_, false)) {
    GST_ELEMENT_INFO(element_, RESOURCE, OPEN_READ_WRITE,
                     ("Registered on the signaling server again as \"%s\"", name), (nullptr));
  }
  reconnect_backoff_.reset();
  GST_INFO_OBJECT(element_, "registered as %s", name);
  if (renamed) {
    GST_ELEMENT_WARNING(
        element_, RESOURCE, SETTINGS,
        ("The name \"%s\" is taken: registered as \"%s\"", s.username.c_str(), name), (nullptr));
  }
  post(gst_structure_new("webrtccall-registered", "name", G_TYPE_STRING, name, "requested",
                         G_TYPE_STRING, s.username.c_str(), "renamed", G_TYPE_BOOLEAN, renamed,
                         nullptr));
  maybe_call_peer();
}

void Engine::on_users(const char* const* users) {
  std::vector<std::string> list;
  for (const char* const* u = users; u && *u; ++u) list.emplace_back(*u);
  {
    std::lock_guard lock(state_mutex_);
    users_copy_ = list;
  }
  GValue array = G_VALUE_INIT;
  gst_value_array_init(&array, static_cast<guint>(list.size()));
  for (const std::string& u : list) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_string(&v, u.c_str());
    gst_value_array_append_and_take_value(&array, &v);
  }
  GstStructure* s = gst_structure_new_empty("webrtccall-users");
  gst_structure_take_value(s, "users", &array);
  post(s);
  g_object_notify(G_OBJECT(element_), "users");

  // Who went offline may be called again when back, even after a deliberate hang-up.
  std::erase_if(no_redial_, [&](const std::string& p) {
    return std::find(list.begin(), list.end(), p) == list.end();
  });
  // A listed user went offline: back online, it is called at once, the backoff from 1 s.
  sync_peer_list();
  for (const std::string& p : dialer_.peers()) {
    if (std::find(list.begin(), list.end(), p) == list.end()) dialer_.reset(p);
  }
  maybe_call_peer();
}

void Engine::sync_peer_list() {
  dialer_.set_peers(parse_peer_list(settings().peer));
}

// Every listed user that is online, not in a call, has not hung up on us and has no redial
// pending is called, in list order, while max-calls allows.
void Engine::maybe_call_peer() {
  sync_peer_list();
  if (!registered_) return;
  std::vector<std::string> users = this->users();
  gint64 now = g_get_monotonic_time();
  for (const std::string& peer : dialer_.due(now, [&](const std::string& p) {
         return !calls_.contains(p) && !no_redial_.contains(p) &&
                std::find(users.begin(), users.end(), p) != users.end();
       })) {
    if (calls_.size() >= settings().max_calls) break;
    if (!pacer_.may_start_outgoing(connecting_calls())) break;  // called when a slot frees
    place_call(peer);
  }
  arm_peer_retry();
}

void Engine::arm_peer_retry() {
  gwc::clear_source(peer_retry_source_);
  gint64 now = g_get_monotonic_time();
  std::optional<gint64> next = dialer_.next_retry_us(now);
  if (!next) return;
  peer_retry_source_ = gwc::add_timeout(
      static_cast<guint>((*next - now + 999) / 1000),
      [](gpointer data) -> gboolean {
        auto* self = static_cast<Engine*>(data);
        gwc::clear_source(self->peer_retry_source_);
        self->maybe_call_peer();
        return G_SOURCE_REMOVE;
      },
      this);
}

void Engine::schedule_peer_retry(const std::string& peer) {
  sync_peer_list();
  if (!dialer_.listed(peer) || no_redial_.contains(peer)) return;
  gint64 now = g_get_monotonic_time();
  gint64 at = dialer_.schedule_retry(peer, now);
  GST_INFO_OBJECT(element_, "calling %s again in %" G_GINT64_FORMAT " ms", peer.c_str(),
                  (at - now) / 1000);
  arm_peer_retry();
}

void Engine::place_call(const std::string& peer) {
  if (!registered_) {
    GST_ELEMENT_WARNING(element_, RESOURCE, FAILED,
                        ("Cannot call %s: not registered yet", peer.c_str()), (nullptr));
    return;
  }
  if (calls_.contains(peer)) return;
  Settings s = settings();
  if (calls_.size() >= s.max_calls) {
    GST_ELEMENT_WARNING(element_, RESOURCE, BUSY,
                        ("Cannot call %s: max-calls (%u) reached", peer.c_str(), s.max_calls),
                        (nullptr));
    return;
  }
  if (peer == my_name_) {
    GST_ELEMENT_WARNING(element_, RESOURCE, SETTINGS, ("Cannot call yourself (%s)", peer.c_str()),
                        (nullptr));
    return;
  }
  auto call = std::make_unique<Call>(*this, peer, ++next_call_id_, true, s);
  Call* c = call.get();
  calls_.emplace(peer, std::move(call));
  calls_changed();
  post(gst_structure_new("webrtccall-call-started", "peer", G_TYPE_STRING, peer.c_str(),
                         "direction", G_TYPE_STRING, "outgoing", nullptr));
  std::string error;
  if (!c->start(error)) end_call(peer, error, "failed");
}

void Engine::calls_changed() {
  {
    std::lock_guard lock(state_mutex_);
    calls_copy_.clear();
    for (auto& [p, c] : calls_) calls_copy_.push_back(p);
  }
  g_object_notify(G_OBJECT(element_), "calls");
}

bool Engine::accept_incoming(const std::string& peer) {
  Settings s = settings();
  gint64 now = g_get_monotonic_time();
  bool backoff = admission_.in_backoff(peer, now);
  bool busy = calls_.size() + held_.size() >= s.max_calls || backoff;
  if (busy && !admission_.refusal_allowed(now)) {
    if (remote_log_.allow(now)) {
      GST_WARNING_OBJECT(element_,
                         "refusing calls faster than refusal-rate: %s not answered "
                         "(and %u more)",
                         peer.c_str(), remote_log_.suppressed());
    }
    return false;
  }
  if (busy) {
    if (backoff) {
      GST_INFO_OBJECT(element_, "refusing %s: its calls never connected (unconnected-backoff)",
                      peer.c_str());
    } else {
      GST_INFO_OBJECT(element_, "refusing %s: max-calls (%u) reached", peer.c_str(), s.max_calls);
    }
    gst_webrtc_call_signaller_send_hang_up(signaller_, peer.c_str(), "busy");
    post(gst_structure_new("webrtccall-call-refused", "peer", G_TYPE_STRING, peer.c_str(), "reason",
                           G_TYPE_STRING, "busy", nullptr));
    return false;
  }
  if (!gst_webrtc_call_emit_incoming_call(element_, peer.c_str())) {
    if (!admission_.refusal_allowed(now)) return false;
    gst_webrtc_call_signaller_send_hang_up(signaller_, peer.c_str(), "declined");
    post(gst_structure_new("webrtccall-call-refused", "peer", G_TYPE_STRING, peer.c_str(), "reason",
                           G_TYPE_STRING, "declined", nullptr));
    return false;
  }
  return true;
}

void Engine::on_description(const char* peer_c, int type_i, const char* sdp) {
  std::string peer = peer_c;
  auto type = static_cast<GstWebRTCSDPType>(type_i);
  auto it = calls_.find(peer);
  if (type == GST_WEBRTC_SDP_TYPE_OFFER) {
    // A flood of offers from one remote is dropped unanswered (answering each would get our
    // own connection throttled by the server).
    gint64 now = g_get_monotonic_time();
    admission_.set_config(settings().admission);
    if (admission_.offer(peer, now) == PeerAdmission::Verdict::kRateLimited) {
      if (remote_log_.allow(now)) {
        GST_WARNING_OBJECT(element_,
                           "%s sends offers faster than offer-rate: dropped (and %u more)",
                           peer.c_str(), remote_log_.suppressed());
      }
      return;
    }
    if (it != calls_.end()) {
      // An offer on an existing call: the call's negotiation decides (negotiation.h). Glare
      // is decided by its signaling state (have-local-offer), not by ICE or DTLS progress.
      std::string error;
      Negotiation::Step step = it->second->remote_offer(sdp, error);
      switch (step.action) {
        case Negotiation::Action::kApplyRemoteOffer:
          GST_INFO_OBJECT(element_, "new offer from %s during the call: answering it",
                          peer.c_str());
          return;
        case Negotiation::Action::kRestartAndAnswer:
          GST_INFO_OBJECT(element_, "glare with %s: answering theirs", peer.c_str());
          end_call(peer, "glare: answering the call of " + peer + " instead", nullptr);
          break;  // answered on a new call below
        case Negotiation::Action::kRefuse:
          GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                              ("Refused the new offer of %s: %s", peer.c_str(), error.c_str()),
                              (nullptr));
          end_call(peer, error, admission_.refusal_allowed(now) ? "invalid-sdp" : nullptr);
          return;
        default:
          GST_INFO_OBJECT(element_, "offer from %s ignored: %s", peer.c_str(), step.reason.c_str());
          return;
      }
    } else if (auto held = held_.find(peer); held != held_.end()) {
      // A held caller offers again: its newest offer waits in its place.
      held->second = HeldOffer{sdp, {}};
      return;
    } else if (!accept_incoming(peer)) {
      return;
    }
    Settings ps = settings();
    pacer_.set_limits(ps.max_connecting,
                      static_cast<gint64>(ps.connect_timeout_s) * G_USEC_PER_SEC);
    if (pacer_.hold(peer, now, connecting_calls())) {
      GST_INFO_OBJECT(element_, "holding the offer of %s: %u calls connecting (max-connecting %u)",
                      peer.c_str(), connecting_calls(), ps.max_connecting);
      held_[peer] = HeldOffer{sdp, {}};
      arm_pacer(false);
      return;
    }
    start_incoming(peer, sdp, {});
    return;
  }
  if (it == calls_.end()) {
    if (remote_log_.allow(g_get_monotonic_time())) {
      GST_WARNING_OBJECT(element_, "answer from %s, whom we did not call: ignored", peer.c_str());
    }
    return;
  }
  std::string error;
  if (!it->second->remote_answer(sdp, error)) {
    GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                        ("Invalid answer from %s: %s", peer.c_str(), error.c_str()), (nullptr));
    end_call(peer, error, "invalid-sdp");
  }
}

void Engine::start_incoming(const std::string& peer, const std::string& sdp_s,
                            const std::vector<HeldCandidate>& candidates) {
  const char* sdp = sdp_s.c_str();
  gint64 now = g_get_monotonic_time();
  {
    Settings s = settings();
    auto call = std::make_unique<Call>(*this, peer, ++next_call_id_, false, s);
    Call* c = call.get();
    calls_.emplace(peer, std::move(call));
    calls_changed();
    post(gst_structure_new("webrtccall-call-started", "peer", G_TYPE_STRING, peer.c_str(),
                           "direction", G_TYPE_STRING, "incoming", nullptr));
    std::string error;
    // Checked before webrtcbin exists: a refused offer costs no transport.
    if (!c->check_remote(sdp, error) || !c->start(error) ||
        c->remote_offer(sdp, error).action != Negotiation::Action::kApplyRemoteOffer) {
      GST_ELEMENT_WARNING(element_, STREAM, DECODE,
                          ("Refused the call of %s: %s", peer.c_str(), error.c_str()), (nullptr));
      end_call(peer, error, admission_.refusal_allowed(now) ? "invalid-sdp" : nullptr);
      return;
    }
    for (const HeldCandidate& h : candidates) {
      c->remote_candidate(h.mline, h.mid ? h.mid->c_str() : nullptr, h.candidate.c_str());
    }
  }
}

unsigned Engine::connecting_calls() const {
  unsigned n = 0;
  for (const auto& [p, c] : calls_) n += !c->connected();
  return n;
}

void Engine::run_pacer() {
  gwc::clear_source(pacer_source_);
  Settings s = settings();
  pacer_.set_limits(s.max_connecting, static_cast<gint64>(s.connect_timeout_s) * G_USEC_PER_SEC);
  gint64 now = g_get_monotonic_time();
  // Held for connect-timeout: refused, the caller redials (an element after "timeout").
  for (const std::string& peer : pacer_.expire(now)) {
    held_.erase(peer);
    GST_INFO_OBJECT(element_, "offer of %s held for connect-timeout: refused", peer.c_str());
    if (admission_.refusal_allowed(now)) {
      gst_webrtc_call_signaller_send_hang_up(signaller_, peer.c_str(), "timeout");
    }
    post(gst_structure_new("webrtccall-call-refused", "peer", G_TYPE_STRING, peer.c_str(), "reason",
                           G_TYPE_STRING, "timeout", nullptr));
  }
  for (const std::string& peer : pacer_.release(connecting_calls())) {
    auto node = held_.extract(peer);
    if (node.empty()) continue;
    start_incoming(peer, node.mapped().sdp, node.mapped().candidates);
  }
  maybe_call_peer();  // outgoing calls waiting for a slot
  arm_pacer(false);
}

void Engine::arm_pacer(bool soon) {
  if (soon && pacer_source_ && held_.empty()) return;
  gwc::clear_source(pacer_source_);
  guint ms = 0;
  if (!soon) {
    std::optional<gint64> next = pacer_.next_expiry_us();
    if (!next) return;
    ms = static_cast<guint>(std::max<gint64>(0, *next - g_get_monotonic_time() + 999) / 1000);
  }
  pacer_source_ = gwc::add_timeout(
      ms,
      [](gpointer data) -> gboolean {
        auto* self = static_cast<Engine*>(data);
        self->run_pacer();
        return G_SOURCE_REMOVE;
      },
      this);
}

void Engine::on_candidate(const char* peer, guint mline, const char* mid, const char* candidate) {
  if (!peer || !*peer) {
    // No sender name (a server that stamps none, an app that sends none): it belongs to the
    // only call in negotiation (not connected yet), if there is exactly one.
    std::vector<Call*> calls;
    std::vector<bool> connected;
    for (auto& [p, call] : calls_) {
      calls.push_back(call.get());
      connected.push_back(call->connected());
    }
    int i = call_for_nameless_candidate(connected);
    if (i >= 0) {
      calls[static_cast<std::size_t>(i)]->remote_candidate(mline, mid, candidate);
    } else if (remote_log_.allow(g_get_monotonic_time())) {
      GST_WARNING_OBJECT(element_,
                         "ICE candidate without a sender name and not exactly one call in "
                         "negotiation: ignored (and %u more)",
                         remote_log_.suppressed());
    }
    return;
  }
  if (auto held = held_.find(peer); held != held_.end()) {
    // Its offer waits for a slot: so do its candidates.
    if (held->second.candidates.size() < settings().remote_limits.max_candidates) {
      held->second.candidates.push_back(
          {mline, mid ? std::optional<std::string>(mid) : std::nullopt, candidate});
    }
    return;
  }
  auto it = calls_.find(peer);
  if (it == calls_.end()) return;  // late candidates of an ended call
  it->second->remote_candidate(mline, mid, candidate);
}

void Engine::on_remote_hang_up(const char* peer_c, const char* reason_c) {
  std::string peer = peer_c, reason = reason_c ? reason_c : "";
  if (held_.erase(peer)) pacer_.remove(peer);  // it gave up waiting
  if (!calls_.contains(peer)) return;
  // Deliberate: the remote hung up or declined. Not deliberate: absent, gone, busy.
  bool deliberate = reason.empty() || reason == "declined" || reason == "hang-up";
  sync_peer_list();
  if (deliberate && dialer_.listed(peer)) no_redial_.insert(peer);
  end_call(peer, describe_remote_hang_up(peer, reason), nullptr);
}

void Engine::on_failed(const GError* error) {
  std::string uri;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(signaller_), "uri")) {
    gchar* u = nullptr;
    g_object_get(signaller_, "uri", &u, nullptr);
    uri = u ? u : "";
    g_free(u);
  }
  if (!ever_registered_) {
    // Never reached: a wrong URI or a server that is not there is the user's to fix.
    GST_ELEMENT_ERROR(element_, RESOURCE, OPEN_READ_WRITE,
                      ("Could not register on signaling server %s", uri.c_str()),
                      ("%s", error->message));
    return;
  }
  // Calls in progress are peer to peer and go on; new ones need the server back.
  registered_ = false;
  gst_webrtc_call_signaller_stop(signaller_);
  reconnect_backoff_.set_max_ms(settings().max_reconnect_delay_s * 1000);
  if (!std::exchange(lost_, true)) {
    GST_ELEMENT_WARNING(element_, RESOURCE, READ,
                        ("Lost the signaling server %s: reconnecting", uri.c_str()),
                        ("%s", error->message));
    post(gst_structure_new("webrtccall-disconnected", "reason", G_TYPE_STRING, error->message,
                           nullptr));
    // Who is online is unknown until the server is back.
    {
      std::lock_guard lock(state_mutex_);
      users_copy_.clear();
    }
    g_object_notify(G_OBJECT(element_), "users");
  } else {
    GST_INFO_OBJECT(element_, "signaling server %s still unreachable: %s", uri.c_str(),
                    error->message);
  }
  schedule_reconnect();
}

void Engine::schedule_reconnect() {
  guint delay_ms = reconnect_backoff_.next_delay_ms(g_random_int());
  GST_INFO_OBJECT(element_, "reconnecting to the signaling server in %u ms (attempt %u)", delay_ms,
                  reconnect_backoff_.attempts());
  gwc::clear_source(reconnect_source_);
  reconnect_source_ = gwc::add_timeout(
      delay_ms,
      [](gpointer data) -> gboolean {
        auto* self = static_cast<Engine*>(data);
        gwc::clear_source(self->reconnect_source_);
        if (!self->registered_) {
          gst_webrtc_call_signaller_start(self->signaller_, self->settings().username.c_str());
        }
        return G_SOURCE_REMOVE;
      },
      this);
}

void Engine::on_notice(const char* code, const char* message) {
  GST_WARNING_OBJECT(element_, "signaling server: %s: %s", code, message);
  post(gst_structure_new("webrtccall-server-error", "code", G_TYPE_STRING, code, "message",
                         G_TYPE_STRING, message, nullptr));
}

// ---- calls ----

Call* Engine::find_call(unsigned id) {
  for (auto& [peer, call] : calls_) {
    if (call->id() == id) return call.get();
  }
  return nullptr;
}

Call* Engine::find_call_any(unsigned id) {
  if (Call* c = find_call(id)) return c;
  auto it = dying_.find(id);
  return it == dying_.end() ? nullptr : it->second.get();
}

void Engine::call_ended(Call* call, const std::string& reason) {
  // A copy: end_call() may free the call (a teardown that finishes at once) and still
  // compares the peer with the `peer` property after that (ASan: heap-use-after-free).
  const std::string peer = call->peer();
  end_call(peer, reason, failure_hang_up_reason(reason).c_str());
}

void Engine::call_error(unsigned call_id, std::string message) {
  invoke([this, call_id, message = std::move(message)] {
    if (Call* c = find_call(call_id)) call_ended(c, "error in the call: " + message);
  });
}

void Engine::call_connected(Call* call) {
  dialer_.reset(call->peer());
  arm_pacer(true);  // a slot is free
  post(gst_structure_new("webrtccall-call-connected", "peer", G_TYPE_STRING, call->peer().c_str(),
                         nullptr));
}

void Engine::end_call(std::string peer, const std::string& reason, const char* hang_up_reason) {
  auto it = calls_.find(peer);
  if (it == calls_.end()) return;
  std::unique_ptr<Call> call = std::move(it->second);
  calls_.erase(it);
  stats_.forget(peer);
  if (!call->offerer()) {
    gint64 now = g_get_monotonic_time();
    admission_.call_ended(peer, call->connected(), now - call->started_us(), now);
  }
  calls_changed();
  GST_INFO_OBJECT(element_, "call with %s ended: %s", peer.c_str(), reason.c_str());
  if (hang_up_reason) {
    gst_webrtc_call_signaller_send_hang_up(signaller_, peer.c_str(),
                                           *hang_up_reason ? hang_up_reason : nullptr);
  }
  post(gst_structure_new("webrtccall-call-ended", "peer", G_TYPE_STRING, peer.c_str(), "reason",
                         G_TYPE_STRING, reason.c_str(), "dropped-buffers", G_TYPE_UINT64,
                         static_cast<guint64>(call->dropped_buffers()), nullptr));
  unsigned id = call->id();
  Call* c = call.get();
  dying_.emplace(id, std::move(call));
  c->teardown([this, id] { dying_.erase(id); });
  schedule_peer_retry(peer);
  if (registered_) arm_pacer(true);  // a slot may be free
}

void Engine::call(const std::string& peer) {
  invoke([this, peer] {
    no_redial_.erase(peer);
    place_call(peer);
  });
}

void Engine::hang_up(const std::optional<std::string>& peer) {
  invoke([this, peer] {
    std::vector<std::string> peers;
    if (peer) {
      peers.push_back(*peer);
    } else {
      for (auto& [p, c] : calls_) peers.push_back(p);
    }
    for (const std::string& p : peers) {
      no_redial_.insert(p);  // a deliberate hang-up: the peer property does not redial
      end_call(p, "hung up", "");
    }
  });
}

std::vector<std::string> Engine::users() const {
  std::lock_guard lock(state_mutex_);
  return users_copy_;
}

std::vector<std::string> Engine::calls() const {
  std::lock_guard lock(state_mutex_);
  return calls_copy_;
}

// ---- pads ----

GstPad* Engine::add_src_pad(Call* call, Kind kind, GstPad* target) {
  unsigned n = next_src_pad_[kind == Kind::kVideo ? 0 : 1]++;
  std::string name =
      std::string(kind == Kind::kVideo ? "video_src_" : "audio_src_") + std::to_string(n);
  return gst_webrtc_call_new_src_pad(element_, name.c_str(), call->peer().c_str(),
                                     kind == Kind::kVideo ? "video" : "audio", target);
}

void Engine::remove_src_pad(GstPad* pad) {
  // The stream ends with the call: EOS lets a recorder downstream finish its file.
  gst_pad_push_event(pad, gst_event_new_eos());
  gst_pad_set_active(pad, FALSE);
  gst_element_remove_pad(GST_ELEMENT(element_), pad);
}

std::vector<SinkStream*> Engine::streams_of(Kind kind) {
  std::vector<SinkStream*> out;
  for (auto& s : streams_) {
    if (s->kind == kind) out.push_back(s.get());
  }
  return out;
}

namespace {

// identity sync=true waits until running time + the upstream latency a latency query told it:
// live input would be held back by the latency its source reports (a camera's or
// videotestsrc's frame, 33 ms at 30 fps), though its buffers are due at once. Live input
// waits only for its running time instead (never, in practice: a live buffer comes after
// the time it was captured); non-live input keeps waiting for its running time.
void hold_live_input_no_longer(GstElement* entry) {
  GstPad* src = gst_element_get_static_pad(entry, "src");
  gst_pad_add_probe(
      src,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_QUERY_UPSTREAM | GST_PAD_PROBE_TYPE_PULL),
      [](GstPad* pad, GstPadProbeInfo* info, gpointer) -> GstPadProbeReturn {
        GstQuery* query = GST_PAD_PROBE_INFO_QUERY(info);
        if (GST_QUERY_TYPE(query) != GST_QUERY_LATENCY) return GST_PAD_PROBE_OK;
        gboolean live = FALSE;
        GstClockTime min = 0;
        gst_query_parse_latency(query, &live, &min, nullptr);
        gint64 offset = live && GST_CLOCK_TIME_IS_VALID(min) ? -static_cast<gint64>(min) : 0;
        if (GstObject* identity = gst_pad_get_parent(pad)) {
          g_object_set(identity, "ts-offset", offset, nullptr);
          gst_object_unref(identity);
        }
        return GST_PAD_PROBE_OK;
      },
      nullptr, nullptr);
  gst_object_unref(src);
}

}  // namespace

GstPad* Engine::request_sink_pad(Kind kind, const char* name) {
  auto stream = std::make_unique<SinkStream>();
  stream->name = name;
  stream->kind = kind;
  stream->entry = make_element("identity");
  stream->tee = make_element("tee");
  if (!stream->entry || !stream->tee) return nullptr;
  // Every input goes out in real time: each buffer waits for its running time on the
  // pipeline clock, so a file or any non-live source is sent at its own rate (audio and video
  // of one file in step), not as fast as it can be read. Live input is on time or late
  // already and passes at once (see README "Broadcasting a file"). identity, not clocksync:
  // clocksync offers the system clock and would take the clock choice from an audio sink.
  g_object_set(stream->entry, "sync", TRUE, nullptr);
  hold_live_input_no_longer(stream->entry);
  // No call yet, or none of them linked: the input keeps flowing.
  g_object_set(stream->tee, "allow-not-linked", TRUE, nullptr);
  gst_bin_add_many(bin(), stream->entry, stream->tee, nullptr);
  GstPad* target = gst_element_get_static_pad(stream->entry, "sink");
  stream->ghost = gst_ghost_pad_new(name, target);
  gst_object_unref(target);

  // The chain between entry and tee depends on the input (raw or encoded): built when the
  // caps arrive, before any buffer.
  struct Ctx {
    Engine* engine;
    SinkStream* stream;
  };
  GstPad* entry_sink = gst_element_get_static_pad(stream->entry, "sink");
  gst_pad_add_probe(
      entry_sink,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                   GST_PAD_PROBE_TYPE_EVENT_FLUSH),
      [](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
        GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
        auto* ctx = static_cast<Ctx*>(data);
        switch (GST_EVENT_TYPE(event)) {
          case GST_EVENT_CAPS: {
            GstCaps* caps = nullptr;
            gst_event_parse_caps(event, &caps);
            ctx->engine->build_stream_chain(ctx->stream, caps);
            break;
          }
          case GST_EVENT_EOS:
            ctx->engine->stream_eos(ctx->stream, true);
            break;
          case GST_EVENT_FLUSH_STOP: {
            gboolean reset_time = FALSE;
            gst_event_parse_flush_stop(event, &reset_time);
            if (reset_time) ctx->engine->flushed(GST_EVENT_SEQNUM(event));
            ctx->engine->stream_eos(ctx->stream, false);
            break;
          }
          case GST_EVENT_STREAM_START:
            ctx->engine->stream_eos(ctx->stream, false);
            break;
          default:
            break;
        }
        return GST_PAD_PROBE_OK;
      },
      new Ctx{this, stream.get()}, [](gpointer data) { delete static_cast<Ctx*>(data); });
  gst_object_unref(entry_sink);
  gst_element_sync_state_with_parent(stream->tee);
  gst_element_sync_state_with_parent(stream->entry);
  GstPad* ghost = stream->ghost;
  SinkStream* added = stream.get();
  {
    std::lock_guard lock(streams_mutex_);
    streams_.push_back(std::move(stream));
  }
  // During calls: each call sends it too, on a new m-line (a renegotiation).
  invoke([this, added] {
    {
      std::lock_guard lock(streams_mutex_);
      if (std::none_of(streams_.begin(), streams_.end(),
                       [added](const auto& s) { return s.get() == added; })) {
        return;  // released meanwhile
      }
    }
    for (auto& [peer, call] : calls_) call->add_stream(added);
  });
  return ghost;
}

// Streaming thread, on the input's caps.
void Engine::build_stream_chain(SinkStream* stream, GstCaps* caps) {
  std::lock_guard lock(streams_mutex_);
  const Codec* encoded = codec_for_encoded_caps(caps);
  if (stream->chain_built) {
    if (encoded != stream->codec) {
      GST_ELEMENT_WARNING(
          element_, STREAM, FORMAT,
          ("%s changed between raw and encoded input: not supported", stream->name.c_str()),
          (nullptr));
    }
    return;
  }
  std::vector<GstElement*> chain;
  if (encoded) {
    if (encoded->kind != stream->kind) {
      GST_ELEMENT_ERROR(element_, STREAM, WRONG_TYPE,
                        ("%s got %s input", stream->name.c_str(), encoded->encoding_name),
                        (nullptr));
      return;
    }
    if (!stream->encoders.empty()) {
      // Calls that started before the caps took the input for raw.
      GST_ELEMENT_WARNING(
          element_, STREAM, FORMAT,
          ("%s: encoded input arrived after calls started encoding it", stream->name.c_str()),
          (nullptr));
    }
    stream->codec = encoded;  // passed through, never re-encoded
    chain = make_send_parser(*encoded);
    // Keyframes asked of the pipeline's source (an H.264 camera can; a file cannot: a
    // newcomer then waits for the file's next keyframe).
    if (encoded->kind == Kind::kVideo) stream->keyframes = pace_keyframes(stream->tee);
  }
  // Raw input: straight into the tee, the encoders hang off it (acquire_codec_tee).
  std::vector<GstElement*> all;
  all.push_back(stream->entry);
  for (GstElement* e : chain) all.push_back(e);
  all.push_back(stream->tee);
  for (GstElement* e : chain) gst_bin_add(bin(), e);
  for (std::size_t i = 1; i < all.size(); ++i) {
    if (!gst_element_link(all[i - 1], all[i])) {
      GST_ELEMENT_ERROR(element_, CORE, NEGOTIATION,
                        ("Cannot build the input chain of %s", stream->name.c_str()), (nullptr));
      return;
    }
  }
  for (GstElement* e : chain) gst_element_sync_state_with_parent(e);
  stream->chain = chain;
  stream->chain_built = true;
}

std::vector<std::string> Engine::producible(const SinkStream* stream) const {
  if (stream->codec) return {stream->codec->encoding_name};
  // Which encoders and payloaders are installed does not change while the process runs.
  static const std::vector<const Codec*> installed = [] {
    std::vector<const Codec*> out;
    auto have = [](const char* factory) {
      if (!factory) return true;
      GstElementFactory* f = gst_element_factory_find(factory);
      if (f) gst_object_unref(f);
      return f != nullptr;
    };
    for (const Codec& c : codecs()) {
      if (have(c.encoder) && have(c.payloader) && have(c.parser)) out.push_back(&c);
    }
    return out;
  }();
  std::vector<std::string> out;
  for (const Codec* c : installed) {
    if (c->kind == stream->kind) out.emplace_back(c->encoding_name);
  }
  return out;
}

GstElement* Engine::acquire_codec_tee(SinkStream* stream, const Codec* codec) {
  if (!codec || codec->kind != stream->kind) return nullptr;
  if (stream->codec) return codec == stream->codec ? stream->tee : nullptr;
  for (auto& enc : stream->encoders) {
    if (enc->codec == codec) {
      ++enc->users;
      return enc->tee;
    }
  }
  auto enc = std::make_unique<Encoder>();
  enc->codec = codec;
  enc->chain = make_encoder_chain(*codec, settings().video_bitrate_kbps);
  if (enc->chain.empty()) {
    GST_ELEMENT_WARNING(element_, CORE, MISSING_PLUGIN,
                        ("Cannot encode %s for %s: the encoder is missing", stream->name.c_str(),
                         codec->encoding_name),
                        ("%s", codec->encoder));
    return nullptr;
  }
  enc->tee = make_element("tee");
  if (!enc->tee) {
    for (GstElement* e : enc->chain) gst_object_unref(gst_object_ref_sink(e));
    return nullptr;
  }
  // Between two calls of this codec, or while one is being unlinked, the encoder goes on.
  g_object_set(enc->tee, "allow-not-linked", TRUE, nullptr);
  std::vector<GstElement*> all = enc->chain;
  all.push_back(enc->tee);
  if (!add_and_link(bin(), all)) {
    GST_ELEMENT_WARNING(
        element_, CORE, NEGOTIATION,
        ("Cannot build the %s encoder of %s", codec->encoding_name, stream->name.c_str()),
        (nullptr));
    return nullptr;
  }
  enc->input_pad = gst_element_request_pad_simple(stream->tee, "src_%u");
  GstPad* sink = gst_element_get_static_pad(enc->chain.front(), "sink");
  bool ok = enc->input_pad && gst_pad_link(enc->input_pad, sink) == GST_PAD_LINK_OK;
  gst_object_unref(sink);
  if (!ok) {
    GST_ELEMENT_WARNING(
        element_, CORE, NEGOTIATION,
        ("Cannot link the %s encoder of %s", codec->encoding_name, stream->name.c_str()),
        (nullptr));
    if (enc->input_pad) {
      gst_element_release_request_pad(stream->tee, enc->input_pad);
      gst_object_unref(enc->input_pad);
    }
    for (GstElement* e : all) {
      gst_element_set_state(e, GST_STATE_NULL);
      gst_bin_remove(bin(), e);
    }
    return nullptr;
  }
  GST_INFO_OBJECT(element_, "%s: %s encoder started", stream->name.c_str(), codec->encoding_name);
  if (codec->kind == Kind::kVideo) enc->keyframes = pace_keyframes(enc->tee);
  enc->users = 1;
  GstElement* tee = enc->tee;
  stream->encoders.push_back(std::move(enc));
  defer([this] { encoders_changed(); });
  return tee;
}

void Engine::set_video_bitrate(const std::string& codec, unsigned kbps) {
  std::lock_guard lock(streams_mutex_);
  for (auto& stream : streams_) {
    for (auto& enc : stream->encoders) {
      if (codec != enc->codec->encoding_name) continue;
      for (GstElement* e : enc->chain) set_encoder_bitrate(e, kbps);
    }
  }
}

void Engine::release_codec_tee(SinkStream* stream, GstElement* tee) {
  std::unique_ptr<Encoder> retired;
  GstElement* input_tee = nullptr;
  {
    std::lock_guard lock(streams_mutex_);
    auto it = std::find_if(stream->encoders.begin(), stream->encoders.end(),
                           [tee](const auto& e) { return e->tee == tee; });
    if (it == stream->encoders.end() || --(*it)->users > 0) return;
    retired = std::move(*it);
    stream->encoders.erase(it);
    if (retired->keyframes) retired->keyframes->detach();
    input_tee = GST_ELEMENT(gst_object_ref(stream->tee));
  }
  GST_INFO_OBJECT(element_, "%s: %s encoder no longer used: removing it", stream->name.c_str(),
                  retired->codec->encoding_name);
  encoders_changed();
  // Unlinked from the input's tee between two buffers (the tee goes on feeding the other
  // encoders), then stopped and removed on the signaling thread.
  struct Retire {
    Engine* engine;
    std::unique_ptr<Encoder> encoder;
    GstElement* input_tee;
    GMainContext* context;
  };
  ++retiring_;  // end_calls_and_wait waits for it
  auto* retire = new Retire{this, std::move(retired), input_tee, g_main_context_ref(context_)};
  gst_pad_add_probe(
      retire->encoder->input_pad, GST_PAD_PROBE_TYPE_IDLE,
      [](GstPad* pad, GstPadProbeInfo*, gpointer data) -> GstPadProbeReturn {
        auto* r = static_cast<Retire*>(data);
        GstPad* sink = gst_element_get_static_pad(r->encoder->chain.front(), "sink");
        gst_pad_unlink(pad, sink);
        gst_object_unref(sink);
        // An idle source: never inside this probe, which may run at once on this thread.
        GSource* s = g_idle_source_new();
        g_source_set_callback(
            s,
            [](gpointer d) -> gboolean {
              auto* rt = static_cast<Retire*>(d);
              GstBin* bin = rt->engine->bin();
              std::vector<GstElement*> all = rt->encoder->chain;
              all.push_back(rt->encoder->tee);
              for (GstElement* e : all) {
                gst_element_set_locked_state(e, TRUE);
                gst_element_set_state(e, GST_STATE_NULL);
                if (GST_OBJECT_PARENT(e) == GST_OBJECT(bin)) gst_bin_remove(bin, e);
              }
              gst_element_release_request_pad(rt->input_tee, rt->encoder->input_pad);
              gst_object_unref(rt->encoder->input_pad);
              gst_object_unref(rt->input_tee);
              g_main_context_unref(rt->context);
              --rt->engine->retiring_;
              delete rt;
              return G_SOURCE_REMOVE;
            },
            r, nullptr);
        g_source_attach(s, r->context);
        g_source_unref(s);
        return GST_PAD_PROBE_REMOVE;
      },
      retire, nullptr);
}

std::vector<std::string> Engine::encoders() {
  std::vector<std::string> out;
  std::lock_guard lock(streams_mutex_);
  for (auto& s : streams_) {
    for (auto& e : s->encoders) out.push_back(s->name + ":" + e->codec->encoding_name);
  }
  return out;
}

std::shared_ptr<KeyframeControl> Engine::pace_keyframes(GstElement* tee) {
  if (!context_) return nullptr;
  GstPad* sink = gst_element_get_static_pad(tee, "sink");
  auto control = KeyframeControl::attach(sink, context_, [this] { return keyframe_interval_us(); });
  gst_object_unref(sink);
  return control;
}

gint64 Engine::keyframe_interval_us() const {
  GST_OBJECT_LOCK(element_);
  gint64 ms = element_->keyframe_interval_min;
  GST_OBJECT_UNLOCK(element_);
  return ms * 1000;
}

std::vector<std::pair<std::string, KeyframePacer::Counts>> Engine::keyframe_counts() {
  std::vector<std::pair<std::string, KeyframePacer::Counts>> out;
  std::lock_guard lock(streams_mutex_);
  for (auto& s : streams_) {
    if (s->keyframes) {
      out.emplace_back(s->name + ":" + s->codec->encoding_name + " input", s->keyframes->counts());
    }
    for (auto& e : s->encoders) {
      if (e->keyframes) {
        out.emplace_back(s->name + ":" + e->codec->encoding_name, e->keyframes->counts());
      }
    }
  }
  return out;
}

void Engine::encoders_changed() {
  stats_.encoders_changed();
  g_object_notify(G_OBJECT(element_), "encoders");
}

// webrtcbin never ends its network sinks, so a bin holding one would never post EOS and
// `gst-launch-1.0 -e` would wait forever. The element is a sink while it has sink pads, and
// posts EOS itself once all of them got EOS (the calls go on receiving).
void Engine::stream_eos(SinkStream* stream, bool eos) {
  bool all = false;
  {
    std::lock_guard lock(streams_mutex_);
    stream->eos = eos;
    all =
        eos && std::all_of(streams_.begin(), streams_.end(), [](const auto& s) { return s->eos; });
  }
  if (all) {
    GST_INFO_OBJECT(element_, "all sink pads are at EOS");
    gst_element_post_message(GST_ELEMENT(element_), gst_message_new_eos(GST_OBJECT(element_)));
  }
}

// A flushing seek starts the input's running time again from 0. A sink posts reset-time for
// that, and the pipeline takes a new base time from it; without one, every buffer after the
// seek would be late on the old base time and the file would be sent as fast as it can be
// read until it caught up. Once per seek, not once per sink pad. Streaming thread.
void Engine::flushed(guint32 seqnum) {
  if (last_flush_seqnum_.exchange(seqnum) == seqnum) return;
  GST_INFO_OBJECT(element_, "input flushed (a seek): the running time starts again");
  gst_element_post_message(GST_ELEMENT(element_),
                           gst_message_new_reset_time(GST_OBJECT(element_), 0));
}

// A seek sent to the pipeline reaches its sinks, us among them: like a sink, we send it
// upstream through every sink pad (demuxers act on one seek per seqnum). Application thread.
bool Engine::seek_inputs(GstEvent* event) {
  std::vector<GstPad*> pads;
  {
    std::lock_guard lock(streams_mutex_);
    for (auto& s : streams_) pads.push_back(GST_PAD(gst_object_ref(s->ghost)));
  }
  bool any = false;
  for (GstPad* pad : pads) {
    any |= gst_pad_push_event(pad, gst_event_ref(event)) != FALSE;
    gst_object_unref(pad);
  }
  return any;
}

void Engine::end_outputs() {
  invoke([this] {
    for (auto& [peer, call] : calls_) call->end_outputs();
  });
}

// Signaling thread: ends the calls that send `stream` (all calls when null) and runs the
// context until their teardowns are done (they finish through invocations), at most 3 s.
void Engine::end_calls_and_wait(const SinkStream* stream, const char* reason) {
  std::vector<std::string> peers;
  for (auto& [peer, call] : calls_) {
    if (!stream || call->sends(stream)) peers.push_back(peer);
  }
  for (const std::string& peer : peers) end_call(peer, reason, "stopped");
  gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
  // Encoders whose last call ended are removed too (before their input may go).
  auto busy = [this] { return !dying_.empty() || retiring_ > 0; };
  while (busy() && g_get_monotonic_time() < deadline) {
    g_main_context_iteration(context_, FALSE);
    if (busy()) g_usleep(1000);
  }
}

// Signaling thread: every call that sends `stream` unlinks its branch from the stream's tee
// (when no buffer passes), then removes it; the call goes on. Runs the context meanwhile, at
// most 3 s; a call that could not detach by then ends.
void Engine::detach_stream_and_wait(const SinkStream* stream) {
  auto* s = const_cast<SinkStream*>(stream);
  auto waiting = std::make_shared<std::set<unsigned>>();
  for (auto& [peer, call] : calls_) {
    unsigned id = call->id();
    if (call->detach_stream(s, [waiting, id] { waiting->erase(id); })) waiting->insert(id);
  }
  std::set<unsigned> detaching = *waiting;
  auto dying_sends = [&] {
    return std::any_of(dying_.begin(), dying_.end(),
                       [s](const auto& d) { return d.second->sends(s); });
  };
  gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
  while ((!waiting->empty() || dying_sends()) && g_get_monotonic_time() < deadline) {
    g_main_context_iteration(context_, FALSE);
    if (!waiting->empty() || dying_sends()) g_usleep(1000);
  }
  for (unsigned id : detaching) {
    Call* call = find_call(id);
    if (!call) continue;
    if (waiting->contains(id)) {
      end_call(std::string(call->peer()), "input removed", "stopped");
    } else {
      call->finish_detach(s);
    }
  }
  // Calls ended meanwhile (or just now) still hold their branches until torn down.
  deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
  while (dying_sends() && g_get_monotonic_time() < deadline) {
    g_main_context_iteration(context_, FALSE);
    if (dying_sends()) g_usleep(1000);
  }
}

void Engine::release_sink_pad(GstPad* pad) {
  SinkStream* found = nullptr;
  {
    std::lock_guard lock(streams_mutex_);
    for (auto& s : streams_) {
      if (s->ghost == pad) found = s.get();
    }
  }
  if (!found) return;
  // The calls sending this input hold branches on its tee: each detaches its branch and goes
  // on (Call::finish_detach); calls being torn down finish first.
  if (thread_) run_sync(context_, [this, found] { detach_stream_and_wait(found); });
  std::unique_ptr<SinkStream> stream;
  {
    std::lock_guard lock(streams_mutex_);
    auto it = std::find_if(streams_.begin(), streams_.end(),
                           [pad](const auto& s) { return s->ghost == pad; });
    if (it == streams_.end()) return;
    stream = std::move(*it);
    streams_.erase(it);
  }
  gst_element_remove_pad(GST_ELEMENT(element_), pad);
  if (stream->keyframes) stream->keyframes->detach();
  for (auto& enc : stream->encoders) {
    if (enc->keyframes) enc->keyframes->detach();
  }
  for (GstElement* e : {stream->entry, stream->tee}) {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(bin(), e);
  }
  for (GstElement* e : stream->chain) {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(bin(), e);
  }
  // Encoders no call uses any more are removed as their last call ends; any left (a call
  // that did not finish tearing down) go with the input.
  for (auto& enc : stream->encoders) {
    for (GstElement* e : enc->chain) {
      gst_element_set_state(e, GST_STATE_NULL);
      gst_bin_remove(bin(), e);
    }
    gst_element_set_state(enc->tee, GST_STATE_NULL);
    gst_bin_remove(bin(), enc->tee);
    gst_object_unref(enc->input_pad);
  }
  if (!stream->encoders.empty()) encoders_changed();
}

}  // namespace webrtccall
