// bench/call-setup: call setup time and glass-to-glass latency of the webrtccall element,
// element to element through the real webrtc-call-server. It prints figures; it is not a test
// and asserts nothing about time in a test (the targets are printed next to the figures), but
// its exit status says whether they were met, for scripts and for whoever reads only that:
//   0 every target met; 4 a target MISSED (or no figure to judge it by); 1 the run itself went
//   wrong (a pipeline did not start, the peers did not register, the glass-to-glass call did
//   not come up or ended); 2 bad arguments; 3 --timeout.
//
// Two pipelines in this process, "callee" and "caller", each
//   videotestsrc is-live (640x480@30 I420, scrolling) ! [stamp probe] ! webrtccall.video_0
//   audiotestsrc is-live ! webrtccall.audio_0
// with video-codec=vp8, registered on a webrtc-call-server spawned on 127.0.0.1 with a free port.
// Received streams (the element's video_src_%u / audio_src_%u pads) go to fakesinks (sync=false
// unless --sync); decoded frames are timed by a probe on the video_src pad.
//
//   (1) call setup: N calls in sequence. The caller emits "call" ("callee"); per side, the time
//       from the emission to the first decoded video frame on that side's video_src pad. Then
//       "hang-up", wait for webrtccall-call-ended on both sides and for the src pads to be gone.
//       The bus messages (call-started, call-connected) and pad-added are timestamped too, to
//       show where the time goes.
//   (2) glass-to-glass latency: the sender writes CLOCK_MONOTONIC (us, same process, so the same
//       clock) into every frame it sends, as black/white blocks in the top rows of the Y plane
//       (4 marker blocks, 48 bits of time, CRC-8, 4 marker blocks); the receiver reads the
//       blocks back from the decoded frame (block averages against a threshold), rejects
//       frames whose markers or CRC do not match, and takes now - written time. Also printed:
//       per frame where the time went (probes on the element's internal vp8enc and vp8dec,
//       matched by PTS) and, with --sync, when the synchronised sink renders the frame.
//
// WebRTC peers must only run inside a network namespace of their own: unless it already runs
// in one made by tests/netns-run.sh (WCC_IN_NETNS=1 and its veth wcc0), the program re-executes
// itself through tests/netns-run.sh. Every wait has a deadline, the whole run has a hard limit
// (--timeout), and the server is stopped (SIGTERM, then SIGKILL) on every path, dies with us
// (PR_SET_PDEATHSIG), and is SIGKILLed from the signal handlers.
//
//   call-setup [--calls 50] [--duration 10] [--warmup 1] [--latency MS] [--bitrate KBPS]
//              [--block 8] [--pattern smpte] [--speed 4] [--call-wait 15] [--timeout 600]
//              [--server PATH] [--plugin-path DIR] [--netns-run PATH] [--sync]
//              [--vp8enc-threads N] [--verbose]
//   --sync: received streams go to clock-synchronised sinks (as a display would be), and the
//           time a frame is rendered is printed too.
//   --vp8enc-threads N: a what-if, not the element as shipped: sets `threads` on the element's
//           internal vp8enc when the element adds it (before it is configured).
#include <fcntl.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#ifndef CALL_SETUP_SERVER
#define CALL_SETUP_SERVER "build/signaling/webrtc-call-server"
#endif
#ifndef CALL_SETUP_PLUGIN_DIR
#define CALL_SETUP_PLUGIN_DIR "build/gst-plugin"
#endif
#ifndef CALL_SETUP_NETNS_RUN
#define CALL_SETUP_NETNS_RUN "tests/netns-run.sh"
#endif

GST_DEBUG_CATEGORY_STATIC(bench_debug);  // GST_DEBUG=call-setup:4 marks calls in the log
#define GST_CAT_DEFAULT bench_debug

namespace {

using Us = std::int64_t;

Us now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Us>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

double ms(Us d) {
  return static_cast<double>(d) / 1000.0;
}

// ---- options ----

struct Options {
  int calls = 50;
  double duration_s = 10;  // glass-to-glass measurement window; 0 skips phase 2
  double warmup_s = 1;     // glass-to-glass: time after the first frames before measuring
  int latency_ms = -1;     // the element's latency property; -1: its default
  int bitrate_kbps = -1;   // the element's video-bitrate; -1: its default
  int block = 8;           // stamp block size in pixels
  std::string pattern = "smpte";
  int speed = 4;  // videotestsrc horizontal-speed: the picture scrolls, so every frame changes
  int call_wait_s = 15;  // per call: emission -> first frames on both sides, at most
  int timeout_s = 600;   // the whole run, at most
  std::string server = CALL_SETUP_SERVER;
  std::string plugin_path = CALL_SETUP_PLUGIN_DIR;
  std::string netns_run = CALL_SETUP_NETNS_RUN;
  bool verbose = false;
  bool sync = false;       // received streams to clock-synchronised sinks (as a display would be)
  int vp8enc_threads = 0;  // > 0: override the threads of the element's internal vp8enc
};

[[noreturn]] void usage(const char* argv0, int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: %s [--calls N] [--duration S] [--warmup S] [--latency MS] "
               "[--bitrate KBPS]\n"
               "       [--block PX] [--pattern NAME] [--speed PX] [--call-wait S] [--timeout S]\n"
               "       [--server PATH] [--plugin-path DIR] [--netns-run PATH] [--sync]\n"
               "       [--vp8enc-threads N] [--verbose]\n"
               "Runs itself inside a network namespace of its own (tests/netns-run.sh).\n"
               "Exit status: 0 targets met, 4 a target MISSED, 1 the run went wrong, 2 bad "
               "arguments, 3 --timeout hit.\n",
               argv0);
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], 2);
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      std::string v = value();
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(d >= lo && d <= hi)) {
        std::fprintf(stderr, "%s: %s out of range [%g, %g]\n", a.c_str(), v.c_str(), lo, hi);
        std::exit(2);
      }
      return d;
    };
    if (a == "--calls")
      o.calls = static_cast<int>(number(1, 10000));
    else if (a == "--duration")
      o.duration_s = number(0, 3600);
    else if (a == "--warmup")
      o.warmup_s = number(0, 60);
    else if (a == "--latency")
      o.latency_ms = static_cast<int>(number(0, 10000));
    else if (a == "--bitrate")
      o.bitrate_kbps = static_cast<int>(number(50, 50000));
    else if (a == "--block")
      o.block = static_cast<int>(number(4, 32));
    else if (a == "--pattern")
      o.pattern = value();
    else if (a == "--speed")
      o.speed = static_cast<int>(number(-64, 64));
    else if (a == "--call-wait")
      o.call_wait_s = static_cast<int>(number(1, 300));
    else if (a == "--timeout")
      o.timeout_s = static_cast<int>(number(10, 86400));
    else if (a == "--server")
      o.server = value();
    else if (a == "--plugin-path")
      o.plugin_path = value();
    else if (a == "--netns-run")
      o.netns_run = value();
    else if (a == "--verbose")
      o.verbose = true;
    else if (a == "--sync")
      o.sync = true;
    else if (a == "--vp8enc-threads")
      o.vp8enc_threads = static_cast<int>(number(1, 64));
    else if (a == "--help" || a == "-h")
      usage(argv[0], 0);
    else
      usage(argv[0], 2);
  }
  return o;
}

