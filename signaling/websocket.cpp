#include "websocket.h"

#include <glib.h>

#include <cstring>

namespace signaling::ws {

namespace {

constexpr std::int64_t kUsPerSecond = 1000000;

bool is_control(unsigned opcode) {
  return (opcode & 0x8) != 0;
}

// Close codes a peer may send (RFC 6455 section 7.4; 1004-1006 and 1015 are reserved).
bool valid_close_code(unsigned code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
      return true;
    default:
      return false;
  }
}

void unmask(char* data, std::size_t len, const unsigned char key[4]) {
  // Eight bytes at a time: the key repeats every four bytes.
  std::uint32_t k32;
  std::memcpy(&k32, key, 4);
  std::uint64_t k64 = (std::uint64_t{k32} << 32) | k32;
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, data + i, 8);
    v ^= k64;
    std::memcpy(data + i, &v, 8);
  }
  for (; i < len; ++i) data[i] = static_cast<char>(data[i] ^ key[i & 3]);
}

// RFC 3629 UTF-8. g_utf8_validate_len() refuses U+0000, which is valid UTF-8 (the protocol
// layer refuses it in JSON with a clear error instead): validate between the NULs.
bool valid_utf8(std::string_view s) {
  while (true) {
    std::size_t nul = s.find('\0');
    std::string_view part = s.substr(0, nul);
    if (!g_utf8_validate_len(part.data(), part.size(), nullptr)) return false;
    if (nul == std::string_view::npos) return true;
    s.remove_prefix(nul + 1);
  }
}

}  // namespace

FrameReader::FrameReader(std::size_t max_message_bytes, unsigned max_pings_per_second)
    : max_message_bytes_(max_message_bytes ? max_message_bytes : 1),
      max_pings_per_second_(max_pings_per_second) {}

std::size_t FrameReader::fail(FrameSink& sink, std::size_t pos, unsigned short code,
                              std::string_view why) {
  done_ = true;
  std::string().swap(message_);
  sink.on_error(code, why);
  return pos;
}

