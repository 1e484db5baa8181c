// WebSocket framing (RFC 6455): the server-side reader of client frames and the server's frame
// encoder, without any I/O.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "websocket.h"

namespace ws = signaling::ws;

namespace {

// First byte of a frame: FIN, RSV1-3, then the opcode.
constexpr std::uint8_t kFin = 0x80;
constexpr std::uint8_t kRsv1 = 0x40;
constexpr std::uint8_t kRsv2 = 0x20;
constexpr std::uint8_t kRsv3 = 0x10;

constexpr std::int64_t kStartUs = 1'000'000'000;  // an arbitrary monotonic time
constexpr std::size_t kMiB = 1024 * 1024;

using Key = std::array<std::uint8_t, 4>;
constexpr Key kKey = {0x37, 0xfa, 0x21, 0x3d};

// How the payload length is written: the shortest form RFC 6455 requires, or a longer one
// (which the reader accepts).
enum class Length { kMinimal, k16, k64 };

// The header of a client frame announcing `len` payload bytes, with the masking key unless
// `key` is empty (an unmasked frame, which a client must never send).
std::string header(std::uint8_t first_byte, std::uint64_t len, std::optional<Key> key = kKey,
                   Length encoding = Length::kMinimal) {
  std::string h;
  h.push_back(static_cast<char>(first_byte));
  const char mask_bit = key ? '\x80' : '\0';
  if (encoding == Length::kMinimal) {
    encoding = len <= 125 ? Length::kMinimal : len <= 0xFFFF ? Length::k16 : Length::k64;
  }
  switch (encoding) {
    case Length::kMinimal:
      h.push_back(static_cast<char>(mask_bit | static_cast<char>(len)));
      break;
    case Length::k16:
      EXPECT_LE(len, 0xFFFFu) << "does not fit a 16-bit length";
      h.push_back(static_cast<char>(mask_bit | 126));
      h.push_back(static_cast<char>(len >> 8));
      h.push_back(static_cast<char>(len));
      break;
    case Length::k64:
      h.push_back(static_cast<char>(mask_bit | 127));
      for (int shift = 56; shift >= 0; shift -= 8) h.push_back(static_cast<char>(len >> shift));
      break;
  }
  if (key) h.append(reinterpret_cast<const char*>(key->data()), key->size());
  return h;
}

// A whole client frame: header, then the payload masked with `key` (or as is if unmasked).
std::string frame(std::uint8_t first_byte, std::string_view payload, std::optional<Key> key = kKey,
                  Length encoding = Length::kMinimal) {
  std::string f = header(first_byte, payload.size(), key, encoding);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(key ? static_cast<char>(payload[i] ^ static_cast<char>((*key)[i % 4]))
                    : payload[i]);
  }
  return f;
}

std::string text(std::string_view payload) {
  return frame(kFin | ws::kText, payload);
}

std::string code_bytes(unsigned short code) {
  return {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

std::string close_frame(unsigned short code, std::string_view reason = "") {
  return frame(kFin | ws::kClose, code_bytes(code) + std::string(reason));
}

// `n` bytes of printable ASCII that are not all the same (so masking mistakes show).
std::string ascii(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

struct Event {
  enum Kind { kText, kBinary, kPing, kPong, kClose, kError } kind;
  std::string data;  // text, ping payload, close reason, error sentence
  std::size_t bytes = 0;
  unsigned short code = 0;
};

// Records what the reader reports. `stop_at_text` makes the n-th on_text (1-based) return
// false, as a sink does when the connection is being closed.
class Recorder : public ws::FrameSink {
 public:
  bool on_text(std::string_view t) override {
    events.push_back({Event::kText, std::string(t)});
    return ++texts_seen != stop_at_text;
  }
  bool on_binary(std::size_t bytes) override {
    events.push_back({Event::kBinary, {}, bytes});
    return true;
  }
  bool on_ping(std::string_view payload) override {
    events.push_back({Event::kPing, std::string(payload)});
    return true;
  }
  bool on_pong() override {
    events.push_back({Event::kPong, {}});
    return true;
  }
  void on_close(unsigned short code, std::string_view reason) override {
    events.push_back({Event::kClose, std::string(reason), 0, code});
  }
  void on_error(unsigned short code, std::string_view why) override {
    EXPECT_FALSE(why.empty()) << "error " << code << " without a sentence";
    events.push_back({Event::kError, std::string(why), 0, code});
  }

  // The events in a short readable form, e.g. "text:hi", "binary:5", "ping:p", "pong",
  // "close:1000:bye", "error:1002". Long texts are shown by their size.
  std::vector<std::string> log() const {
    std::vector<std::string> out;
    for (const Event& e : events) {
      switch (e.kind) {
        case Event::kText:
          out.push_back(e.data.size() <= 64 ? "text:" + e.data
                                            : "text:(" + std::to_string(e.data.size()) + ")");
          break;
        case Event::kBinary:
          out.push_back("binary:" + std::to_string(e.bytes));
          break;
        case Event::kPing:
          out.push_back("ping:" + e.data);
          break;
        case Event::kPong:
          out.push_back("pong");
          break;
        case Event::kClose:
          out.push_back("close:" + std::to_string(e.code) + ":" + e.data);
          break;
        case Event::kError:
          out.push_back("error:" + std::to_string(e.code));
          break;
      }
    }
    return out;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const Event& e : events) {
      if (e.kind == Event::kText) out.push_back(e.data);
    }
    return out;
  }
  // The code of the last event if it is an error, else 0.
  unsigned short error_code() const {
    return !events.empty() && events.back().kind == Event::kError ? events.back().code : 0;
  }

  std::vector<Event> events;
  int stop_at_text = 0;
  int texts_seen = 0;
};

using Log = std::vector<std::string>;

// A reader driven the way a connection drives it: bytes arrive in chunks, each chunk is
// appended to what the reader left unconsumed, and the whole is fed again.
class Connection {
 public:
  explicit Connection(std::size_t max_message_bytes = kMiB, unsigned max_pings = 10)
      : reader(max_message_bytes, max_pings) {}

  void receive(std::string_view bytes) {
    pending.append(bytes);
    const std::size_t consumed = reader.feed(pending.data(), pending.size(), now_us, sink);
    ASSERT_LE(consumed, pending.size());
    pending.erase(0, consumed);
    if (!reader.done()) {
      EXPECT_LE(pending.size(), reader.max_frame_bytes()) << "kept more than one frame";
    }
  }
  void receive_bytewise(std::string_view bytes) {
    for (char c : bytes) receive(std::string_view(&c, 1));
  }
  // Random chunk sizes in [1, max_chunk], from a fixed seed.
  void receive_in_random_splits(std::string_view bytes, unsigned seed, std::size_t max_chunk) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> size(1, max_chunk);
    while (!bytes.empty()) {
      const std::size_t n = std::min(size(rng), bytes.size());
      receive(bytes.substr(0, n));
      bytes.remove_prefix(n);
    }
  }

  ws::FrameReader reader;
  Recorder sink;
  std::string pending;
  std::int64_t now_us = kStartUs;
};

// Feeds `bytes` whole to a fresh reader and returns the error code it reported (0 if none).
unsigned short error_for(const std::string& bytes, std::size_t max_message_bytes = kMiB) {
  Connection c(max_message_bytes);
  c.receive(bytes);
  const unsigned short code = c.sink.error_code();
  EXPECT_TRUE(code == 0 || c.reader.done()) << "not done after an error";
  return code;
}

// Feeds `bytes` whole to a fresh reader and returns its log.
Log log_for(const std::string& bytes, std::size_t max_message_bytes = kMiB) {
  Connection c(max_message_bytes);
  c.receive(bytes);
  return c.sink.log();
}

std::string hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
    out += ' ';
  }
  return out;
}