// ---- the server ----

volatile sig_atomic_t g_server_pid = 0;

void on_fatal_signal(int sig) {
  if (g_server_pid > 0) kill(static_cast<pid_t>(g_server_pid), SIGKILL);
  static const char msg[] =
      "\ncall-setup: interrupted or hard time limit (--timeout) hit; "
      "server killed\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(sig == SIGALRM ? 3 : 128 + sig);
}

class Server {
 public:
  // Starts the server; ws_url() is empty when it did not announce its port within 10 s.
  Server(const std::string& path, bool verbose) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_t pid = fork();
    if (pid < 0) {
      close(out[0]);
      close(out[1]);
      return;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      if (!verbose) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDERR_FILENO);
      }
      execl(path.c_str(), path.c_str(), "--address", "127.0.0.1", "--port", "0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    g_server_pid = pid;
    close(out[1]);
    std::string line;
    Us deadline = now_us() + 10 * 1000000;
    while (line.find('\n') == std::string::npos) {
      Us left = deadline - now_us();
      pollfd p{out[0], POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left / 1000) + 1) <= 0) break;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    stdout_ = out[0];  // kept open until it exits: a write to a closed pipe would kill it
    const std::string prefix = "Listening on http://";
    if (line.rfind(prefix, 0) == 0) {
      std::string hostport = line.substr(prefix.size());
      hostport = hostport.substr(0, hostport.find('/'));
      ws_url_ = "ws://" + hostport + "/ws";
      address_ = hostport;
    }
  }
  ~Server() { stop(); }
  void stop() {
    pid_t pid = static_cast<pid_t>(g_server_pid);
    if (pid <= 0) return close_stdout();
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; ++i) {  // it exits within 2 s on SIGTERM
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        g_server_pid = 0;
        return close_stdout();
      }
      g_usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    g_server_pid = 0;
    close_stdout();
  }
  const std::string& ws_url() const { return ws_url_; }
  const std::string& address() const { return address_; }

 private:
  void close_stdout() {
    if (stdout_ >= 0) close(stdout_);
    stdout_ = -1;
  }
  int stdout_ = -1;
  std::string ws_url_, address_;
};

// ---- the time stamp drawn into frames ----

constexpr int kMarkerHead[4] = {1, 0, 1, 0};
constexpr int kMarkerTail[4] = {0, 1, 1, 0};
constexpr int kDataBits = 48;
constexpr int kCrcBits = 8;
constexpr int kBlocks = 4 + kDataBits + kCrcBits + 4;
constexpr guint8 kWhite = 235, kBlack = 16, kGray = 128, kThreshold = 126;

guint8 crc8(Us value) {
  guint8 crc = 0;
  for (int byte = 5; byte >= 0; --byte) {
    crc ^= static_cast<guint8>((static_cast<std::uint64_t>(value) >> (8 * byte)) & 0xff);
    for (int b = 0; b < 8; ++b)
      crc = (crc & 0x80) ? static_cast<guint8>((crc << 1) ^ 0x07) : static_cast<guint8>(crc << 1);
  }
  return crc;
}

std::vector<int> stamp_bits(Us value) {
  std::vector<int> bits(std::begin(kMarkerHead), std::end(kMarkerHead));
  for (int i = kDataBits - 1; i >= 0; --i) bits.push_back((value >> i) & 1);
  guint8 crc = crc8(value);
  for (int i = kCrcBits - 1; i >= 0; --i) bits.push_back((crc >> i) & 1);
  bits.insert(bits.end(), std::begin(kMarkerTail), std::end(kMarkerTail));
  return bits;
}

// Rows of blocks the stamp needs at this width; 0 when the frame is too small.
int stamp_rows(int width, int block) {
  int per_row = width / block;
  if (per_row < 1) return 0;
  return (kBlocks + per_row - 1) / per_row;
}

// Draws `value` into the top rows of an I420 frame: a band of gray (luma and chroma), then the
// blocks, then one row of gray blocks under them as a guard against the picture below.
bool draw_stamp(GstVideoFrame* f, Us value, int block) {
  int width = GST_VIDEO_FRAME_WIDTH(f), height = GST_VIDEO_FRAME_HEIGHT(f);
  int rows = stamp_rows(width, block);
  int band = (rows + 1) * block;
  if (rows == 0 || band > height) return false;
  auto* y = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(f, 0));
  int ystride = GST_VIDEO_FRAME_PLANE_STRIDE(f, 0);
  for (int r = 0; r < band; ++r) std::memset(y + r * ystride, kGray, static_cast<size_t>(width));
  for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES(f); ++p) {
    auto* c = static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(f, p));
    int stride = GST_VIDEO_FRAME_PLANE_STRIDE(f, p);
    int cw = GST_VIDEO_FRAME_COMP_WIDTH(f, p), ch = GST_VIDEO_FRAME_COMP_HEIGHT(f, p);
    int crows = std::min(ch, (band * ch + height - 1) / height);
    for (int r = 0; r < crows; ++r) std::memset(c + r * stride, 128, static_cast<size_t>(cw));
  }
  std::vector<int> bits = stamp_bits(value);
  int per_row = width / block;
  for (int i = 0; i < kBlocks; ++i) {
    int bx = (i % per_row) * block, by = (i / per_row) * block;
    guint8 v = bits[static_cast<size_t>(i)] ? kWhite : kBlack;
    for (int r = 0; r < block; ++r) std::memset(y + (by + r) * ystride + bx, v, block);
  }
  return true;
}

enum class Read { kOk, kNoMarkers, kBadCrc, kTooSmall };

// Reads the stamp back: the average of the inner half of each block against the threshold.
// `weakest` gets the smallest distance of a block average from the threshold.
Read read_stamp(const GstVideoFrame* f, int block, Us* value, int* weakest) {
  int width = GST_VIDEO_FRAME_WIDTH(f), height = GST_VIDEO_FRAME_HEIGHT(f);
  int rows = stamp_rows(width, block);
  if (rows == 0 || (rows + 1) * block > height) return Read::kTooSmall;
  const auto* y = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(f, 0));
  int ystride = GST_VIDEO_FRAME_PLANE_STRIDE(f, 0);
  int per_row = width / block;
  int lo = block / 4, hi = block - block / 4;
  std::vector<int> bits;
  *weakest = 255;
  for (int i = 0; i < kBlocks; ++i) {
    int bx = (i % per_row) * block, by = (i / per_row) * block;
    int sum = 0, n = 0;
    for (int r = lo; r < hi; ++r) {
      for (int c = lo; c < hi; ++c) {
        sum += y[(by + r) * ystride + bx + c];
        ++n;
      }
    }
    int avg = sum / n;
    *weakest = std::min(*weakest, std::abs(avg - kThreshold));
    bits.push_back(avg > kThreshold ? 1 : 0);
  }
  for (int i = 0; i < 4; ++i) {
    if (bits[static_cast<size_t>(i)] != kMarkerHead[i] ||
        bits[static_cast<size_t>(kBlocks - 4 + i)] != kMarkerTail[i]) {
      return Read::kNoMarkers;
    }
  }
  Us v = 0;
  for (int i = 0; i < kDataBits; ++i) v = (v << 1) | bits[static_cast<size_t>(4 + i)];
  int crc = 0;
  for (int i = 0; i < kCrcBits; ++i)
    crc = (crc << 1) | bits[static_cast<size_t>(4 + kDataBits + i)];
  if (crc != crc8(v)) return Read::kBadCrc;
  *value = v;
  return Read::kOk;
}

