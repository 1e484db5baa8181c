// Files and other non-live input broadcast in real time, send-only calls, and a pipeline whose
// source pads nobody links. Runs inside tests/netns-pair-run.sh: the sender (this process)
// in the sender's namespace (10.77.1.1), the viewers in the viewers' namespace (10.77.1.2),
// where this program runs itself again in viewer mode (`--viewer`, below): one process, N
// webrtccall elements that call the sender and print what they receive, one line per event.
// The test files are made at test time in the build directory (nothing large is committed).
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../viewer/viewer-process.h"
#include "peer.h"

#ifndef FILES_TEST_DIR
#define FILES_TEST_DIR "."
#endif

namespace {

using namespace std::chrono_literals;

std::string g_self;  // this program, for viewer mode

gint64 now_ms() {
  return g_get_monotonic_time() / 1000;
}

// ---- viewer mode (in the viewers' namespace) ----

// The direction of the first m-line of `kind` in the sender's answer ("" if none, "rejected"
// for port 0).
std::string answer_direction(GstElement* call, const char* kind) {
  std::string out;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(call));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&v));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin") && out.empty()) {
      GstWebRTCSessionDescription* desc = nullptr;
      g_object_get(e, "remote-description", &desc, nullptr);
      if (desc) {
        for (guint i = 0; i < gst_sdp_message_medias_len(desc->sdp); ++i) {
          const GstSDPMedia* m = gst_sdp_message_get_media(desc->sdp, i);
          if (!g_str_equal(gst_sdp_media_get_media(m), kind)) continue;
          if (gst_sdp_media_get_port(m) == 0) {
            out = "rejected";
          } else {
            for (const char* d : {"sendrecv", "sendonly", "recvonly", "inactive"}) {
              if (gst_sdp_media_get_attribute_val(m, d)) out = d;
            }
          }
          break;
        }
        gst_webrtc_session_description_free(desc);
      }
    }
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  return out;
}

// --viewer URL PREFIX COUNT TARGET SECONDS SEND CYCLES
// COUNT viewers PREFIX-1..N call TARGET at once (a recvonly offer unless SEND: then live
// video and audio too) and print, every 200 ms, "frames NAME MS TOTAL" (decoded video frames
// so far), "connected NAME MS", "answer NAME VIDEO-DIRECTION AUDIO-DIRECTION". With CYCLES > 1,
// one viewer calls CYCLES times in turn, each call until 30 frames arrived (at most SECONDS),
// then leaves ("cycle NAME I FRAMES"). Ends after SECONDS (or the cycles), or when stdin closes.
int viewer_main(int argc, char** argv) {
  if (argc < 9) return 2;
  std::string url = argv[2], prefix = argv[3], target = argv[5];
  int count = std::atoi(argv[4]), seconds = std::atoi(argv[6]), cycles = std::atoi(argv[8]);
  bool send = std::atoi(argv[7]) != 0;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  test::PeerOptions o;
  o.send_video = send;
  o.send_audio = send;
  o.peer = target;
  o.extra = "ice-addresses=<\"10.77.1.2\">";
  std::atomic<bool> quit{false};
  std::thread stdin_watch([&] {
    char buf[64];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    quit = true;
  });
  stdin_watch.detach();
  gint64 start = now_ms();
  if (cycles > 1) {
    for (int i = 0; i < cycles && !quit; ++i) {
      std::string name = prefix + "-" + std::to_string(i + 1);
      auto p = std::make_unique<test::Peer>(name, url, o);
      if (!p->play()) return 1;
      p->wait_until([&] { return p->video_buffers >= 30 || quit; }, seconds * 1000);
      std::printf("cycle %s %d %d\n", name.c_str(), i, p->video_buffers.load());
      p.reset();
    }
    return 0;
  }
  std::vector<std::unique_ptr<test::Peer>> peers;
  for (int i = 0; i < count; ++i) {
    std::string name = count > 1 ? prefix + "-" + std::to_string(i + 1) : prefix;
    peers.push_back(std::make_unique<test::Peer>(name, url, o));
    if (!peers.back()->play()) return 1;
  }
  std::vector<bool> connected(peers.size(), false);
  while (!quit && now_ms() - start < seconds * 1000) {
    std::this_thread::sleep_for(200ms);
    gint64 t = now_ms() - start;
    for (std::size_t i = 0; i < peers.size(); ++i) {
      test::Peer& p = *peers[i];
      std::string name = count > 1 ? prefix + "-" + std::to_string(i + 1) : prefix;
      if (!connected[i] && p.has_message("webrtccall-call-connected", {})) {
        connected[i] = true;
        std::printf("connected %s %lld\n", name.c_str(), static_cast<long long>(t));
        std::printf("answer %s %s %s\n", name.c_str(),
                    answer_direction(p.element(), "video").c_str(),
                    answer_direction(p.element(), "audio").c_str());
      }
      std::printf("frames %s %lld %d\n", name.c_str(), static_cast<long long>(t),
                  p.video_buffers.load());
    }
  }
  return 0;
}