// A server frame decoded by hand, as a client would.
struct ServerFrame {
  bool fin = false;
  std::uint8_t rsv = 0;
  std::uint8_t opcode = 0;
  bool masked = false;
  std::size_t header_bytes = 0;
  std::uint64_t length = 0;
  std::string payload;
};

// A server frame as the server writes it: ws::frame_header(), then the payload.
std::string server_frame(ws::Opcode opcode, std::string_view payload) {
  char h[10];
  return std::string(h, ws::frame_header(h, opcode, payload.size())) + std::string(payload);
}

ServerFrame decode_server_frame(std::string_view bytes) {
  ServerFrame f;
  if (bytes.size() < 2) {
    ADD_FAILURE() << "frame shorter than 2 bytes";
    return f;
  }
  const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  f.fin = b(0) & 0x80;
  f.rsv = b(0) & 0x70;
  f.opcode = b(0) & 0x0F;
  f.masked = b(1) & 0x80;
  const std::uint8_t len7 = b(1) & 0x7F;
  std::size_t pos = 2;
  if (len7 < 126) {
    f.length = len7;
  } else {
    const std::size_t n = len7 == 126 ? 2 : 8;
    if (bytes.size() < 2 + n) {
      ADD_FAILURE() << "truncated extended length";
      return f;
    }
    for (std::size_t i = 0; i < n; ++i) f.length = (f.length << 8) | b(2 + i);
    pos += n;
  }
  f.header_bytes = pos;
  if (bytes.size() - pos != f.length) {
    ADD_FAILURE() << "frame announces " << f.length << " bytes, carries " << bytes.size() - pos;
    return f;
  }
  f.payload = std::string(bytes.substr(pos));
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Text messages

TEST(TextMessage, SingleMaskedFrameIsReported) {
  Connection c;
  c.receive(text("hello"));
  EXPECT_EQ(c.sink.log(), (Log{"text:hello"}));
  EXPECT_TRUE(c.pending.empty());
  EXPECT_FALSE(c.reader.done());
  EXPECT_EQ(c.reader.pending_message_bytes(), 0u);
}

TEST(TextMessage, EveryMaskingKeyUnmasksCorrectly) {
  const std::string payload = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e and some more bytes";
  for (const Key& key : {Key{0, 0, 0, 0}, Key{0xff, 0xff, 0xff, 0xff}, Key{1, 2, 3, 4}, kKey}) {
    Connection c;
    c.receive(frame(kFin | ws::kText, payload, key));
    EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{payload}))
        << hex(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  }
}

TEST(TextMessage, EmptyPayloadIsAnEmptyMessage) {
  Connection c;
  c.receive(text(""));
  EXPECT_EQ(c.sink.log(), (Log{"text:"}));
  EXPECT_TRUE(c.pending.empty());
}

TEST(TextMessage, EachLengthEncodingAtItsBoundaries) {
  // 125: 7-bit length; 126 and 65535: 16-bit; 65536: 64-bit.
  for (std::size_t len : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 200000u}) {
    const std::string payload = ascii(len);
    const std::string bytes = text(payload);
    Connection c;
    c.receive(bytes);
    EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{payload})) << "length " << len;
    EXPECT_TRUE(c.pending.empty()) << "length " << len;
  }
}

TEST(TextMessage, NonMinimalLengthEncodingsAreAccepted) {
  for (Length encoding : {Length::k16, Length::k64}) {
    for (std::size_t len : {0u, 5u, 125u, 126u}) {
      const std::string payload = ascii(len);
      Connection c;
      c.receive(frame(kFin | ws::kText, payload, kKey, encoding));
      EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{payload}))
          << "length " << len << (encoding == Length::k16 ? " in 16 bits" : " in 64 bits");
    }
  }
  // 65535 written in 64 bits.
  Connection c;
  c.receive(frame(kFin | ws::kText, ascii(65535), kKey, Length::k64));
  EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{ascii(65535)}));
}

TEST(TextMessage, FedOneByteAtATime) {
  for (std::size_t len : {0u, 5u, 125u, 126u, 65535u, 65536u}) {
    const std::string payload = ascii(len);
    Connection c;
    c.receive_bytewise(text(payload));
    EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{payload})) << "length " << len;
    EXPECT_TRUE(c.pending.empty()) << "length " << len;
  }
}

TEST(TextMessage, NothingIsConsumedUntilTheFrameIsComplete) {
  const std::string bytes = text(ascii(300));
  ws::FrameReader reader(kMiB);
  Recorder sink;
  std::string buf = bytes;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    // The same prefix is passed again each time: an incomplete frame must be left intact.
    buf = bytes;
    EXPECT_EQ(reader.feed(buf.data(), n, kStartUs, sink), 0u) << "prefix of " << n << " bytes";
    ASSERT_TRUE(sink.events.empty()) << "prefix of " << n << " bytes";
  }
  buf = bytes;
  EXPECT_EQ(reader.feed(buf.data(), buf.size(), kStartUs, sink), bytes.size());
  EXPECT_EQ(sink.texts(), (std::vector<std::string>{ascii(300)}));
}

