// Test helpers for the webrtccall element: the signaling server as a child process and a
// "peer": a pipeline with a webrtccall element whose received streams are counted.
// Runs inside tests/netns-run.sh (a network namespace of its own).
#pragma once

#include <gst/gst.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace test {

// webrtc-call-server on 127.0.0.1 with a free port (or `port`, to start a server again where
// an earlier one was); stopped (SIGTERM) on destruction.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra_args = {}, unsigned port = 0);
  ~ServerProcess();
  const std::string& ws_url() const { return ws_url_; }
  unsigned port() const { return port_; }
  bool ok() const { return pid_ > 0 && !ws_url_.empty(); }
  // Ends the server now with `signal` (SIGKILL: a crash) and waits for it to exit.
  void stop(int signal = SIGTERM);

 private:
  pid_t pid_ = -1;
  unsigned port_ = 0;
  std::string ws_url_;
};

struct PeerOptions {
  bool send_video = true;
  bool send_audio = true;
  std::string peer;   // the peer property
  std::string extra;  // more properties, gst-launch syntax: "max-calls=2 auto-answer=false"
  int width = 320, height = 240;
  bool fake_signaller = false;  // an in-process hub instead of the server (fake-signaller.h)
};

class Peer {
 public:
  Peer(const std::string& name, const std::string& url, PeerOptions options = {});
  ~Peer();

  bool play();
  GstElement* element() const { return call_; }
  GstElement* pipeline() const { return pipeline_; }

  // Waits until an element message `name` (e.g. "webrtccall-call-connected") arrives whose
  // fields match `fields` (string values), returns it or null after `timeout_ms`. The Peer
  // keeps it (freed with the Peer): callers never free it.
  // Messages are consumed in order; earlier ones stay available to later waits.
  GstStructure* wait_message(const std::string& name, std::map<std::string, std::string> fields,
                             int timeout_ms = 15000);
  bool has_message(const std::string& name, std::map<std::string, std::string> fields);
  // How many such messages arrived and were not consumed by wait_message.
  int count_messages(const std::string& name, std::map<std::string, std::string> fields);
  // Every element message so far, in arrival order: "NAME PEER" (PEER empty without one).
  std::vector<std::string> message_log() const;
  // The element's `calls` property.
  std::vector<std::string> calls() const;
  // Waits until `pred` holds (checked on every received buffer and message).
  bool wait_until(std::function<bool()> pred, int timeout_ms = 15000);

  // Received data, per kind, over all calls.
  std::atomic<int> video_buffers{0}, audio_buffers{0};
  std::string video_caps() const;
  std::string audio_caps() const;
  int src_pads() const;                       // source pads the element has now
  std::vector<std::string> errors() const;    // error messages on the bus
  std::vector<std::string> warnings() const;  // warning messages on the bus

  void call(const std::string& user);
  void hang_up(const std::string& user);

 private:
  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer self);
  static void on_pad_added(GstElement*, GstPad* pad, gpointer self);
  void notify();

  std::string name_;
  GstElement* pipeline_ = nullptr;
  GstElement* call_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<GstStructure*> messages_;
  std::vector<GstStructure*> taken_;  // returned by wait_message()
  std::vector<std::string> log_;      // message_log()
  std::vector<std::string> errors_, warnings_;
  std::string video_caps_, audio_caps_;
};

// Resource use of this process, for leak checks.
int count_threads();
int count_fds();
long rss_kib();
// The memory a leak grows: the bytes allocated and not freed (glibc's mallinfo2, or under
// AddressSanitizer its own count). Not VmRSS: ASan's holds its quarantine of freed memory
// (256 MiB by default), glibc's what its arenas keep after frees (peer.cpp).
long memory_kib();
// Waits until the thread and fd counts stop changing (torn-down calls finish in the
// background), at most 10 s.
void wait_settled();
void show_fds();

}  // namespace test