// ---- the test side ----

// Runs `desc` (a non-live pipeline writing a file) to EOS.
bool make_file(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (err) {
    ADD_FAILURE() << desc << ": " << err->message;
    g_error_free(err);
    if (p) gst_object_unref(p);
    return false;
  }
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(
      bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (!ok) ADD_FAILURE() << "could not make a test file: " << desc;
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return ok;
}

const std::string kH264File = std::string(FILES_TEST_DIR) + "/files-h264-25fps.mkv";
// 4 s of the same: for the seek and loop tests, whose point is the second time through.
const std::string kShortH264File = std::string(FILES_TEST_DIR) + "/files-h264-25fps-4s.mkv";
const std::string kAvFile = std::string(FILES_TEST_DIR) + "/files-vp8-vorbis-15fps.webm";

// One viewer process in the viewers' namespace; its lines are collected by a thread.
class Viewers {
 public:
  Viewers(const std::string& url, const std::string& prefix, int count, const std::string& target,
          int seconds, bool send = false, int cycles = 1) {
    const char* exec = g_getenv("WCC_VIEWERS_EXEC");
    std::string cmd = std::string(exec ? exec : "") + " " + g_self + " --viewer " + url + " " +
                      prefix + " " + std::to_string(count) + " " + target + " " +
                      std::to_string(seconds) + " " + (send ? "1" : "0") + " " +
                      std::to_string(cycles);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      close(in[1]);
      close(out[0]);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    reader_ = std::thread([this, fd = out[0]] {
      FILE* f = fdopen(fd, "r");
      char line[512];
      while (f && fgets(line, sizeof line, f)) {
        std::lock_guard lock(mutex_);
        lines_.emplace_back(line);
      }
      if (f) fclose(f);
    });
  }
  ~Viewers() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    close(stdin_);  // the viewers end themselves
    int status = 0;
    for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
  }
  // Lines whose first word is `kind`, split into words.
  std::vector<std::vector<std::string>> lines(const std::string& kind) {
    std::lock_guard lock(mutex_);
    std::vector<std::vector<std::string>> out;
    for (const std::string& l : lines_) {
      std::istringstream in(l);
      std::vector<std::string> words;
      for (std::string w; in >> w;) words.push_back(w);
      if (!words.empty() && words[0] == kind) out.push_back(words);
    }
    return out;
  }
  // Frame rate of viewer `name` from its first frame to its last: {fps, seconds}.
  std::pair<double, double> fps(const std::string& name) {
    long long t0 = -1, f0 = 0, t1 = -1, f1 = 0;
    for (auto& w : lines("frames")) {
      if (w.size() < 4 || w[1] != name) continue;
      long long t = std::stoll(w[2]), f = std::stoll(w[3]);
      if (f == 0) continue;
      if (t0 < 0) {
        t0 = t;
        f0 = f;
      }
      if (f > f1) {  // the last tick that brought frames: after EOS the ticks go on
        t1 = t;
        f1 = f;
      }
    }
    if (t0 < 0 || t1 <= t0) return {0, 0};
    return {1000.0 * static_cast<double>(f1 - f0) / static_cast<double>(t1 - t0),
            static_cast<double>(t1 - t0) / 1000.0};
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

// wcc-viewer viewers (tests/viewer) in the viewers' namespace, each calling `target`.
// With `decode` false they count the encoded frames they receive (output-encoded=true).
std::unique_ptr<test::ViewerProcess> wcc_viewers(const std::string& url, const std::string& name,
                                                 int count, const std::string& target,
                                                 bool decode = true) {
  std::vector<std::string> args = {
      "--server", url,    "--name",        name,       "--count", std::to_string(count),
      "--call",   target, "--ice-address", "10.77.1.2"};
  if (!decode) args.emplace_back("--no-decode");
  return std::make_unique<test::ViewerProcess>(args);
}

// Frame rate of wcc-viewer `name` from its first frame to its last (from its ticks'
// total_frames): {fps, seconds, t_ms of the last frame}.
std::tuple<double, double, double> wcc_fps(const test::ViewerProcess& v, const std::string& name) {
  double t0 = -1, f0 = 0, t1 = -1, f1 = 0;
  for (const test::ViewerEvent& e : v.events()) {
    if (e.viewer != name || e.event != "tick") continue;
    double t = e.num("t_ms"), f = e.num("total_frames", 0);
    if (f <= 0) continue;
    if (t0 < 0) {
      t0 = t;
      f0 = f;
    }
    if (f > f1) {  // the last tick that brought frames: after EOS the ticks go on
      t1 = t;
      f1 = f;
    }
  }
  if (t0 < 0 || t1 <= t0) return {0, 0, t1};
  return {1000.0 * (f1 - f0) / (t1 - t0), (t1 - t0) / 1000.0, t1};
}

// Encoders anywhere in `bin` (the element's own shared ones or any other).
int encoder_elements(GstElement* bin) {
  int n = 0;
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&v)));
    const char* klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : "";
    // Not webrtcbin's DTLS and SRTP "encoders": media encoders.
    if (klass && std::strstr(klass, "Encoder") &&
        (std::strstr(klass, "Video") || std::strstr(klass, "Audio"))) {
      ++n;
    }
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  return n;
}