TEST(TextMessage, StreamFedInRandomSplits) {
  // A stream mixing every length encoding, fragments and control frames.
  std::string stream;
  std::vector<std::string> expected;
  for (std::size_t len : {0u, 1u, 125u, 126u, 65535u, 65536u, 7u}) {
    expected.push_back(ascii(len));
    stream += text(expected.back());
    stream += frame(kFin | ws::kPing, "p");
  }
  stream += frame(ws::kText, "frag") + frame(kFin | ws::kPong, "") +
            frame(kFin | ws::kContinuation, "mented");
  expected.push_back("fragmented");
  for (unsigned seed : {1u, 2u, 3u, 42u}) {
    for (std::size_t max_chunk : {3u, 300u, 70000u}) {
      Connection c;
      c.receive_in_random_splits(stream, seed, max_chunk);
      EXPECT_EQ(c.sink.texts(), expected) << "seed " << seed << ", chunks up to " << max_chunk;
      EXPECT_EQ(c.sink.events.size(), expected.size() + 8)
          << "seed " << seed << ", chunks up to " << max_chunk;
      EXPECT_TRUE(c.pending.empty());
      EXPECT_FALSE(c.reader.done());
    }
  }
}

TEST(TextMessage, SeveralFramesInOneBufferAreReportedInOrder) {
  Connection c;
  c.receive(text("one") + frame(kFin | ws::kPing, "p") + text("two") +
            frame(kFin | ws::kBinary, "xyz") + text("three"));
  EXPECT_EQ(c.sink.log(), (Log{"text:one", "ping:p", "text:two", "binary:3", "text:three"}));
  EXPECT_TRUE(c.pending.empty());
}

TEST(TextMessage, TrailingPartialFrameIsNotConsumed) {
  const std::string complete = text("one") + text("two");
  const std::string third = text("three");
  for (std::size_t part = 1; part < third.size(); ++part) {
    ws::FrameReader reader(kMiB);
    Recorder sink;
    std::string buf = complete + third.substr(0, part);
    EXPECT_EQ(reader.feed(buf.data(), buf.size(), kStartUs, sink), complete.size())
        << part << " bytes of the third frame";
    EXPECT_EQ(sink.log(), (Log{"text:one", "text:two"}));
    // The caller keeps the tail and passes it again with the rest.
    std::string rest = buf.substr(complete.size()) + third.substr(part);
    EXPECT_EQ(rest, third) << "the reader changed bytes it did not consume";
    EXPECT_EQ(reader.feed(rest.data(), rest.size(), kStartUs, sink), third.size());
    EXPECT_EQ(sink.log(), (Log{"text:one", "text:two", "text:three"}));
  }
}

TEST(TextMessage, EmptyFeedReportsNothing) {
  ws::FrameReader reader(kMiB);
  Recorder sink;
  char byte = 0;
  EXPECT_EQ(reader.feed(&byte, 0, kStartUs, sink), 0u);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_FALSE(reader.done());
}

// ---------------------------------------------------------------------------------------------
// Fragmented messages

TEST(Fragments, ThreeFragmentsAreReassembled) {
  Connection c;
  c.receive(frame(ws::kText, "Hel"));
  EXPECT_TRUE(c.sink.events.empty());
  EXPECT_EQ(c.reader.pending_message_bytes(), 3u);
  c.receive(frame(ws::kContinuation, "lo, "));
  EXPECT_TRUE(c.sink.events.empty());
  EXPECT_EQ(c.reader.pending_message_bytes(), 7u);
  c.receive(frame(kFin | ws::kContinuation, "world"));
  EXPECT_EQ(c.sink.log(), (Log{"text:Hello, world"}));
  EXPECT_EQ(c.reader.pending_message_bytes(), 0u);
  // The next message starts afresh.
  c.receive(text("next"));
  EXPECT_EQ(c.sink.log(), (Log{"text:Hello, world", "text:next"}));
}

TEST(Fragments, ReassembledInOneBufferAndBytewise) {
  const std::string bytes = frame(ws::kText, "Hel") + frame(ws::kContinuation, "lo, ") +
                            frame(kFin | ws::kContinuation, "world");
  EXPECT_EQ(log_for(bytes), (Log{"text:Hello, world"}));
  Connection c;
  c.receive_bytewise(bytes);
  EXPECT_EQ(c.sink.log(), (Log{"text:Hello, world"}));
}

TEST(Fragments, EmptyFragmentsAreAllowed) {
  EXPECT_EQ(log_for(frame(ws::kText, "") + frame(ws::kContinuation, "ab") +
                    frame(ws::kContinuation, "") + frame(kFin | ws::kContinuation, "")),
            (Log{"text:ab"}));
}

TEST(Fragments, LargeFragmentsWithEveryLengthEncoding) {
  const std::string a = ascii(125), b = ascii(65535), d = ascii(65536);
  Connection c;
  c.receive_in_random_splits(
      frame(ws::kText, a) + frame(ws::kContinuation, b) + frame(kFin | ws::kContinuation, d), 7,
      5000);
  EXPECT_EQ(c.sink.texts(), (std::vector<std::string>{a + b + d}));
}

TEST(Fragments, ControlFramesBetweenFragmentsAreDeliveredAtOnce) {
  Connection c;
  c.receive(frame(ws::kText, "Hel"));
  c.receive(frame(kFin | ws::kPing, "p1"));
  EXPECT_EQ(c.sink.log(), (Log{"ping:p1"}));
  c.receive(frame(ws::kContinuation, "lo, "));
  c.receive(frame(kFin | ws::kPong, "whatever"));
  EXPECT_EQ(c.sink.log(), (Log{"ping:p1", "pong"}));
  c.receive(frame(kFin | ws::kPing, ""));
  c.receive(frame(kFin | ws::kContinuation, "world"));
  EXPECT_EQ(c.sink.log(), (Log{"ping:p1", "pong", "ping:", "text:Hello, world"}));
}

