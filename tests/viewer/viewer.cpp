// wcc-viewer: one or more webrtccall viewers in one process, each its own pipeline
// `webrtccall ! fakesink` (decoded by the element, or encoded frames with --no-decode), for the
// broadcast tests and benchmarks. It prints one JSON object per line on stdout:
//   {"viewer":"v-3","t_ms":812,"event":"registered","name":"v-3"}
//   {"viewer":"v-3","t_ms":1204,"event":"connected","peer":"cam"}
//   {"viewer":"v-3","t_ms":1291,"event":"first-frame","peer":"cam","keyframe":true,
//    "ms_after_connected":87}
//   every second, once a call has started:
//   {"viewer":"v-3","t_ms":2204,"event":"tick","frames":30,"fps":29.9,"max_gap_ms":41,
//    "bytes":51234,"total_frames":88}
//   {"viewer":"v-3","t_ms":9000,"event":"ended","peer":"cam","reason":"cam hung up"}
//   {"viewer":"v-3","t_ms":9100,"event":"summary","frames":...,"calls":1,...}
// t_ms counts from the program's start (one clock for every viewer of the process).
// --codec sets the viewers' video-codec property; a receive-only viewer offers (and answers)
// every codec it can decode, so which one it gets is the sender's choice.
// Exits 0 at --duration or on SIGTERM/SIGINT (every pipeline torn down to NULL), 1 when a
// viewer's pipeline posted an error, 2 on bad arguments.
#include <glib-unix.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../pad-consumer.h"

