// bench/soak/call-soak: call/hang-up cycles on one webrtccall pipeline ("soak", auto-answer),
// through webrtc-call-server on loopback, sampling this process's threads, fds and RSS every
// --every cycles; at the end, waits (at most 20 s) for them to return to the baseline taken
// after the warm-up, and counts the webrtcbins left in the element. Prints first/last/max and
// the slope per 1,000 cycles, [back] / [NOT BACK] beside each figure, and writes the samples
// as CSV (--csv) for bench/soak/plot.py. Not a test; it exits 1 only when the run went wrong
// (a wait timed out, the server died, a pipeline error).
//
//   --remote element (default, 500 cycles): a second pipeline in this process ("remote")
//     calls soak; three kinds of cycle in turn (element_cycle): a full call with frames
//     decoded both ways, a hang-up 0-290 ms after the call was placed (offer, answer and ICE
//     cut at any point), and a hang-up at the instant soak's answer is applied (the churn
//     that leaked before). The figures are of the process, i.e. of both pipelines.
//   --remote browser (100 cycles): headless Debian Chromium (playwright-core from
//     tests/browser/node_modules) runs the web client (examples/web) and calls soak, by
//     bench/soak/browser-soak.mjs: even cycles wait for the remote video to play, odd ones hang
//     up 0-290 ms after the click. The figures are of soak's pipeline alone.
//
// WebRTC peers run only inside a network namespace of their own: the program re-executes
// itself through tests/netns-run.sh (like bench/call-setup). Every wait has a deadline and the
// whole run a hard limit (--timeout).
//   call-soak [--remote element|browser] [--cycles N] [--every N] [--csv FILE] [--timeout S]
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>
#include <malloc.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "../../tests/pad-consumer.h"
#include "soak-common.h"

#ifndef SOAK_SERVER
#define SOAK_SERVER "build/signaling/webrtc-call-server"
#endif
#ifndef SOAK_PLUGIN_DIR
#define SOAK_PLUGIN_DIR "build/gst-plugin"
#endif
#ifndef SOAK_NETNS_RUN
#define SOAK_NETNS_RUN "tests/netns-run.sh"
#endif
#ifndef SOAK_SOURCE_DIR
#define SOAK_SOURCE_DIR "."
#endif

namespace {

struct Options {
  std::string remote = "element";
  int cycles = -1, every = 10;
  unsigned timeout_s = 1800;
  std::string csv;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return soak::flag_value(i, argc, argv); };
    if (a == "--remote") {
      o.remote = value();
    } else if (a == "--cycles") {
      o.cycles = std::atoi(value().c_str());
    } else if (a == "--every") {
      o.every = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--csv") {
      o.csv = value();
    } else if (a == "--timeout") {
      o.timeout_s = static_cast<unsigned>(std::atoi(value().c_str()));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--remote element|browser] [--cycles N] [--every N] [--csv FILE] "
                   "[--timeout S]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  if (o.remote != "element" && o.remote != "browser") {
    std::fprintf(stderr, "--remote is element or browser\n");
    std::exit(2);
  }
  if (o.cycles < 0) o.cycles = o.remote == "element" ? 500 : 100;
  return o;
}