std::vector<std::string> encoders_property(GstElement* call) {
  GStrv list = nullptr;
  g_object_get(call, "encoders", &list, nullptr);
  std::vector<std::string> out;
  for (GStrv e = list; e && *e; ++e) out.emplace_back(*e);
  g_strfreev(list);
  return out;
}

// When EOS left the element's sink pad `pad` (ms, monotonic; 0: not yet).
struct EosWatch {
  std::atomic<gint64> at{0};
  EosWatch(GstElement* call, const char* pad) {
    GstPad* p = gst_element_get_static_pad(call, pad);
    if (!p) return;
    gst_pad_add_probe(
        p, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer d) {
          if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS) {
            static_cast<EosWatch*>(d)->at = now_ms();
          }
          return GST_PAD_PROBE_OK;
        },
        this, nullptr);
    gst_object_unref(p);
  }
};

// How late each buffer leaves the element's input stage (the clock's running time minus the
// buffer's), from a probe on what the sink pad `pad` feeds: a buffer of a file going out in
// real time is never early and a few ms late at most.
struct Lateness {
  std::mutex mutex;
  std::vector<double> ms;
  GstElement* call;
  Lateness(GstElement* c, const char* pad) : call(c) {
    GstPad* ghost = gst_element_get_static_pad(call, pad);
    if (!ghost) return;
    GstPad* target = gst_ghost_pad_get_target(GST_GHOST_PAD(ghost));
    GstElement* entry = target ? gst_pad_get_parent_element(target) : nullptr;
    GstPad* src = entry ? gst_element_get_static_pad(entry, "src") : nullptr;
    if (src) {
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
      gst_object_unref(src);
    }
    if (entry) gst_object_unref(entry);
    if (target) gst_object_unref(target);
    gst_object_unref(ghost);
  }
  static GstPadProbeReturn on_buffer(GstPad* pad, GstPadProbeInfo* info, gpointer d) {
    auto* self = static_cast<Lateness*>(d);
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstEvent* seg_event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
    GstClock* clock = gst_element_get_clock(self->call);
    if (seg_event && clock) {
      const GstSegment* seg = nullptr;
      gst_event_parse_segment(seg_event, &seg);
      GstClockTime ts = GST_BUFFER_DTS_IS_VALID(buf) ? GST_BUFFER_DTS(buf) : GST_BUFFER_PTS(buf);
      GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, ts);
      GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(self->call);
      if (GST_CLOCK_TIME_IS_VALID(rt)) {
        std::lock_guard lock(self->mutex);
        self->ms.push_back(static_cast<double>(GST_CLOCK_DIFF(rt, now)) / 1e6);
      }
    }
    if (clock) gst_object_unref(clock);
    if (seg_event) gst_event_unref(seg_event);
    return GST_PAD_PROBE_OK;
  }
  // {minimum, median, count}
  std::tuple<double, double, std::size_t> summary() {
    std::lock_guard lock(mutex);
    if (ms.empty()) return {0, 0, 0};
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    return {v.front(), v[v.size() / 2], v.size()};
  }
};

class FilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!g_file_test(kH264File.c_str(), G_FILE_TEST_EXISTS)) {
      // 10 s at 25 fps, a keyframe every second (a viewer joining waits at most that).
      make_file(
          "videotestsrc num-buffers=250 pattern=ball ! video/x-raw,width=320,height=240,"
          "framerate=25/1 ! openh264enc gop-size=25 ! h264parse ! matroskamux ! filesink "
          "location=" +
          kH264File + ".part");
      std::rename((kH264File + ".part").c_str(), kH264File.c_str());
    }
    if (!g_file_test(kShortH264File.c_str(), G_FILE_TEST_EXISTS)) {
      make_file(
          "videotestsrc num-buffers=100 pattern=ball ! video/x-raw,width=320,height=240,"
          "framerate=25/1 ! openh264enc gop-size=25 ! h264parse ! matroskamux ! filesink "
          "location=" +
          kShortH264File + ".part");
      std::rename((kShortH264File + ".part").c_str(), kShortH264File.c_str());
    }
    if (!g_file_test(kAvFile.c_str(), G_FILE_TEST_EXISTS)) {
      // 8 s: VP8 at 15 fps and Vorbis, decoded by decodebin in the sender and encoded again.
      make_file("webmmux name=m ! filesink location=" + kAvFile +
                ".part videotestsrc num-buffers=120 pattern=ball ! video/x-raw,width=320,"
                "height=240,framerate=15/1 ! vp8enc deadline=1 keyframe-max-dist=15 ! m. "
                "audiotestsrc num-buffers=375 samplesperbuffer=1024 wave=ticks ! "
                "audio/x-raw,rate=48000,channels=1 ! audioconvert ! vorbisenc ! m.");
      std::rename((kAvFile + ".part").c_str(), kAvFile.c_str());
    }
  }

  void SetUp() override {
    ASSERT_STREQ(g_getenv("WCC_SENDER_ADDRESS"), "10.77.1.1")
        << "run me through tests/netns-pair-run.sh";
    server_ = std::make_unique<test::ServerProcess>(std::vector<std::string>{
        "--address", "10.77.1.1", "--max-connections-per-address", "1000"});
    ASSERT_TRUE(server_->ok());
  }

  std::unique_ptr<test::ServerProcess> server_;
};

