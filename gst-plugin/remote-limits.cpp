#include "remote-limits.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace webrtccall {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// RFC 8839 ice-char.
bool is_ice_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Splits at single spaces; empty fields (double spaces) are kept, so they can be refused.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    std::size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return out;
}

// A decimal number without sign, at most `max`; false for anything else.
bool parse_uint(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  return std::all_of(s.begin(), s.end(), pred);
}

// Visible ASCII without spaces: what SDP tokens and candidate fields may hold.
bool is_token_char(char c) {
  return c > 0x20 && c < 0x7f;
}

bool is_ipv4(std::string_view s) {
  std::vector<std::string_view> parts = split(s, '.');
  if (parts.size() != 4) return false;
  for (std::string_view p : parts) {
    std::uint64_t v = 0;
    if (p.size() > 3 || !parse_uint(p, 255, v)) return false;
  }
  return true;
}

bool is_ipv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45 || s.find(':') == std::string_view::npos) return false;
  // Hex groups and colons, an embedded IPv4 tail allowed; at most one "::".
  std::size_t dc = s.find("::");
  if (dc != std::string_view::npos && s.find("::", dc + 1) != std::string_view::npos) return false;
  std::size_t last_colon = s.rfind(':');
  std::string_view head = s.substr(0, last_colon + 1), tail = s.substr(last_colon + 1);
  if (tail.find('.') != std::string_view::npos) {
    if (!is_ipv4(tail)) return false;
  } else if (!all_of(tail, is_hex) || tail.size() > 4) {
    return false;
  }
  unsigned groups = 0;
  for (std::string_view g : split(head, ':')) {
    if (g.size() > 4 || !all_of(g, is_hex)) return false;
    if (!g.empty()) ++groups;
  }
  return groups <= 8;
}

// An mDNS name as browsers hide host addresses with: <labels>.local.
bool is_mdns_name(std::string_view s) {
  static constexpr std::string_view kSuffix = ".local";
  if (s.size() <= kSuffix.size() || s.size() > 253) return false;
  if (lower(s.substr(s.size() - kSuffix.size())) != kSuffix) return false;
  for (std::string_view label : split(s.substr(0, s.size() - kSuffix.size()), '.')) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    }
  }
  return true;
}

// Hash functions of RFC 8122 with their digest length in bytes.
int digest_bytes(const std::string& algorithm) {
  if (algorithm == "sha-1") return 20;
  if (algorithm == "sha-224") return 28;
  if (algorithm == "sha-256") return 32;
  if (algorithm == "sha-384") return 48;
  if (algorithm == "sha-512") return 64;
  if (algorithm == "md5" || algorithm == "md2") return 16;
  return 0;
}
// The ones the element can check the DTLS certificate with (fingerprint.cpp).
bool checkable(const std::string& algorithm) {
  return algorithm == "sha-1" || algorithm == "sha-256" || algorithm == "sha-384" ||
         algorithm == "sha-512";
}

// Empty or why `value` (of a=fingerprint:) is malformed; `usable` when we can check it.
std::string check_fingerprint(std::string_view value, bool& usable) {
  std::size_t space = value.find(' ');
  if (space == std::string_view::npos) {
    return "a=fingerprint without a hash refused (DTLS peer could not be authenticated)";
  }
  std::string algorithm = lower(value.substr(0, space));
  std::string_view hex = value.substr(space + 1);
  int bytes = digest_bytes(algorithm);
  if (bytes == 0) return "a=fingerprint with an unknown hash function refused";
  std::vector<std::string_view> groups = split(hex, ':');
  bool ok = static_cast<int>(groups.size()) == bytes;
  for (std::string_view g : groups) ok = ok && g.size() == 2 && all_of(g, is_hex);
  if (!ok) return "malformed a=fingerprint refused (not a " + algorithm + " hash)";
  usable = usable || checkable(algorithm);
  return "";
}

struct MediaState {
  SdpMediaView view;
  bool rtp = false;
  bool has_ufrag = false, has_pwd = false, has_fingerprint = false;
  std::set<int> rtpmaps;
};

std::string check_ice_credential(std::string_view key, std::string_view value) {
  std::size_t min = key == "ice-ufrag" ? 4 : 22;
  if (value.size() < min || value.size() > 256 || !all_of(value, is_ice_char)) {
    return "malformed a=" + std::string(key) + " refused";
  }
  return "";
}