// A pipeline with a webrtccall element sending test video and audio; received streams go to
// fakesinks that count buffers. Element messages are kept for wait().
class Pipeline {
 public:
  Pipeline(const std::string& name, const std::string& url) : name_(name) {
    // offer-rate=0: the cycles come faster than the 5 offers/s one caller may make by default.
    std::string desc = "webrtccall name=call username=" + name + " signaling-server=" + url +
                       " offer-rate=0 videotestsrc is-live=true pattern=ball ! "
                       "video/x-raw,width=320,height=240,framerate=30/1 ! call.video_0 "
                       "audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1 "
                       "! call.audio_0";
    GError* err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    if (err) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), err->message);
      g_error_free(err);
    }
    if (!pipeline_) return;
    call_ = gst_bin_get_by_name(GST_BIN(pipeline_), "call");
    g_signal_connect(call_, "pad-added", G_CALLBACK(on_pad_added), this);
    test::remove_consumers_of_removed_pads(call_, &pipeline_);
    // For hang_up_at_answer(): each call's webrtcbin, as the element adds it.
    g_signal_connect(pipeline_, "deep-element-added",
                     G_CALLBACK(+[](GstBin*, GstBin*, GstElement* e, gpointer data) {
                       GstElementFactory* f = gst_element_get_factory(e);
                       if (!f || !g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) return;
                       g_signal_connect(e, "notify::signaling-state",
                                        G_CALLBACK(on_signaling_state), data);
                     }),
                     this);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, on_bus, this, nullptr);
    gst_object_unref(bus);
  }
  // The next call's answer, once applied (signaling state back to stable, on webrtcbin's own
  // thread, still inside its set-remote-description), is followed at once by a hang-up.
  void hang_up_at_answer(const std::string& peer) {
    std::lock_guard lock(mutex_);
    hang_up_at_answer_ = peer;
  }
  ~Pipeline() {
    if (!pipeline_) return;
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
    gst_object_unref(call_);
    gst_object_unref(pipeline_);
    for (GstStructure* s : messages_) gst_structure_free(s);
  }
  bool play() {
    return pipeline_ &&
           gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  }
  void call(const std::string& peer) { g_signal_emit_by_name(call_, "call", peer.c_str()); }
  void hang_up(const std::string& peer) { g_signal_emit_by_name(call_, "hang-up", peer.c_str()); }
  // Waits for an element message `name` whose "peer" is `peer` (any when empty); consumes it.
  bool wait(const std::string& name, const std::string& peer, double timeout_s = 20) {
    std::unique_lock lock(mutex_);
    return cond_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] {
      for (auto it = messages_.begin(); it != messages_.end(); ++it) {
        const char* p = gst_structure_get_string(*it, "peer");
        if (gst_structure_has_name(*it, name.c_str()) && (peer.empty() || (p && peer == p))) {
          gst_structure_free(*it);
          messages_.erase(it);
          return true;
        }
      }
      return false;
    });
  }
  // Drops the messages nobody waited for (users lists, call-started of quick calls, ...).
  void forget_messages() {
    std::lock_guard lock(mutex_);
    for (GstStructure* s : messages_) gst_structure_free(s);
    messages_.clear();
  }
  bool wait_until(std::function<bool()> pred, double timeout_s = 20) {
    double deadline = soak::now_s() + timeout_s;
    while (!pred()) {
      if (soak::now_s() > deadline) return false;
      std::unique_lock lock(mutex_);
      cond_.wait_for(lock, std::chrono::milliseconds(10));
    }
    return true;
  }
  int calls() const {
    gchar** calls = nullptr;
    g_object_get(call_, "calls", &calls, nullptr);
    int n = calls ? static_cast<int>(g_strv_length(calls)) : 0;
    g_strfreev(calls);
    return n;
  }
  int src_pads() const {
    GST_OBJECT_LOCK(call_);
    int n = static_cast<int>(GST_ELEMENT(call_)->numsrcpads);
    GST_OBJECT_UNLOCK(call_);
    return n;
  }
  int webrtcbins() const {
    int n = 0;
    GstIterator* it = gst_bin_iterate_recurse(GST_BIN(call_));
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
      if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) ++n;
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    return n;
  }
  int errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  std::atomic<int> video{0}, audio{0};

 private:
  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer data) {
    auto* self = static_cast<Pipeline*>(data);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT &&
        GST_MESSAGE_SRC(msg) == GST_OBJECT(self->call_)) {
      std::lock_guard lock(self->mutex_);
      self->messages_.push_back(gst_structure_copy(gst_message_get_structure(msg)));
      self->cond_.notify_all();
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError* err = nullptr;
      gchar* debug = nullptr;
      gst_message_parse_error(msg, &err, &debug);
      gchar* path = gst_object_get_path_string(GST_MESSAGE_SRC(msg));
      std::fprintf(stderr, "[%s] ERROR from %s: %s (%s)\n", self->name_.c_str(), path, err->message,
                   debug ? debug : "");
      g_free(path);
      g_free(debug);
      g_error_free(err);
      std::lock_guard lock(self->mutex_);
      ++self->errors_;
      self->cond_.notify_all();
    }
    gst_message_unref(msg);
    return GST_BUS_DROP;
  }
  static void on_signaling_state(GstElement* webrtc, GParamSpec*, gpointer data) {
    auto* self = static_cast<Pipeline*>(data);
    GstWebRTCSignalingState state;
    g_object_get(webrtc, "signaling-state", &state, nullptr);
    if (state != GST_WEBRTC_SIGNALING_STATE_STABLE) return;
    std::string peer;
    {
      std::lock_guard lock(self->mutex_);
      peer = std::exchange(self->hang_up_at_answer_, "");
    }
    if (!peer.empty()) self->hang_up(peer);  // the element takes it to its own thread
  }
  static void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<Pipeline*>(data);
    gchar* kind = nullptr;
    g_object_get(pad, "kind", &kind, nullptr);
    std::atomic<int>* counter = g_strcmp0(kind, "video") == 0 ? &self->video : &self->audio;
    g_free(kind);
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, "signal-handoffs", TRUE, "enable-last-sample",
                 FALSE, nullptr);
    g_signal_connect(sink, "handoff", G_CALLBACK(+[](GstElement*, GstBuffer*, GstPad*, gpointer d) {
                       ++*static_cast<std::atomic<int>*>(d);
                     }),
                     counter);
    gst_bin_add(GST_BIN(self->pipeline_), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
  }

  std::string name_;
  GstElement* pipeline_ = nullptr;
  GstElement* call_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<GstStructure*> messages_;
  int errors_ = 0;
  std::string hang_up_at_answer_;
};