namespace {

struct Options {
  std::string server, name, call, ice_address, codec = "vp8", extra;
  unsigned count = 1;
  bool wait = false, decode = true;
  double duration = 0;        // 0: until SIGTERM
  unsigned pli_every_ms = 0;  // ask the sender for a keyframe this often (0: never)
};

gint64 g_start_us = 0;
std::mutex g_out_mutex;

gint64 now_us() {
  return g_get_monotonic_time();
}
long long ms_since_start(gint64 t) {
  return (t - g_start_us) / 1000;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// One line: {"viewer":NAME,"t_ms":...,"event":EVENT<fields>}; `fields` starts with a comma.
void emit(const std::string& viewer, const char* event, const std::string& fields = "") {
  std::string line = "{\"viewer\":" + json_string(viewer) +
                     ",\"t_ms\":" + std::to_string(ms_since_start(now_us())) +
                     ",\"event\":" + json_string(event) + fields + "}\n";
  std::lock_guard lock(g_out_mutex);
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

struct Viewer;

// What a video source pad delivered: counted in its fakesink's handoff (streaming thread).
struct PadCtx {
  Viewer* viewer;
  std::string peer;
  bool first = true;
};

struct Viewer {
  std::string name;
  GstElement* pipeline = nullptr;
  GstElement* call = nullptr;
  bool failed = false;
  bool stopped = false;

  std::mutex mutex;         // the counters below (streaming threads, main loop)
  gint64 connected_us = 0;  // last webrtccall-call-connected
  gint64 last_frame_us = 0;
  gint64 tick_us = 0;                        // start of the current tick interval
  unsigned long long frames = 0, bytes = 0;  // this interval
  gint64 max_gap_us = 0;                     // this interval
  unsigned long long total_frames = 0, total_bytes = 0;
  gint64 overall_max_gap_us = 0;
  long long first_frame_ms = -1;  // of the first call: ms after its connected
  bool first_keyframe = false;
  unsigned calls_connected = 0, calls_ended = 0, frames_seen_calls = 0;
  bool ticking = false;  // once a call started
  // Whether the first encoded buffer reaching the decoder was a keyframe (decoded mode).
  std::atomic<int> decoder_first_key{-1};
};

void on_frame(PadCtx* ctx, GstBuffer* buf) {
  Viewer* v = ctx->viewer;
  gint64 t = now_us();
  bool first = false;
  long long after = -1;
  bool key = false;
  {
    std::lock_guard lock(v->mutex);
    // A new call's first frame counts its gap too: what a user saw between the two calls.
    if (v->last_frame_us) {
      v->max_gap_us = std::max(v->max_gap_us, t - v->last_frame_us);
    }
    v->last_frame_us = t;
    ++v->frames;
    ++v->total_frames;
    v->bytes += gst_buffer_get_size(buf);
    v->total_bytes += gst_buffer_get_size(buf);
    if (ctx->first) {
      ctx->first = false;
      first = true;
      after = v->connected_us ? (t - v->connected_us) / 1000 : -1;
      int dk = v->decoder_first_key.exchange(-1);
      key = dk >= 0 ? dk == 1 : !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
      if (v->frames_seen_calls++ == 0) {
        v->first_frame_ms = after;
        v->first_keyframe = key;
      }
    }
  }
  if (first) {
    emit(v->name, "first-frame",
         ",\"peer\":" + json_string(ctx->peer) + ",\"keyframe\":" + (key ? "true" : "false") +
             ",\"ms_after_connected\":" + std::to_string(after));
  }
}

// Decoded mode: the element's decoder feeds the ghost pad; its input's first buffer says
// whether the call started on a keyframe.
void probe_decoder_input(Viewer* v, GstPad* src) {
  if (!GST_IS_GHOST_PAD(src)) return;
  GstPad* target = gst_ghost_pad_get_target(GST_GHOST_PAD(src));
  if (!target) return;
  GstElement* decoder = gst_pad_get_parent_element(target);
  gst_object_unref(target);
  if (!decoder) return;
  GstPad* sink = gst_element_get_static_pad(decoder, "sink");
  gst_object_unref(decoder);
  if (!sink) return;
  gst_pad_add_probe(
      sink, GST_PAD_PROBE_TYPE_BUFFER,
      +[](GstPad*, GstPadProbeInfo* info, gpointer data) -> GstPadProbeReturn {
        auto* viewer = static_cast<Viewer*>(data);
        GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
        int expected = -1;
        viewer->decoder_first_key.compare_exchange_strong(
            expected, GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT) ? 0 : 1);
        return GST_PAD_PROBE_REMOVE;
      },
      v, nullptr);
  gst_object_unref(sink);
}

void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
  auto* v = static_cast<Viewer*>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  gchar* kind = nullptr;
  gchar* peer = nullptr;
  g_object_get(pad, "kind", &kind, "peer", &peer, nullptr);
  bool video = g_strcmp0(kind, "video") == 0;
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
  if (video) {
    g_object_set(sink, "signal-handoffs", TRUE, nullptr);
    auto* ctx = new PadCtx{v, peer ? peer : ""};
    g_signal_connect_data(
        sink, "handoff", G_CALLBACK(+[](GstElement*, GstBuffer* buf, GstPad*, gpointer d) {
          on_frame(static_cast<PadCtx*>(d), buf);
        }),
        ctx, [](gpointer d, GClosure*) { delete static_cast<PadCtx*>(d); },
        static_cast<GConnectFlags>(0));
    v->decoder_first_key = -1;
    probe_decoder_input(v, pad);
  }
  g_free(kind);
  g_free(peer);
  gst_bin_add(GST_BIN(v->pipeline), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

// A call's pad goes: so does its fakesink.
void on_pad_removed(GstElement*, GstPad* pad, gpointer data) {
  test::remove_pad_consumer(static_cast<Viewer*>(data)->pipeline, pad);
}

std::string field(const GstStructure* s, const char* name) {
  const char* v = gst_structure_get_string(s, name);
  return v ? v : "";
}

GMainLoop* g_loop = nullptr;
std::vector<std::unique_ptr<Viewer>> g_viewers;
int g_exit_code = 0;

void stop_viewer(Viewer* v) {
  if (v->stopped) return;
  v->stopped = true;
  gst_element_set_state(v->pipeline, GST_STATE_NULL);
}

void quit_if_all_stopped() {
  for (auto& v : g_viewers) {
    if (!v->stopped) return;
  }
  g_main_loop_quit(g_loop);
}

gboolean on_bus(GstBus*, GstMessage* msg, gpointer data) {
  auto* v = static_cast<Viewer*>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ELEMENT: {
      const GstStructure* s = gst_message_get_structure(msg);
      if (!s || GST_MESSAGE_SRC(msg) != GST_OBJECT(v->call)) break;
      std::string n = gst_structure_get_name(s);
      if (n == "webrtccall-registered") {
        emit(v->name, "registered", ",\"name\":" + json_string(field(s, "name")));
      } else if (n == "webrtccall-call-started") {
        {
          std::lock_guard lock(v->mutex);
          if (!v->ticking) {
            v->ticking = true;
            v->tick_us = now_us();
          }
        }
        emit(v->name, "call-started",
             ",\"peer\":" + json_string(field(s, "peer")) +
                 ",\"direction\":" + json_string(field(s, "direction")));
      } else if (n == "webrtccall-call-connected") {
        // Recorded in the sync handler (on_bus_sync): printed here.
        emit(v->name, "connected", ",\"peer\":" + json_string(field(s, "peer")));
      } else if (n == "webrtccall-call-ended") {
        {
          std::lock_guard lock(v->mutex);
          ++v->calls_ended;
        }
        emit(v->name, "ended",
             ",\"peer\":" + json_string(field(s, "peer")) +
                 ",\"reason\":" + json_string(field(s, "reason")));
      } else if (n == "webrtccall-call-refused") {
        emit(v->name, "refused",
             ",\"peer\":" + json_string(field(s, "peer")) +
                 ",\"reason\":" + json_string(field(s, "reason")));
      } else if (n == "webrtccall-disconnected") {
        emit(v->name, "disconnected", ",\"reason\":" + json_string(field(s, "reason")));
      }
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError* err = nullptr;
      gst_message_parse_warning(msg, &err, nullptr);
      emit(v->name, "warning", ",\"message\":" + json_string(err->message));
      g_error_free(err);
      break;
    }
    case GST_MESSAGE_ERROR: {
      GError* err = nullptr;
      gchar* debug = nullptr;
      gst_message_parse_error(msg, &err, &debug);
      emit(v->name, "error",
           ",\"message\":" + json_string(err->message) +
               ",\"debug\":" + json_string(debug ? debug : ""));
      g_error_free(err);
      g_free(debug);
      v->failed = true;
      g_exit_code = 1;
      stop_viewer(v);
      quit_if_all_stopped();
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

// The instant a call connected, taken when the element posts it (the bus watch runs later).
GstBusSyncReply on_bus_sync(GstBus*, GstMessage* msg, gpointer data) {
  auto* v = static_cast<Viewer*>(data);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT) {
    const GstStructure* s = gst_message_get_structure(msg);
    if (s && gst_structure_has_name(s, "webrtccall-call-connected")) {
      std::lock_guard lock(v->mutex);
      v->connected_us = now_us();
      ++v->calls_connected;
    }
  }
  return GST_BUS_PASS;
}

char fmt_buf[64];
const char* fmt1(double d) {
  std::snprintf(fmt_buf, sizeof fmt_buf, "%.1f", d);
  return fmt_buf;
}

gboolean on_tick(gpointer) {
  gint64 t = now_us();
  for (auto& vp : g_viewers) {
    Viewer* v = vp.get();
    if (v->stopped) continue;
    std::string fields;
    {
      std::lock_guard lock(v->mutex);
      if (!v->ticking) continue;
      gint64 gap = v->max_gap_us;
      // A gap still going on counts too (no frame at all in this interval).
      if (v->last_frame_us) gap = std::max(gap, t - v->last_frame_us);
      v->overall_max_gap_us = std::max(v->overall_max_gap_us, gap);
      double secs = std::max<double>(1, t - v->tick_us) / 1e6;
      fields = ",\"frames\":" + std::to_string(v->frames) +
               ",\"fps\":" + fmt1(static_cast<double>(v->frames) / secs) +
               ",\"max_gap_ms\":" + std::to_string(gap / 1000) +
               ",\"bytes\":" + std::to_string(v->bytes) +
               ",\"total_frames\":" + std::to_string(v->total_frames);
      v->frames = v->bytes = 0;
      v->max_gap_us = 0;
      v->tick_us = t;
    }
    emit(v->name, "tick", fields);
  }
  return G_SOURCE_CONTINUE;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "wcc-viewer: %s\n"
               "usage: wcc-viewer --server WS_URL --name NAME [--count N] [--call SENDER | "
               "--wait]\n"
               "                  [--ice-address ADDR] [--no-decode] [--codec vp8|h264]\n"
               "                  [--duration S] [--extra 'prop=value ...'] [--pli-every MS]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--server") {
      o.server = value();
    } else if (a == "--name") {
      o.name = value();
    } else if (a == "--count") {
      long n = std::strtol(value().c_str(), nullptr, 10);
      if (n < 1 || n > 1000) usage("--count must be 1-1000");
      o.count = static_cast<unsigned>(n);
    } else if (a == "--call") {
      o.call = value();
    } else if (a == "--wait") {
      o.wait = true;
    } else if (a == "--ice-address") {
      o.ice_address = value();
    } else if (a == "--no-decode") {
      o.decode = false;
    } else if (a == "--codec") {
      o.codec = value();
      if (o.codec != "vp8" && o.codec != "h264") usage("--codec is vp8 or h264");
    } else if (a == "--duration") {
      o.duration = std::strtod(value().c_str(), nullptr);
      if (o.duration <= 0) usage("--duration must be > 0");
    } else if (a == "--extra") {
      o.extra = value();
    } else if (a == "--pli-every") {
      long ms = std::strtol(value().c_str(), nullptr, 10);
      if (ms < 1 || ms > 600000) usage("--pli-every must be 1-600000 ms");
      o.pli_every_ms = static_cast<unsigned>(ms);
    } else if (a == "--help" || a == "-h") {
      usage("help");
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (o.server.empty() || o.name.empty()) usage("--server and --name are needed");
  if (o.call.empty() == !o.wait) usage("give one of --call SENDER and --wait");
  return o;
}

bool make_viewer(Viewer* v, const Options& o) {
  std::string desc = "webrtccall name=call username=" + v->name + " signaling-server=" + o.server +
                     " video-codec=" + o.codec + " output-encoded=" + (o.decode ? "false" : "true");
  if (!o.call.empty()) desc += " peer=" + o.call;
  if (!o.ice_address.empty()) desc += " ice-addresses=<\"" + o.ice_address + "\">";
  desc += " " + o.extra;
  GError* err = nullptr;
  GstElement* e = gst_parse_launch(desc.c_str(), &err);
  if (err) {
    emit(v->name, "error", ",\"message\":" + json_string(err->message));
    g_error_free(err);
    if (e) gst_object_unref(e);
    return false;
  }
  if (GST_IS_PIPELINE(e)) {
    v->pipeline = e;
    v->call = gst_bin_get_by_name(GST_BIN(e), "call");
  } else {
    v->pipeline = gst_pipeline_new(v->name.c_str());
    gst_bin_add(GST_BIN(v->pipeline), e);
    v->call = GST_ELEMENT(gst_object_ref(e));
  }
  g_signal_connect(v->call, "pad-added", G_CALLBACK(on_pad_added), v);
  g_signal_connect(v->call, "pad-removed", G_CALLBACK(on_pad_removed), v);
  GstBus* bus = gst_element_get_bus(v->pipeline);
  gst_bus_set_sync_handler(bus, on_bus_sync, v, nullptr);
  gst_bus_add_watch(bus, on_bus, v);
  gst_object_unref(bus);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  g_start_us = now_us();
#ifdef WCC_PLUGIN_DIR
  // Run from the build tree without any environment: the plugin built beside us.
  g_setenv("GST_PLUGIN_PATH", WCC_PLUGIN_DIR, FALSE);
#endif
  gst_init(&argc, &argv);
  Options o = parse(argc, argv);
  g_loop = g_main_loop_new(nullptr, FALSE);

  for (unsigned i = 1; i <= o.count; ++i) {
    auto v = std::make_unique<Viewer>();
    v->name = o.count > 1 ? o.name + "-" + std::to_string(i) : o.name;
    if (!make_viewer(v.get(), o)) return 1;
    g_viewers.push_back(std::move(v));
  }
  for (auto& v : g_viewers) {
    if (gst_element_set_state(v->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      emit(v->name, "error", ",\"message\":\"cannot start the pipeline\"");
      v->failed = true;
      g_exit_code = 1;
      stop_viewer(v.get());
    }
  }
  auto quit = +[](gpointer) -> gboolean {
    g_main_loop_quit(g_loop);
    return G_SOURCE_REMOVE;
  };
  g_unix_signal_add(SIGTERM, quit, nullptr);
  g_unix_signal_add(SIGINT, quit, nullptr);
  if (o.duration > 0) g_timeout_add(static_cast<guint>(o.duration * 1000), quit, nullptr);
  g_timeout_add(1000, on_tick, nullptr);
  if (o.pli_every_ms) {
    // A viewer that keeps asking for keyframes: an upstream force-key-unit from its sinks,
    // which the receiving rtpsession turns into an RTCP PLI to the sender.
    g_timeout_add(
        o.pli_every_ms,
        +[](gpointer) -> gboolean {
          for (auto& v : g_viewers) {
            if (v->stopped) continue;
            GstStructure* s =
                gst_structure_new("GstForceKeyUnit", "all-headers", G_TYPE_BOOLEAN, FALSE, nullptr);
            gst_element_send_event(v->pipeline, gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, s));
          }
          return G_SOURCE_CONTINUE;
        },
        nullptr);
  }
  quit_if_all_stopped();
  if (g_exit_code == 0 ||
      std::any_of(g_viewers.begin(), g_viewers.end(), [](auto& v) { return !v->stopped; })) {
    g_main_loop_run(g_loop);
  }

  for (auto& v : g_viewers) stop_viewer(v.get());
  for (auto& vp : g_viewers) {
    Viewer* v = vp.get();
    std::string fields;
    {
      std::lock_guard lock(v->mutex);
      fields = ",\"frames\":" + std::to_string(v->total_frames) +
               ",\"bytes\":" + std::to_string(v->total_bytes) +
               ",\"calls_connected\":" + std::to_string(v->calls_connected) +
               ",\"calls_ended\":" + std::to_string(v->calls_ended) +
               ",\"first_frame_ms\":" + std::to_string(v->first_frame_ms) +
               ",\"first_keyframe\":" + (v->first_keyframe ? "true" : "false") +
               ",\"max_gap_ms\":" + std::to_string(v->overall_max_gap_us / 1000) +
               ",\"failed\":" + (v->failed ? "true" : "false");
    }
    emit(v->name, "summary", fields);
    GstBus* bus = gst_element_get_bus(v->pipeline);
    gst_bus_remove_watch(bus);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
    gst_object_unref(v->call);
    gst_object_unref(v->pipeline);
  }
  g_viewers.clear();
  g_main_loop_unref(g_loop);
  return g_exit_code;
}
