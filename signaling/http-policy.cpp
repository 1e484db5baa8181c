#include "http-policy.h"

#include <algorithm>

namespace signaling::http {

namespace {

// Longest Range value worth parsing: one range of two 19-digit offsets with some spaces.
constexpr std::size_t kMaxRangeBytes = 64;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

unsigned count_ranges(std::string_view range) {
  range = trim(range);
  constexpr std::string_view kUnit = "bytes=";
  if (range.size() < kUnit.size()) return 0;
  for (std::size_t i = 0; i < kUnit.size(); ++i) {
    char c = range[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kUnit[i]) return 0;
  }
  range.remove_prefix(kUnit.size());
  return static_cast<unsigned>(std::count(range.begin(), range.end(), ',')) + 1;
}

Decision decide(const RequestHead& head) {
  Decision d;
  bool body = head.transfer_encoding;
  if (head.content_length) {
    std::string_view v = trim(*head.content_length);
    // Anything but digits that are all zero declares a body (or is malformed): refused.
    body = body || v.empty() || std::any_of(v.begin(), v.end(), [](char c) { return c != '0'; });
  }
  if (body) {
    d.refusal = Refusal::kBody;
    d.status = 413;
    d.reason = "this server takes no request bodies";
  } else if (head.expect) {
    d.refusal = Refusal::kExpect;
    d.status = 417;
    d.reason = "this server takes no request bodies: no expectation is met";
  }
  if (head.range && (head.range->size() > kMaxRangeBytes || count_ranges(*head.range) != 1)) {
    d.ignore_range = true;
  }
  return d;
}

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::kBody:
      return "body";
    case Refusal::kExpect:
      return "expect";
    case Refusal::kNone:
      break;
  }
  return "none";
}

}  // namespace signaling::http