// An attribute at session level (`media` null) or of the current m-line.
std::string check_attribute(std::string_view line, MediaState* media, MediaState& session,
                            unsigned& candidates, const RemoteLimits& limits, bool& usable_fp) {
  std::string_view attr = line.substr(2);
  std::size_t colon = attr.find(':');
  std::string_view key = attr.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : attr.substr(colon + 1);
  MediaState& at = media ? *media : session;
  if (key == "fingerprint") {
    std::string why = check_fingerprint(value, usable_fp);
    if (!why.empty()) return why;
    at.has_fingerprint = true;
  } else if (key == "ice-ufrag" || key == "ice-pwd") {
    std::string why = check_ice_credential(key, value);
    if (!why.empty()) return why;
    (key == "ice-ufrag" ? at.has_ufrag : at.has_pwd) = true;
  } else if (key == "setup") {
    if (value != "actpass" && value != "active" && value != "passive" && value != "holdconn") {
      return "malformed a=setup refused";
    }
  } else if (key == "candidate") {
    if (++candidates > limits.max_candidates) {
      return "more than max-candidates (" + std::to_string(limits.max_candidates) +
             ") candidates in the SDP refused";
    }
    std::string why = check_candidate(line, limits);
    if (!why.empty()) return why;
  } else if (key == "mid" && media) {
    if (value.empty() || value.size() > 64 || !all_of(value, is_token_char)) {
      return "malformed a=mid refused";
    }
    media->view.mid = value;
  } else if (media && media->rtp && (key == "rtpmap" || key == "fmtp" || key == "rtcp-fb")) {
    std::string_view pt_text = value.substr(0, value.find(' '));
    std::uint64_t pt = 0;
    if (key == "rtcp-fb" && pt_text == "*") return "";
    if (!parse_uint(pt_text, 127, pt)) {
      return "a=" + std::string(key) + " with a payload type outside 0-127 refused";
    }
    if (key == "rtpmap" && !media->rtpmaps.insert(static_cast<int>(pt)).second) {
      return "two a=rtpmap for payload type " + std::to_string(pt) + " refused";
    }
  }
  return "";
}

std::string check_media_line(std::string_view value, MediaState& m) {
  std::vector<std::string_view> f = split(value, ' ');
  if (f.size() < 4) return "malformed m-line refused";
  m.view.kind = f[0];
  if (m.view.kind != "audio" && m.view.kind != "video" && m.view.kind != "application") {
    return "m-line of unknown media (" + std::string(f[0].substr(0, 32)) + ") refused";
  }
  std::string_view port = f[1].substr(0, f[1].find('/'));
  std::uint64_t p = 0;
  if (!parse_uint(port, 65535, p)) return "malformed m-line port refused";
  m.view.port = static_cast<unsigned>(p);
  m.view.proto = f[2];
  bool application = m.view.kind == "application";
  m.rtp = m.view.proto == "UDP/TLS/RTP/SAVPF" || m.view.proto == "UDP/TLS/RTP/SAVP";
  bool sctp = m.view.proto == "UDP/DTLS/SCTP" || m.view.proto == "DTLS/SCTP";
  if (application ? !sctp : !m.rtp) {
    return "transport " + std::string(f[2].substr(0, 32)) + " refused (only DTLS-SRTP for " +
           "audio and video, DTLS-SCTP for data)";
  }
  std::set<int> seen;
  for (std::size_t i = 3; i < f.size(); ++i) {
    if (!m.rtp) {
      if (f[i].empty() || f[i].size() > 32 || !all_of(f[i], is_token_char)) {
        return "malformed m-line format refused";
      }
      continue;
    }
    std::uint64_t pt = 0;
    if (!parse_uint(f[i], 127, pt)) return "m-line payload type outside 0-127 refused";
    if (!seen.insert(static_cast<int>(pt)).second) {
      return "duplicate payload type " + std::to_string(pt) + " in an m-line refused";
    }
    m.view.payload_types.push_back(static_cast<int>(pt));
  }
  return "";
}

}  // namespace