// ---- the two peers ----

std::mutex g_mutex;  // guards everything below that is not atomic
std::condition_variable g_cond;
std::atomic<int> g_call{0};            // the current call's number; probes count for it
std::atomic<bool> g_measuring{false};  // glass-to-glass window open

// What happened on one side during the current call (times in us, 0: not yet).
struct CallEvents {
  Us started = 0, connected = 0, ended = 0, refused = 0, video_pad = 0, first_video = 0;
  std::string ended_reason;
};

struct Latency {
  std::vector<Us> samples;
  // Per frame, where both ends are known: capture -> encoder output (encode and the queue
  // before it), encoder output -> decoder input (payloader, webrtcbin, SRTP, UDP, jitter
  // buffer, depayloader), decoder input -> output.
  std::vector<Us> encode, transport, decode;
  std::vector<Us> rendered;  // capture -> a clock-synchronised sink renders it
  int rejected_markers = 0, rejected_crc = 0, implausible = 0, marginal = 0;
  long stamped = 0;    // frames this side stamped within the window (it is the sender)
  long encoded = 0;    // frames its encoder put out within the window
  long keyframes = 0;  // of which key frames
  std::uint64_t encoded_bytes = 0;
  Us window_start = 0, window_end = 0;
};

class Side {
 public:
  Side(std::string name, const std::string& url, const Options& o) : name_(std::move(name)) {
    block_ = o.block;
    sync_ = o.sync;
    std::string desc =
        "webrtccall name=call username=" + name_ + " signaling-server=" + url + " video-codec=vp8";
    if (o.latency_ms >= 0) desc += " latency=" + std::to_string(o.latency_ms);
    if (o.bitrate_kbps >= 0) desc += " video-bitrate=" + std::to_string(o.bitrate_kbps);
    desc += " videotestsrc is-live=true pattern=" + o.pattern +
            " horizontal-speed=" + std::to_string(o.speed) +
            " ! capsfilter name=vcaps caps=video/x-raw,format=I420,width=640,height=480,"
            "framerate=30/1 ! call.video_0"
            " audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1 ! "
            "call.audio_0";
    GError* err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    if (err) {
      std::fprintf(stderr, "[%s] pipeline: %s\n", name_.c_str(), err->message);
      g_error_free(err);
      if (pipeline_) gst_object_unref(pipeline_);
      pipeline_ = nullptr;
      return;
    }
    gst_object_set_name(GST_OBJECT(pipeline_), name_.c_str());
    call_ = gst_bin_get_by_name(GST_BIN(pipeline_), "call");
    GstElement* vcaps = gst_bin_get_by_name(GST_BIN(pipeline_), "vcaps");
    GstPad* src = gst_element_get_static_pad(vcaps, "src");
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_send_buffer, this, nullptr);
    gst_object_unref(src);
    gst_object_unref(vcaps);
    g_signal_connect(call_, "pad-added", G_CALLBACK(on_pad_added), this);
    if (o.vp8enc_threads > 0) {
      // The element builds its encoder chain on the input's caps; the encoder reads its
      // properties when the caps reach it, after it was added.
      g_signal_connect(call_, "element-added",
                       G_CALLBACK(+[](GstBin*, GstElement* e, gpointer threads) {
                         GstElementFactory* f = gst_element_get_factory(e);
                         if (f && g_str_equal(GST_OBJECT_NAME(f), "vp8enc")) {
                           g_object_set(e, "threads", GPOINTER_TO_INT(threads), nullptr);
                         }
                       }),
                       GINT_TO_POINTER(o.vp8enc_threads));
    }
    g_signal_connect(call_, "pad-removed", G_CALLBACK(on_pad_removed), this);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, on_bus, this, nullptr);
    gst_object_unref(bus);
  }

  ~Side() {
    if (!pipeline_) return;
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    GstBus* bus = gst_element_get_bus(pipeline_);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
    gst_object_unref(call_);
    gst_object_unref(pipeline_);
  }

  bool ok() const { return pipeline_ != nullptr; }
  bool play() {
    return gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  }
  GstElement* element() const { return call_; }
  GstElement* pipeline() const { return pipeline_; }
  const std::string& name() const { return name_; }

  // Guarded by g_mutex.
  CallEvents events;
  Latency latency;
  bool registered = false;
  std::vector<std::string> errors;

  // The element's source pads now, counted by pad-added/pad-removed (not read under the
  // element's lock: our waits hold g_mutex, which the bus handler takes).
  int src_pads() const { return src_pads_.load(); }
  int calls() const {
    GStrv calls = nullptr;
    g_object_get(call_, "calls", &calls, nullptr);
    int n = calls ? static_cast<int>(g_strv_length(calls)) : 0;
    g_strfreev(calls);
    return n;
  }
  bool sees(const std::string& user) const {
    GStrv users = nullptr;
    g_object_get(call_, "users", &users, nullptr);
    bool found = users && g_strv_contains(users, user.c_str());
    g_strfreev(users);
    return found;
  }

 private:
  static GstPadProbeReturn on_send_buffer(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Side*>(data);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    GstVideoInfo vinfo;
    bool have_info = caps && gst_video_info_from_caps(&vinfo, caps);
    if (caps) gst_caps_unref(caps);
    if (!have_info) return GST_PAD_PROBE_OK;
    GstBuffer* buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &vinfo, buf, GST_MAP_WRITE)) return GST_PAD_PROBE_OK;
    Us t = now_us();  // after basesrc's clock wait of a live source: the capture time
    bool drawn = draw_stamp(&frame, t, self->block_);
    gst_video_frame_unmap(&frame);
    if (drawn && g_measuring.load()) {
      std::lock_guard lock(g_mutex);
      if (t >= self->latency.window_start && t < self->latency.window_end) {
        self->latency.stamped++;
      }
      if (GST_BUFFER_PTS_IS_VALID(buf)) bounded_put(self->stamp_of_pts_, GST_BUFFER_PTS(buf), t);
    }
    return GST_PAD_PROBE_OK;
  }

  template <typename K>
  static void bounded_put(std::map<K, Us>& m, K key, Us value) {
    m.emplace(key, value);
    while (m.size() > 256) m.erase(m.begin());
  }

  // Sender: the encoded frame leaves the element's vp8enc (same PTS as the raw frame).
  static GstPadProbeReturn on_encoded(GstPad*, GstPadProbeInfo* info, gpointer data) {
    Us t = now_us();
    auto* self = static_cast<Side*>(data);
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!g_measuring.load() || !GST_BUFFER_PTS_IS_VALID(buf)) return GST_PAD_PROBE_OK;
    std::lock_guard lock(g_mutex);
    if (t >= self->latency.window_start && t < self->latency.window_end) {
      self->latency.encoded++;
      self->latency.encoded_bytes += gst_buffer_get_size(buf);
      if (!GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) self->latency.keyframes++;
    }
    auto it = self->stamp_of_pts_.find(GST_BUFFER_PTS(buf));
    if (it != self->stamp_of_pts_.end()) bounded_put(self->encoded_at_, it->second, t);
    return GST_PAD_PROBE_OK;
  }

  // Receiver: an encoded frame enters the call's decoder.
  static GstPadProbeReturn on_decoder_input(GstPad*, GstPadProbeInfo* info, gpointer data) {
    Us t = now_us();
    auto* self = static_cast<Side*>(data);
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!g_measuring.load() || !GST_BUFFER_PTS_IS_VALID(buf)) return GST_PAD_PROBE_OK;
    std::lock_guard lock(g_mutex);
    bounded_put(self->decoder_in_, GST_BUFFER_PTS(buf), t);
    return GST_PAD_PROBE_OK;
  }

 public:
  // Watches the element's own vp8enc (an internal: found by factory name) for the breakdown.
  bool watch_encoder() {
    GstElement* enc = find_internal("vp8enc");
    if (!enc) return false;
    GstPad* src = gst_element_get_static_pad(enc, "src");
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, this, nullptr);
    gst_object_unref(src);
    gst_object_unref(enc);
    return true;
  }
  Side* other = nullptr;  // the side that sends what this one receives

  // An element the webrtccall bin holds, by factory name (ref'ed), or null.
  GstElement* find_internal(const char* factory) {
    GstElement* found = nullptr;
    GstIterator* it = gst_bin_iterate_elements(GST_BIN(call_));
    GValue item = G_VALUE_INIT;
    while (!found && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      auto* e = GST_ELEMENT(g_value_get_object(&item));
      GstElementFactory* f = gst_element_get_factory(e);
      if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) found = GST_ELEMENT(gst_object_ref(e));
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    return found;
  }

 private:
  struct RxCtx {
    Side* side;
    int call;  // the call the pad belongs to
  };

  static void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<Side*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    self->src_pads_++;
    gchar* kind = nullptr;
    g_object_get(pad, "kind", &kind, nullptr);
    bool video = g_strcmp0(kind, "video") == 0;
    g_free(kind);
    int call = g_call.load();
    if (video) {
      {
        std::lock_guard lock(g_mutex);
        if (!self->events.video_pad) self->events.video_pad = now_us();
        GST_INFO("%s: video pad %s added", self->name_.c_str(), GST_PAD_NAME(pad));
        g_cond.notify_all();
      }
      // Decoded frames as they leave the element.
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_decoded, new RxCtx{self, call},
                        [](gpointer d) { delete static_cast<RxCtx*>(d); });
      // The pad's target is the decoder's source pad: watch the decoder's input too.
      if (GstPad* target = gst_ghost_pad_get_target(GST_GHOST_PAD(pad))) {
        if (GstElement* decoder = gst_pad_get_parent_element(target)) {
          if (GstPad* in = gst_element_get_static_pad(decoder, "sink")) {
            gst_pad_add_probe(in, GST_PAD_PROBE_TYPE_BUFFER, on_decoder_input, self, nullptr);
            gst_object_unref(in);
          }
          gst_object_unref(decoder);
        }
        gst_object_unref(target);
      }
    }
    // With --sync, as a display would be: a queue, then a sink synchronised to the pipeline
    // clock (its handoff comes when the frame is due), given the pipeline's latency. No last
    // sample: a kept buffer would keep the ended call's decoder pool alive.
    std::vector<GstElement*> chain;
    if (self->sync_) chain.push_back(gst_element_factory_make("queue", nullptr));
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    chain.push_back(sink);
    g_object_set(sink, "sync", self->sync_ ? TRUE : FALSE, "async", FALSE, "enable-last-sample",
                 FALSE, nullptr);
    if (video && self->sync_) {
      g_object_set(sink, "signal-handoffs", TRUE, nullptr);
      g_signal_connect(sink, "handoff", G_CALLBACK(on_rendered), self);
    }
    for (GstElement* e : chain) gst_bin_add(GST_BIN(self->pipeline_), e);
    if (chain.size() == 2) gst_element_link(chain[0], chain[1]);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
      gst_element_sync_state_with_parent(*it);
    GstPad* sinkpad = gst_element_get_static_pad(chain.front(), "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
    if (self->sync_) gst_bin_recalculate_latency(GST_BIN(self->pipeline_));
  }

  // As an application would: a call's pad goes, so does what consumed it.
  static void on_pad_removed(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<Side*>(data);
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) {
      self->src_pads_--;
      std::lock_guard lock(g_mutex);
      g_cond.notify_all();
    }
    // What consumed it: the fakesink, or the queue and the fakesink after it.
    GstPad* peer = gst_pad_get_peer(pad);
    while (peer) {
      GstElement* e = gst_pad_get_parent_element(peer);
      gst_object_unref(peer);
      peer = nullptr;
      if (!e) break;
      if (GstPad* src = gst_element_get_static_pad(e, "src")) {
        peer = gst_pad_get_peer(src);
        gst_object_unref(src);
      }
      gst_element_set_locked_state(e, TRUE);
      gst_element_set_state(e, GST_STATE_NULL);
      gst_bin_remove(GST_BIN(self->pipeline_), e);
      gst_object_unref(e);
    }
  }

  // A decoded frame leaves the element (its video_src pad): first frame of the call, and the
  // glass-to-glass figure of the brief (receive time after decode - time written).
  static GstPadProbeReturn on_decoded(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    Us t = now_us();
    auto* ctx = static_cast<RxCtx*>(data);
    Side* self = ctx->side;
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (ctx->call == g_call.load()) {
      std::lock_guard lock(g_mutex);
      if (!self->events.first_video) {
        GST_INFO("%s: first decoded video frame", self->name_.c_str());
        self->events.first_video = t;
        g_cond.notify_all();
      }
    }
    if (!g_measuring.load()) return GST_PAD_PROBE_OK;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    GstVideoInfo vinfo;
    bool have_info = caps && gst_video_info_from_caps(&vinfo, caps);
    if (caps) gst_caps_unref(caps);
    if (!have_info) return GST_PAD_PROBE_OK;
    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &vinfo, buf, GST_MAP_READ)) return GST_PAD_PROBE_OK;
    Us stamp = 0;
    int weakest = 0;
    Read r = read_stamp(&frame, self->block_, &stamp, &weakest);
    gst_video_frame_unmap(&frame);
    std::lock_guard lock(g_mutex);
    Latency& l = self->latency;
    if (t < l.window_start || t >= l.window_end) return GST_PAD_PROBE_OK;
    if (weakest < 48) l.marginal++;
    switch (r) {
      case Read::kOk:
        // Written at most 10 s ago by this process: anything else is a misread.
        if (stamp <= t && t - stamp < 10 * 1000000) {
          l.samples.push_back(t - stamp);
          if (GST_BUFFER_PTS_IS_VALID(buf))
            bounded_put(self->stamp_of_rx_pts_, GST_BUFFER_PTS(buf), stamp);
          auto enc =
              self->other ? self->other->encoded_at_.find(stamp) : std::map<Us, Us>::iterator{};
          auto dec = GST_BUFFER_PTS_IS_VALID(buf) ? self->decoder_in_.find(GST_BUFFER_PTS(buf))
                                                  : self->decoder_in_.end();
          if (self->other && enc != self->other->encoded_at_.end() &&
              dec != self->decoder_in_.end() && enc->second <= dec->second) {
            l.encode.push_back(enc->second - stamp);
            l.transport.push_back(dec->second - enc->second);
            l.decode.push_back(t - dec->second);
          }
        } else {
          l.implausible++;
        }
        break;
      case Read::kNoMarkers:
      case Read::kTooSmall:
        l.rejected_markers++;
        break;
      case Read::kBadCrc:
        l.rejected_crc++;
        break;
    }
    return GST_PAD_PROBE_OK;
  }

  // The synchronised sink renders a frame: what a display would show, and when.
  static void on_rendered(GstElement*, GstBuffer* buf, GstPad*, gpointer data) {
    Us t = now_us();
    auto* self = static_cast<Side*>(data);
    if (!g_measuring.load() || !GST_BUFFER_PTS_IS_VALID(buf)) return;
    std::lock_guard lock(g_mutex);
    auto it = self->stamp_of_rx_pts_.find(GST_BUFFER_PTS(buf));
    if (it == self->stamp_of_rx_pts_.end()) return;
    self->latency.rendered.push_back(t - it->second);
    self->stamp_of_rx_pts_.erase(it);
  }

  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer data) {
    Us t = now_us();  // sync handler: runs in the posting thread, at post time
    auto* self = static_cast<Side*>(data);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT &&
        GST_MESSAGE_SRC(msg) == GST_OBJECT(self->call_)) {
      const GstStructure* s = gst_message_get_structure(msg);
      std::lock_guard lock(g_mutex);
      CallEvents& e = self->events;
      if (gst_structure_has_name(s, "webrtccall-registered")) {
        self->registered = true;
      } else if (gst_structure_has_name(s, "webrtccall-call-started")) {
        if (!e.started) e.started = t;
      } else if (gst_structure_has_name(s, "webrtccall-call-connected")) {
        if (!e.connected) e.connected = t;
      } else if (gst_structure_has_name(s, "webrtccall-call-ended")) {
        if (!e.ended) {
          e.ended = t;
          const char* reason = gst_structure_get_string(s, "reason");
          e.ended_reason = reason ? reason : "";
        }
      } else if (gst_structure_has_name(s, "webrtccall-call-refused")) {
        if (!e.refused) e.refused = t;
      }
      g_cond.notify_all();
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR ||
               GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
      GError* err = nullptr;
      gchar* debug = nullptr;
      bool error = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      if (error) {
        gst_message_parse_error(msg, &err, &debug);
      } else {
        gst_message_parse_warning(msg, &err, &debug);
      }
      std::string text = std::string(error ? "ERROR " : "WARNING ") + err->message + " (" +
                         (debug ? debug : "") + ")";
      std::fprintf(stderr, "[%s] %s\n", self->name_.c_str(), text.c_str());
      g_error_free(err);
      g_free(debug);
      std::lock_guard lock(g_mutex);
      if (error) self->errors.push_back(text);
      g_cond.notify_all();
    }
    // GST_BUS_DROP hands the message to us: unref it, or every element it names leaks.
    gst_message_unref(msg);
    return GST_BUS_DROP;
  }

  std::string name_;
  int block_ = 8;
  bool sync_ = false;
  GstElement* pipeline_ = nullptr;
  GstElement* call_ = nullptr;
  std::atomic<int> src_pads_{0};
  // Guarded by g_mutex: raw PTS -> stamp written (sender), stamp -> encoder output time
  // (sender), PTS -> decoder input time (receiver).
  std::map<GstClockTime, Us> stamp_of_pts_;
  std::map<Us, Us> encoded_at_;
  std::map<GstClockTime, Us> decoder_in_;
  std::map<GstClockTime, Us> stamp_of_rx_pts_;  // receiver: decoded PTS -> stamp read
};