// Waits until the thread and fd counts stop changing for 0.5 s (at most `timeout_s`).
void settle(double timeout_s) {
  double deadline = soak::now_s() + timeout_s;
  int stable = 0;
  soak::Sample last = soak::sample(0, 0, 0);
  while (stable < 10 && soak::now_s() < deadline) {
    usleep(50000);
    soak::Sample s = soak::sample(0, 0, 0);
    stable = (s.threads == last.threads && s.fds == last.fds) ? stable + 1 : 0;
    last = s;
  }
}

// A sample of this process; what the allocator keeps cached is not held by the pipelines.
soak::Sample sample_self(double t0, int cycle) {
  malloc_trim(0);
  soak::Sample s = soak::sample(0, t0, cycle);
  s.heap_kib = static_cast<long>(mallinfo2().uordblks / 1024);
  return s;
}

void print_after(const soak::Sample& base, const soak::Sample& after, int webrtcbins) {
  long rss = after.rss_kib - base.rss_kib, heap = after.heap_kib - base.heap_kib;
  std::printf(
      "  after settling, against the baseline: threads %d (was %d) %s, fds %d (was %d) %s, "
      "RSS %+ld KiB %s (4 MiB allowed), heap in use %+ld KiB; webrtcbins left: %d %s\n",
      after.threads, base.threads, after.threads <= base.threads ? "[back]" : "[NOT BACK]",
      after.fds, base.fds, after.fds <= base.fds ? "[back]" : "[NOT BACK]", rss,
      rss < 4096 ? "[back]" : "[NOT BACK]", heap, webrtcbins,
      webrtcbins == 0 ? "[none]" : "[LEFT]");
}