TEST(Fragments, ControlFramesBetweenFragmentsInOneBuffer) {
  EXPECT_EQ(log_for(frame(ws::kText, "Hel") + frame(kFin | ws::kPing, "p1") +
                    frame(ws::kContinuation, "lo, ") + frame(kFin | ws::kPong, "") +
                    frame(kFin | ws::kContinuation, "world")),
            (Log{"ping:p1", "pong", "text:Hello, world"}));
}

TEST(Fragments, CloseBetweenFragmentsEndsTheStream) {
  EXPECT_EQ(log_for(frame(ws::kText, "Hel") + close_frame(1000, "bye") +
                    frame(kFin | ws::kContinuation, "lo")),
            (Log{"close:1000:bye"}));
}

TEST(Fragments, BinaryMessageIsReassembled) {
  Connection c;
  c.receive(frame(ws::kBinary, std::string(1000, '\xff')));
  c.receive(frame(kFin | ws::kPing, "x"));
  c.receive(frame(kFin | ws::kContinuation, std::string(24, '\0')));
  EXPECT_EQ(c.sink.log(), (Log{"ping:x", "binary:1024"}));
}

// ---------------------------------------------------------------------------------------------
// Binary messages

TEST(BinaryMessage, ReportsItsSize) {
  for (std::size_t len : {0u, 1u, 125u, 126u, 65535u, 65536u}) {
    // Bytes that are not UTF-8: binary payloads are not validated.
    std::string payload(len, '\0');
    for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(0x80 + i % 128);
    EXPECT_EQ(log_for(frame(kFin | ws::kBinary, payload)), (Log{"binary:" + std::to_string(len)}));
  }
}

// ---------------------------------------------------------------------------------------------
// Ping and pong

TEST(Control, PingPayloadIsPassedForThePong) {
  EXPECT_EQ(log_for(frame(kFin | ws::kPing, "are you there")), (Log{"ping:are you there"}));
  EXPECT_EQ(log_for(frame(kFin | ws::kPing, "")), (Log{"ping:"}));
  const std::string max = ascii(125);
  EXPECT_EQ(log_for(frame(kFin | ws::kPing, max)), (Log{"ping:" + max}));
}

TEST(Control, PongIsReported) {
  EXPECT_EQ(log_for(frame(kFin | ws::kPong, "")), (Log{"pong"}));
  EXPECT_EQ(log_for(frame(kFin | ws::kPong, ascii(125))), (Log{"pong"}));
}

// ---------------------------------------------------------------------------------------------
// Close

TEST(Close, CodeAndReasonAreReported) {
  EXPECT_EQ(log_for(close_frame(1000, "bye")), (Log{"close:1000:bye"}));
  EXPECT_EQ(log_for(close_frame(1001)), (Log{"close:1001:"}));
  const std::string reason = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac";  // UTF-8
  EXPECT_EQ(log_for(close_frame(4000, reason)), (Log{"close:4000:" + reason}));
  const std::string longest = ascii(123);
  EXPECT_EQ(log_for(close_frame(1000, longest)), (Log{"close:1000:" + longest}));
}

TEST(Close, EmptyCloseFrameMeansNoStatus) {
  EXPECT_EQ(log_for(frame(kFin | ws::kClose, "")),
            (Log{"close:" + std::to_string(ws::kCloseNoStatus) + ":"}));
}

TEST(Close, ValidCodesAreAccepted) {
  for (unsigned short code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    EXPECT_EQ(log_for(close_frame(code, "r")), (Log{"close:" + std::to_string(code) + ":r"}))
        << "code " << code;
  }
}

TEST(Close, InvalidCodesAreProtocolErrors) {
  // 1005 and 1006 are never sent on the wire; 1004 and 1015 are reserved; below 1000 and from
  // 5000 on are not defined.
  for (unsigned short code : {0, 999, 1004, 1005, 1006, 1015, 5000, 65535}) {
    EXPECT_EQ(error_for(close_frame(code)), ws::kCloseProtocolError) << "code " << code;
  }
}

TEST(Close, OneBytePayloadIsAProtocolError) {
  EXPECT_EQ(error_for(frame(kFin | ws::kClose, "\x03")), ws::kCloseProtocolError);
}

TEST(Close, ReasonThatIsNotUtf8IsInvalidPayload) {
  EXPECT_EQ(error_for(close_frame(1000, "\xff")), ws::kCloseInvalidPayload);
  EXPECT_EQ(error_for(close_frame(1000, "ok \xe2\x82")), ws::kCloseInvalidPayload);
  EXPECT_EQ(error_for(close_frame(1000, "\xed\xa0\x80")), ws::kCloseInvalidPayload);
}

TEST(Close, NothingIsReadAfterTheClose) {
  Connection c;
  c.receive(close_frame(1000, "bye") + text("after") + frame(kFin | ws::kPing, "p"));
  EXPECT_EQ(c.sink.log(), (Log{"close:1000:bye"}));
  EXPECT_TRUE(c.reader.done());
  c.receive(text("later"));
  c.receive(close_frame(1001));
  EXPECT_EQ(c.sink.log(), (Log{"close:1000:bye"}));
  EXPECT_TRUE(c.reader.done());
}

TEST(Close, ServerClosePayloadIsReadBackByTheReader) {
  const std::string reason = std::string("\xe2\x82\xac", 3) + " going away";
  EXPECT_EQ(log_for(frame(kFin | ws::kClose, ws::close_payload(1001, reason))),
            (Log{"close:1001:" + reason}));
}

// ---------------------------------------------------------------------------------------------
// Size limits

TEST(Limits, MessageExactlyAtTheLimitPasses) {
  EXPECT_EQ(log_for(text(ascii(1000)), 1000), (Log{"text:(1000)"}));
  EXPECT_EQ(log_for(frame(kFin | ws::kBinary, ascii(1000)), 1000), (Log{"binary:1000"}));
  EXPECT_EQ(log_for(text(ascii(65536)), 65536), (Log{"text:(65536)"}));
}

TEST(Limits, OneByteOverTheLimitIsTooBig) {
  EXPECT_EQ(error_for(text(ascii(1001)), 1000), ws::kCloseTooBig);
  EXPECT_EQ(error_for(frame(kFin | ws::kBinary, ascii(1001)), 1000), ws::kCloseTooBig);
  EXPECT_EQ(error_for(text(ascii(65537)), 65536), ws::kCloseTooBig);
}