std::string check_remote_sdp(std::string_view sdp, const RemoteLimits& limits, SdpView* out) {
  if (sdp.size() > limits.max_sdp_bytes) {
    return "SDP of " + std::to_string(sdp.size()) + " bytes refused (max-sdp-size is " +
           std::to_string(limits.max_sdp_bytes) + ")";
  }
  MediaState session;
  std::vector<MediaState> media;
  std::vector<std::string> bundle;
  unsigned candidates = 0;
  bool usable_fp = false;
  bool first = true;
  std::string_view rest = sdp;
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    for (char c : line) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return "SDP with control characters refused";
      }
    }
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
      return "malformed SDP line refused";
    }
    if (first) {
      if (line != "v=0") return "invalid SDP (does not start with v=0)";
      first = false;
      continue;
    }
    if (line[0] == 'm') {
      if (media.size() >= limits.max_mlines) {
        return "SDP with more than max-mlines (" + std::to_string(limits.max_mlines) +
               ") m-lines refused";
      }
      media.emplace_back();
      std::string why = check_media_line(line.substr(2), media.back());
      if (!why.empty()) return why;
    } else if (line[0] == 'a') {
      if (media.empty() && line.substr(0, 15) == "a=group:BUNDLE ") {
        for (std::string_view mid : split(line.substr(15), ' ')) {
          if (mid.empty()) return "malformed a=group:BUNDLE refused";
          bundle.emplace_back(mid);
        }
      }
      std::string why = check_attribute(line, media.empty() ? nullptr : &media.back(), session,
                                        candidates, limits, usable_fp);
      if (!why.empty()) return why;
    }
  }
  if (first) return "invalid SDP (empty)";
  if (media.empty()) return "invalid SDP (no media)";
  std::set<std::string> mids;
  for (const MediaState& m : media) {
    if (!m.view.mid.empty() && !mids.insert(m.view.mid).second) {
      return "two m-lines with a=mid:" + m.view.mid + " refused";
    }
    if (m.view.port == 0) continue;  // rejected or bundle-only: no transport of its own
    if (!(m.has_fingerprint || session.has_fingerprint)) {
      return "SDP without a=fingerprint refused (DTLS peer could not be authenticated)";
    }
    if (!(m.has_ufrag || session.has_ufrag) || !(m.has_pwd || session.has_pwd)) {
      return "m-line without a=ice-ufrag and a=ice-pwd refused";
    }
  }
  if (!usable_fp) {
    return "SDP without a=fingerprint refused (DTLS peer could not be authenticated)";
  }
  if (bundle.size() > media.size()) return "a=group:BUNDLE longer than the m-lines refused";
  std::set<std::string> bundled;
  for (const std::string& mid : bundle) {
    if (!mids.contains(mid)) return "a=group:BUNDLE names an unknown mid refused";
    bundled.insert(mid);
  }
  unsigned transports = bundled.empty() ? 0 : 1;
  for (const MediaState& m : media) {
    if (m.view.port != 0 && !bundled.contains(m.view.mid)) ++transports;
  }
  if (transports > limits.max_transports) {
    return "SDP needing " + std::to_string(transports) + " transports refused (m-lines outside " +
           "a=group:BUNDLE each need their own; max-transports is " +
           std::to_string(limits.max_transports) + ")";
  }
  if (out) {
    out->media.clear();
    for (MediaState& m : media) out->media.push_back(std::move(m.view));
    out->bundle_mids = std::move(bundle);
    out->transports = transports;
    out->candidates = candidates;
  }
  return "";
}

std::string check_candidate(std::string_view candidate, const RemoteLimits& limits) {
  if (candidate.size() > limits.max_candidate_bytes) {
    return "candidate of " + std::to_string(candidate.size()) +
           " bytes refused (max-candidate-size is " + std::to_string(limits.max_candidate_bytes) +
           ")";
  }
  if (candidate.substr(0, 2) == "a=") candidate.remove_prefix(2);
  static constexpr std::string_view kPrefix = "candidate:";
  if (candidate.substr(0, kPrefix.size()) != kPrefix) return "not a candidate: line";
  std::vector<std::string_view> f = split(candidate.substr(kPrefix.size()), ' ');
  // foundation component transport priority address port "typ" type [name value]...
  if (f.size() < 8 || f.size() % 2 != 0) return "malformed candidate";
  for (std::string_view field : f) {
    if (field.empty() || !all_of(field, is_token_char)) return "malformed candidate";
  }
  std::uint64_t n = 0;
  if (f[0].size() > 32 || !all_of(f[0], is_ice_char)) return "malformed candidate foundation";
  if (!parse_uint(f[1], 256, n) || n == 0) return "malformed candidate component";
  std::string transport = lower(f[2]);
  if (transport != "udp" && transport != "tcp") return "candidate transport is not UDP or TCP";
  if (!parse_uint(f[3], 0xffffffffu, n)) return "malformed candidate priority";
  if (!is_ipv4(f[4]) && !is_ipv6(f[4]) && !is_mdns_name(f[4])) {
    return "candidate address is not an IP address or an mDNS .local name";
  }
  if (!parse_uint(f[5], 65535, n)) return "malformed candidate port";
  if (f[6] != "typ") return "malformed candidate (no typ)";
  if (f[7] != "host" && f[7] != "srflx" && f[7] != "prflx" && f[7] != "relay") {
    return "unknown candidate type";
  }
  for (std::size_t i = 8; i + 1 < f.size(); i += 2) {
    if (f[i] == "raddr" && !is_ipv4(f[i + 1]) && !is_ipv6(f[i + 1]) && !is_mdns_name(f[i + 1])) {
      return "malformed candidate raddr";
    }
    if (f[i] == "rport" && !parse_uint(f[i + 1], 65535, n)) return "malformed candidate rport";
  }
  return "";
}