// One cycle with another pipeline; false when a wait timed out. Three kinds in turn: a full
// call (connected, 10 video frames decoded on each side, then a hang-up by remote, or by soak
// every other time), remote hanging up 0-290 ms after it placed the call, and remote hanging
// up at the instant soak's answer is applied.
bool element_cycle(int i, Pipeline& soak_p, Pipeline& remote) {
  int kind = i % 3;
  if (kind == 2) remote.hang_up_at_answer("soak");
  remote.call("soak");
  if (kind == 0) {
    int sv = soak_p.video, rv = remote.video;
    if (!remote.wait("webrtccall-call-connected", "soak")) return false;
    if (!soak_p.wait_until([&] { return soak_p.video >= sv + 10 && remote.video >= rv + 10; }))
      return false;
    if (i % 2 == 0) {
      soak_p.hang_up("remote");
    } else {
      remote.hang_up("soak");
    }
    if (!soak_p.wait("webrtccall-call-ended", "remote")) return false;
    if (!remote.wait("webrtccall-call-ended", "soak")) return false;
  } else if (kind == 1) {
    if (!remote.wait("webrtccall-call-started", "soak")) return false;
    usleep(static_cast<useconds_t>((i * 37 % 30) * 10000));  // 0-290 ms
    remote.hang_up("soak");
    if (!remote.wait("webrtccall-call-ended", "soak")) return false;
  } else {
    if (!remote.wait("webrtccall-call-ended", "soak")) return false;
    if (!soak_p.wait("webrtccall-call-ended", "remote")) return false;
  }
  // soak may never have seen the quick ones' offer: wait for its calls and pads instead.
  bool ok = soak_p.wait_until([&] {
    return soak_p.calls() == 0 && soak_p.src_pads() == 0 && remote.src_pads() == 0 &&
           remote.calls() == 0;
  });
  soak_p.forget_messages();
  remote.forget_messages();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  soak::ensure_netns(SOAK_NETNS_RUN, argc, argv);
  soak::install_limits(o.timeout_s);
  setenv("GST_PLUGIN_PATH", SOAK_PLUGIN_DIR, 0);
  gst_init(&argc, &argv);
  bool browser = o.remote == "browser";
  std::vector<std::string> server_args;
  if (browser) server_args = {"--web-root", std::string(SOAK_SOURCE_DIR) + "/examples/web"};
  soak::Server server(SOAK_SERVER, server_args);
  if (server.ws_url().empty()) {
    std::fprintf(stderr, "the server (%s) did not start\n", SOAK_SERVER);
    return 1;
  }
  std::printf("call-soak: %d call/hang-up cycles on the pipeline \"soak\", remote: %s\n", o.cycles,
              browser ? "headless Chromium (examples/web)" : "a webrtccall pipeline");

  int status = 0;
  {
    Pipeline soak_p("soak", server.ws_url());
    if (!soak_p.play() || !soak_p.wait("webrtccall-registered", "")) {
      std::fprintf(stderr, "soak did not register\n");
      return 1;
    }
    double t0 = soak::now_s();
    std::vector<soak::Sample> samples;
    soak::Sample baseline;
    int done = 0;
    if (!browser) {
      Pipeline remote("remote", server.ws_url());
      if (!remote.play() || !remote.wait("webrtccall-registered", "")) {
        std::fprintf(stderr, "remote did not register\n");
        return 1;
      }
      // Warm-up: one cycle of each kind (first-use allocations, the DTLS certificate).
      if (!element_cycle(0, soak_p, remote) || !element_cycle(1, soak_p, remote) ||
          !element_cycle(2, soak_p, remote)) {
        std::fprintf(stderr, "the warm-up calls failed\n");
        return 1;
      }
      settle(10);
      baseline = sample_self(t0, 0);
      samples.push_back(baseline);
      for (int i = 1; i <= o.cycles; ++i) {
        if (!element_cycle(i + 2, soak_p, remote)) {
          std::fprintf(stderr, "cycle %d timed out\n", i);
          status = 1;
          break;
        }
        done = i;
        if (i % o.every == 0) {
          settle(3);  // the calls just ended finish in the background
          samples.push_back(sample_self(t0, i));
        }
        if (i % 100 == 0) {
          std::printf("  %d cycles, %.0f s\n", i, soak::now_s() - t0);
          std::fflush(stdout);
        }
      }
      // The remote stays: its resources were in the baseline too.
      settle(20);
      bool back = soak_p.wait_until(
          [&] {
            soak::Sample s = soak::sample(0, t0, done);
            return s.threads <= baseline.threads && s.fds <= baseline.fds;
          },
          20);
      (void)back;
      soak::Sample after = sample_self(t0, done);
      soak::print_series("this process (soak and remote)", samples);
      print_after(baseline, after, soak_p.webrtcbins() + remote.webrtcbins());
      samples.push_back(after);
      if (soak_p.errors() || remote.errors()) status = 1;
    } else {
      // The page calls soak o.cycles times (bench/soak/browser-soak.mjs); we count the ends.
      // A first run of 2 cycles warms up the pipeline (and Chromium's profile is its own).
      auto run_browser = [&](int cycles, bool measure) -> bool {
        std::string script = std::string(SOAK_SOURCE_DIR) + "/bench/soak/browser-soak.mjs";
        std::string cmd = "node " + script + " " + server.http_url() + " soak " +
                          std::to_string(cycles) + " " + std::to_string(o.every);
        FILE* node = popen(cmd.c_str(), "r");
        if (!node) return false;
        char line[512];
        int seen = 0;
        while (fgets(line, sizeof line, node)) {
          if (std::strncmp(line, "cycle ", 6) == 0) {
            ++seen;
            // The page says the cycle ended; soak ends it by the hang-up it gets.
            soak_p.wait_until([&] { return soak_p.calls() == 0 && soak_p.src_pads() == 0; });
            soak_p.forget_messages();
            if (measure) {
              done = seen;
              if (seen % o.every == 0) {
                settle(2);  // the page waits 2.5 s after these cycles
                samples.push_back(sample_self(t0, seen));
              }
              if (seen % 20 == 0) {
                std::printf("  %d cycles, %.0f s\n", seen, soak::now_s() - t0);
                std::fflush(stdout);
              }
            }
          } else {
            std::fputs(line, stderr);
          }
        }
        int rc = pclose(node);
        return rc == 0 && seen == cycles;
      };
      if (!run_browser(2, false)) {
        std::fprintf(stderr, "the warm-up calls from the browser failed\n");
        return 1;
      }
      settle(10);
      baseline = sample_self(t0, 0);
      samples.push_back(baseline);
      if (!run_browser(o.cycles, true)) {
        std::fprintf(stderr, "the browser's cycles failed after %d\n", done);
        status = 1;
      }
      settle(20);
      soak_p.wait_until(
          [&] {
            soak::Sample s = soak::sample(0, t0, done);
            return s.threads <= baseline.threads && s.fds <= baseline.fds;
          },
          20);
      soak::Sample after = sample_self(t0, done);
      soak::print_series("this process (the pipeline soak)", samples);
      print_after(baseline, after, soak_p.webrtcbins());
      samples.push_back(after);
      if (soak_p.errors()) status = 1;
    }
    std::printf("%d cycles in %.0f s\n", done, soak::now_s() - t0);
    if (!soak::write_csv(o.csv, samples)) status = 1;
  }
  return status;
}