TEST(Limits, OversizedFrameIsRefusedFromItsHeaderAlone) {
  struct Case {
    std::uint8_t first_byte;
    std::uint64_t announced;
  };
  for (const Case& k :
       {Case{kFin | ws::kText, 1001}, Case{kFin | ws::kBinary, 1001}, Case{ws::kText, 1001},
        Case{kFin | ws::kText, 65536}, Case{kFin | ws::kText, std::uint64_t{1} << 40},
        Case{kFin | ws::kText, (std::uint64_t{1} << 63) - 1}}) {
    // Only the header (with its masking key) arrives: no payload.
    Connection c(1000);
    c.receive(header(k.first_byte, k.announced));
    EXPECT_EQ(c.sink.log(), (Log{"error:1009"})) << "announcing " << k.announced;
    EXPECT_TRUE(c.reader.done());
  }
}

TEST(Limits, FragmentsAtTheLimitPass) {
  EXPECT_EQ(log_for(frame(ws::kText, ascii(400)) + frame(ws::kContinuation, ascii(400)) +
                        frame(kFin | ws::kContinuation, ascii(200)),
                    1000),
            (Log{"text:(1000)"}));
  // Control frames between fragments do not count towards the message.
  EXPECT_EQ(log_for(frame(ws::kText, ascii(900)) + frame(kFin | ws::kPing, ascii(125)) +
                        frame(kFin | ws::kContinuation, ascii(100)),
                    1000),
            (Log{"ping:" + ascii(125), "text:(1000)"}));
}

TEST(Limits, FragmentsOverTheLimitAreTooBig) {
  EXPECT_EQ(error_for(frame(ws::kText, ascii(400)) + frame(ws::kContinuation, ascii(400)) +
                          frame(kFin | ws::kContinuation, ascii(201)),
                      1000),
            ws::kCloseTooBig);
  EXPECT_EQ(error_for(frame(ws::kBinary, ascii(1000)) + frame(kFin | ws::kContinuation, "x"), 1000),
            ws::kCloseTooBig);
}

TEST(Limits, FragmentCrossingTheLimitIsRefusedFromItsHeader) {
  Connection c(1000);
  c.receive(frame(ws::kText, ascii(600)));
  c.receive(header(ws::kContinuation, 401));
  EXPECT_EQ(c.sink.log(), (Log{"error:1009"}));
  EXPECT_EQ(c.reader.pending_message_bytes(), 0u) << "the refused message is still held";
}

TEST(Limits, HugeMessageInSmallFragmentsIsStoppedEarly) {
  // 8 MiB in 64 KiB fragments against a 256 KiB limit: the reader must not reassemble the
  // whole message before refusing it.
  constexpr std::size_t kLimit = 256 * 1024;
  constexpr std::size_t kFragment = 64 * 1024;
  constexpr std::size_t kFragments = 8 * kMiB / kFragment;
  const std::string payload = ascii(kFragment);
  Connection c(kLimit);
  std::size_t fed = 0;
  for (std::size_t i = 0; i < kFragments && !c.reader.done(); ++i) {
    const std::uint8_t first =
        (i == kFragments - 1 ? kFin : 0) | (i == 0 ? ws::kText : ws::kContinuation);
    c.receive(frame(first, payload));
    ++fed;
    EXPECT_LE(c.reader.pending_message_bytes(), kLimit) << "after fragment " << fed;
  }
  EXPECT_EQ(c.sink.log(), (Log{"error:1009"}));
  EXPECT_LE(fed, 5u);
}

TEST(Limits, HugeMessageInSmallFragmentsFedInNetworkChunks) {
  constexpr std::size_t kLimit = 256 * 1024;
  constexpr std::size_t kFragment = 64 * 1024;
  constexpr std::size_t kFragments = 8 * kMiB / kFragment;
  std::string stream;
  for (std::size_t i = 0; i < kFragments; ++i) {
    const std::uint8_t first =
        (i == kFragments - 1 ? kFin : 0) | (i == 0 ? ws::kText : ws::kContinuation);
    stream += frame(first, ascii(kFragment));
  }
  Connection c(kLimit);
  std::string_view rest = stream;
  std::size_t fed = 0;
  while (!rest.empty() && !c.reader.done()) {
    const std::size_t n = std::min<std::size_t>(4096, rest.size());
    c.receive(rest.substr(0, n));
    rest.remove_prefix(n);
    fed += n;
    EXPECT_LE(c.reader.pending_message_bytes(), kLimit);
  }
  EXPECT_EQ(c.sink.log(), (Log{"error:1009"}));
  EXPECT_LE(fed, 5 * (kFragment + 14) + 4096);  // five frames, rounded up to a whole chunk
}

TEST(Limits, MaxFrameBytesCoversTheLargestFrame) {
  ws::FrameReader reader(1000);
  // The largest frame the reader accepts: the whole limit, with the longest length encoding.
  EXPECT_EQ(frame(kFin | ws::kText, ascii(1000), kKey, Length::k64).size(),
            reader.max_frame_bytes());
}

TEST(Limits, ControlFramesMayCarry125BytesUnderASmallLimit) {
  // Connection::receive checks that what the reader keeps stays within max_frame_bytes().
  Connection c(10);
  c.receive_bytewise(frame(kFin | ws::kPing, ascii(125)));
  EXPECT_EQ(c.sink.log(), (Log{"ping:" + ascii(125)}));
}

// ---------------------------------------------------------------------------------------------
// Protocol errors (1002)

TEST(ProtocolError, UnmaskedClientFrame) {
  EXPECT_EQ(error_for(frame(kFin | ws::kText, "hello", std::nullopt)), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(kFin | ws::kPing, "", std::nullopt)), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(kFin | ws::kClose, code_bytes(1000), std::nullopt)),
            ws::kCloseProtocolError);
  // After a valid masked message too.
  EXPECT_EQ(log_for(text("ok") + frame(kFin | ws::kText, "hello", std::nullopt)),
            (Log{"text:ok", "error:1002"}));
}