std::size_t FrameReader::feed(char* data, std::size_t len, std::int64_t now_us, FrameSink& sink) {
  std::size_t pos = 0;
  while (!done_) {
    std::size_t have = len - pos;
    if (have < 2) break;
    auto* h = reinterpret_cast<const unsigned char*>(data + pos);
    bool fin = (h[0] & 0x80) != 0;
    unsigned rsv = h[0] & 0x70;
    unsigned opcode = h[0] & 0x0f;
    bool masked = (h[1] & 0x80) != 0;
    unsigned len7 = h[1] & 0x7f;
    std::size_t header = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);

    // Everything that can be judged from the first two bytes, before waiting for more.
    if (rsv) return fail(sink, pos, kCloseProtocolError, "no extension was negotiated");
    if (!masked) return fail(sink, pos, kCloseProtocolError, "client frames must be masked");
    if (opcode != kContinuation && opcode != kText && opcode != kBinary && opcode != kClose &&
        opcode != kPing && opcode != kPong) {
      return fail(sink, pos, kCloseProtocolError, "unknown opcode");
    }
    if (is_control(opcode) && (!fin || len7 > 125)) {
      return fail(sink, pos, kCloseProtocolError,
                  "control frames must be unfragmented with at most 125 bytes");
    }
    if (opcode == kContinuation && message_op_ == 0) {
      return fail(sink, pos, kCloseProtocolError, "continuation frame without a message");
    }
    if ((opcode == kText || opcode == kBinary) && message_op_ != 0) {
      return fail(sink, pos, kCloseProtocolError, "new message inside a fragmented message");
    }
    if (have < header) break;

    std::uint64_t payload = len7;
    if (len7 == 126) {
      payload = (std::uint64_t{h[2]} << 8) | h[3];
    } else if (len7 == 127) {
      payload = 0;
      for (int b = 2; b < 10; ++b) payload = (payload << 8) | h[b];
      if (payload >> 63) return fail(sink, pos, kCloseProtocolError, "invalid frame length");
    }
    if (!is_control(opcode)) {
      // The size limit is on the whole message: refuse from the header, before buffering.
      std::uint64_t so_far = opcode == kContinuation ? message_.size() : 0;
      if (payload > max_message_bytes_ - so_far) {
        return fail(sink, pos, kCloseTooBig,
                    "message over the limit of " + std::to_string(max_message_bytes_) + " bytes");
      }
    }
    if (have - header < payload) break;  // the payload is not all here yet

    unsigned char key[4];
    std::memcpy(key, h + header - 4, 4);
    char* body = data + pos + header;
    auto body_len = static_cast<std::size_t>(payload);
    unmask(body, body_len, key);
    pos += header + body_len;
    std::string_view p(body, body_len);

    switch (opcode) {
      case kPing: {
        if (now_us - ping_window_start_us_ >= kUsPerSecond) {
          ping_window_start_us_ = now_us;
          pings_in_window_ = 0;
        }
        if (++pings_in_window_ > max_pings_per_second_) {
          return fail(sink, pos, kClosePolicy,
                      "more than " + std::to_string(max_pings_per_second_) + " pings per second");
        }
        if (!sink.on_ping(p)) return pos;
        continue;
      }
      case kPong:
        if (!sink.on_pong()) return pos;
        continue;
      case kClose: {
        if (p.size() == 1) return fail(sink, pos, kCloseProtocolError, "truncated close code");
        unsigned short code = kCloseNoStatus;
        std::string_view reason;
        if (p.size() >= 2) {
          code = static_cast<unsigned short>((static_cast<unsigned char>(p[0]) << 8) |
                                             static_cast<unsigned char>(p[1]));
          reason = p.substr(2);
          if (!valid_close_code(code)) {
            return fail(sink, pos, kCloseProtocolError, "invalid close code");
          }
          if (!valid_utf8(reason)) {
            return fail(sink, pos, kCloseInvalidPayload, "close reason is not UTF-8");
          }
        }
        done_ = true;
        sink.on_close(code, reason);
        return pos;
      }
      default:
        break;
    }

    // A data frame.
    if (!fin) {
      if (opcode != kContinuation) message_op_ = static_cast<std::uint8_t>(opcode);
      message_.append(p);
      continue;
    }
    std::uint8_t op = static_cast<std::uint8_t>(opcode);
    std::string_view whole = p;
    if (opcode == kContinuation) {
      op = message_op_;
      message_op_ = 0;
      message_.append(p);
      whole = message_;
    }
    bool go_on;
    if (op == kText) {
      if (!valid_utf8(whole)) {
        return fail(sink, pos, kCloseInvalidPayload, "text message is not UTF-8");
      }
      go_on = sink.on_text(whole);
    } else {
      go_on = sink.on_binary(whole.size());
    }
    if (opcode == kContinuation) {
      // Keep a small buffer for the next fragmented message, not a large one.
      if (message_.capacity() > 4096) {
        std::string().swap(message_);
      } else {
        message_.clear();
      }
    }
    if (!go_on) return pos;
  }
  return pos;
}

std::size_t frame_header(char out[10], Opcode opcode, std::size_t len) {
  out[0] = static_cast<char>(0x80 | opcode);
  if (len < 126) {
    out[1] = static_cast<char>(len);
    return 2;
  }
  if (len <= 0xffff) {
    out[1] = 126;
    out[2] = static_cast<char>(len >> 8);
    out[3] = static_cast<char>(len & 0xff);
    return 4;
  }
  out[1] = 127;
  for (int b = 0; b < 8; ++b)
    out[2 + b] = static_cast<char>((std::uint64_t{len} >> (56 - 8 * b)) & 0xff);
  return 10;
}

std::string close_payload(unsigned short code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xff));
  std::size_t n = reason.size() > 123 ? 123 : reason.size();
  // Never cut a UTF-8 character: back off over continuation bytes.
  while (n < reason.size() && n > 0 && (static_cast<unsigned char>(reason[n]) & 0xc0) == 0x80) --n;
  out.append(reason.substr(0, n));
  return out;
}

}  // namespace signaling::ws
