// The negotiation of one call as a state machine: pure C++ (no GStreamer, no GLib), in the
// style of signaling/router.h. Events go in (descriptions sent and received, descriptions
// applied, "negotiation needed"), actions come out; the Call carries them out on its webrtcbin.
//
// It follows the W3C "perfect negotiation" pattern where webrtcbin 1.22 allows it. Politeness
// is by name order, the same rule on both ends: the smaller name is impolite (keeps its offer
// in glare), the greater one is polite. Glare is a property of the signaling state
// (have-local-offer when an offer arrives), never of ICE or DTLS progress.
//
// webrtcbin 1.22 has no usable rollback: its source has a GST_WEBRTC_SDP_TYPE_ROLLBACK case
// that only drops the pending description and sets the state back to stable ("rollbacks are
// completely untested"), leaving the transceivers, mids and transports the rolled-back offer
// made. So the polite side cannot do what a browser does (setRemoteDescription(offer) in
// have-local-offer, an implicit rollback). Instead:
//   - glare before the first answer (no media yet): the impolite side ignores the remote
//     offer; the polite side drops its webrtcbin (nothing was flowing) and answers the
//     remote's offer on a new one (kRestartAndAnswer).
//   - glare in an established call (a renegotiation collision): the impolite side ignores the
//     remote offer and waits for the answer to its own, as in perfect negotiation. The polite
//     side cannot roll back: it keeps its offer, ignores the remote's and remembers that one
//     is owed. A browser rolls back implicitly when our offer arrives in have-local-offer
//     (MDN's sample and perfect negotiation's polite peer), answers ours, and re-offers its
//     own once stable. A remote that does not (another element, an impolite browser) never
//     answers: the re-offer waits answer-timeout and the call ends, saying why. Between two
//     elements this needs both to re-offer at the same instant (sink pads added on both ends
//     at once); ending the call then is better than a restart on a fresh webrtcbin, which
//     would interrupt media on every collision and make the other side re-answer too.
//   - "negotiation needed" (a sink pad requested mid-call) while not stable is queued and run
//     once stable again. A released sink pad needs none: webrtcbin 1.22 refuses to change the
//     direction of a negotiated m-line, so it stays sendrecv, unused (Call::finish_detach).
//   - a re-offer webrtcbin cannot make (offer failed) leaves the call as it was.
//
// States x events (state: signaling state, and whether the first offer/answer exchange is
// done, "established"; a row per test in tests/unit/negotiation_test.cpp):
//
//   state              | event                 | action                 | next
//   -------------------+-----------------------+------------------------+-------------------
//   stable             | local offer           | send offer             | have-local-offer
//   stable             | remote offer          | apply remote offer     | have-remote-offer
//   stable             | remote answer         | refuse (no offer)      | stable
//   stable             | negotiation needed    | send offer (est.)      | have-local-offer
//   stable, not est.   | negotiation needed    | queue                  | stable
//   have-local-offer   | remote answer         | apply remote answer    | stable*
//   have-local-offer   | remote offer, not est | impolite: ignore       | have-local-offer
//                      |                       | polite: restart+answer | (new call)
//   have-local-offer   | remote offer, est.    | ignore (both; polite   | have-local-offer
//                      |                       | remembers it is owed)  |
//   have-local-offer   | negotiation needed    | queue                  | have-local-offer
//   have-local-offer   | local offer           | refuse (one at a time) | have-local-offer
//   have-remote-offer  | local answer          | none                   | stable*
//   have-remote-offer  | remote offer          | ignore (answering)     | have-remote-offer
//   have-remote-offer  | remote answer         | refuse (no offer)      | have-remote-offer
//   have-remote-offer  | negotiation needed    | queue                  | have-remote-offer
//   have-local-offer   | offer failed, est.    | none (call unchanged)  | stable
//   have-local-offer   | offer failed, not est | refuse                 | closed
//   any                | description failed    | refuse (ends the call) | closed
//   closed             | any                   | none                   | closed
//   (*) stable with a queued renegotiation: send offer, have-local-offer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace webrtccall {