TEST(ProtocolError, AnyRsvBit) {
  for (std::uint8_t rsv : {kRsv1, kRsv2, kRsv3, std::uint8_t(kRsv1 | kRsv2 | kRsv3)}) {
    EXPECT_EQ(error_for(frame(kFin | rsv | ws::kText, "hi")), ws::kCloseProtocolError)
        << "rsv " << int(rsv);
    EXPECT_EQ(error_for(frame(kFin | rsv | ws::kBinary, "hi")), ws::kCloseProtocolError)
        << "rsv " << int(rsv);
    EXPECT_EQ(error_for(frame(kFin | rsv | ws::kPing, "")), ws::kCloseProtocolError)
        << "rsv " << int(rsv);
    EXPECT_EQ(error_for(frame(ws::kText, "a") + frame(kFin | rsv | ws::kContinuation, "b")),
              ws::kCloseProtocolError)
        << "rsv " << int(rsv);
  }
}

TEST(ProtocolError, UnknownOpcodes) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    EXPECT_EQ(error_for(frame(kFin | op, "")), ws::kCloseProtocolError) << "opcode " << int(op);
    EXPECT_EQ(error_for(frame(kFin | op, "payload")), ws::kCloseProtocolError)
        << "opcode " << int(op);
    // Also in the middle of a fragmented message.
    EXPECT_EQ(error_for(frame(ws::kText, "a") + frame(kFin | op, "")), ws::kCloseProtocolError)
        << "opcode " << int(op);
  }
}

TEST(ProtocolError, ControlFrameOver125Bytes) {
  EXPECT_EQ(error_for(frame(kFin | ws::kPing, ascii(126))), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(kFin | ws::kPong, ascii(126))), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(kFin | ws::kClose, code_bytes(1000) + ascii(124))),
            ws::kCloseProtocolError);
}

TEST(ProtocolError, FragmentedControlFrame) {
  EXPECT_EQ(error_for(frame(ws::kPing, "p")), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(ws::kPong, "")), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(ws::kClose, code_bytes(1000))), ws::kCloseProtocolError);
  // Even with a "continuation" after it.
  EXPECT_EQ(error_for(frame(ws::kPing, "p") + frame(kFin | ws::kContinuation, "q")),
            ws::kCloseProtocolError);
}

TEST(ProtocolError, ContinuationWithoutAMessageInProgress) {
  EXPECT_EQ(error_for(frame(kFin | ws::kContinuation, "x")), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(ws::kContinuation, "x")), ws::kCloseProtocolError);
  // After a message that was complete.
  EXPECT_EQ(log_for(text("done") + frame(kFin | ws::kContinuation, "x")),
            (Log{"text:done", "error:1002"}));
  EXPECT_EQ(log_for(frame(ws::kText, "a") + frame(kFin | ws::kContinuation, "b") +
                    frame(kFin | ws::kContinuation, "c")),
            (Log{"text:ab", "error:1002"}));
}

TEST(ProtocolError, NewDataFrameWhileAFragmentedMessageIsOpen) {
  EXPECT_EQ(error_for(frame(ws::kText, "a") + text("b")), ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(ws::kText, "a") + frame(kFin | ws::kBinary, "b")),
            ws::kCloseProtocolError);
  EXPECT_EQ(error_for(frame(ws::kBinary, "a") + frame(ws::kText, "b")), ws::kCloseProtocolError);
}

TEST(ProtocolError, SixtyFourBitLengthWithTheTopBitSet) {
  for (std::uint64_t len :
       {std::uint64_t{1} << 63, ~std::uint64_t{0}, (std::uint64_t{1} << 63) | 5}) {
    // A large limit, so that only the top bit is wrong; only the header arrives.
    Connection c(64 * kMiB);
    c.receive(header(kFin | ws::kText, len, kKey, Length::k64));
    EXPECT_EQ(c.sink.log(), (Log{"error:1002"})) << "length " << len;
  }
}

TEST(ProtocolError, NothingIsReadAfterAnError) {
  Connection c;
  c.receive(frame(kFin | kRsv1 | ws::kText, "x") + text("after"));
  EXPECT_EQ(c.sink.log(), (Log{"error:1002"}));
  EXPECT_TRUE(c.reader.done());
  c.receive(text("later"));
  c.receive(close_frame(1000));
  EXPECT_EQ(c.sink.log(), (Log{"error:1002"}));
  EXPECT_TRUE(c.reader.done());
}

// ---------------------------------------------------------------------------------------------
// UTF-8 (1007)