// ---- PeerAdmission ----

void PeerAdmission::refill(State& s, std::int64_t now_us) const {
  if (now_us > s.last_us) {
    s.tokens = std::min<double>(
        config_.burst,
        s.tokens + config_.rate_per_second * static_cast<double>(now_us - s.last_us) / 1e6);
    s.last_us = now_us;
  }
}

bool PeerAdmission::idle(const State& s, std::int64_t now_us) const {
  bool full = config_.rate_per_second <= 0 ||
              s.tokens + config_.rate_per_second * static_cast<double>(now_us - s.last_us) / 1e6 >=
                  config_.burst;
  bool forgotten = s.unconnected_us == 0 || now_us - s.last_unconnected_end_us > config_.backoff_us;
  return full && forgotten && s.backoff_until_us <= now_us;
}

void PeerAdmission::prune(std::int64_t now_us) {
  if (peers_.size() < config_.max_peers && now_us - last_prune_us_ < 1'000'000) return;
  last_prune_us_ = now_us;
  std::erase_if(peers_, [&](const auto& kv) { return idle(kv.second, now_us); });
  while (peers_.size() >= config_.max_peers && !peers_.empty()) {
    // The oldest goes, callers in backoff last (forgetting one lets a squatter back in).
    auto key = [now_us](const State& s) {
      return std::pair(s.backoff_until_us > now_us, s.last_us);
    };
    auto oldest = std::min_element(peers_.begin(), peers_.end(), [&](const auto& a, const auto& b) {
      return key(a.second) < key(b.second);
    });
    peers_.erase(oldest);
  }
}

PeerAdmission::State& PeerAdmission::state(const std::string& peer, std::int64_t now_us) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) {
    refill(it->second, now_us);
    return it->second;
  }
  prune(now_us);
  State& s = peers_[peer];
  s.tokens = config_.burst;
  s.last_us = now_us;
  return s;
}

PeerAdmission::Verdict PeerAdmission::offer(const std::string& peer, std::int64_t now_us) {
  State& s = state(peer, now_us);
  if (config_.rate_per_second > 0 && config_.burst > 0) {
    if (s.tokens < 1) return Verdict::kRateLimited;
    s.tokens -= 1;
  }
  return s.backoff_until_us > now_us ? Verdict::kBackoff : Verdict::kAccept;
}

void PeerAdmission::call_ended(const std::string& peer, bool connected, std::int64_t unconnected_us,
                               std::int64_t now_us) {
  if (connected) {
    auto it = peers_.find(peer);
    if (it != peers_.end()) it->second.unconnected_us = 0;
    return;
  }
  State& s = state(peer, now_us);
  if (now_us - s.last_unconnected_end_us > config_.backoff_us) s.unconnected_us = 0;
  s.unconnected_us += std::max<std::int64_t>(unconnected_us, 0);
  s.last_unconnected_end_us = now_us;
  if (s.unconnected_us >= config_.connect_timeout_us) {
    s.backoff_until_us = now_us + config_.backoff_us;
    s.unconnected_us = 0;
  }
}

bool PeerAdmission::in_backoff(const std::string& peer, std::int64_t now_us) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.backoff_until_us > now_us;
}

bool PeerAdmission::refusal_allowed(std::int64_t now_us) {
  if (config_.refusal_rate <= 0 || config_.refusal_burst == 0) return true;
  if (refusal_tokens_ < 0) {
    refusal_tokens_ = config_.refusal_burst;
  } else if (now_us > refusal_last_us_) {
    refusal_tokens_ = std::min<double>(
        config_.refusal_burst,
        refusal_tokens_ +
            config_.refusal_rate * static_cast<double>(now_us - refusal_last_us_) / 1e6);
  }
  refusal_last_us_ = std::max(refusal_last_us_, now_us);
  if (refusal_tokens_ < 1) return false;
  refusal_tokens_ -= 1;
  return true;
}

bool LogThrottle::allow(std::int64_t now_us) {
  if (last_us_ >= 0 && now_us - last_us_ < interval_us_) {
    ++suppressed_;
    return false;
  }
  last_us_ = now_us;
  return true;
}

}  // namespace webrtccall
