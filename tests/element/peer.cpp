#include "peer.h"

#include "../pad-consumer.h"
#include "../wait-until.h"
#include "fake-signaller.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#if defined(__SANITIZE_ADDRESS__)
// The ASan runtime's (sanitizer/allocator_interface.h, which gcc does not install).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace test {

ServerProcess::ServerProcess(std::vector<std::string> extra_args, unsigned port) {
  const char* server = g_getenv("WEBRTC_CALL_SERVER");
  if (!server) return;
  int out[2];
  if (pipe(out) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<std::string> args = {server, "--address", "127.0.0.1", "--port",
                                     std::to_string(port)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its logs (stderr) stay visible in the test log.
    execv(server, argv.data());
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[256];
  if (f && fgets(line, sizeof line, f)) {
    std::string l(line);
    const std::string prefix = "Listening on http://";
    if (l.rfind(prefix, 0) == 0) {
      std::string hostport = l.substr(prefix.size());
      hostport = hostport.substr(0, hostport.find('/'));
      ws_url_ = "ws://" + hostport + "/ws";
      port_ = static_cast<unsigned>(std::stoul(hostport.substr(hostport.rfind(':') + 1)));
    }
  }
  if (f) fclose(f);
}

ServerProcess::~ServerProcess() {
  stop();
}

void ServerProcess::stop(int signal) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

Peer::Peer(const std::string& name, const std::string& url, PeerOptions o) : name_(name) {
  std::string desc = "webrtccall name=call username=" + name + " signaling-server=" + url;
  if (!o.peer.empty()) desc += " peer=" + o.peer;
  desc += " " + o.extra;
  if (o.send_video) {
    desc +=
        " videotestsrc is-live=true pattern=ball ! video/x-raw,width=" + std::to_string(o.width) +
        ",height=" + std::to_string(o.height) + ",framerate=30/1 ! call.video_0";
  }
  if (o.send_audio) {
    desc +=
        " audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1 ! call.audio_0";
  }
  GError* err = nullptr;
  pipeline_ = gst_parse_launch(desc.c_str(), &err);
  if (pipeline_ && !GST_IS_PIPELINE(pipeline_)) {
    // A lone element comes back as itself: put it in a pipeline.
    GstElement* lone = pipeline_;
    pipeline_ = gst_pipeline_new(nullptr);
    gst_bin_add(GST_BIN(pipeline_), lone);
    gst_element_set_name(lone, "call");
  }
  if (err) {
    std::fprintf(stderr, "pipeline %s: %s\n", desc.c_str(), err->message);
    g_error_free(err);
  }
  if (!pipeline_) return;
  gst_object_set_name(GST_OBJECT(pipeline_), name.c_str());
  call_ = gst_bin_get_by_name(GST_BIN(pipeline_), "call");
  if (o.fake_signaller) {
    TestFakeSignaller* fake = fake_signaller_new();
    g_object_set(call_, "signaller", fake, nullptr);
    g_object_unref(fake);
  }
  g_signal_connect(call_, "pad-added", G_CALLBACK(on_pad_added), this);
  // As an application would: a call's pad goes, so does what consumed it.
  remove_consumers_of_removed_pads(call_, &pipeline_);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, on_bus, this, nullptr);
  gst_object_unref(bus);
}

Peer::~Peer() {
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
    gst_object_unref(call_);
    gst_object_unref(pipeline_);
  }
  for (GstStructure* s : messages_) gst_structure_free(s);
  for (GstStructure* s : taken_) gst_structure_free(s);
}

bool Peer::play() {
  return pipeline_ &&
         gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

void Peer::notify() {
  std::lock_guard lock(mutex_);
  cond_.notify_all();
}

GstBusSyncReply Peer::on_bus(GstBus*, GstMessage* msg, gpointer data) {
  auto* self = static_cast<Peer*>(data);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT &&
      GST_MESSAGE_SRC(msg) == GST_OBJECT(self->call_)) {
    std::lock_guard lock(self->mutex_);
    self->messages_.push_back(gst_structure_copy(gst_message_get_structure(msg)));
    const GstStructure* st = gst_message_get_structure(msg);
    const char* peer = gst_structure_get_string(st, "peer");
    self->log_.push_back(std::string(gst_structure_get_name(st)) + " " + (peer ? peer : ""));
    self->cond_.notify_all();
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(msg, &err, &debug);
    std::lock_guard lock(self->mutex_);
    self->errors_.push_back(std::string(err->message) + " (" + (debug ? debug : "") + ")");
    std::fprintf(stderr, "[%s] ERROR %s\n", self->name_.c_str(), self->errors_.back().c_str());
    g_error_free(err);
    g_free(debug);
    self->cond_.notify_all();
  }
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
    GError* err = nullptr;
    gst_message_parse_warning(msg, &err, nullptr);
    std::lock_guard lock(self->mutex_);
    self->warnings_.push_back(err->message);
    g_error_free(err);
    self->cond_.notify_all();
  }
  // GST_BUS_DROP hands the message to us: unref it, or every element it names leaks.
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