TEST(Utf8, ValidTextPasses) {
  for (const std::string& s : {
           std::string("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),  // κόσμε
           std::string("\xed\x9f\xbf"),                                  // U+D7FF
           std::string("\xee\x80\x80"),                                  // U+E000
           std::string("\xef\xbf\xbf"),                                  // U+FFFF
           std::string("\xf4\x8f\xbf\xbf"),                              // U+10FFFF
       }) {
    EXPECT_EQ(log_for(text(s)), (Log{"text:" + s})) << hex(s);
  }
}

TEST(Utf8, NulCharacterIsValid) {
  // U+0000 is the single byte 00 in UTF-8 (RFC 3629), so RFC 6455 allows it in text messages
  // and close reasons; refusing it is for the layer above.
  const std::string s("nul \0 inside", 12);
  EXPECT_EQ(log_for(text(s)), (Log{"text:" + s})) << hex(s);
  EXPECT_EQ(log_for(close_frame(1000, s)), (Log{"close:1000:" + s})) << hex(s);
}

TEST(Utf8, InvalidTextInOneFrame) {
  for (const std::string& s : {
           std::string("\xff"),
           std::string("\x80"),                  // lone continuation byte
           std::string("\xc0\xaf"),              // overlong '/'
           std::string("\xe0\x80\xaf"),          // overlong, 3 bytes
           std::string("\xed\xa0\x80"),          // surrogate U+D800
           std::string("\xf4\x90\x80\x80"),      // above U+10FFFF
           std::string("\xf8\x88\x80\x80\x80"),  // 5-byte form
           std::string("abc\xe2\x82"),           // truncated at the end
           std::string("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                       "edited"),
       }) {
    EXPECT_EQ(error_for(text(s)), ws::kCloseInvalidPayload) << hex(s);
  }
}

TEST(Utf8, MultibyteCharacterAcrossFragmentsIsValid) {
  // "€" (E2 82 AC) split after its first byte, "𝄞" (F0 9D 84 9E) across three fragments.
  EXPECT_EQ(log_for(frame(ws::kText, "price \xe2") + frame(kFin | ws::kContinuation, "\x82\xac")),
            (Log{"text:price \xe2\x82\xac"}));
  EXPECT_EQ(log_for(frame(ws::kText, "\xf0") + frame(ws::kContinuation, "\x9d\x84") +
                    frame(kFin | ws::kContinuation, "\x9e")),
            (Log{"text:\xf0\x9d\x84\x9e"}));
  // With a ping between the halves.
  EXPECT_EQ(log_for(frame(ws::kText, "\xe2\x82") + frame(kFin | ws::kPing, "") +
                    frame(kFin | ws::kContinuation, "\xac")),
            (Log{"ping:", "text:\xe2\x82\xac"}));
}

TEST(Utf8, EverySplitOfValidTextPasses) {
  const std::string s =
      "a\xe2\x82\xac"
      "b\xf0\x9d\x84\x9e"
      "c\xc3\xa9";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(log_for(frame(ws::kText, s.substr(0, cut)) +
                      frame(kFin | ws::kContinuation, s.substr(cut))),
              (Log{"text:" + s}))
        << "cut at " << cut;
  }
}

TEST(Utf8, EverySplitOfInvalidTextFails) {
  for (const std::string& s :
       {std::string("\xce\xba\xe1\xbd\xb9\xed\xa0\x80xyz"), std::string("ok\xe2\x82"),
        std::string("\xf4\x90\x80\x80"), std::string("a\xc0\xafz")}) {
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
      EXPECT_EQ(error_for(frame(ws::kText, s.substr(0, cut)) +
                          frame(kFin | ws::kContinuation, s.substr(cut))),
                ws::kCloseInvalidPayload)
          << hex(s) << "cut at " << cut;
    }
  }
}

TEST(Utf8, IncompleteCharacterAtTheEndOfAFragmentedMessage) {
  EXPECT_EQ(error_for(frame(ws::kText, "ok\xe2\x82") + frame(kFin | ws::kContinuation, "")),
            ws::kCloseInvalidPayload);
}

TEST(Utf8, BinaryMessagesAreNotChecked) {
  EXPECT_EQ(log_for(frame(ws::kBinary, "\xe2") + frame(kFin | ws::kContinuation, "\xff\xfe")),
            (Log{"binary:3"}));
}

// ---------------------------------------------------------------------------------------------
// Ping flood (1008)

// `count` pings "p", one every `every_us`, the first at kStartUs.
void send_pings(Connection& c, int count, std::int64_t every_us) {
  for (int i = 0; i < count; ++i) {
    c.now_us = kStartUs + std::int64_t{i} * every_us;
    c.receive(frame(kFin | ws::kPing, "p"));
  }
}

