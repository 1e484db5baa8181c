#include "negotiation.h"

#include <algorithm>
#include <utility>

namespace webrtccall {

namespace {

using Action = Negotiation::Action;
using State = Negotiation::State;
using Step = Negotiation::Step;

Step refuse(std::string why) {
  return {Action::kRefuse, std::move(why)};
}

}  // namespace

const char* to_string(Negotiation::State state) {
  switch (state) {
    case State::kStable:
      return "stable";
    case State::kHaveLocalOffer:
      return "have-local-offer";
    case State::kHaveRemoteOffer:
      return "have-remote-offer";
    case State::kClosed:
      return "closed";
  }
  return "?";
}

const char* to_string(Negotiation::Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kSendOffer:
      return "send-offer";
    case Action::kApplyRemoteOffer:
      return "apply-remote-offer";
    case Action::kApplyRemoteAnswer:
      return "apply-remote-answer";
    case Action::kIgnoreOffer:
      return "ignore-offer";
    case Action::kRestartAndAnswer:
      return "restart-and-answer";
    case Action::kQueue:
      return "queue";
    case Action::kRefuse:
      return "refuse";
  }
  return "?";
}

Step Negotiation::local_offer(std::int64_t now_us) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kStable) return refuse("an offer while negotiating already");
  state_ = State::kHaveLocalOffer;
  offer_us_ = now_us;
  return {Action::kSendOffer, {}};
}

Step Negotiation::remote_offer() {
  switch (state_) {
    case State::kClosed:
      return {};
    case State::kStable:
      state_ = State::kHaveRemoteOffer;
      return {Action::kApplyRemoteOffer, {}};
    case State::kHaveRemoteOffer:
      return {Action::kIgnoreOffer, "an offer while the previous one is being answered"};
    case State::kHaveLocalOffer:
      break;
  }
  // Glare.
  if (!established_) {
    if (polite_) {
      state_ = State::kClosed;  // this call ends; a new one answers
      return {Action::kRestartAndAnswer, "glare before the first answer: answering theirs"};
    }
    return {Action::kIgnoreOffer, "glare before the first answer: keeping our offer"};
  }
  if (polite_) {
    owed_ = true;
    return {Action::kIgnoreOffer,
            "renegotiation collision: keeping our offer (webrtcbin cannot roll back); the "
            "remote is expected to roll back and answer it"};
  }
  return {Action::kIgnoreOffer, "renegotiation collision: keeping our offer"};
}

Step Negotiation::remote_answer() {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kHaveLocalOffer) return refuse("an answer without an offer of ours");
  return {Action::kApplyRemoteAnswer, {}};
}

Step Negotiation::answer_applied(std::int64_t now_us) {
  if (state_ != State::kHaveLocalOffer) return {};
  owed_ = false;  // the remote rolled back and answered ours; it re-offers its own itself
  return become_stable(now_us);
}

Step Negotiation::local_answer(std::int64_t now_us) {
  if (state_ != State::kHaveRemoteOffer) return {};
  return become_stable(now_us);
}

Step Negotiation::become_stable(std::int64_t now_us) {
  state_ = State::kStable;
  established_ = true;
  offer_us_ = 0;
  if (std::exchange(queued_, false)) {
    state_ = State::kHaveLocalOffer;
    offer_us_ = now_us;
    return {Action::kSendOffer, {}};
  }
  return {};
}

Step Negotiation::negotiation_needed(std::int64_t now_us) {
  if (state_ == State::kClosed) return {};
  if (state_ != State::kStable || !established_) {
    queued_ = true;
    return {Action::kQueue, {}};
  }
  state_ = State::kHaveLocalOffer;
  offer_us_ = now_us;
  return {Action::kSendOffer, {}};
}

Step Negotiation::description_failed(const std::string& why) {
  if (state_ == State::kClosed) return {};
  state_ = State::kClosed;
  return refuse(why);
}