const char* kSenderIce = " ice-addresses=<\"10.77.1.1\"> ";

// A sender pipeline that sends nothing of its own (no test sources): `properties` for the
// element, then `input` (gst-launch syntax) feeding its sink pads.
test::PeerOptions file_sender(const std::string& properties, const std::string& input) {
  test::PeerOptions o;
  o.send_video = o.send_audio = false;
  o.extra = properties + kSenderIce + input;
  return o;
}
// The H.264 file `file` as it is, to the element's video_0.
std::string h264_input(const std::string& file) {
  return "filesrc location=" + file + " ! matroskademux ! h264parse ! call.video_0";
}

// README's way to start a file for its viewers: once `n` calls are connected (a slow machine
// or AddressSanitizer can take seconds; the file plays on meanwhile), a flushing seek to 0.
bool start_file_for_viewers(test::Peer& sender, int n) {
  if (!sender.wait_until(
          [&] { return sender.count_messages("webrtccall-call-connected", {}) >= n; }, 60000)) {
    return false;
  }
  return gst_element_seek_simple(
      sender.pipeline(), GST_FORMAT_TIME,
      static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT), 0);
}

// A pre-encoded H.264 file to 5 viewers: no encoder in the sender, the file's own 25 fps at
// every viewer (not faster), and the file takes its 10 s from the start the viewers get. The
// viewers send nothing: their recvonly offers get sendonly answers.
TEST_F(FilesTest, EncodedFileToFiveViewersInRealTime) {
  test::PeerOptions o = file_sender("max-calls=5", h264_input(kH264File));
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  EosWatch eos(sender.element(), "video_0");
  // Four count the frames they receive, one decodes them (a decoder that falls behind on a
  // loaded machine drops frames: 17.5 fps were decoded under AddressSanitizer).
  auto viewers = wcc_viewers(server_->ws_url(), "v", 4, "sender", /*decode=*/false);
  auto decoding = wcc_viewers(server_->ws_url(), "d", 1, "sender");
  ASSERT_TRUE(sender.play());
  ASSERT_TRUE(start_file_for_viewers(sender, 5)) << "the viewers did not all connect";
  eos.at = 0;  // had the file ended before the viewers were there
  gint64 started = now_ms();
  int max_encoders = 0, max_encoder_elements = 0;
  while (now_ms() - started < 20000 && !(eos.at && now_ms() - eos.at > 500)) {
    std::this_thread::sleep_for(100ms);
    max_encoders =
        std::max(max_encoders, static_cast<int>(encoders_property(sender.element()).size()));
    max_encoder_elements = std::max(max_encoder_elements, encoder_elements(sender.pipeline()));
  }
  ASSERT_NE(eos.at.load(), 0) << "the file never ended";
  double took_s = static_cast<double>(eos.at - started) / 1000.0;
  viewers->stop();
  decoding->stop();

  EXPECT_EQ(max_encoders, 0) << "encoded input is sent as it is";
  EXPECT_EQ(max_encoder_elements, 0);
  // 10 s of file; as fast as it can be read it took well under a second.
  EXPECT_GE(took_s, 9.5) << "the file was sent faster than its own rate";
  EXPECT_LE(took_s, 13.0);
  EXPECT_EQ(viewers->count("connected") + decoding->count("connected"), 5);
  for (int i = 1; i <= 5; ++i) {
    bool decoded = i == 5;
    std::string name = decoded ? "d" : "v-" + std::to_string(i);
    auto [fps, seconds, last] = wcc_fps(decoded ? *decoding : *viewers, name);
    std::printf("%s: %.1f fps over %.1f s%s\n", name.c_str(), fps, seconds,
                decoded ? " (decoded)" : " (received)");
    EXPECT_GE(seconds, 4.0) << name << " received frames for too short a time";
    // The file's 25 fps, not more: a sender that does not pace sends far more (or everything
    // at once, before the viewers are there).
    EXPECT_GE(fps, decoded ? 12.0 : 21.0) << name;
    EXPECT_LE(fps, 28.0) << name;
  }
  EXPECT_TRUE(sender.errors().empty());
}

