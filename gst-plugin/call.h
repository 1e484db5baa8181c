// One call: a webrtcbin, the branches that feed it from the shared input streams, and the
// chains that decode what the remote sends. Lives on the engine's signaling thread; the
// webrtcbin callbacks it connects run on streaming threads and only hand work over.
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "branch-flow.h"
#include "engine.h"
#include "fingerprint.h"
#include "negotiation.h"
#include "remote-limits.h"

namespace webrtccall {

// Every element a call adds to the element's bin is named "call<id>-<what>-<n>", so that a
// message from anywhere inside it (an error from a decoder or from webrtcbin's transports) can
// be traced to its call from any thread, without a lock.
std::string call_element_name(unsigned call_id, std::string_view what, unsigned n);
// The call id in such a name, or 0 (ids start at 1) for an element that is no call's.
unsigned call_id_of_element(std::string_view name);

class Call {
 public:
  Call(Engine& engine, std::string peer, unsigned id, bool offerer, Settings settings);
  ~Call();
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  const std::string& peer() const { return peer_; }
  unsigned id() const { return id_; }
  bool offerer() const { return offerer_; }
  bool connected() const { return connected_; }
  // Whether the call sends `stream`, or offered it and links it once answered.
  bool sends(const SinkStream* stream) const {
    for (const SendBranch& b : sends_) {
      if (b.stream == stream) return true;
    }
    for (const Offered& o : offered_) {
      if (o.stream == stream) return true;
    }
    return false;
  }

  // Creates the webrtcbin. The offerer links its branches and sends the offer. Returns false
  // with `error` set when the call cannot be made.
  bool start(std::string& error);
  // An offer from the remote, through the negotiation machine (negotiation.h): applied and
  // answered on this webrtcbin (the first offer of an incoming call, or a re-offer in stable),
  // ignored (glare), or kRestartAndAnswer (initial glare, we are polite: the engine ends this
  // call and answers on a new one). kRefuse with the reason in `error` ends the call.
  Negotiation::Step remote_offer(const std::string& sdp, std::string& error);
  // The answer to our offer. Returns false with `error` when it is refused (no fingerprint,
  // unparsable, no offer of ours, ...).
  bool remote_answer(const std::string& sdp, std::string& error);
  // A sink pad was requested during the call: a branch is linked and the call renegotiates
  // (queued while not stable).
  void add_stream(SinkStream* stream);
  // A sink pad is being released: detach_stream() unlinks the call's branch from the
  // stream's tee (when no buffer passes) and calls `detached` on the signaling thread;
  // then finish_detach() removes the branch and releases webrtcbin's pad (no re-offer: in
  // webrtcbin 1.22 the m-line stays sendrecv, unused). Returns false when the call does not
  // send the stream.
  bool detach_stream(SinkStream* stream, std::function<void()> detached);
  void finish_detach(SinkStream* stream);
  const Negotiation& negotiation() const { return negotiation_; }
  // The checks of remote-limits.h alone (no webrtcbin needed): false with `error` when the
  // description is refused.
  bool check_remote(const std::string& sdp, std::string& error);
  // A trickled candidate: refused unless well formed, and ignored beyond max-candidates.
  void remote_candidate(guint mline, const char* mid, const char* candidate);
  gint64 started_us() const { return started_us_; }

  // Buffers of the call's send branches dropped because the call could not keep up: those
  // its branch queue leaked (in - out - still queued, counted by probes on the queue's pads;
  // while buffers flow a reading can be ahead by the one or two being handed over), plus the
  // video frames dropped after such a leak until the next keyframe. Branches detached
  // mid-call still count. The frames a newcomer skips before its first keyframe are not
  // drops (skipped_before_keyframe). Signaling thread.
  guint64 dropped_buffers() const;
  guint64 skipped_before_keyframe() const;

  // Ends the received streams with EOS (into the start of each receive chain, so it follows
  // the data in order).
  void end_outputs();

  // Periodic check (signaling thread): returns a reason to end the call, or empty.
  std::string check_health(gint64 now_us);

  // Detaches from the shared streams and tears everything down. Calls `done` on the
  // signaling thread when finished (the Call may then be deleted).
  void teardown(std::function<void()> done);

 private:
  // What passes a send branch's queue, counted by probes on its pads (streaming threads).
  struct BranchFlow {
    GstElement* queue = nullptr;  // not owned: the branch's, alive while the branch is
    std::atomic<guint64> in{0}, out{0};
    std::atomic<guint64> gated{0};    // video dropped after a leak, until the next keyframe
    std::atomic<guint64> skipped{0};  // video dropped before the first keyframe
    std::atomic<gint64> last_in_us{0}, last_out_us{0};
    gint64 linked_us = 0;
    // Video: nothing passes before the call is connected (`open`), then nothing until a
    // keyframe, and after a leak nothing until the next one (a viewer never gets a delta
    // frame whose reference it lacks): branch-flow.h. The gate runs on the queue's thread.
    bool video = false;
    std::atomic<bool> open{false};
    KeyframeGate gate;
    guint64 dropped() const;
  };
  struct SendBranch {
    SinkStream* stream;
    GstElement* tee;  // the codec's (Engine::acquire_codec_tee)
    const Codec* codec;
    GstPad* tee_pad = nullptr;
    std::vector<GstElement*> elements;  // queue, payloader, capsfilter
    GstPad* webrtc_pad = nullptr;       // webrtcbin's sink pad (a reference)
    bool webrtc_made_pad = false;       // webrtcbin made it, we did not request it
    std::shared_ptr<BranchFlow> flow;
  };
  struct Receive {
    std::vector<GstElement*> elements;
    GstPad* ghost = nullptr;
  };