void Peer::on_pad_added(GstElement*, GstPad* pad, gpointer data) {
  auto* self = static_cast<Peer*>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;  // a sink pad requested mid-call
  gchar* kind = nullptr;
  g_object_get(pad, "kind", &kind, nullptr);
  bool video = g_strcmp0(kind, "video") == 0;
  g_free(kind);
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  // No last sample: a kept buffer would keep the ended call's decoder pool alive.
  g_object_set(sink, "sync", FALSE, "async", FALSE, "signal-handoffs", TRUE, "enable-last-sample",
               FALSE, nullptr);
  struct Ctx {
    Peer* peer;
    bool video;
  };
  g_signal_connect_data(
      sink, "handoff", G_CALLBACK(+[](GstElement*, GstBuffer*, GstPad* sinkpad, gpointer d) {
        auto* ctx = static_cast<Ctx*>(d);
        Peer* p = ctx->peer;
        if ((ctx->video ? p->video_buffers : p->audio_buffers)++ == 0) {
          GstCaps* caps = gst_pad_get_current_caps(sinkpad);
          gchar* str = caps ? gst_caps_to_string(caps) : g_strdup("");
          std::lock_guard lock(p->mutex_);
          (ctx->video ? p->video_caps_ : p->audio_caps_) = str;
          g_free(str);
          if (caps) gst_caps_unref(caps);
        }
        p->notify();
      }),
      new Ctx{self, video}, [](gpointer d, GClosure*) { delete static_cast<Ctx*>(d); },
      static_cast<GConnectFlags>(0));
  gst_bin_add(GST_BIN(self->pipeline_), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

static bool matches(const GstStructure* s, const std::string& name,
                    const std::map<std::string, std::string>& fields) {
  if (!gst_structure_has_name(s, name.c_str())) return false;
  for (const auto& [k, v] : fields) {
    const char* value = gst_structure_get_string(s, k.c_str());
    if (!value || v != value) return false;
  }
  return true;
}

GstStructure* Peer::wait_message(const std::string& name, std::map<std::string, std::string> fields,
                                 int timeout_ms) {
  std::unique_lock lock(mutex_);
  GstStructure* found = nullptr;
  cond_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    for (auto it = messages_.begin(); it != messages_.end(); ++it) {
      if (matches(*it, name, fields)) {
        found = *it;
        messages_.erase(it);
        taken_.push_back(found);
        return true;
      }
    }
    return false;
  });
  return found;
}

bool Peer::has_message(const std::string& name, std::map<std::string, std::string> fields) {
  std::lock_guard lock(mutex_);
  for (GstStructure* s : messages_) {
    if (matches(s, name, fields)) return true;
  }
  return false;
}

int Peer::count_messages(const std::string& name, std::map<std::string, std::string> fields) {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (GstStructure* s : messages_) n += matches(s, name, fields);
  return n;
}

std::vector<std::string> Peer::message_log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

std::vector<std::string> Peer::calls() const {
  gchar** calls = nullptr;
  g_object_get(call_, "calls", &calls, nullptr);
  std::vector<std::string> out;
  for (gchar** c = calls; c && *c; ++c) out.emplace_back(*c);
  g_strfreev(calls);
  return out;
}

bool Peer::wait_until(std::function<bool()> pred, int timeout_ms) {
  // Re-checked on every buffer and message, and at least every 20 ms for conditions that
  // change without either (pads removed, threads ended).
  std::unique_lock lock(mutex_);
  return wait_until_locked(lock, cond_, pred, timeout_ms, 20);
}

std::string Peer::video_caps() const {
  std::lock_guard lock(mutex_);
  return video_caps_;
}

std::string Peer::audio_caps() const {
  std::lock_guard lock(mutex_);
  return audio_caps_;
}

int Peer::src_pads() const {
  GST_OBJECT_LOCK(call_);
  int n = static_cast<int>(GST_ELEMENT(call_)->numsrcpads);
  GST_OBJECT_UNLOCK(call_);
  return n;
}

std::vector<std::string> Peer::warnings() const {
  std::lock_guard lock(mutex_);
  return warnings_;
}

std::vector<std::string> Peer::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

void Peer::call(const std::string& user) {
  g_signal_emit_by_name(call_, "call", user.c_str());
}

void Peer::hang_up(const std::string& user) {
  g_signal_emit_by_name(call_, "hang-up", user.empty() ? nullptr : user.c_str());
}

int count_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

int count_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - 1;  // the directory's own fd
}

long memory_kib() {
#if defined(__SANITIZE_ADDRESS__)
  return static_cast<long>(__sanitizer_get_current_allocated_bytes() / 1024);
#else
  // Bytes allocated and not freed, as under ASan: VmRSS also holds what glibc's arenas keep
  // after frees, which grows with encoders started and stopped per call (vp8enc's frame
  // buffers, above the mmap threshold once, then from the arenas). Measured over 25 and 100
  // fake-signaller calls: allocated +2.3/+5.1 MiB, as main's +2.6/+5.8, while RSS was
  // +15.8/+22.4 MiB (main +10.7/+16.9), so the RSS bound failed without a leak.
  malloc_trim(0);
  struct mallinfo2 m = mallinfo2();
  return static_cast<long>((m.uordblks + m.hblkhd) / 1024);
#endif
}

long rss_kib() {
  malloc_trim(0);  // what the allocator keeps cached is not ours
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void wait_settled() {
  int stable = 0, threads = -1, fds = -1;
  for (int i = 0; i < 200 && stable < 10; ++i) {
    int t = count_threads(), f = count_fds();
    stable = (t == threads && f == fds) ? stable + 1 : 0;
    threads = t;
    fds = f;
    g_usleep(50 * 1000);
  }
}

void show_fds() {
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char path[300], target[256] = {0};
      std::snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
      ssize_t n = readlink(path, target, sizeof target - 1);
      if (n > 0) std::fprintf(stderr, "fd %s -> %s\n", e->d_name, target);
    }
    closedir(d);
  }
  for (const char* table :
       {"/proc/self/net/udp", "/proc/self/net/tcp", "/proc/self/net/udp6", "/proc/self/net/tcp6",
        "/proc/self/net/unix", "/proc/self/net/netlink"}) {
    std::ifstream f(table);
    std::string line;
    while (std::getline(f, line)) std::fprintf(stderr, "%s: %s\n", table, line.c_str());
  }
}

}  // namespace test