// A file decoded by decodebin (raw input, encoded once by the element) goes out at its own
// 15 fps, audio and video each at their running time on the pipeline clock (so in step).
TEST_F(FilesTest, DecodedFileInRealTimeAudioAndVideoInStep) {
  test::PeerOptions o =
      file_sender("max-calls=2",
                  "filesrc location=" + kAvFile +
                      " ! decodebin name=d d. ! video/x-raw ! queue ! videoconvert ! call.video_0 "
                      "d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! call.audio_0");
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  EosWatch eos(sender.element(), "video_0");
  Lateness video(sender.element(), "video_0"), audio(sender.element(), "audio_0");
  auto viewers = wcc_viewers(server_->ws_url(), "w", 1, "sender");
  ASSERT_TRUE(sender.play());
  ASSERT_TRUE(start_file_for_viewers(sender, 1)) << "the viewer did not connect";
  eos.at = 0;  // had the file ended before the viewers were there
  gint64 started = now_ms();
  while (now_ms() - started < 20000 && !(eos.at && now_ms() - eos.at > 500)) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(eos.at.load(), 0) << "the file never ended";
  double took_s = static_cast<double>(eos.at - started) / 1000.0;
  viewers->stop();
  EXPECT_GE(took_s, 7.5) << "8 s of file sent faster than its own rate";
  EXPECT_LE(took_s, 11.0);
  auto [fps, seconds, last] = wcc_fps(*viewers, "w");
  std::printf("w: %.1f fps over %.1f s; file took %.1f s\n", fps, seconds, took_s);
  EXPECT_GE(seconds, 4.0);
  EXPECT_GE(fps, 11.0);
  EXPECT_LE(fps, 17.0) << "the file is 15 fps";
  auto [vmin, vmed, vn] = video.summary();
  auto [amin, amed, an] = audio.summary();
  std::printf("lateness ms: video min %.1f median %.1f (%zu), audio min %.1f median %.1f (%zu)\n",
              vmin, vmed, vn, amin, amed, an);
  EXPECT_GE(vn, 100u);
  EXPECT_GE(an, 300u);
  // Never early (paced to the clock: early means sent ahead of its time) ...
  EXPECT_GE(vmin, -2.0);
  EXPECT_GE(amin, -2.0);
  // ... and on time: each stream at its running time, so the two within 100 ms of each other.
  EXPECT_LE(vmed, 50.0);
  EXPECT_LE(amed, 50.0);
  EXPECT_LE(std::abs(vmed - amed), 100.0);
  EXPECT_TRUE(sender.errors().empty());
}
// A flushing seek back to the start plays the file again in real time: the running time
// starts again (the element posts reset-time like a sink), and the seek reaches the file
// through the element (it is the pipeline's only sink).
TEST_F(FilesTest, FlushingSeekPlaysAgainInRealTime) {
  test::PeerOptions o = file_sender("", h264_input(kShortH264File));
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  EosWatch eos(sender.element(), "video_0");
  ASSERT_TRUE(sender.play());
  gint64 started = now_ms();
  std::this_thread::sleep_for(2s);
  ASSERT_EQ(eos.at.load(), 0);
  ASSERT_TRUE(gst_element_seek_simple(
      sender.pipeline(), GST_FORMAT_TIME,
      static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT), 0))
      << "the seek did not reach the file";
  while (now_ms() - started < 25000 && !eos.at) std::this_thread::sleep_for(100ms);
  ASSERT_NE(eos.at.load(), 0) << "the file never ended";
  double took_s = static_cast<double>(eos.at - started) / 1000.0;
  std::printf("2 s, a seek to 0, then 4 s of file: took %.1f s\n", took_s);
  EXPECT_GE(took_s, 5.5) << "after the seek the file was not sent in real time";
  EXPECT_LE(took_s, 9.0);
  EXPECT_TRUE(sender.errors().empty());
}

// A paused pipeline holds the file where it is (the calls stay up, shorter than
// call-timeout) and goes on from there in real time when it plays again.
TEST_F(FilesTest, PausedPipelineGoesOnWhereItWas) {
#ifdef __SANITIZE_ADDRESS__
  // A check of timing (GStreamer's pause, the element's clock waits) through code every other
  // test here runs too: the normal build's run is the one that tells.
  GTEST_SKIP() << "timing only: run in the normal build";
#endif
  test::PeerOptions o = file_sender("", h264_input(kH264File));
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  EosWatch eos(sender.element(), "video_0");
  Lateness video(sender.element(), "video_0");
  auto viewers = wcc_viewers(server_->ws_url(), "p", 1, "sender");
  ASSERT_TRUE(sender.play());
  gint64 started = now_ms();
  ASSERT_TRUE(sender.wait_message("webrtccall-call-connected", {}, 10000));
  while (now_ms() - started < 3000) std::this_thread::sleep_for(50ms);
  gst_element_set_state(sender.pipeline(), GST_STATE_PAUSED);
  std::this_thread::sleep_for(3s);
  std::size_t frames_paused = std::get<2>(video.summary());
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(std::get<2>(video.summary()), frames_paused) << "frames went out while paused";
  gint64 resumed = now_ms();
  ASSERT_TRUE(sender.play());
  while (now_ms() - started < 25000 && !eos.at) std::this_thread::sleep_for(100ms);
  ASSERT_NE(eos.at.load(), 0) << "the file never ended";
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(sender.count_messages("webrtccall-call-ended", {}), 0) << "the call ended";
  viewers->stop();
  double took_s = static_cast<double>(eos.at - started) / 1000.0;
  auto [fps, seconds, last_frame] = wcc_fps(*viewers, "p");
  auto [vmin, vmed, vn] = video.summary();
  std::printf(
      "10 s of file with a 4 s pause: took %.1f s; viewer %.1f fps over %.1f s; "
      "lateness min %.1f median %.1f ms\n",
      took_s, fps, seconds, vmin, vmed);
  EXPECT_GE(took_s, 13.5) << "after the pause the file went faster than its rate";
  EXPECT_LE(took_s, 17.0);
  EXPECT_GE(vmin, -2.0);
  // The viewer got frames after the pause: its last frame came after playing resumed.
  EXPECT_GT(last_frame, static_cast<double>(resumed - started + 2000))
      << "no frames after the pause";
  EXPECT_TRUE(sender.errors().empty());
}