// Waits until `pred` (called with g_mutex held) holds or `timeout_us` passes. Conditions that
// change without a notification (properties, pad counts) are re-checked every 10 ms.
bool wait_for(std::unique_lock<std::mutex>& lock, Us timeout_us,
              const std::function<bool()>& pred) {
  Us deadline = now_us() + timeout_us;
  while (!pred()) {
    Us left = deadline - now_us();
    if (left <= 0) return false;
    g_cond.wait_for(lock, std::chrono::microseconds(std::min<Us>(left, 10000)));
  }
  return true;
}

// ---- statistics ----

struct Stats {
  std::size_t n = 0;
  double p50 = 0, p95 = 0, max = 0;
};

// Nearest-rank percentiles, in ms.
Stats stats(std::vector<Us> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double p) {
    std::size_t k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    return ms(v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)]);
  };
  s.p50 = rank(0.50);
  s.p95 = rank(0.95);
  s.max = ms(v.back());
  return s;
}

// The machine's state: the figures depend on it (other processes share the CPUs).
std::string machine_load() {
  char buf[128] = {0};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (!std::fgets(buf, sizeof buf, f)) buf[0] = 0;
    std::fclose(f);
  }
  std::string l = buf;
  std::size_t cut = 0;
  for (int i = 0; i < 3 && cut != std::string::npos; ++i) cut = l.find(' ', cut + 1);
  return std::to_string(g_get_num_processors()) + " CPUs, load average " + l.substr(0, cut);
}