class Negotiation {
 public:
  enum class State { kStable, kHaveLocalOffer, kHaveRemoteOffer, kClosed };
  enum class Action {
    kNone,
    kSendOffer,          // create an offer, apply it locally and send it
    kApplyRemoteOffer,   // set-remote-description(offer), link new m-lines, create-answer
    kApplyRemoteAnswer,  // set-remote-description(answer)
    kIgnoreOffer,        // glare: the remote's offer is dropped
    kRestartAndAnswer,   // initial glare, polite: drop our webrtcbin, answer on a new one
    kQueue,              // renegotiation remembered until stable
    kRefuse,             // `reason` says why; the call ends
  };
  struct Step {
    Action action = Action::kNone;
    std::string reason;  // for kRefuse, and a word on kIgnoreOffer
  };

  Negotiation(std::string local_name, std::string remote_name)
      : polite_(local_name > remote_name) {}

  // Events.
  Step local_offer(std::int64_t now_us);  // we start the first offer of an outgoing call
  Step remote_offer();
  Step remote_answer();
  // Our answer to the remote offer was applied locally (and sent). `now_us`: when a queued
  // renegotiation's offer (kSendOffer) goes out.
  Step local_answer(std::int64_t now_us);
  // The remote's answer was handed to webrtcbin (which runs operations in order, so whatever
  // follows sees it applied): stable again.
  Step answer_applied(std::int64_t now_us);
  Step negotiation_needed(std::int64_t now_us);
  Step description_failed(const std::string& why);
  // webrtcbin could not make our offer. A re-offer of an established call: back to stable,
  // the call goes on unchanged (kNone, `reason` says why; what was queued is dropped, or it
  // would fail again). The first offer: kRefuse.
  Step offer_failed(const std::string& why);

  State state() const { return state_; }
  bool polite() const { return polite_; }
  bool established() const { return established_; }
  bool queued() const { return queued_; }
  // A remote offer was ignored in a renegotiation collision where we are polite: the remote
  // is expected to roll back and answer ours (then re-offer its own).
  bool owed() const { return owed_; }
  // Our re-offer waits for an answer since this time (0: none outstanding).
  std::int64_t offer_pending_since_us() const {
    return state_ == State::kHaveLocalOffer ? offer_us_ : 0;
  }
  // Why an unanswered re-offer ends the call (for the answer-timeout).
  std::string unanswered_reason(const std::string& remote) const;

 private:
  Step become_stable(std::int64_t now_us);

  bool polite_;
  State state_ = State::kStable;
  bool established_ = false;
  bool queued_ = false;
  bool owed_ = false;
  std::int64_t offer_us_ = 0;
};

// The call a candidate without a sender name belongs to (MDN's server stamps none): the only
// call in negotiation (`connected[i]` false), if there is exactly one; else -1 (dropped).
int call_for_nameless_candidate(const std::vector<bool>& connected);

const char* to_string(Negotiation::State state);
const char* to_string(Negotiation::Action action);

// What identifies the transports of an established call in a description: its ICE
// credentials and DTLS fingerprints (session and media level, in order, deduplicated).
struct TransportIdentity {
  std::vector<std::string> ice_ufrags, ice_pwds, fingerprints;
};
TransportIdentity transport_identity(std::string_view sdp);
// Empty when a re-offer keeps the transports of the call, else why it is refused: webrtcbin
// 1.22 cannot restart ICE nor change the DTLS certificate of an established transport.
std::string check_reoffer(const TransportIdentity& before, const TransportIdentity& after);

// The DTLS role of a call, which the first offer/answer exchange sets (RFC 8842 section 5.5:
// the answerer of a later exchange must keep it). webrtcbin 1.22 answers every offer with
// a=setup:active; answering a re-offer so in a call we placed (where the remote's answer
// took "active") would flip the roles: Chromium refuses that answer ("Failed to set SSL role
// for the transport") and webrtcbin's own DTLS fails ("Fatal SSL error"). So the Call writes
// the role it has into its answers to re-offers.
enum class DtlsRole { kUnknown, kClient, kServer };
// The role the first exchange gives us, from the a=setup of its answer: `ours` when we
// answered (our setup is our role), else the remote's (the opposite role is ours).
DtlsRole dtls_role_from_answer(std::string_view setup, bool ours);
// The a=setup value our answer must carry to keep `role`, or null for kUnknown.
const char* answer_setup(DtlsRole role);
// The first a=setup value in an SDP (media or session level), or empty.
std::string first_setup(std::string_view sdp);

}  // namespace webrtccall