// Looping a file as README says, by segment seeks: one (flushing) segment seek at the start,
// then a non-flushing one on each SEGMENT_DONE. The second time through goes at the file's
// rate too: the running time goes on across the loop and no buffer goes out early.
TEST_F(FilesTest, SegmentSeeksLoopTheFileInRealTime) {
  test::PeerOptions o = file_sender("", h264_input(kShortH264File));
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  EosWatch eos(sender.element(), "video_0");
  Lateness video(sender.element(), "video_0");
  std::atomic<int> segments_done{0};
  GstPad* sink = gst_element_get_static_pad(sender.element(), "video_0");
  gst_pad_add_probe(
      sink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      [](GstPad*, GstPadProbeInfo* info, gpointer d) {
        if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_SEGMENT_DONE) {
          ++*static_cast<std::atomic<int>*>(d);
        }
        return GST_PAD_PROBE_OK;
      },
      &segments_done, nullptr);
  gst_object_unref(sink);
  auto seek = [&](bool flush) {
    int flags = GST_SEEK_FLAG_SEGMENT | (flush ? GST_SEEK_FLAG_FLUSH : 0);
    return gst_element_seek(sender.pipeline(), 1.0, GST_FORMAT_TIME,
                            static_cast<GstSeekFlags>(flags), GST_SEEK_TYPE_SET, 0,
                            GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE);
  };
  ASSERT_TRUE(sender.play());
  // The first segment seek once the file flows (a live pipeline does not preroll: before, the
  // demuxer may not know the file yet), back to its start.
  ASSERT_TRUE(sender.wait_until([&] { return std::get<2>(video.summary()) > 0; }, 10000));
  ASSERT_TRUE(seek(true));
  gint64 started = now_ms(), first_done = 0, second_done = 0;
  while (now_ms() - started < 30000 && !second_done && !eos.at) {
    std::this_thread::sleep_for(50ms);
    if (segments_done >= 1 && !first_done) {
      first_done = now_ms();
      ASSERT_TRUE(seek(false)) << "the loop's seek did not reach the file";
    }
    if (segments_done >= 2) second_done = now_ms();
  }
  EXPECT_EQ(eos.at.load(), 0) << "a looping file never ends";
  ASSERT_NE(first_done, 0);
  ASSERT_NE(second_done, 0);
  double first_s = static_cast<double>(first_done - started) / 1000.0;
  double both_s = static_cast<double>(second_done - started) / 1000.0;
  auto [vmin, vmed, vn] = video.summary();
  std::printf(
      "loop 1 done after %.1f s, loop 2 after %.1f s; lateness min %.1f median %.1f ms "
      "(%zu frames)\n",
      first_s, both_s, vmin, vmed, vn);
  EXPECT_GE(first_s, 3.5);
  EXPECT_GE(both_s, 7.5) << "the second time through was not sent in real time";
  EXPECT_LE(both_s, 11.0);
  EXPECT_GE(vn, 190u);
  EXPECT_GE(vmin, -2.0) << "frames went out ahead of their time";
  EXPECT_LE(vmed, 50.0);
  EXPECT_TRUE(sender.errors().empty());
}