Us cpu_time_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (static_cast<Us>(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%8.1f", v);
  return buf;
}

// ---- phase 1: call setup ----

struct CallResult {
  bool ok = false;
  std::string why;
  CallEvents caller, callee;  // relative to the emission
  Us t0 = 0;
  Us teardown = 0;  // hang-up -> both ended and pads gone
};

// Waits (lock held) until neither side has a call or a source pad.
bool wait_idle(std::unique_lock<std::mutex>& lock, Side& caller, Side& callee, Us timeout) {
  return wait_for(lock, timeout, [&] {
    return caller.src_pads() == 0 && callee.src_pads() == 0 && caller.calls() == 0 &&
           callee.calls() == 0;
  });
}

CallResult one_call(Side& caller, Side& callee, const Options& o) {
  CallResult r;
  std::unique_lock lock(g_mutex);
  if (!wait_idle(lock, caller, callee, 10 * 1000000)) {
    r.why = "the previous call did not go away";
    return r;
  }
  caller.events = CallEvents{};
  callee.events = CallEvents{};
  g_call++;
  lock.unlock();
  GST_INFO("call %d: emitting call", g_call.load());
  r.t0 = now_us();
  g_signal_emit_by_name(caller.element(), "call", callee.name().c_str());
  lock.lock();
  bool got = wait_for(lock, static_cast<Us>(o.call_wait_s) * 1000000, [&] {
    return (caller.events.first_video && callee.events.first_video) || caller.events.ended ||
           callee.events.ended || caller.events.refused || callee.events.refused;
  });
  bool both = caller.events.first_video && callee.events.first_video;
  r.ok = got && both;
  if (!r.ok) {
    if (!got) {
      r.why = "no first frame on " +
              std::string(!caller.events.first_video && !callee.events.first_video ? "either side"
                          : !caller.events.first_video                             ? "the caller"
                                                                                   : "the callee") +
              " within " + std::to_string(o.call_wait_s) + " s";
    } else if (caller.events.ended || callee.events.ended) {
      r.why = "ended early: " + (caller.events.ended ? "caller: " + caller.events.ended_reason
                                                     : "callee: " + callee.events.ended_reason);
    } else {
      r.why = "refused";
    }
  }
  lock.unlock();
  GST_INFO("call %d: %s, hanging up", g_call.load(),
           r.ok ? "first frames on both sides" : "failed");
  Us hang_up_at = now_us();
  g_signal_emit_by_name(caller.element(), "hang-up", nullptr);
  lock.lock();
  bool ended = wait_for(lock, 10 * 1000000, [&] {
    return caller.events.ended && (callee.events.ended || !callee.events.started) &&
           caller.src_pads() == 0 && callee.src_pads() == 0 && caller.calls() == 0 &&
           callee.calls() == 0;
  });
  r.teardown = now_us() - hang_up_at;
  if (!ended && r.ok) {
    r.ok = false;
    r.why = "did not end within 10 s of the hang-up";
  }
  auto rel = [&](CallEvents e) {
    for (Us* t : {&e.started, &e.connected, &e.ended, &e.refused, &e.video_pad, &e.first_video}) {
      if (*t) *t -= r.t0;
    }
    return e;
  };
  r.caller = rel(caller.events);
  r.callee = rel(callee.events);
  return r;
}

// Exit status when a target was missed (see the top of the file).
constexpr int kExitMissed = 4;

// Returns whether both setup targets were met.
bool phase_setup(Side& caller, Side& callee, const Options& o) {
  std::printf(
      "\n(1) Call setup: %d calls in sequence; per side, from the \"call\" emission to the "
      "first decoded video frame on that side's video_src pad\n",
      o.calls);
  std::fflush(stdout);
  std::printf(
      "  the first call starts 1 s after both peers registered (the element generates its "
      "DTLS certificate in the background when it starts)\n");
  std::printf("  machine before: %s\n", machine_load().c_str());
  std::fflush(stdout);
  std::vector<CallResult> results;
  int failed = 0;
  Us wall0 = now_us(), cpu0 = cpu_time_us();
  int in_a_row = 0;
  for (int i = 0; i < o.calls; ++i) {
    CallResult r = one_call(caller, callee, o);
    if (!r.ok) {
      failed++;
      std::printf("  call %d FAILED: %s\n", i + 1, r.why.c_str());
    }
    in_a_row = r.ok ? 0 : in_a_row + 1;
    if (in_a_row == 5 && i + 1 < o.calls) {
      std::printf("  5 calls in a row failed: giving up (%d calls not made, counted as failed)\n",
                  o.calls - i - 1);
      failed += o.calls - i - 1;
      results.push_back(r);
      break;
    }
    if (o.verbose) {
      std::printf(
          "  call %2d: callee started %7.1f  caller connected %7.1f  callee connected %7.1f  "
          "video pad caller %7.1f callee %7.1f  first frame caller %7.1f callee %7.1f  "
          "teardown %6.1f ms\n",
          i + 1, ms(r.callee.started), ms(r.caller.connected), ms(r.callee.connected),
          ms(r.caller.video_pad), ms(r.callee.video_pad), ms(r.caller.first_video),
          ms(r.callee.first_video), ms(r.teardown));
    }
    std::fflush(stdout);
    results.push_back(r);
  }
  Us wall = now_us() - wall0, cpu = cpu_time_us() - cpu0;
  std::vector<Us> caller_first, callee_first, teardown;
  auto collect = [&](auto field) {
    std::vector<Us> v;
    for (const CallResult& r : results) {
      if (r.ok && field(r) > 0) v.push_back(field(r));
    }
    return v;
  };
  caller_first = collect([](const CallResult& r) { return r.caller.first_video; });
  callee_first = collect([](const CallResult& r) { return r.callee.first_video; });
  teardown = collect([](const CallResult& r) { return r.teardown; });
  Stats a = stats(caller_first), b = stats(callee_first);
  auto verdict = [](const Stats& s) {
    return s.n == 0 ? "no data" : s.p50 < 250 ? "met" : "MISSED";
  };
  std::printf("                      p50      p95      max (ms)   target p50 < 250 ms\n");
  std::printf("  caller side     %s %s %s        %s\n", fmt(a.p50).c_str(), fmt(a.p95).c_str(),
              fmt(a.max).c_str(), verdict(a));
  std::printf("  callee side     %s %s %s        %s\n", fmt(b.p50).c_str(), fmt(b.p95).c_str(),
              fmt(b.max).c_str(), verdict(b));
  std::printf("  failed calls: %d of %d\n", failed, o.calls);
  if (!results.empty() && results.front().ok) {
    std::printf("  first call alone: caller %.1f ms, callee %.1f ms\n",
                ms(results.front().caller.first_video), ms(results.front().callee.first_video));
  }
  std::printf(
      "  where the time goes (p50 / p95 / max over successful calls, ms after the "
      "emission):\n");
  struct Row {
    const char* label;
    std::function<Us(const CallResult&)> field;
  };
  std::vector<Row> rows = {
      {"caller  webrtccall-call-started (outgoing)", [](auto& r) { return r.caller.started; }},
      {"callee  webrtccall-call-started (offer in)", [](auto& r) { return r.callee.started; }},
      {"callee  webrtccall-call-connected        ", [](auto& r) { return r.callee.connected; }},
      {"caller  webrtccall-call-connected        ", [](auto& r) { return r.caller.connected; }},
      {"callee  video_src pad added              ", [](auto& r) { return r.callee.video_pad; }},
      {"caller  video_src pad added              ", [](auto& r) { return r.caller.video_pad; }},
      {"callee  first decoded video frame        ", [](auto& r) { return r.callee.first_video; }},
      {"caller  first decoded video frame        ", [](auto& r) { return r.caller.first_video; }},
  };
  for (const Row& row : rows) {
    Stats s = stats(collect(row.field));
    std::printf("    %s %s %s %s\n", row.label, fmt(s.p50).c_str(), fmt(s.p95).c_str(),
                fmt(s.max).c_str());
  }
  Stats t = stats(teardown);
  std::printf("  teardown (hang-up -> both call-ended, src pads gone): p50 %.1f ms, max %.1f ms\n",
              t.p50, t.max);
  std::printf("  %.1f s for the %d calls; this process used %.0f%% of one CPU; machine after: %s\n",
              ms(wall) / 1000, o.calls,
              100.0 * static_cast<double>(cpu) / static_cast<double>(wall), machine_load().c_str());
  return std::string(verdict(a)) == "met" && std::string(verdict(b)) == "met";
}

// ---- phase 2: glass-to-glass ----

// Returns whether the direction met its target.
bool print_direction(const char* label, const Latency& l, const Latency& sender, double seconds) {
  int sent_by_other = static_cast<int>(sender.stamped);
  Stats s = stats(l.samples);
  int rejected = l.rejected_markers + l.rejected_crc + l.implausible;
  std::printf("  %s  %s %s %s    %s\n", label, fmt(s.p50).c_str(), fmt(s.p95).c_str(),
              fmt(s.max).c_str(),
              s.n == 0      ? "no frame read"
              : s.p50 < 100 ? "target met"
                            : "target MISSED");
  std::printf(
      "      frames: measured %zu, rejected %d (markers %d, crc %d, implausible %d); "
      "per second: stamped %.1f, encoded %.1f, decoded %.1f; frames with a block within "
      "48 of the threshold: %d\n",
      s.n, rejected, l.rejected_markers, l.rejected_crc, l.implausible, sent_by_other / seconds,
      static_cast<double>(sender.encoded) / seconds,
      static_cast<double>(s.n + static_cast<std::size_t>(rejected)) / seconds, l.marginal);
  Stats rs = stats(l.rendered);
  if (rs.n)
    std::printf(
        "      rendered by a sync=true sink (as a display would show it): p50 %.1f, p95 %.1f, "
        "max %.1f ms (%zu frames)\n",
        rs.p50, rs.p95, rs.max, rs.n);
  std::printf("      sender's encoder: %ld frames, %ld key frames, %.0f kbit/s\n", sender.encoded,
              sender.keyframes, static_cast<double>(sender.encoded_bytes) * 8 / 1000 / seconds);
  Stats e = stats(l.encode), t = stats(l.transport), d = stats(l.decode);
  std::printf(
      "      p50 / p95 per stage (%zu frames): capture->encoded %.1f / %.1f, "
      "encoded->decoder input %.1f / %.1f, decode %.1f / %.1f ms\n",
      e.n, e.p50, e.p95, t.p50, t.p95, d.p50, d.p95);
  return s.n > 0 && s.p50 < 100;
}

// Returns false when the run went wrong; `met`: whether both directions met their target.
bool phase_latency(Side& caller, Side& callee, const Options& o, bool* met) {
  *met = false;
  guint latency_caller = 0, latency_callee = 0, bitrate = 0;
  g_object_get(caller.element(), "latency", &latency_caller, "video-bitrate", &bitrate, nullptr);
  g_object_get(callee.element(), "latency", &latency_callee, nullptr);
  std::printf(
      "\n(2) Glass-to-glass latency, 640x480@30 VP8 at %u kbit/s: capture time written "
      "into the frame (%d blocks of %dx%d px) -> read back after decode\n",
      bitrate, kBlocks, o.block, o.block);
  int threads = -1;
  if (GstElement* enc = caller.find_internal("vp8enc")) {
    g_object_get(enc, "threads", &threads, nullptr);
    gst_object_unref(enc);
  }
  std::printf("  the element's vp8enc: threads=%d%s\n", threads,
              o.vp8enc_threads > 0 ? " (overridden by --vp8enc-threads: not the element as shipped)"
                                   : " (as the element sets it)");
  std::printf("  webrtccall latency property (jitter buffer): caller %u ms, callee %u ms%s\n",
              latency_caller, latency_callee,
              o.latency_ms < 0 ? " (the element's default)" : " (--latency)");
  std::printf(
      "  receive time = the decoded frame leaving the element's video_src pad (before "
      "any display clock wait); received streams go to %s\n",
      o.sync ? "queue ! fakesink sync=true, the pipeline's latency recalculated (--sync)"
             : "fakesink sync=false");
  std::fflush(stdout);

  std::unique_lock lock(g_mutex);
  if (!wait_idle(lock, caller, callee, 10 * 1000000)) {
    std::printf("  FAILED: the last setup call did not go away\n");
    return false;
  }
  caller.events = CallEvents{};
  callee.events = CallEvents{};
  g_call++;
  lock.unlock();
  Us t0 = now_us();
  g_signal_emit_by_name(caller.element(), "call", callee.name().c_str());
  lock.lock();
  bool up = wait_for(lock, static_cast<Us>(o.call_wait_s) * 1000000, [&] {
    return (caller.events.first_video && callee.events.first_video) || caller.events.ended ||
           callee.events.ended;
  });
  up = up && caller.events.first_video && callee.events.first_video;
  bool ok = up;
  if (!up) {
    std::printf("  FAILED: the call did not bring video both ways within %d s\n", o.call_wait_s);
  } else {
    bool enc_caller = caller.watch_encoder(), enc_callee = callee.watch_encoder();
    if (!enc_caller || !enc_callee)
      std::printf("  (no vp8enc found in the element: no breakdown)\n");
    std::printf("  call up after %.1f ms; warm-up %.1f s, then %.1f s measured\n",
                ms(std::max(caller.events.first_video, callee.events.first_video) - t0), o.warmup_s,
                o.duration_s);
    lock.unlock();
    g_usleep(static_cast<gulong>(o.warmup_s * 1e6));
    lock.lock();
    Us start = now_us(), end = start + static_cast<Us>(o.duration_s * 1e6);
    for (Side* s : {&caller, &callee}) {
      s->latency = Latency{};
      s->latency.window_start = start;
      s->latency.window_end = end;
    }
    g_measuring = true;
    lock.unlock();
    Us cpu0 = cpu_time_us();
    g_usleep(static_cast<gulong>(o.duration_s * 1e6));
    Us cpu = cpu_time_us() - cpu0;
    g_usleep(300 * 1000);  // frames still under way; only those received in the window count
    lock.lock();
    g_measuring = false;
    bool still_up = !caller.events.ended && !callee.events.ended;
    if (o.sync) {
      for (const Side* side : {&caller, &callee}) {
        GstQuery* q = gst_query_new_latency();
        GstClockTime min = GST_CLOCK_TIME_NONE, max = GST_CLOCK_TIME_NONE;
        gboolean live = FALSE;
        if (gst_element_query(side->pipeline(), q)) gst_query_parse_latency(q, &live, &min, &max);
        gst_query_unref(q);
        std::printf(
            "  %s pipeline latency query: live %s, min %.1f ms (the synchronised sinks "
            "render a frame at its timestamp + this)\n",
            side->name().c_str(), live ? "yes" : "no",
            GST_CLOCK_TIME_IS_VALID(min) ? static_cast<double>(min) / 1e6 : -1.0);
      }
    }
    std::printf("                      p50      p95      max (ms)   target p50 < 100 ms\n");
    // A side's receiver reads what the other side stamped.
    double seconds = o.duration_s;
    bool met_there = print_direction("caller -> callee", callee.latency, caller.latency, seconds);
    bool met_back = print_direction("callee -> caller", caller.latency, callee.latency, seconds);
    *met = met_there && met_back;
    std::printf("  this process used %.0f%% of one CPU during the window (%s)\n",
                100.0 * static_cast<double>(cpu) / (o.duration_s * 1e6), machine_load().c_str());
    for (const Side* rx : {&callee, &caller}) {
      const Latency& l = rx->latency;
      double fps = static_cast<double>(l.samples.size()) / o.duration_s;
      double sent = static_cast<double>(rx->other->latency.stamped) / o.duration_s;
      double encoded = static_cast<double>(rx->other->latency.encoded) / o.duration_s;
      if (fps < 0.8 * sent) {
        std::printf("  WARNING: %s decoded %.1f frames/s of %.1f/s stamped (%.1f/s encoded)%s\n",
                    rx->name().c_str(), fps, sent, encoded,
                    encoded < 0.8 * sent
                        ? ": frames are dropped before the encoder (its leaky one-frame queue), "
                          "the encoder does not keep up: machine load (see above), or libvpx "
                          "threads busy-waiting for each other when vp8enc threads > 1 on few "
                          "CPUs (compare --vp8enc-threads 1)"
                        : "");
      }
    }
    if (!still_up) {
      std::printf("  WARNING: the call ended during the measurement\n");
      ok = false;
    }
  }
  lock.unlock();
  g_signal_emit_by_name(caller.element(), "hang-up", nullptr);
  lock.lock();
  wait_for(lock, 10 * 1000000, [&] {
    return caller.events.ended && (callee.events.ended || !callee.events.started) &&
           caller.src_pads() == 0 && callee.src_pads() == 0;
  });
  return ok;
}

// ---- main ----

// Re-executes this program through tests/netns-run.sh unless it runs in its namespace already.
void ensure_netns(const Options& o, int argc, char** argv) {
  if (g_strcmp0(g_getenv("WCC_IN_NETNS"), "1") == 0) {
    if (if_nametoindex("wcc0") == 0) {
      std::fprintf(stderr,
                   "call-setup: WCC_IN_NETNS=1 but there is no wcc0 interface: refusing "
                   "to run WebRTC peers outside tests/netns-run.sh's namespace\n");
      std::exit(1);
    }
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    std::perror("call-setup: /proc/self/exe");
    std::exit(1);
  }
  exe[n] = 0;
  std::vector<char*> args = {const_cast<char*>(o.netns_run.c_str()), exe};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(o.netns_run.c_str(), args.data());
  std::fprintf(stderr,
               "call-setup: cannot run %s: %s (give --netns-run PATH, or run it as "
               "tests/netns-run.sh %s ...)\n",
               o.netns_run.c_str(), std::strerror(errno), exe);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  ensure_netns(o, argc, argv);

  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGSEGV, SIGABRT}) sigaction(sig, &sa, nullptr);
  alarm(static_cast<unsigned>(o.timeout_s));

  // Only our plugin build, in a registry of our own.
  const char* old_path = g_getenv("GST_PLUGIN_PATH");
  std::string plugin_path =
      o.plugin_path + (old_path && *old_path ? std::string(":") + old_path : "");
  g_setenv("GST_PLUGIN_PATH", plugin_path.c_str(), TRUE);
  if (!g_getenv("GST_REGISTRY")) {
    std::string registry =
        std::string(g_get_tmp_dir()) + "/call-setup-registry-" + std::to_string(getuid()) + ".bin";
    g_setenv("GST_REGISTRY", registry.c_str(), TRUE);
  }
  gst_init(&argc, &argv);
  GST_DEBUG_CATEGORY_INIT(bench_debug, "call-setup", 0, "bench/call-setup");
  if (GstElementFactory* f = gst_element_factory_find("webrtccall")) {
    gst_object_unref(f);
  } else {
    std::fprintf(stderr, "call-setup: no webrtccall element in %s (build it: ninja -C build)\n",
                 o.plugin_path.c_str());
    return 1;
  }

  int status = 0;
  {
    Server server(o.server, o.verbose);
    if (server.ws_url().empty()) {
      std::fprintf(stderr, "call-setup: %s did not announce its port\n", o.server.c_str());
      return 1;
    }
    std::printf(
        "call-setup: webrtccall to webrtccall through webrtc-call-server at %s, in a "
        "network namespace (veth 10.77.0.1 / 10.77.0.2)\n",
        server.address().c_str());
    std::printf(
        "  each side: videotestsrc is-live pattern=%s horizontal-speed=%d 640x480@30 I420 "
        "+ audiotestsrc ticks 48 kHz -> webrtccall video-codec=vp8\n",
        o.pattern.c_str(), o.speed);
    std::fflush(stdout);
    {
      Side callee("callee", server.ws_url(), o);
      Side caller("caller", server.ws_url(), o);
      caller.other = &callee;
      callee.other = &caller;
      if (!callee.ok() || !caller.ok() || !callee.play() || !caller.play()) {
        std::fprintf(stderr, "call-setup: the pipelines do not start\n");
        status = 1;
      } else {
        std::unique_lock lock(g_mutex);
        bool registered = wait_for(lock, 10 * 1000000, [&] {
          return callee.registered && caller.registered && caller.sees("callee");
        });
        lock.unlock();
        if (!registered) {
          std::fprintf(stderr, "call-setup: the peers did not register within 10 s\n");
          status = 1;
        } else {
          // The DTLS certificate is generated in the background when an element starts:
          // give it the time a real application would have had before its first call.
          g_usleep(1000 * 1000);
          bool met = phase_setup(caller, callee, o);
          bool latency_met = true;
          if (o.duration_s > 0 && !phase_latency(caller, callee, o, &latency_met)) status = 1;
          met = met && latency_met;
          if (status == 0 && !met) {
            std::printf("\ncall-setup: a target was MISSED (exit status %d)\n", kExitMissed);
            status = kExitMissed;
          }
        }
      }
    }  // pipelines to NULL before the server goes
    server.stop();
  }
  std::fflush(stdout);
  gst_deinit();
  return status;
}
