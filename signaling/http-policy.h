// What the server accepts of an HTTP request head, decided from the head alone (pure: no I/O,
// no libsoup), before any body byte is read.
//
// The server takes no request bodies: a declared body (Content-Length over 0, or any
// Transfer-Encoding) is refused with 413 and an `Expect` (e.g. 100-continue) with 417, so
// nothing is read or buffered and no `100 Continue` invites the body. A `Range` header asks
// for at most one range: any other (several ranges, or a header longer than a range can be)
// is ignored and the whole file is served, as RFC 9110 allows.
#pragma once

#include <optional>
#include <string_view>

namespace signaling::http {

struct RequestHead {
  std::optional<std::string_view> content_length;
  bool transfer_encoding = false;  // any Transfer-Encoding header
  std::optional<std::string_view> expect;
  std::optional<std::string_view> range;
};

enum class Refusal { kNone, kBody, kExpect };

struct Decision {
  Refusal refusal = Refusal::kNone;
  unsigned status = 0;        // 413 or 417 when refused
  const char* reason = "";    // the answer's text
  bool ignore_range = false;  // drop the Range header: serve the whole file
};

// The ranges a `Range` value asks for (`bytes=0-1,5-9` is 2); 0 when it is not a byte range.
unsigned count_ranges(std::string_view range);

Decision decide(const RequestHead& head);

// The metric label of a refusal ("body", "expect").
const char* to_string(Refusal r);

}  // namespace signaling::http