// The time each buffer spends in the element's input stage (the pacing), from probes on both
// sides of it.
struct Hold {
  std::mutex mutex;
  std::map<GstClockTime, gint64> entered;
  std::vector<double> ms;
  GstPad* src = nullptr;
  Hold(GstElement* call, const char* pad) {
    GstPad* ghost = gst_element_get_static_pad(call, pad);
    GstPad* target = ghost ? gst_ghost_pad_get_target(GST_GHOST_PAD(ghost)) : nullptr;
    GstElement* entry = target ? gst_pad_get_parent_element(target) : nullptr;
    if (entry) {
      src = gst_element_get_static_pad(entry, "src");
      gst_pad_add_probe(target, GST_PAD_PROBE_TYPE_BUFFER, on_in, this, nullptr);
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_out, this, nullptr);
      gst_object_unref(entry);
    }
    if (target) gst_object_unref(target);
    if (ghost) gst_object_unref(ghost);
  }
  ~Hold() {
    if (src) gst_object_unref(src);
  }
  static GstPadProbeReturn on_in(GstPad*, GstPadProbeInfo* info, gpointer d) {
    auto* self = static_cast<Hold*>(d);
    std::lock_guard lock(self->mutex);
    self->entered[GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info))] = g_get_monotonic_time();
    return GST_PAD_PROBE_OK;
  }
  static GstPadProbeReturn on_out(GstPad*, GstPadProbeInfo* info, gpointer d) {
    auto* self = static_cast<Hold*>(d);
    std::lock_guard lock(self->mutex);
    auto it = self->entered.find(GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info)));
    if (it != self->entered.end()) {
      self->ms.push_back(static_cast<double>(g_get_monotonic_time() - it->second) / 1000.0);
      self->entered.erase(it);
    }
    return GST_PAD_PROBE_OK;
  }
  void clear() {
    std::lock_guard lock(mutex);
    ms.clear();
  }
  std::pair<double, std::size_t> median() {
    std::lock_guard lock(mutex);
    if (ms.empty()) return {0, 0};
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.size()};
  }
};

// Live input is due when it comes: pacing never holds it back, also once a latency query
// (as a call's or the pipeline's) told the input stage the latency the source reports
// (videotestsrc: one frame, 33 ms, which identity sync=true would add).
TEST_F(FilesTest, LiveInputIsNotHeldBack) {
  test::PeerOptions o;
  o.extra = kSenderIce;
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_NE(sender.element(), nullptr);
  Hold video(sender.element(), "video_0");
  ASSERT_NE(video.src, nullptr);
  ASSERT_TRUE(sender.play());
  ASSERT_TRUE(sender.wait_until([&] { return video.median().second >= 10; }, 10000));
  GstQuery* q = gst_query_new_latency();
  ASSERT_TRUE(gst_pad_query(video.src, q));
  gboolean live = FALSE;
  GstClockTime min = 0;
  gst_query_parse_latency(q, &live, &min, nullptr);
  gst_query_unref(q);
  EXPECT_TRUE(live);
  EXPECT_GT(min, 0u) << "videotestsrc is-live reports a frame of latency";
  video.clear();
  ASSERT_TRUE(sender.wait_until([&] { return video.median().second >= 60; }, 10000));
  auto [held, n] = video.median();
  std::printf("live video held %.2f ms (median of %zu) at the input stage\n", held, n);
  // Held back by the reported latency, it would be 33 ms; a clock wait already due is ~0.
  EXPECT_LT(held, 10.0);
}

// A viewer that sends nothing (an element without sink pads: a recvonly offer, like a watch
// page's) gets a send-only answer: sendonly video, inactive audio (no audio input), and
// decodes the video.
TEST_F(FilesTest, RecvonlyOfferGetsSendonlyAnswer) {
  test::PeerOptions o;
  o.send_audio = false;
  o.extra = kSenderIce;
  test::Peer sender("sender", server_->ws_url(), o);
  ASSERT_TRUE(sender.play());
  Viewers viewer(server_->ws_url(), "watcher", 1, "sender", 20);
  gint64 started = now_ms();
  while (now_ms() - started < 20000 &&
         (viewer.lines("answer").empty() || viewer.fps("watcher").second < 1.0)) {
    std::this_thread::sleep_for(100ms);
  }
  viewer.stop();
  auto answers = viewer.lines("answer");
  ASSERT_EQ(answers.size(), 1u) << "the viewer's call did not connect";
  ASSERT_EQ(answers[0].size(), 4u);
  EXPECT_EQ(answers[0][2], "sendonly") << "video";
  EXPECT_EQ(answers[0][3], "inactive") << "audio";
  EXPECT_GT(viewer.fps("watcher").first, 10.0) << "no video decoded";
}

