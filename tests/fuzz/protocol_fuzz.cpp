// Fuzzing the protocol and the router with hostile client messages.
//
// LLVMFuzzerTestOneInput is a libFuzzer entry point (build with clang -fsanitize=fuzzer to
// run it coverage-guided). Without libFuzzer, main() below runs a bounded mutation loop over
// the seed corpus so that `meson test --suite fuzz` exercises it on every build: a fixed
// number of inputs, a fixed seed (reproducible), stopping by itself.
//
// Each input is split at '\n' into messages fed by three connections in turn, so
// registration, pairing and relaying states are all reached. The router must never crash,
// and must keep its invariants: every relayed text is valid JSON with the sender's name, and
// the user list matches the registered connections.
#include <glib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "router.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void run_one(const std::uint8_t* data, std::size_t size) {
  signaling::RouterConfig config;
  config.max_messages_per_second = 1e9;
  config.burst = 1e9;
  signaling::Router router(config);
  signaling::Effects fx;
  std::int64_t now = 1;
  for (signaling::ConnId id = 1; id <= 3; ++id) router.connect(id, true, now, fx);
  router.receive(2, R"({"type":"username","name":"bob"})", now, fx);
  router.receive(3, R"({"type":"username","name":"carol"})", now, fx);

  std::string_view input(reinterpret_cast<const char*>(data), size);
  signaling::ConnId from = 1;
  while (!input.empty()) {
    std::size_t nl = input.find('\n');
    std::string_view msg = input.substr(0, nl);
    fx.clear();
    router.receive(from, msg, ++now, fx);
    for (const auto& s : fx.sends) {
      check(g_utf8_validate(s.text->data(), static_cast<gssize>(s.text->size()), nullptr),
            "the server would send text that is not UTF-8");
      auto parsed = signaling::protocol::parse_server(*s.text, {});
      check(std::holds_alternative<signaling::protocol::ServerMessage>(parsed),
            "the server sent something that is not a valid message");
      if (auto* r = std::get_if<signaling::protocol::RelayedMsg>(
              &std::get<signaling::protocol::ServerMessage>(parsed))) {
        if (r->type != "hang-up" || s.to != from) {
          check(r->name == router.name_of(from), "relayed message without the sender's name");
        }
      }
      check(s.to >= 1 && s.to <= 3, "message to an unknown connection");
    }
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
    from = from % 3 + 1;
  }
  check(router.registered().size() == router.registered_count(), "user list out of step");
  fx.clear();
  for (signaling::ConnId id = 1; id <= 3; ++id) router.disconnect(id, fx);
  check(router.registered_count() == 0 && router.connection_count() == 0, "state left behind");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(data, size);
  return 0;
}

#ifndef FUZZING_ENGINE
namespace {

std::string mutate(std::string s, std::mt19937& rng, const std::vector<std::string>& corpus) {
  static const char* kTokens[] = {"{",
                                  "}",
                                  "[",
                                  "]",
                                  "\"",
                                  ",",
                                  ":",
                                  "null",
                                  "true",
                                  "1e999",
                                  "\\u0000",
                                  "\\ud800",
                                  "\xff",
                                  "\n",
                                  "\"target\":\"bob\"",
                                  "\"type\":\"hang-up\"",
                                  "\"name\":\"carol\"",
                                  "\"sdp\":{\"sdp\":\"v=0\"}",
                                  "-0",
                                  "\"candidate\":null"};
  int rounds = 1 + static_cast<int>(rng() % 8);
  for (int r = 0; r < rounds; ++r) {
    std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // insert a token
        s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]);
        break;
      case 2:  // delete a span
        if (!s.empty()) s.erase(pos, rng() % 16);
        break;
      case 3:  // duplicate a span (grows nesting)
        if (!s.empty()) s.insert(pos, s.substr(rng() % s.size(), rng() % 64));
        break;
      case 4:  // splice another seed
        s += '\n';
        s += corpus[rng() % corpus.size()];
        break;
      case 5:  // deep nesting
        s.insert(pos, std::string(rng() % 100, rng() % 2 ? '[' : '{'));
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
    std::ifstream f(entry.path());
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    corpus.push_back(text);
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "empty corpus in %s\n", argv[1]);
    return 2;
  }
  std::mt19937 rng(20261124);
  for (const std::string& seed : corpus)
    run_one(reinterpret_cast<const std::uint8_t*>(seed.data()), seed.size());
  for (long i = 0; i < iterations; ++i) {
    std::string input = mutate(corpus[rng() % corpus.size()], rng, corpus);
    run_one(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  std::printf("%ld mutated inputs from %zu seeds: no crash, invariants held\n", iterations,
              corpus.size());
  return 0;
}
#endif