TEST(PingFlood, TenPingsWithinASecondAreFine) {
  Connection c(kMiB, 10);
  send_pings(c, 10, 99'000);  // the tenth at +891 ms
  EXPECT_EQ(c.sink.log(), Log(10, "ping:p"));
  EXPECT_FALSE(c.reader.done());
}

TEST(PingFlood, EleventhPingWithinASecondIsAPolicyViolation) {
  Connection c(kMiB, 10);
  send_pings(c, 11, 99'000);  // the eleventh at +990 ms
  EXPECT_EQ(c.sink.error_code(), ws::kClosePolicy);
  EXPECT_TRUE(c.reader.done());
}

TEST(PingFlood, BurstInOneBufferIsAPolicyViolation) {
  std::string burst;
  for (int i = 0; i < 11; ++i) burst += frame(kFin | ws::kPing, std::to_string(i));
  Connection c(kMiB, 10);
  c.receive(burst);
  EXPECT_EQ(c.sink.events.size(), 11u);  // ten pings, then the error
  EXPECT_EQ(c.sink.error_code(), ws::kClosePolicy);
}

TEST(PingFlood, PingsSpreadOverTimeAreFineIndefinitely) {
  Connection c(kMiB, 10);
  send_pings(c, 1000, 150'000);  // for two and a half minutes
  EXPECT_EQ(c.sink.log(), Log(1000, "ping:p"));
  EXPECT_FALSE(c.reader.done());
}

TEST(PingFlood, BurstsOfTenSeparatedByMoreThanASecondAreFine) {
  Connection c(kMiB, 10);
  for (int burst = 0; burst < 20; ++burst) {
    c.now_us = kStartUs + std::int64_t{burst} * 1'500'000;
    std::string ten;
    for (int i = 0; i < 10; ++i) ten += frame(kFin | ws::kPing, "p");
    c.receive(ten);
  }
  EXPECT_EQ(c.sink.events.size(), 200u);
  EXPECT_EQ(c.sink.error_code(), 0);
}

TEST(PingFlood, TheWindowStartsAgainAfterExactlyOneSecond) {
  Connection c(kMiB, 10);
  send_pings(c, 10, 0);
  c.now_us = kStartUs + 1'000'000;
  c.receive(frame(kFin | ws::kPing, "p"));
  EXPECT_EQ(c.sink.log(), Log(11, "ping:p"));
}

TEST(PingFlood, LimitIsConfigurable) {
  Connection c(kMiB, 3);
  send_pings(c, 4, 0);
  EXPECT_EQ(c.sink.log(), (Log{"ping:p", "ping:p", "ping:p", "error:1008"}));
}

// ---------------------------------------------------------------------------------------------
// Stopping from on_text

TEST(Stop, FeedReturnsRightAfterTheFrameThatStopped) {
  const std::string one = text("one"), two = text("two"), three = text("three");
  std::string buf = one + two + three;
  ws::FrameReader reader(kMiB);
  Recorder sink;
  sink.stop_at_text = 1;
  const std::size_t consumed = reader.feed(buf.data(), buf.size(), kStartUs, sink);
  EXPECT_EQ(consumed, one.size());
  EXPECT_EQ(sink.log(), (Log{"text:one"}));
  EXPECT_FALSE(reader.done());
  // The rest, fed later, produces the next messages.
  std::string rest = buf.substr(consumed);
  EXPECT_EQ(rest, two + three) << "the reader changed bytes it did not consume";
  EXPECT_EQ(reader.feed(rest.data(), rest.size(), kStartUs, sink), rest.size());
  EXPECT_EQ(sink.log(), (Log{"text:one", "text:two", "text:three"}));
}

TEST(Stop, StopInTheMiddleOfABuffer) {
  const std::string one = text("one"), two = text("two"), three = text("three");
  std::string buf = one + frame(kFin | ws::kPing, "p") + two + three;
  ws::FrameReader reader(kMiB);
  Recorder sink;
  sink.stop_at_text = 2;
  const std::size_t consumed = reader.feed(buf.data(), buf.size(), kStartUs, sink);
  EXPECT_EQ(consumed, buf.size() - three.size());
  EXPECT_EQ(sink.log(), (Log{"text:one", "ping:p", "text:two"}));
  std::string rest = buf.substr(consumed);
  EXPECT_EQ(reader.feed(rest.data(), rest.size(), kStartUs, sink), rest.size());
  EXPECT_EQ(sink.log(), (Log{"text:one", "ping:p", "text:two", "text:three"}));
}

TEST(Stop, StopOnAReassembledMessage) {
  const std::string fragments = frame(ws::kText, "a") + frame(kFin | ws::kContinuation, "b");
  const std::string next = text("c");
  std::string buf = fragments + next;
  ws::FrameReader reader(kMiB);
  Recorder sink;
  sink.stop_at_text = 1;
  const std::size_t consumed = reader.feed(buf.data(), buf.size(), kStartUs, sink);
  EXPECT_EQ(consumed, fragments.size());
  EXPECT_EQ(sink.log(), (Log{"text:ab"}));
  EXPECT_EQ(reader.pending_message_bytes(), 0u);
  std::string rest = buf.substr(consumed);
  EXPECT_EQ(reader.feed(rest.data(), rest.size(), kStartUs, sink), rest.size());
  EXPECT_EQ(sink.log(), (Log{"text:ab", "text:c"}));
}

// ---------------------------------------------------------------------------------------------
// Encoder

TEST(Encoder, FrameHeaderUsesTheShortestLength) {
  struct Case {
    std::size_t len;
    std::size_t header_bytes;
  };
  for (const Case& k : {Case{0, 2}, Case{125, 2}, Case{126, 4}, Case{65535, 4}, Case{65536, 10},
                        Case{(std::size_t{1} << 32) + 1, 10}}) {
    for (ws::Opcode op : {ws::kText, ws::kBinary, ws::kClose, ws::kPing, ws::kPong}) {
      char out[10] = {};
      const std::size_t n = ws::frame_header(out, op, k.len);
      ASSERT_EQ(n, k.header_bytes) << "length " << k.len;
      const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(out[i]); };
      EXPECT_EQ(b(0), 0x80 | op) << "FIN and the opcode, no RSV bit";
      EXPECT_EQ(b(1) & 0x80, 0) << "a server never masks";
      std::uint64_t len = b(1) & 0x7F;
      if (n == 4) {
        EXPECT_EQ(len, 126u);
        len = (std::uint64_t{b(2)} << 8) | b(3);
      } else if (n == 10) {
        EXPECT_EQ(len, 127u);
        len = 0;
        for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | b(i);
      }
      EXPECT_EQ(len, k.len);
    }
  }
}

TEST(Encoder, FramesDecodeBackToThePayload) {
  for (std::size_t len : {0u, 1u, 125u, 126u, 65535u, 65536u, 70000u}) {
    const std::string payload = ascii(len);
    const ServerFrame f = decode_server_frame(server_frame(ws::kText, payload));
    EXPECT_TRUE(f.fin);
    EXPECT_EQ(f.rsv, 0);
    EXPECT_EQ(f.opcode, ws::kText);
    EXPECT_FALSE(f.masked);
    EXPECT_EQ(f.header_bytes, len <= 125 ? 2u : len <= 65535 ? 4u : 10u) << "length " << len;
    EXPECT_EQ(f.payload, payload) << "length " << len;
  }
}

TEST(Encoder, SmallFramesAreHeaderThenPayload) {
  EXPECT_EQ(server_frame(ws::kPong, "p"), std::string("\x8a\x01p", 3));
  EXPECT_EQ(server_frame(ws::kBinary, std::string("\0\xff", 2)), std::string("\x82\x02\0\xff", 4));
}

TEST(Encoder, ClosePayloadIsCodeThenReason) {
  EXPECT_EQ(ws::close_payload(1000, "bye"), std::string("\x03\xe8"
                                                        "bye",
                                                        5));
  EXPECT_EQ(ws::close_payload(1001, ""), std::string("\x03\xe9", 2));
  EXPECT_EQ(ws::close_payload(ws::kCloseTooBig, "x"), std::string("\x03\xf1x", 3));
  EXPECT_EQ(ws::close_payload(4999, "r"), std::string("\x13\x87r", 3));
}

TEST(Encoder, LongCloseReasonIsCutTo123Bytes) {
  const std::string reason = ascii(500);
  const std::string p = ws::close_payload(1000, reason);
  EXPECT_EQ(p.size(), 125u);
  EXPECT_EQ(p.substr(2), reason.substr(0, 123));
}

TEST(Encoder, LongCloseReasonIsCutOnACharacterBoundary) {
  std::string euros;  // "€" is 3 bytes
  for (int i = 0; i < 100; ++i) euros += "\xe2\x82\xac";
  struct Case {
    std::string prefix;
    std::size_t expected_reason_bytes;  // the longest prefix of whole characters <= 123
  };
  for (const Case& k : {Case{"", 123}, Case{"a", 121}, Case{"ab", 122}}) {
    const std::string reason = k.prefix + euros;
    const std::string p = ws::close_payload(1000, reason);
    EXPECT_EQ(p, "\x03\xe8" + reason.substr(0, k.expected_reason_bytes))
        << "prefix \"" << k.prefix << "\": " << hex(p);
  }
  // 4-byte characters: 30 of them fit (120 bytes).
  std::string clefs;
  for (int i = 0; i < 40; ++i) clefs += "\xf0\x9d\x84\x9e";
  EXPECT_EQ(ws::close_payload(1000, clefs).substr(2), clefs.substr(0, 120));
}
