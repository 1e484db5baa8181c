// WebSocket framing for the server side of RFC 6455: no I/O, no clock.
//
// The server speaks WebSocket itself once libsoup has answered the upgrade: libsoup 3.2's
// connection object costs one GSource per connection and a main-loop wakeup per read, which
// kept the relay under 70,000 messages per second. This layer turns the client's byte stream
// into messages and builds the frames the server sends. It also closes the gaps libsoup 3.2
// left open: the size limit applies to whole messages (the sum of their fragments), and pings
// are counted so that a ping flood ends the connection.
//
// Not supported, by design: extensions (permessage-deflate is never negotiated, so any RSV
// bit is a protocol error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace signaling::ws {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 section 7.4.1).
inline constexpr unsigned short kCloseNormal = 1000;
inline constexpr unsigned short kCloseGoingAway = 1001;
inline constexpr unsigned short kCloseProtocolError = 1002;
inline constexpr unsigned short kCloseNoStatus = 1005;  // never sent: "the frame had no code"
inline constexpr unsigned short kCloseAbnormal = 1006;  // never sent: "no close frame at all"
inline constexpr unsigned short kCloseInvalidPayload = 1007;
inline constexpr unsigned short kClosePolicy = 1008;
inline constexpr unsigned short kCloseTooBig = 1009;

// What the reader found. The string_views point into the buffer given to feed() (or into
// the reader's reassembly buffer) and are valid only during the call.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A whole text message, valid UTF-8. Return false to stop reading (e.g. the connection
  // is being closed): feed() then returns at once.
  virtual bool on_text(std::string_view text) = 0;
  // A whole binary message of `bytes` bytes (its content is not kept).
  virtual bool on_binary(std::size_t bytes) = 0;
  // A ping: the sink answers with a pong carrying `payload`.
  virtual bool on_ping(std::string_view payload) = 0;
  virtual bool on_pong() = 0;
  // The peer's close frame: `code` is kCloseNoStatus when the frame carried none. The
  // reader reads nothing after it.
  virtual void on_close(unsigned short code, std::string_view reason) = 0;
  // The stream broke a rule: the sink closes the connection with `code` (1002, 1007, 1008,
  // 1009). `why` is a sentence for the peer and the log. The reader reads nothing after it.
  virtual void on_error(unsigned short code, std::string_view why) = 0;
};

class FrameReader {
 public:
  // `max_message_bytes`: the limit on a whole message (all its fragments). Never 0.
  // `max_pings_per_second`: more pings than this within one second is a ping flood (1008).
  explicit FrameReader(std::size_t max_message_bytes, unsigned max_pings_per_second = 10);

  // Parses complete frames from `data` and reports them to `sink`. Masked payloads are
  // unmasked in place. Returns how many bytes were consumed: the caller keeps the rest (an
  // incomplete frame) and passes it again, with more bytes after it. A frame whose header
  // announces more than the limit is refused from its header alone, before its payload is
  // buffered. `now_us` is a monotonic time, used to count pings.
  std::size_t feed(char* data, std::size_t len, std::int64_t now_us, FrameSink& sink);

  // True after on_close or on_error: nothing more will be read.
  bool done() const { return done_; }
  // Bytes of the fragmented message being reassembled (0 when none).
  std::size_t pending_message_bytes() const { return message_.size(); }
  // The largest incomplete frame feed() may ask the caller to keep: header plus payload.
  // (A control frame may carry 125 bytes whatever the message limit.)
  std::size_t max_frame_bytes() const {
    return (max_message_bytes_ > 125 ? max_message_bytes_ : 125) + 14;
  }

 private:
  // Reports the error, stops reading and returns `pos`.
  std::size_t fail(FrameSink& sink, std::size_t pos, unsigned short code, std::string_view why);

  std::size_t max_message_bytes_;
  unsigned max_pings_per_second_;
  std::string message_;          // fragments of the message in progress
  std::uint8_t message_op_ = 0;  // kText or kBinary while a fragmented message is open
  std::int64_t ping_window_start_us_ = 0;
  unsigned pings_in_window_ = 0;
  bool done_ = false;
};

// The header of an unmasked server frame (FIN set) with a payload of `len` bytes: 2, 4 or 10
// bytes written to `out`; returns how many.
std::size_t frame_header(char out[10], Opcode opcode, std::size_t len);
// The payload of a close frame: the code, then `reason` cut to fit 123 bytes on a UTF-8
// character boundary.
std::string close_payload(unsigned short code, std::string_view reason);

}  // namespace signaling::ws