Step Negotiation::offer_failed(const std::string& why) {
  if (state_ != State::kHaveLocalOffer) return {};
  if (!established_) return description_failed(why);
  state_ = State::kStable;
  queued_ = false;
  owed_ = false;
  offer_us_ = 0;
  return {Action::kNone, why};
}

std::string Negotiation::unanswered_reason(const std::string& remote) const {
  if (owed_) {
    return "renegotiation collision with " + remote +
           ": neither side answered (webrtcbin cannot roll back its offer)";
  }
  return "no answer from " + remote + " to our new offer";
}

int call_for_nameless_candidate(const std::vector<bool>& connected) {
  int found = -1;
  for (std::size_t i = 0; i < connected.size(); ++i) {
    if (connected[i]) continue;
    if (found >= 0) return -1;  // two in negotiation: whose is it?
    found = static_cast<int>(i);
  }
  return found;
}

TransportIdentity transport_identity(std::string_view sdp) {
  TransportIdentity id;
  auto add = [](std::vector<std::string>& v, std::string_view value) {
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    std::string s(value);
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
  };
  // Only active m-lines count: a rejected one (port 0) carries no transport.
  bool active = true;
  std::size_t pos = 0;
  while (pos < sdp.size()) {
    std::size_t end = sdp.find('\n', pos);
    if (end == std::string_view::npos) end = sdp.size();
    std::string_view line = sdp.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind("m=", 0) == 0) {
      std::size_t sp = line.find(' ');
      active = !(sp != std::string_view::npos && line.substr(sp + 1, 2) == "0 ");
    } else if (!active) {
      continue;
    } else if (line.rfind("a=ice-ufrag:", 0) == 0) {
      add(id.ice_ufrags, line.substr(12));
    } else if (line.rfind("a=ice-pwd:", 0) == 0) {
      add(id.ice_pwds, line.substr(10));
    } else if (line.rfind("a=fingerprint:", 0) == 0) {
      add(id.fingerprints, line.substr(14));
    }
  }
  return id;
}

std::string check_reoffer(const TransportIdentity& before, const TransportIdentity& after) {
  auto changed = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    // Every value of the new description must be one the call already uses (new m-lines are
    // bundled onto the existing transport and repeat its credentials).
    for (const std::string& v : b) {
      if (std::find(a.begin(), a.end(), v) == a.end()) return true;
    }
    return false;
  };
  if (changed(before.fingerprints, after.fingerprints)) {
    return "re-offer changes the DTLS fingerprint of the call: refused (webrtcbin 1.22 cannot "
           "change the certificate of an established transport)";
  }
  if (changed(before.ice_ufrags, after.ice_ufrags) || changed(before.ice_pwds, after.ice_pwds)) {
    return "re-offer changes the ICE credentials of the call (an ICE restart): refused "
           "(webrtcbin 1.22 cannot restart ICE)";
  }
  return {};
}

DtlsRole dtls_role_from_answer(std::string_view setup, bool ours) {
  if (setup == "active") return ours ? DtlsRole::kClient : DtlsRole::kServer;
  if (setup == "passive") return ours ? DtlsRole::kServer : DtlsRole::kClient;
  return DtlsRole::kUnknown;  // "actpass" or nothing: not a valid answer; webrtcbin decides
}

const char* answer_setup(DtlsRole role) {
  switch (role) {
    case DtlsRole::kClient:
      return "active";
    case DtlsRole::kServer:
      return "passive";
    case DtlsRole::kUnknown:
      break;
  }
  return nullptr;
}

std::string first_setup(std::string_view sdp) {
  constexpr std::string_view kKey = "a=setup:";
  std::size_t at = 0;
  while (at < sdp.size()) {
    std::size_t end = sdp.find('\n', at);
    std::string_view line = sdp.substr(at, end == std::string_view::npos ? end : end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with(kKey)) return std::string(line.substr(kKey.size()));
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return {};
}

}  // namespace webrtccall
