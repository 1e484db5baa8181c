// Fuzzing the element's checks of what a remote peer sends (gst-plugin/remote-limits.h): the
// SDP checks, the candidate checks and the per-peer admission.
//
// LLVMFuzzerTestOneInput is a libFuzzer entry point (build with clang -fsanitize=fuzzer and
// -DFUZZING_ENGINE to run it coverage-guided). Without libFuzzer, main() below runs a bounded
// mutation loop over the seed corpus (the Chromium and Firefox offers, candidates) so that
// `meson test --suite fuzz` exercises it on every build: a fixed number of inputs, a fixed
// seed (reproducible), stopping by itself.
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

#ifndef FUZZING_ENGINE
namespace {

std::string mutate(std::string s, std::mt19937& rng, const std::vector<std::string>& corpus) {
  static const char* kTokens[] = {"\r\n",
                                  "\n",
                                  "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
                                  "m=video 0 UDP/TLS/RTP/SAVPF 96 96\r\n",
                                  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
                                  "m=audio 9 RTP/AVP 0\r\n",
                                  "a=fingerprint:sha-256\r\n",
                                  "a=fingerprint:sha-1 00:11\r\n",
                                  "a=ice-ufrag:abcd\r\n",
                                  "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
                                  "a=group:BUNDLE 0 1 2\r\n",
                                  "a=mid:0\r\n",
                                  "a=rtpmap:128 VP8/90000\r\n",
                                  "a=rtpmap:111 opus/48000/2\r\n",
                                  "a=candidate:1 1 udp 2122260223 10.77.0.1 50000 typ host\r\n",
                                  "candidate:1 1 tcp 1 ::1 9 typ host tcptype active\n",
                                  "candidate:1 1 udp 1 x.local 9 typ host raddr 0.0.0.0 rport 0\n",
                                  "a=setup:actpass\r\n",
                                  "v=0\r\n",
                                  " ",
                                  ":",
                                  "\0",
                                  "\t",
                                  "\xff",
                                  "65536",
                                  "-1"};
  int rounds = 1 + static_cast<int>(rng() % 8);
  for (int r = 0; r < rounds; ++r) {
    std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1: {  // insert a token (the NUL one as a real byte)
        std::size_t t = rng() % (sizeof kTokens / sizeof *kTokens);
        std::string token = kTokens[t][0] ? kTokens[t] : std::string(1, '\0');
        s.insert(pos, token);
        break;
      }
      case 2:  // delete a span
        if (!s.empty()) s.erase(pos, rng() % 64);
        break;
      case 3:  // duplicate a span (more m-lines, more candidates)
        if (!s.empty()) {
          std::string span = s.substr(rng() % s.size(), rng() % 512);
          for (unsigned n = rng() % 20; n > 0; --n) s.insert(pos, span);
        }
        break;
      case 4:  // splice another seed
        s += corpus[rng() % corpus.size()];
        break;
      case 5:  // cut a line short
        if (!s.empty()) {
          std::size_t nl = s.find('\n', pos);
          if (nl != std::string::npos && nl > pos) s.erase(pos, nl - pos);
        }
        break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
    return 2;
  }
  long iterations = argc > 2 ? std::atol(argv[2]) : 20000;
  std::vector<std::string> corpus;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    corpus.push_back(ss.str());
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "empty corpus in %s\n", argv[1]);
    return 2;
  }
  std::mt19937 rng(20261201);
  for (const std::string& seed : corpus) {
    run_one(reinterpret_cast<const std::uint8_t*>(seed.data()), seed.size());
  }
  long accepted = 0;
  for (long i = 0; i < iterations; ++i) {
    std::string input = mutate(corpus[rng() % corpus.size()], rng, corpus);
    run_one(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    accepted += webrtccall::check_remote_sdp(input, {}).empty();
  }
  std::printf("%ld mutated inputs from %zu seeds (%ld accepted as SDP): invariants held\n",
              iterations, corpus.size(), accepted);
  return 0;
}
#endif