// gst-launch-1.0 "videotestsrc ! webrtccall" with no source pad linked: what the callers send
// has nowhere to go. The pipeline, as gst-launch would run it (nothing links the pads).
struct UnlinkedSender {
  GstElement* pipeline = nullptr;
  GstElement* call = nullptr;
  std::mutex mutex;
  std::vector<std::string> errors, warnings, ended;
  int connected = 0;
  std::atomic<int> src_pads_added{0};
  explicit UnlinkedSender(const std::string& url) {
    std::string desc = "webrtccall name=call username=sender signaling-server=" + url + kSenderIce +
                       "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
                       "framerate=30/1 ! call.video_0 audiotestsrc is-live=true ! call.audio_0";
    pipeline = gst_parse_launch(desc.c_str(), nullptr);
    if (!pipeline) return;
    call = gst_bin_get_by_name(GST_BIN(pipeline), "call");
    g_signal_connect(call, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer d) {
                       if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) {
                         ++static_cast<UnlinkedSender*>(d)->src_pads_added;
                       }
                     }),
                     this);
    GstBus* bus = gst_element_get_bus(pipeline);
    gst_bus_set_sync_handler(bus, on_bus, this, nullptr);
    gst_object_unref(bus);
  }
  ~UnlinkedSender() {
    if (!pipeline) return;
    gst_element_set_state(pipeline, GST_STATE_NULL);
    GstBus* bus = gst_element_get_bus(pipeline);
    gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
    gst_object_unref(bus);
    gst_object_unref(call);
    gst_object_unref(pipeline);
  }
  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer d) {
    auto* self = static_cast<UnlinkedSender*>(d);
    std::lock_guard lock(self->mutex);
    GError* err = nullptr;
    gchar* debug = nullptr;
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_ERROR:
        gst_message_parse_error(msg, &err, &debug);
        self->errors.push_back(std::string(err->message) + " (" + (debug ? debug : "") + ")");
        break;
      case GST_MESSAGE_WARNING:
        gst_message_parse_warning(msg, &err, &debug);
        self->warnings.push_back(std::string(err->message) + " (" + (debug ? debug : "") + ")");
        break;
      case GST_MESSAGE_ELEMENT: {
        const GstStructure* s = gst_message_get_structure(msg);
        if (gst_structure_has_name(s, "webrtccall-call-connected")) ++self->connected;
        if (gst_structure_has_name(s, "webrtccall-call-ended")) {
          self->ended.emplace_back(gst_structure_get_string(s, "reason"));
        }
        break;
      }
      default:
        break;
    }
    if (err) g_error_free(err);
    g_free(debug);
    gst_message_unref(msg);
    return GST_BUS_DROP;
  }
  int src_pads() {
    int n = 0;
    GstIterator* it = gst_element_iterate_src_pads(call);
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
      ++n;
      g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    return n;
  }
};

// Viewers that send video and audio call a pipeline whose source pads nobody links, six
// times in turn: every call works (the viewer decodes the sender's video) and ends only when
// the viewer leaves, the pipeline plays on without an error or warning, and each call's
// source pads (video and audio) come and go without leaving threads or fds behind.
TEST_F(FilesTest, UnlinkedSourcePadsManyCalls) {
  UnlinkedSender sender(server_->ws_url());
  ASSERT_NE(sender.pipeline, nullptr);
  ASSERT_NE(gst_element_set_state(sender.pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  std::this_thread::sleep_for(1s);  // registered, encoders idle: the baseline
  test::wait_settled();
  int threads0 = test::count_threads(), fds0 = test::count_fds();
  constexpr int kCycles = 6;
  Viewers viewers(server_->ws_url(), "talker", 1, "sender", 15, /*send=*/true, kCycles);
  gint64 started = now_ms();
  while (now_ms() - started < 120000 && viewers.lines("cycle").size() < kCycles) {
    std::this_thread::sleep_for(200ms);
  }
  viewers.stop();
  auto cycles = viewers.lines("cycle");
  ASSERT_EQ(cycles.size(), static_cast<std::size_t>(kCycles));
  for (auto& w : cycles) {
    ASSERT_GE(w.size(), 4u);
    EXPECT_GE(std::stoi(w[3]), 30) << w[1] << " decoded too little of the sender's video";
  }
  // The last call's end reaches the sender.
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(sender.mutex);
      if (sender.ended.size() >= kCycles) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  test::wait_settled();
  {
    std::lock_guard lock(sender.mutex);
    EXPECT_EQ(sender.connected, kCycles);
    EXPECT_EQ(sender.ended.size(), static_cast<std::size_t>(kCycles));
    for (const std::string& r : sender.ended) {
      EXPECT_EQ(r.find("error"), std::string::npos) << "a call ended by an error: " << r;
    }
    for (const std::string& e : sender.errors) ADD_FAILURE() << "error: " << e;
    for (const std::string& w : sender.warnings) ADD_FAILURE() << "warning: " << w;
  }
  EXPECT_EQ(sender.src_pads_added.load(), 2 * kCycles) << "each call: video and audio";
  EXPECT_EQ(sender.src_pads(), 0) << "an ended call's pads are removed";
  GstState state = GST_STATE_NULL;
  gst_element_get_state(sender.pipeline, &state, nullptr, 0);
  EXPECT_EQ(state, GST_STATE_PLAYING);
  int threads1 = test::count_threads(), fds1 = test::count_fds();
  std::printf("after %d calls: threads %d -> %d, fds %d -> %d\n", kCycles, threads0, threads1, fds0,
              fds1);
  EXPECT_LE(threads1, threads0 + 2);
  EXPECT_LE(fds1, fds0 + 2);
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gchar* self = g_file_read_link("/proc/self/exe", nullptr);
  g_self = self ? self : argv[0];
  g_free(self);
  if (argc > 1 && std::strcmp(argv[1], "--viewer") == 0) return viewer_main(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
