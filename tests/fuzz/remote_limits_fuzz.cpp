// Fuzzing the element's checks of what a remote peer sends (gst-plugin/remote-limits.h): the
// SDP checks, the candidate checks and the per-peer admission.
//
// Seeded with the Chromium and Firefox offers and browser candidates (corpus/remote-limits/),
// with SDP tokens in dict/remote-limits.dict; run like every target (tests/fuzz/meson.build:
// the bounded driver in the normal build, libFuzzer with -Dfuzzing=enabled).
//
// Each input is read three ways, each with its invariants:
//  1. as an SDP: an accepted one is within max-sdp-size and max-mlines, has at least one
//     m-line, payload types 0-127 without duplicates per m-line, at most max-candidates
//     a=candidate lines; the same text with other line endings (LF <-> CRLF) gets the same
//     verdict; tighter limits never accept what looser ones refused;
//  2. each line as a trickled candidate: an accepted one is within max-candidate-size, is a
//     candidate: line and holds no control characters;
//  3. as a sequence of admission events (offer, call connected, call ended, time passing) from a
//     few peers: no peer gets more offers accepted than its burst plus the rate over the
//     elapsed time (when none is forgotten), the tracked peers stay within max_peers, and a
//     peer in backoff never gets kAccept.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "remote-limits.h"

namespace {

using webrtccall::AdmissionConfig;
using webrtccall::PeerAdmission;
using webrtccall::RemoteLimits;
using webrtccall::SdpView;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

std::string with_lf(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out += s[i];
  }
  return out;
}

std::string with_crlf(const std::string& lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

void sdp_checks(std::string_view input) {
  RemoteLimits limits;
  SdpView view;
  std::string why = webrtccall::check_remote_sdp(input, limits, &view);
  if (why.empty()) {
    check(input.size() <= limits.max_sdp_bytes, "accepted an SDP over max-sdp-size");
    check(!view.media.empty() && view.media.size() <= limits.max_mlines,
          "accepted an SDP with no m-line or too many");
    check(view.candidates <= limits.max_candidates, "accepted too many a=candidate lines");
    for (const auto& m : view.media) {
      std::vector<bool> seen(128, false);
      for (int pt : m.payload_types) {
        check(pt >= 0 && pt <= 127, "accepted a payload type outside 0-127");
        check(!seen[static_cast<std::size_t>(pt)], "accepted a duplicate payload type");
        seen[static_cast<std::size_t>(pt)] = true;
      }
    }
  } else {
    check(why.size() < 400, "a refusal reason that grows with the input");
  }
  // Line endings never change the verdict (if the size limit is not what decides).
  std::string lf = with_lf(input);
  if (lf.find('\r') == std::string::npos) {
    std::string crlf = with_crlf(lf);
    RemoteLimits big = limits;
    big.max_sdp_bytes = crlf.size() + lf.size();
    bool a = webrtccall::check_remote_sdp(lf, big).empty();
    bool b = webrtccall::check_remote_sdp(crlf, big).empty();
    check(a == b, "LF and CRLF line endings got different verdicts");
  }
  // Tighter limits never accept more.
  if (!why.empty()) {
    RemoteLimits tight;
    tight.max_mlines = 2;
    tight.max_candidates = 1;
    tight.max_sdp_bytes = 4096;
    check(!webrtccall::check_remote_sdp(input, tight).empty(), "tighter limits accepted more");
  }
}

void candidate_checks(std::string_view input) {
  RemoteLimits limits;
  limits.max_candidate_bytes = 256;
  while (!input.empty()) {
    std::size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    if (webrtccall::check_candidate(line, limits).empty()) {
      check(line.size() <= limits.max_candidate_bytes, "accepted a candidate over the size");
      check(line.substr(0, 10) == "candidate:" || line.substr(0, 12) == "a=candidate:",
            "accepted something that is not a candidate: line");
      for (char c : line) {
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
              "accepted a candidate with control characters");
      }
    }
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
}

// `max_peers` 4 for 8 names: forgetting is exercised. With 8 or more, only idle peers (full
// bucket, no backoff) are ever dropped, which loses nothing, so the rate bound holds exactly.
void admission_checks(std::string_view input, std::size_t max_peers) {
  AdmissionConfig config;
  config.rate_per_second = 2;
  config.burst = 5;
  config.connect_timeout_us = 3'000'000;
  config.backoff_us = 10'000'000;
  config.max_peers = max_peers;
  PeerAdmission admission(config);
  std::int64_t now = 1'000'000, start = now;
  std::map<std::string, int> accepted;
  for (unsigned char byte : input) {
    std::string peer = "peer" + std::to_string(byte & 7);
    switch (byte >> 6) {
      case 0: {
        bool backoff = admission.in_backoff(peer, now);
        auto verdict = admission.offer(peer, now);
        if (verdict == PeerAdmission::Verdict::kAccept) {
          check(!backoff, "an offer accepted from a peer in backoff");
          ++accepted[peer];
        }
        break;
      }
      case 1:
        admission.call_ended(peer, true, 0, now);
        break;
      case 2:
        admission.call_ended(peer, (byte & 8) != 0, ((byte >> 4) & 3) * 1'500'000, now);
        break;
      case 3:
        now += ((byte & 0x38) >> 3) * 250'000;
        break;
    }
    check(admission.tracked() <= config.max_peers, "more peers tracked than max_peers");
  }
  if (max_peers < 8) return;
  double elapsed = static_cast<double>(now - start) / 1e6;
  for (const auto& [peer, n] : accepted) {
    check(n <= static_cast<int>(config.burst + config.rate_per_second * elapsed) + 1,
          "a peer got more offers through than its burst and rate allow");
  }
}

void run_one(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  sdp_checks(input);
  candidate_checks(input);
  admission_checks(input.substr(0, 4096), 4);
  admission_checks(input.substr(0, 4096), 16);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(data, size);
  return 0;
}
