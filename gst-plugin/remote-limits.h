// What a remote peer may make the element do, decided before webrtcbin sees anything: pure
// C++ (no GStreamer, no sockets), so that unit tests and the fuzzer need no gst_init.
//
// - check_remote_sdp(): an offer or answer is refused with a reason unless it is small,
//   well formed and bounded: at most `max_mlines` m-lines and `max_transports` transports
//   (webrtcbin builds an ICE stream and a DTLS transport, about 10 fds and 3 threads, for the
//   BUNDLE group and for each active m-line outside it: 600 exhaust the fd limit), DTLS-SRTP or
//   DTLS-SCTP transports only, payload types 0-127 without duplicates, ICE credentials and a
//   well-formed a=fingerprint with a hash for every active m-line.
// - check_candidate(): a trickled ICE candidate is a bounded `candidate:` line naming an IP
//   address or an mDNS .local name (never a host name: no DNS lookup on a remote's behalf).
// - PeerAdmission: per remote user, a token bucket for offers, and a backoff for callers whose
//   calls hold a slot without ever connecting. Hang-ups need no bucket: one that ends a call
//   only frees resources, and calls are bounded by the offers; one that ends nothing is
//   dropped after a map lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace webrtccall {

struct RemoteLimits {
  std::size_t max_sdp_bytes = 65536;
  unsigned max_mlines = 16;
  unsigned max_transports = 4;   // the BUNDLE group counts one, each active m-line outside it one
  unsigned max_candidates = 64;  // per call: trickled plus a=candidate lines of the SDP
  std::size_t max_candidate_bytes = 512;
};

// What the checks saw of an accepted SDP (for tests and for the candidate checks).
struct SdpMediaView {
  std::string kind;   // audio, video, application
  unsigned port = 0;  // 0: rejected or bundle-only
  std::string proto;  // UDP/TLS/RTP/SAVPF, ...
  std::vector<int> payload_types;
  std::string mid;
};
struct SdpView {
  std::vector<SdpMediaView> media;
  std::vector<std::string> bundle_mids;
  unsigned transports = 0;
  unsigned candidates = 0;  // a=candidate lines
};

// Empty when `sdp` is acceptable, else why it is refused (a sentence for users). Fills
// `view` when given and accepted.
std::string check_remote_sdp(std::string_view sdp, const RemoteLimits& limits,
                             SdpView* view = nullptr);

// Empty when `candidate` ("candidate:..." or "a=candidate:...") is acceptable, else why not.
std::string check_candidate(std::string_view candidate, const RemoteLimits& limits);

struct AdmissionConfig {
  // Offers per second per remote user, and the burst allowed (0: no limit).
  double rate_per_second = 5;
  unsigned burst = 20;
  // A caller whose incoming calls held a slot unconnected for `connect_timeout_us` in total
  // (one timed-out call, or several cut short) is refused as busy for `backoff_us`.
  std::int64_t connect_timeout_us = 10'000'000;
  std::int64_t backoff_us = 60'000'000;
  // Refusals (busy, declined, invalid-sdp) sent to all remote users together, per second,
  // and their burst: beyond, offers are dropped unanswered. Many names flooding a busy
  // pipeline would otherwise make the server throttle the pipeline's own connection (its
  // default is 50 messages/s, burst 100).
  double refusal_rate = 10;
  unsigned refusal_burst = 40;
  // Remote users tracked at once; idle entries (full bucket, no backoff) are dropped first,
  // which loses nothing; beyond this the oldest go.
  std::size_t max_peers = 4096;
};

class PeerAdmission {
 public:
  enum class Verdict { kAccept, kRateLimited, kBackoff };

  explicit PeerAdmission(AdmissionConfig config = {}) : config_(config) {}
  void set_config(const AdmissionConfig& config) { config_ = config; }

  // An offer from `peer`: spends a token. kRateLimited: drop it (no answer at all, so a
  // flood is never amplified); kBackoff: refuse it as busy.
  Verdict offer(const std::string& peer, std::int64_t now_us);
  // An incoming call from `peer` ended; `unconnected_us`: how long it held a slot without
  // connecting (ignored when it connected, which forgives earlier unconnected time).
  void call_ended(const std::string& peer, bool connected, std::int64_t unconnected_us,
                  std::int64_t now_us);
  bool in_backoff(const std::string& peer, std::int64_t now_us) const;
  // Whether a refusal may be sent now (spends a token of the shared refusal bucket).
  bool refusal_allowed(std::int64_t now_us);
  std::size_t tracked() const { return peers_.size(); }

 private:
  struct State {
    double tokens = 0;
    std::int64_t last_us = 0;  // last refill
    std::int64_t unconnected_us = 0;
    std::int64_t last_unconnected_end_us = 0;
    std::int64_t backoff_until_us = 0;
  };
  State& state(const std::string& peer, std::int64_t now_us);
  void refill(State& s, std::int64_t now_us) const;
  bool idle(const State& s, std::int64_t now_us) const;
  void prune(std::int64_t now_us);

  AdmissionConfig config_;
  std::map<std::string, State> peers_;
  double refusal_tokens_ = -1;  // -1: full, not started
  std::int64_t refusal_last_us_ = 0;
  std::int64_t last_prune_us_ = 0;
};

// Rate-limited logging: allow() is true at most once per `interval_us`; suppressed() says
// how many were swallowed since the last allowed one (and resets).
class LogThrottle {
 public:
  explicit LogThrottle(std::int64_t interval_us = 1'000'000) : interval_us_(interval_us) {}
  bool allow(std::int64_t now_us);
  unsigned suppressed() {
    unsigned n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  std::int64_t interval_us_;
  std::int64_t last_us_ = -1;
  unsigned suppressed_ = 0;
};

}  // namespace webrtccall