  GstElement* make_webrtcbin();
  void configure_ice_agent();
  // The codec the element is configured to send `stream` in (video-codec, or the input's).
  const Codec* configured_codec(const SinkStream* stream) const;
  // Links a branch of `codec` to webrtcbin's `existing_pad`, or to the pad `sink_pad_name`.
  bool link_branch(SinkStream* stream, const Codec* codec, int pt, const char* sink_pad_name,
                   GstPad* existing_pad = nullptr);
  // The offerer's video: a transceiver offering every codec we can produce, linked to the
  // codec the answer takes (link_offered).
  bool offer_all_codecs(SinkStream* stream);
  void link_offered();
  void add_recvonly_transceiver(Kind kind);
  void create_offer_or_answer(bool offer);
  void on_description_created(GstWebRTCSessionDescription* desc);
  bool apply_remote(GstWebRTCSDPType type, const std::string& sdp, std::string& error);
  void on_remote_description_set(GstWebRTCSDPType type);
  // Links the streams the call does not send yet to the m-lines of the remote offer that
  // carry nothing of ours, with the offer's payload types.
  void link_offered_lines();
  // The m-line webrtcbin's sink pad `pad` sends on, or -1 while it has none.
  int mline_of(GstPad* pad);
  // What the negotiation machine said: runs kSendOffer (renegotiate); kRefuse ends the call.
  void run(const Negotiation::Step& step);
  void renegotiate();
  void negotiated();  // an exchange finished
  void add_candidate(guint mline, const char* mid, const char* candidate);
  void flush_pending_candidates();
  void on_connection_state();
  bool verify_fingerprint(std::string& error);
  void watch_incoming_packets();
  void request_keyframes();
  // Counts what enters and leaves the branch's queue (BranchFlow) and holds back a video
  // branch until its first keyframe.
  void watch_branch(SendBranch& branch);
  void drain_webrtcbin();
  void remove_branch_elements(const SendBranch& branch);
  void teardown_wait_done();
  void finish_teardown();

  // webrtcbin signals (streaming threads).
  static void on_ice_candidate_cb(GstElement* webrtc, guint mline, gchar* candidate, gpointer self);
  static void on_pad_added_cb(GstElement* webrtc, GstPad* pad, gpointer self);
  static void on_state_cb(GObject* webrtc, GParamSpec* pspec, gpointer self);
  void build_receive_chain(GstPad* pad);

  // Runs `fn` on the signaling thread if this call still exists then.
  void later(std::function<void(Call&)> fn);
  // A promise for webrtcbin whose reply `fn` handles on the signaling thread (if the call
  // still exists then).
  GstPromise* promise_then(std::function<void(Call&, const GstStructure* reply)> fn);

  friend class StatsCollector;  // get-stats on webrtc_ through promise_then

  Engine& engine_;
  std::string peer_;
  unsigned id_;
  bool offerer_;
  Settings settings_;
  GstElement* webrtc_ = nullptr;
  std::vector<gulong> handlers_;
  std::vector<SendBranch> sends_;

  std::mutex receive_mutex_;  // pad-added runs on a streaming thread
  std::vector<Receive> receives_;
  bool tearing_down_ = false;  // guarded by receive_mutex_

  Negotiation negotiation_;
  std::vector<SinkStream*> pending_adds_;  // sink pads requested during the call, not linked
  // M-lines whose sink pad was released: webrtcbin 1.22 cannot give them a new one.
  std::vector<int> released_mlines_;
  TransportIdentity identity_;               // the remote's, from its first description
  DtlsRole dtls_role_ = DtlsRole::kUnknown;  // set by the first exchange, kept by later answers
  bool remote_set_ = false;
  struct PendingCandidate {
    guint mline;
    std::string mid;
    std::string candidate;
  };
  std::vector<PendingCandidate> pending_candidates_;
  unsigned candidates_ = 0;  // taken: trickled and in the remote SDP, at most max-candidates
  std::size_t remote_mlines_ = 0;
  gint64 remote_us_ = 0;  // when the remote description was taken (starts connect-timeout)
  LogThrottle candidate_log_;
  bool candidates_full_warned_ = false;
  std::vector<Fingerprint> remote_fingerprints_;
  GstSDPMessage* remote_offer_ = nullptr;  // kept until the answer is created
  std::string remote_text_;                // the remote description as taken (mended)
  std::vector<bool> rejected_mlines_;      // of the answer, as the remote sent it
  struct Offered {
    SinkStream* stream;
    GstWebRTCRTPTransceiver* transceiver;
  };
  std::vector<Offered> offered_;  // streams whose codec the answer decides

  bool connected_ = false;
  gint64 connected_us_ = 0;
  gint64 started_us_;
  guint64 detached_dropped_ = 0, detached_skipped_ = 0;  // of branches detached mid-call
  std::atomic<gint64> last_rx_us_{0};
  std::vector<std::pair<GstPad*, gulong>> rx_probes_;

  // Teardown waits for: each send branch to detach from its tee, and webrtcbin's queued
  // operations to have run (drain_webrtcbin).
  unsigned teardown_waits_ = 0;
  std::function<void()> teardown_done_;

  std::atomic<unsigned> named_{0};  // elements named so far (call_element_name's n)
  void name_elements(const std::vector<GstElement*>& elements);
};

}  // namespace webrtccall
