// The engine of the webrtccall element: its signaling thread, the signaller, the calls and
// the input streams they share. GObject glue is in webrtccall.cpp; one call is in call.h.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backoff.h"
#include "join-pacer.h"
#include "keyframe-pacer.h"
#include "media.h"
#include "peer-list.h"
#include "remote-limits.h"
#include "signaller.h"
#include "stats-collector.h"

struct _GstWebRTCCall;

namespace webrtccall {

class Call;
class KeyframeControl;

// What the element's properties say, read once per call (under the object lock).
struct Settings {
  std::string username;
  std::string peer;
  bool auto_answer = true;
  unsigned max_calls = 1;
  std::string stun_server;
  std::vector<std::string> turn_servers;
  const Codec* video_codec = nullptr;
  unsigned video_bitrate_kbps = 1000;
  unsigned latency_ms = 50;
  unsigned call_timeout_s = 10;
  unsigned max_reconnect_delay_s = 30;
  unsigned max_connecting = 8;      // join pacing (join-pacer.h); 0: no limit
  unsigned connect_timeout_s = 10;  // incoming: from the offer; outgoing: from the answer
  unsigned answer_timeout_s = 30;   // an outgoing call waits this long for the answer
  unsigned stall_timeout_s = 5;     // a connected call sending nothing while its input flows
  RemoteLimits remote_limits;
  AdmissionConfig admission;
  bool output_encoded = false;
  bool upnp = false;
  bool ice_tcp = true;
  std::vector<std::string> ice_addresses;
  unsigned stats_interval_ms = 1000;  // 0: no statistics (and no bitrate policy)
  unsigned min_video_bitrate_kbps = 150;
};

// One encoder of a raw input: the input's tee -> encoder chain -> its own tee -> one branch
// per call that sends this codec. Created for the first such call, removed after the last.
struct Encoder {
  const Codec* codec = nullptr;
  GstPad* input_pad = nullptr;  // the request pad on the input's tee
  std::vector<GstElement*> chain;
  GstElement* tee = nullptr;
  unsigned users = 0;                          // calls with a branch on `tee`
  std::shared_ptr<KeyframeControl> keyframes;  // video: paces the calls' keyframe requests
};

// One request sink pad. Encoded input: input -> parser -> tee -> one branch per call, sent as
// is. Raw input: input -> tee -> one Encoder per codec in use (see above); the raw tee is
// never relinked, so an encoder added or removed leaves the calls of the others alone.
struct SinkStream {
  std::string name;
  Kind kind;
  GstElement* entry = nullptr;  // identity; the ghost pad's target
  GstElement* tee = nullptr;
  GstPad* ghost = nullptr;
  // Guarded by Engine::streams_mutex_: the input's codec once caps said it is encoded (null:
  // raw, or no caps yet, which is taken as raw).
  const Codec* codec = nullptr;
  bool chain_built = false;
  bool eos = false;                // EOS arrived on the pad
  std::vector<GstElement*> chain;  // encoded input: the parser
  std::vector<std::unique_ptr<Encoder>> encoders;
  std::shared_ptr<KeyframeControl> keyframes;  // encoded video: paces requests to the source
};

class Engine {
 public:
  explicit Engine(_GstWebRTCCall* element);
  ~Engine();

  // NULL->READY: starts the signaling thread and the signaller. READY->NULL: stops both,
  // ending every call. Both return when done.
  bool start();
  void stop();

  // Application thread.
  GstPad* request_sink_pad(Kind kind, const char* name);
  void release_sink_pad(GstPad* pad);
  void stream_eos(SinkStream* stream, bool eos);  // streaming thread
  // An input was flushed with reset-time (a flushing seek, event `seqnum`). Streaming thread.
  void flushed(guint32 seqnum);
  // Sends a seek upstream through every sink pad; true if any input took it. Any thread.
  bool seek_inputs(GstEvent* event);
  // Ends every received stream with EOS (the calls go on). Any thread.
  void end_outputs();
  void call(const std::string& peer);
  void hang_up(const std::optional<std::string>& peer);
  std::vector<std::string> users() const;
  std::vector<std::string> calls() const;
  // "<sink pad>:<codec>" of every encoder running. Any thread.
  std::vector<std::string> encoders();
  // Keyframe requests and keyframes per encoder ("video_0:VP8"), and per encoded video input
  // ("video_0:H264 input"): see keyframe-pacer.h. Any thread.
  std::vector<std::pair<std::string, KeyframePacer::Counts>> keyframe_counts();
  gint64 keyframe_interval_us() const;  // keyframe-interval-min; any thread

  // Codecs (encoding names) a call can send of `stream`: raw input, every codec of its kind
  // whose encoder and payloader are installed; encoded input, its own. Streams mutex held.
  std::vector<std::string> producible(const SinkStream* stream) const;
  // The tee a call links its branch for `codec` of `stream` to (streams mutex held): the
  // input's own for encoded input of that codec; for raw input, that codec's encoder's,
  // started if no call sends that codec yet. Null when the codec cannot be sent. Each tee
  // given out is handed back with release_codec_tee once the branch is unlinked.
  GstElement* acquire_codec_tee(SinkStream* stream, const Codec* codec);
  // Signaling thread, streams mutex not held: the last call of an encoder removes it (its
  // input pad is unlinked between two buffers; the other encoders keep running).
  void release_codec_tee(SinkStream* stream, GstElement* tee);

  // Used by calls (signaling thread unless said otherwise).
  _GstWebRTCCall* element() const { return element_; }
  const std::string& my_name() const { return my_name_; }  // the registered name
  GstBin* bin() const;
  Settings settings() const;  // any thread
  GstWebRTCCallSignaller* signaller() const { return signaller_; }
  // Runs `fn` on the signaling thread (soon, never synchronously). Any thread.
  void invoke(std::function<void()> fn);
  // Runs `fn` on the signaling thread later, never at once (also when called there). Any
  // thread.
  void defer(std::function<void()> fn);
  // Streams of one kind that calls should send.
  std::vector<SinkStream*> streams_of(Kind kind);
  std::mutex& streams_mutex() { return streams_mutex_; }
  void call_ended(Call* call, const std::string& reason);
  Call* find_call(unsigned id);      // a live call
  Call* find_call_any(unsigned id);  // a live call or one being torn down
  // A source pad for what `call` receives (streaming thread); removed by remove_src_pad.
  GstPad* add_src_pad(Call* call, Kind kind, GstPad* target);
  void remove_src_pad(GstPad* pad);
  void call_connected(Call* call);
  // An element of call `call_id` posted an error (any thread): the call ends, the pipeline
  // goes on.
  void call_error(unsigned call_id, std::string message);
  void post(GstStructure* s);  // an element message on the bus; any thread
  // Sets the bitrate of every running encoder of `codec` (an encoding name: "VP8"), when it
  // differs. Signaling thread.
  void set_video_bitrate(const std::string& codec, unsigned kbps);
  // The latest statistics (the `stats` property), or null before the first. Any thread.
  GstStructure* stats() const { return stats_.snapshot(); }

 private:
  static gpointer thread_main(gpointer self);
  void connect_signaller();
  void disconnect_signaller();
  void on_registered(const char* name);
  void on_users(const char* const* users);
  void on_description(const char* peer, int type, const char* sdp);
  void on_candidate(const char* peer, guint mline, const char* mid, const char* candidate);
  void on_remote_hang_up(const char* peer, const char* reason);
  void on_failed(const GError* error);
  void on_notice(const char* code, const char* message);

  void place_call(const std::string& peer);
  bool accept_incoming(const std::string& peer);
  // Ends a call. `hang_up_reason`: what the peer is told (nullptr: nothing, "": a plain,
  // deliberate hang-up, else e.g. "failed", "timeout", "stopped" which it may redial after).
  // `peer` is a copy: the call, which may own the caller's string, can be gone on return.
  void end_call(std::string peer, const std::string& reason, const char* hang_up_reason);
  // Refreshes the copy of the calls the application reads and notifies `calls`.
  void calls_changed();
  // Connects the signaller again after `reconnect_backoff_`'s next delay.
  void schedule_reconnect();
  void end_calls_and_wait(const SinkStream* stream, const char* reason);
  void detach_stream_and_wait(const SinkStream* stream);
  void schedule_peer_retry(const std::string& peer);
  void maybe_call_peer();
  void sync_peer_list();  // dialer_ follows the `peer` property
  void arm_peer_retry();  // the timer of the earliest redial
  // Join pacing (join-pacer.h): offers held while max-connecting calls are connecting.
  struct HeldCandidate {
    guint mline;
    std::optional<std::string> mid;
    std::string candidate;
  };
  struct HeldOffer {
    std::string sdp;
    std::vector<HeldCandidate> candidates;  // trickled while held
  };
  unsigned connecting_calls() const;  // calls not connected yet
  void start_incoming(const std::string& peer, const std::string& sdp,
                      const std::vector<HeldCandidate>& candidates);
  void run_pacer();           // refuses expired held offers, starts the ones a slot frees for
  void arm_pacer(bool soon);  // run_pacer at once, or at the next expiry
  void build_stream_chain(SinkStream* stream, GstCaps* caps);
  void encoders_changed();
  // A keyframe pacer on the sink pad of `tee`, an encoded video stream's (signaling thread
  // or the input's streaming thread).
  std::shared_ptr<KeyframeControl> pace_keyframes(GstElement* tee);

  friend class StatsCollector;  // reads calls_
  StatsCollector stats_{*this};
  _GstWebRTCCall* element_;
  GstWebRTCCallSignaller* signaller_ = nullptr;
  std::vector<gulong> signaller_handlers_;

  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  GThread* thread_ = nullptr;

  // Signaling thread only.
  std::string my_name_;
  bool registered_ = false;
  // Once registered, the server being lost or unreachable is never an error: the engine
  // reconnects with backoff (`lost_` until registered again). Before, it is.
  bool ever_registered_ = false;
  bool lost_ = false;
  signaling::Backoff reconnect_backoff_{1000, 30000};
  std::map<std::string, std::unique_ptr<Call>> calls_;
  std::map<unsigned, std::unique_ptr<Call>> dying_;  // being torn down
  GSource* health_source_ = nullptr;
  std::set<std::string> no_redial_;  // peers that hung up on us or refused
  PeerAdmission admission_;          // offer rate and busy backoff per remote user
  LogThrottle remote_log_;           // what remotes make us log: at most once a second
  PeerDialer dialer_;                // the users of `peer`, each with its redial backoff
  GSource* peer_retry_source_ = nullptr;
  JoinPacer pacer_;
  std::map<std::string, HeldOffer> held_;
  GSource* pacer_source_ = nullptr;
  GSource* reconnect_source_ = nullptr;

  mutable std::mutex state_mutex_;  // guards the copies below, read by the application
  std::vector<std::string> users_copy_;
  std::vector<std::string> calls_copy_;

  std::mutex streams_mutex_;
  std::vector<std::unique_ptr<SinkStream>> streams_;
  unsigned next_call_id_ = 0;
  std::atomic<unsigned> next_src_pad_[2] = {0, 0};
  std::atomic<int> retiring_{0};  // encoders being removed (release_codec_tee)
  std::atomic<guint32> last_flush_seqnum_{GST_SEQNUM_INVALID};
};

}  // namespace webrtccall
