// Fuzzing the server's WebSocket frame reader (RFC 6455) with hostile client byte streams.
//
// LLVMFuzzerTestOneInput is the libFuzzer entry point (the -Dfuzzing=enabled build runs it
// coverage-guided over corpus/websocket/). Without libFuzzer, the bounded driver (driver.cpp)
// replays the regression inputs and the corpus, then calls fuzz_bounded_run() below: a fixed
// number of inputs, a fixed seed (reproducible), stopping by itself. Its inputs are built in
// code: seeds (valid and invalid client frames, each with the events it must produce),
// generated valid streams (checked against their events too), and mutants of both. With
// WEBSOCKET_FUZZ_WRITE_SEEDS=DIR it writes the seeds to DIR (how corpus/websocket/ was made).
//
// Each input is a byte stream from one client, read four ways:
//  1. whole, in one feed, by a driver that behaves like the connection (it keeps what the
//     reader left unconsumed, appends the next chunk and feeds again);
//  2. in chunks of 1 to 300 bytes whose sizes derive from the input's hash, same constant
//     clock: the outcome must be exactly that of 1 (splitting never changes what is read);
//  3. in other chunks, with a clock that advances and a sink that now and then asks the
//     reader to stop (the driver feeds the rest again at once). Ping counting depends on the
//     time, so this run can only find a ping flood later than 1: up to 1's ping-flood error
//     its events are 1's, and without one its outcome is 1's;
//  4. by a plain model of the reader written here (bytewise unmasking, its own UTF-8 check
//     and close-code list): its outcome must be that of 1.
// Every run checks the reader's invariants: feed() consumes at most what it was given; texts
// are valid UTF-8 (U+0000 allowed) within the limit; binary messages are within the limit;
// the message being reassembled never exceeds the limit; nothing is reported after on_close
// or on_error (nor after the sink asked to stop), and done() is true exactly after one of
// them; errors are 1002, 1007, 1008 or 1009; close codes are ones a peer may send, or 1005;
// the driver never keeps more than max_frame_bytes(); after each feed no complete frame is
// left unread.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "driver.h"
#include "websocket.h"

namespace {

namespace ws = signaling::ws;

constexpr std::size_t kLimit = 4096;
constexpr unsigned kMaxPings = 10;
// More than a second after 0, so the first ping opens the reader's first ping window.
constexpr std::int64_t kStartUs = 1'000'000'000'000;

std::string_view g_input;  // the input being read, printed when an invariant breaks

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\ninput (%zu bytes):", what, g_input.size());
  for (std::size_t i = 0; i < g_input.size(); ++i) {
    std::fprintf(stderr, "%s%02x", i % 32 ? " " : "\n  ", static_cast<unsigned char>(g_input[i]));
  }
  std::fprintf(stderr, "\n");
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. U+0000 is valid.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t more;
    std::uint32_t cp;
    std::uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      more = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      more = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      more = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i - 1 < more) return false;
    for (std::size_t k = 1; k <= more; ++k) {
      unsigned d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += more + 1;
  }
  return true;
}

// Close codes a peer may send: RFC 6455 section 7.4.1 (1004-1006 and 1015 are reserved and
// never sent), the IANA registry's 1012-1014 (section 11.7), and 3000-4999 (section 7.4.2).
bool valid_close_code(std::size_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

struct Event {
  char kind;         // 'T' text, 'B' binary, 'P' ping, 'O' pong, 'C' close, 'E' error
  std::string data;  // the text, the ping's payload or the close reason
  std::size_t n;     // the binary message's size, or the close or error code
  std::string why;   // the error's sentence (the model leaves it empty)
  bool operator==(const Event&) const = default;
};

bool same_but_why(const std::vector<Event>& a, const std::vector<Event>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Event& x, const Event& y) {
    return x.kind == y.kind && x.data == y.data && x.n == y.n;
  });
}

void print(const char* name, const std::vector<Event>& events) {
  std::fprintf(stderr, "%s:", name);
  for (const Event& e : events) {
    std::fprintf(stderr, " %c", e.kind);
    if (e.kind == 'B' || e.kind == 'C' || e.kind == 'E') std::fprintf(stderr, "%zu", e.n);
    if (!e.data.empty()) std::fprintf(stderr, "[%zu bytes]", e.data.size());
  }
  std::fprintf(stderr, "\n");
}

// What reading a stream found.
struct Outcome {
  std::vector<Event> events;
  std::size_t consumed = 0;         // bytes the reader consumed in all
  bool done = false;                // the reader stopped (close or error)
  std::size_t pending_message = 0;  // pending_message_bytes() at the end
  std::string tail;                 // the unconsumed bytes kept at the end (none once done)
  bool operator==(const Outcome&) const = default;
};

// splitmix64: chunk sizes, clock steps and stops derived from the input.
struct Mix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
};

// Records the events and checks each as it arrives. With `stops`, the sink asks the reader to
// stop (returns false) after about one event in four, as a connection being closed does.
class Recorder : public ws::FrameSink {
 public:
  Recorder(const ws::FrameReader& reader, std::uint64_t stops)
      : reader_(reader), stops_{stops}, stopping_(stops != 0) {}

  bool on_text(std::string_view text) override {
    arrive();
    check(text.size() <= kLimit, "a text message over the limit");
    check(valid_utf8(text), "a text message that is not UTF-8");
    events.push_back({'T', std::string(text), 0, {}});
    return go_on();
  }
  bool on_binary(std::size_t bytes) override {
    arrive();
    check(bytes <= kLimit, "a binary message over the limit");
    events.push_back({'B', {}, bytes, {}});
    return go_on();
  }
  bool on_ping(std::string_view payload) override {
    arrive();
    check(payload.size() <= 125, "a ping payload over 125 bytes");
    events.push_back({'P', std::string(payload), 0, {}});
    return go_on();
  }
  bool on_pong() override {
    arrive();
    events.push_back({'O', {}, 0, {}});
    return go_on();
  }
  void on_close(unsigned short code, std::string_view reason) override {
    arrive();
    check(valid_close_code(code) || code == ws::kCloseNoStatus, "an invalid close code");
    check(code != ws::kCloseNoStatus || reason.empty(), "a close reason without a code");
    check(reason.size() <= 123, "a close reason over 123 bytes");
    check(valid_utf8(reason), "a close reason that is not UTF-8");
    events.push_back({'C', std::string(reason), code, {}});
    ended = true;
  }
  void on_error(unsigned short code, std::string_view why) override {
    arrive();
    check(code == ws::kCloseProtocolError || code == ws::kCloseInvalidPayload ||
              code == ws::kClosePolicy || code == ws::kCloseTooBig,
          "an error code other than 1002, 1007, 1008, 1009");
    check(!why.empty(), "an error without a reason");
    events.push_back({'E', {}, code, std::string(why)});
    ended = true;
  }

  std::vector<Event> events;
  bool ended = false;    // on_close or on_error was reported
  bool stopped = false;  // the sink asked to stop during this feed()

 private:
  void arrive() {
    check(!ended, "an event after on_close or on_error");
    check(!stopped, "an event after the sink asked to stop");
    check(reader_.pending_message_bytes() <= kLimit, "a reassembled message over the limit");
  }
  bool go_on() {
    stopped = stopping_ && stops_.next() % 4 == 0;
    return !stopped;
  }

  const ws::FrameReader& reader_;
  Mix stops_;
  bool stopping_;
};

std::uint64_t hash(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325;  // FNV-1a
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  return h;
}

// Reads `input` the way a connection does: each chunk is appended to the bytes the reader
// left unconsumed, and the whole is fed again. `split`: 0 to feed the input in one chunk,
// else the seed of chunk sizes (1-300 bytes). `clock`: 0 for a constant time, else the seed
// of the steps (0-250 ms) the time advances before each feed. `stops`: 0 for a sink that
// never stops the reader, else the seed of when it does; the driver then feeds the rest
// again at once, which must read on as if there had been no stop.
Outcome drive(std::string_view input, std::uint64_t split, std::uint64_t clock,
              std::uint64_t stops) {
  ws::FrameReader reader(kLimit, kMaxPings);
  Recorder sink(reader, stops);
  Mix sizes{split};
  Mix steps{clock};
  std::int64_t now = kStartUs;
  std::string pending;
  Outcome out;
  // One feed() of all that is pending, and the checks that follow any feed().
  auto feed = [&] {
    const bool was_done = reader.done();
    const std::size_t events_before = sink.events.size();
    sink.stopped = false;
    const std::size_t used = reader.feed(pending.data(), pending.size(), now, sink);
    check(used <= pending.size(), "feed() consumed more than it was given");
    if (was_done) {
      check(used == 0, "feed() consumed bytes after on_close or on_error");
      check(sink.events.size() == events_before, "an event after on_close or on_error");
    }
    out.consumed += used;
    check(reader.done() == sink.ended, "done() differs from 'on_close or on_error reported'");
    check(reader.pending_message_bytes() <= kLimit, "a reassembled message over the limit");
    pending.erase(0, used);
    return used;
  };
  std::size_t offset = 0;
  do {
    std::size_t n = input.size() - offset;
    if (split) {
      std::uint64_t r = sizes.next();
      n = std::min<std::size_t>(n, r % 4 == 0 ? 1 + (r >> 8) % 4 : 1 + (r >> 8) % 300);
    }
    pending.append(input.substr(offset, n));
    offset += n;
    if (clock) now += static_cast<std::int64_t>(steps.next() % 250'000);
    feed();
    while (sink.stopped && !reader.done()) feed();
    if (reader.done()) {
      std::string().swap(pending);  // the connection reads nothing more: later chunks alone
      continue;
    }
    check(pending.size() <= reader.max_frame_bytes(), "kept more than one frame");
    // Everything complete was read: the rest is part of a frame, and feeding it again
    // without more bytes reads nothing.
    const std::size_t events_after = sink.events.size();
    check(feed() == 0 && sink.events.size() == events_after && !reader.done(),
          "feed() left a complete frame unread");
  } while (offset < input.size());
  out.events = std::move(sink.events);
  out.done = reader.done();
  out.pending_message = reader.pending_message_bytes();
  out.tail = pending;
  return out;
}

// The reader's rules, written plainly: the whole stream at once, bytewise unmasking, a
// constant clock (every ping falls in the first window). Errors carry no sentence.
Outcome model(std::string_view in) {
  Outcome out;
  std::size_t pos = 0;
  std::string message;  // the fragments so far
  unsigned open = 0;    // the fragmented message's opcode, 0 when none
  unsigned pings = 0;
  auto stop = [&](std::size_t code) {
    out.events.push_back({'E', {}, code, {}});
    out.done = true;
    message.clear();
  };
  while (!out.done && in.size() - pos >= 2) {
    auto byte = [&](std::size_t i) -> unsigned { return static_cast<unsigned char>(in[pos + i]); };
    const bool fin = byte(0) & 0x80;
    const unsigned op = byte(0) & 0x0f;
    const bool masked = byte(1) & 0x80;
    const unsigned len7 = byte(1) & 0x7f;
    const bool control = op >= 8;
    const bool known = op <= 2 || (op >= 8 && op <= 10);
    if ((byte(0) & 0x70) || !masked || !known || (control && (!fin || len7 > 125)) ||
        (op == 0 && !open) || ((op == 1 || op == 2) && open)) {
      stop(ws::kCloseProtocolError);
      break;
    }
    const std::size_t header = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    if (in.size() - pos < header) break;
    std::uint64_t len = len7;
    if (len7 == 126) len = (byte(2) << 8) | byte(3);
    if (len7 == 127) {
      len = 0;
      for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | byte(i);
      if (len >> 63) {
        stop(ws::kCloseProtocolError);
        break;
      }
    }
    if (!control && len + (op == 0 ? message.size() : 0) > kLimit) {
      stop(ws::kCloseTooBig);
      break;
    }
    if (in.size() - pos - header < len) break;
    std::string p(in.substr(pos + header, len));
    for (std::size_t i = 0; i < p.size(); ++i)
      p[i] = static_cast<char>(p[i] ^ in[pos + header - 4 + i % 4]);
    pos += header + len;
    if (op == ws::kPing) {
      if (++pings > kMaxPings) {
        stop(ws::kClosePolicy);
      } else {
        out.events.push_back({'P', p, 0, {}});
      }
    } else if (op == ws::kPong) {
      out.events.push_back({'O', {}, 0, {}});
    } else if (op == ws::kClose) {
      if (p.size() == 1) {
        stop(ws::kCloseProtocolError);
      } else if (p.empty()) {
        out.events.push_back({'C', {}, ws::kCloseNoStatus, {}});
      } else {
        std::size_t code =
            (static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]);
        if (!valid_close_code(code)) {
          stop(ws::kCloseProtocolError);
        } else if (!valid_utf8(p.substr(2))) {
          stop(ws::kCloseInvalidPayload);
        } else {
          out.events.push_back({'C', p.substr(2), code, {}});
        }
      }
      out.done = true;  // the message in progress, if any, stays as it was
    } else {
      unsigned type = op;
      if (op == 0) {
        message += p;
        type = open;
      }
      if (!fin) {
        if (op != 0) {
          open = op;
          message = p;
        }
        continue;
      }
      std::string whole = op == 0 ? message : p;
      message.clear();
      open = 0;
      if (type == ws::kBinary) {
        out.events.push_back({'B', {}, whole.size(), {}});
      } else if (valid_utf8(whole)) {
        out.events.push_back({'T', whole, 0, {}});
      } else {
        stop(ws::kCloseInvalidPayload);
      }
    }
  }
  out.consumed = pos;
  out.pending_message = message.size();
  if (!out.done) out.tail = std::string(in.substr(pos));
  return out;
}

std::size_t flood_error_at(const std::vector<Event>& events) {
  if (!events.empty() && events.back().kind == 'E' && events.back().n == ws::kClosePolicy) {
    return events.size() - 1;
  }
  return events.size();
}

Outcome run_one(std::string_view input) {
  g_input = input;
  const std::uint64_t h = hash(input);
  const Outcome whole = drive(input, 0, 0, 0);
  const Outcome split = drive(input, h | 1, 0, 0);
  if (!(split == whole)) {
    print("whole", whole.events);
    print("split", split.events);
    fail("reading in chunks differs from reading the stream whole");
  }
  const Outcome plain = model(input);
  if (!same_but_why(plain.events, whole.events) || plain.consumed != whole.consumed ||
      plain.done != whole.done || plain.pending_message != whole.pending_message ||
      plain.tail != whole.tail) {
    print("reader", whole.events);
    print("model ", plain.events);
    fail("the reader differs from the model");
  }
  const Outcome timed = drive(input, (h * 31) | 1, (h ^ 0x5bd1e995) | 1, h + 7);
  const std::size_t k = flood_error_at(whole.events);
  const bool prefix =
      timed.events.size() >= k &&
      std::equal(whole.events.begin(), whole.events.begin() + k, timed.events.begin());
  if (!prefix || (k == whole.events.size() && !(timed == whole))) {
    print("constant clock ", whole.events);
    print("advancing clock, stops", timed.events);
    fail("an advancing clock or a stopping sink changed more than when a flood is found");
  }
  return whole;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifndef FUZZING_ENGINE
namespace {

using Rng = Mix;

// A client frame: `first` is FIN, RSV and the opcode. `form` is the length's encoding: 0
// minimal, 16 or 64 (longer than needed is allowed, the reader accepts it), or -1 to write
// `announced` as the length whatever the payload. `masked` false for an unmasked frame.
std::string frame(unsigned first, std::string_view payload, Rng& rng, int form = 0,
                  bool masked = true, std::uint64_t announced = 0) {
  std::uint64_t len = form < 0 ? announced : payload.size();
  if (form == 0) form = len <= 125 ? 7 : len <= 0xffff ? 16 : 64;
  if (form < 0) form = 64;
  std::string f;
  f.push_back(static_cast<char>(first));
  const unsigned m = masked ? 0x80 : 0;
  if (form == 7) {
    f.push_back(static_cast<char>(m | len));
  } else if (form == 16) {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>(len >> 8));
    f.push_back(static_cast<char>(len));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>(len >> shift));
  }
  std::uint64_t r = rng.next();
  char key[4];
  for (int i = 0; i < 4; ++i) key[i] = static_cast<char>(r >> (8 * i));
  if (r >> 62 == 0) std::fill(key, key + 4, '\0');  // now and then a zero key
  if (masked) f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return f;
}

constexpr unsigned kFin = 0x80;

std::string close_body(unsigned code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code));
  p.append(reason);
  return p;
}

std::string utf8_text(std::size_t bytes, Rng& rng) {
  static const char* kChars[] = {"a",
                                 "Z",
                                 " ",
                                 "{",
                                 "\"",
                                 "\0",
                                 "\xc3\xa9",
                                 "\xe2\x82\xac",
                                 "\xf0\x9f\x98\x80",
                                 "\xf4\x8f\xbf\xbf",
                                 "\xef\xbf\xbd",
                                 "\xc2\x80",
                                 "\xed\x9f\xbf",
                                 "\xee\x80\x80"};
  static const std::size_t kLens[] = {1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 3, 2, 3, 3};
  std::string s;
  while (s.size() < bytes) {
    std::size_t i = rng.next() % (sizeof kLens / sizeof *kLens);
    if (s.size() + kLens[i] > bytes) i = 0;
    s.append(kChars[i], kLens[i]);
  }
  return s;
}

struct Seed {
  std::string bytes;
  std::vector<Event> expected;
};

Event text(std::string s) {
  return {'T', std::move(s), 0, {}};
}
Event ping(std::string s) {
  return {'P', std::move(s), 0, {}};
}
Event failure(std::size_t code) {
  return {'E', {}, code, {}};
}

std::vector<Seed> make_seeds() {
  Rng rng{20261124};
  std::vector<Seed> seeds;
  auto add = [&](std::string bytes, std::vector<Event> expected) {
    seeds.push_back({std::move(bytes), std::move(expected)});
  };
  const std::string t200 = utf8_text(200, rng);
  const std::string t300 = utf8_text(300, rng);
  const std::string t4096 = utf8_text(kLimit, rng);

  // Single text frames: 7-, 16- and 64-bit lengths (minimal and not), up to the limit.
  add(frame(kFin | ws::kText, "hello", rng), {text("hello")});
  add(frame(kFin | ws::kText, "", rng), {text("")});
  add(frame(kFin | ws::kText, t200, rng), {text(t200)});
  add(frame(kFin | ws::kText, "short", rng, 16), {text("short")});
  add(frame(kFin | ws::kText, t300, rng, 64), {text(t300)});
  add(frame(kFin | ws::kText, t4096, rng), {text(t4096)});
  add(frame(kFin | ws::kText, std::string("nul\0inside\xf4\x8f\xbf\xbf", 14), rng),
      {text(std::string("nul\0inside\xf4\x8f\xbf\xbf", 14))});
  // Fragmented text with control frames between the fragments, a character cut in two.
  add(frame(ws::kText, "frag\xe2", rng) + frame(kFin | ws::kPing, "p1", rng) +
          frame(ws::kContinuation, "\x82\xac men", rng) + frame(kFin | ws::kPing, "", rng) +
          frame(kFin | ws::kPong, "po", rng) + frame(kFin | ws::kContinuation, "ted", rng),
      {ping("p1"), ping(""), {'O', {}, 0, {}}, text("frag\xe2\x82\xac mented")});
  add(frame(ws::kText, t4096.substr(0, 4000), rng, 64) + frame(ws::kContinuation, "", rng) +
          frame(kFin | ws::kContinuation, t4096.substr(4000), rng),
      {text(t4096)});
  // Binary, whole and fragmented; pongs; two messages in a row.
  add(frame(kFin | ws::kBinary, utf8_text(1000, rng) + "\xff\xfe", rng), {{'B', {}, 1002, {}}});
  add(frame(ws::kBinary, std::string("\x00\xff", 2), rng) +
          frame(kFin | ws::kContinuation, "\x80", rng),
      {{'B', {}, 3, {}}});
  add(frame(kFin | ws::kPong, "unsolicited", rng) + frame(kFin | ws::kText, "a", rng) +
          frame(kFin | ws::kText, "b", rng),
      {{'O', {}, 0, {}}, text("a"), text("b")});
  // Close frames: with a code and a reason, with a code alone, empty; nothing after them.
  add(frame(kFin | ws::kClose, close_body(1000, "bye \xe2\x82\xac"), rng) +
          frame(kFin | ws::kText, "ignored", rng),
      {{'C', "bye \xe2\x82\xac", 1000, {}}});
  add(frame(kFin | ws::kClose, close_body(4999, ""), rng), {{'C', {}, 4999, {}}});
  add(frame(kFin | ws::kClose, "", rng), {{'C', {}, ws::kCloseNoStatus, {}}});
  add(frame(ws::kText, "open", rng) + frame(kFin | ws::kClose, close_body(1001, "x"), rng),
      {{'C', "x", 1001, {}}});
  // Ten pings are allowed within a second, the eleventh is a flood.
  {
    std::string s;
    std::vector<Event> expected;
    for (unsigned i = 0; i <= kMaxPings; ++i) {
      s += frame(kFin | ws::kPing, std::to_string(i), rng);
      if (i < kMaxPings) expected.push_back(ping(std::to_string(i)));
    }
    expected.push_back(failure(ws::kClosePolicy));
    add(s, expected);
  }

  // Invalid: unmasked, RSV bits, unknown opcodes, bad lengths.
  add(frame(kFin | ws::kText, "unmasked", rng, 0, false), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | 0x40 | ws::kText, "rsv1", rng), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | 0x10 | ws::kPing, "rsv3", rng), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | 0x3, "op3", rng), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | 0xb, "opb", rng), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | ws::kText, "", rng, -1, true, std::uint64_t{1} << 63),
      {failure(ws::kCloseProtocolError)});
  add(frame(kFin | ws::kBinary, "", rng, -1, true, 70000), {failure(ws::kCloseTooBig)});
  add(frame(kFin | ws::kText, t4096 + "!", rng), {failure(ws::kCloseTooBig)});
  add(frame(ws::kText, t4096.substr(0, 3000), rng) +
          frame(kFin | ws::kContinuation, t4096.substr(0, 1097), rng),
      {failure(ws::kCloseTooBig)});
  // Invalid control frames and fragmentation.
  add(frame(kFin | ws::kPing, std::string(126, 'p'), rng), {failure(ws::kCloseProtocolError)});
  add(frame(ws::kPing, "fragmented", rng), {failure(ws::kCloseProtocolError)});
  add(frame(kFin | ws::kContinuation, "orphan", rng), {failure(ws::kCloseProtocolError)});
  add(frame(ws::kText, "one", rng) + frame(kFin | ws::kText, "two", rng),
      {failure(ws::kCloseProtocolError)});
  // Invalid UTF-8 and close frames.
  add(frame(kFin | ws::kText, "surrogate \xed\xa0\x80", rng), {failure(ws::kCloseInvalidPayload)});
  add(frame(kFin | ws::kText, "overlong \xc0\xaf", rng), {failure(ws::kCloseInvalidPayload)});
  add(frame(kFin | ws::kText, "too big \xf4\x90\x80\x80", rng),
      {failure(ws::kCloseInvalidPayload)});
  add(frame(ws::kText, "cut \xe2\x82", rng) + frame(kFin | ws::kContinuation, "", rng),
      {failure(ws::kCloseInvalidPayload)});
  add(frame(kFin | ws::kClose, "\x03", rng), {failure(ws::kCloseProtocolError)});
  for (unsigned code : {999u, 1004u, 1005u, 1006u, 1015u, 2999u, 5000u}) {
    add(frame(kFin | ws::kClose, close_body(code, ""), rng), {failure(ws::kCloseProtocolError)});
  }
  add(frame(kFin | ws::kClose, close_body(1000, "\xff"), rng), {failure(ws::kCloseInvalidPayload)});
  // Incomplete: a frame cut short.
  add(frame(kFin | ws::kText, t300, rng).substr(0, 100), {});
  return seeds;
}

// Offsets of frame headers, following the lengths from the start (as far as they hold).
std::vector<std::size_t> headers(const std::string& s) {
  std::vector<std::size_t> at;
  std::size_t pos = 0;
  while (s.size() - pos >= 2 && at.size() < 64) {
    at.push_back(pos);
    unsigned len7 = static_cast<unsigned char>(s[pos + 1]) & 0x7f;
    std::size_t header = 2 +
                         (len7 == 126   ? 2
                          : len7 == 127 ? 8
                                        : 0) +
                         ((static_cast<unsigned char>(s[pos + 1]) & 0x80) ? 4 : 0);
    if (s.size() - pos < header) break;
    std::uint64_t len = len7;
    if (len7 >= 126) {
      len = 0;
      for (std::size_t i = 2; i < header - 4 * ((s[pos + 1] & 0x80) != 0); ++i) {
        len = (len << 8) | static_cast<unsigned char>(s[pos + i]);
      }
    }
    if (len > s.size() - pos - header) break;
    pos += header + static_cast<std::size_t>(len);
  }
  return at;
}

std::string random_frame(Rng& rng) {
  static const unsigned kOps[] = {0, 1, 1, 2, 8, 9, 9, 10};
  unsigned op = rng.next() % 5 == 0 ? rng.next() % 16 : kOps[rng.next() % 8];
  unsigned first =
      op | (rng.next() % 4 ? kFin : 0) | (rng.next() % 16 ? 0 : 0x10 << rng.next() % 3);
  std::string payload;
  switch (rng.next() % 4) {
    case 0:
      payload = utf8_text(rng.next() % 130, rng);
      break;
    case 1:
      payload =
          close_body(static_cast<unsigned>(rng.next() % 5100), utf8_text(rng.next() % 8, rng));
      break;
    case 2:
      for (std::size_t n = rng.next() % 40; n > 0; --n)
        payload.push_back(static_cast<char>(rng.next()));
      break;
    default:
      payload = utf8_text(rng.next() % (kLimit + 100), rng);
  }
  static const int kForms[] = {0, 0, 0, 16, 64, -1};
  int form = kForms[rng.next() % 6];
  static const std::uint64_t kLengths[] = {
      0, 1, 125, 126, 127, 4095, 4096, 4097, 8192, 65535, 65536, 70000, ~std::uint64_t{0}};
  std::uint64_t announced =
      rng.next() % 2 ? kLengths[rng.next() % 13] : rng.next() >> (rng.next() % 64);
  return frame(first, payload, rng, form, rng.next() % 16 != 0, announced);
}

// A valid client stream, with the events it must produce: messages of up to the limit, whole
// or in fragments (a character may be cut between two), pings and pongs between the
// fragments and the messages, now and then a ping flood, a close frame and bytes after it.
Seed stream(Rng& rng) {
  Seed out;
  unsigned pings = 0;
  bool stopped = false;
  auto form = [&](std::size_t len) {
    const std::uint64_t r = rng.next() % 8;
    return r == 0 && len <= 0xffff ? 16 : r == 1 ? 64 : 0;
  };
  // Control frames take the minimal length form: the reader refuses a 16- or 64-bit length
  // on them (RFC 6455 5.2 requires the minimal form; the reader tolerates longer ones on data
  // frames only).
  auto control = [&] {
    std::string p = utf8_text(rng.next() % 2 ? rng.next() % 8 : rng.next() % 126, rng);
    if (rng.next() % 3) {
      out.bytes += frame(kFin | ws::kPong, p, rng);
      out.expected.push_back({'O', {}, 0, {}});
      return;
    }
    out.bytes += frame(kFin | ws::kPing, p, rng);
    if (++pings > kMaxPings) {
      out.expected.push_back(failure(ws::kClosePolicy));
      stopped = true;
    } else {
      out.expected.push_back(ping(p));
    }
  };
  for (std::uint64_t n = 1 + rng.next() % 10; n > 0 && !stopped; --n) {
    const std::uint64_t what = rng.next() % 10;
    if (what < 6) {
      const bool is_text = rng.next() % 3 != 0;
      const std::size_t size = rng.next() % 8 == 0 ? rng.next() % (kLimit + 1) : rng.next() % 200;
      std::string body;
      if (is_text) {
        body = utf8_text(size, rng);
      } else {
        for (std::size_t i = 0; i < size; ++i) body.push_back(static_cast<char>(rng.next()));
      }
      std::vector<std::size_t> cuts = {0, size};
      for (std::uint64_t k = rng.next() % 3 == 0 ? rng.next() % 5 : 0; k > 0; --k) {
        cuts.push_back(rng.next() % (size + 1));
      }
      std::sort(cuts.begin(), cuts.end());
      for (std::size_t i = 0; i + 1 < cuts.size() && !stopped; ++i) {
        const unsigned op = i > 0 ? ws::kContinuation : is_text ? ws::kText : ws::kBinary;
        const bool fin = i + 2 == cuts.size();
        const std::string part = body.substr(cuts[i], cuts[i + 1] - cuts[i]);
        out.bytes += frame((fin ? kFin : 0) | op, part, rng, form(part.size()));
        if (!fin && rng.next() % 3 == 0) control();
      }
      if (!stopped) {
        out.expected.push_back(is_text ? text(body) : Event{'B', {}, size, {}});
      }
    } else if (what < 9) {
      control();
    } else {
      static const unsigned kCodes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                        1010, 1011, 1012, 1013, 1014, 3000, 4999};
      if (rng.next() % 4 == 0) {
        out.bytes += frame(kFin | ws::kClose, "", rng);
        out.expected.push_back({'C', {}, ws::kCloseNoStatus, {}});
      } else {
        const unsigned code = kCodes[rng.next() % (sizeof kCodes / sizeof *kCodes)];
        const std::string reason = utf8_text(rng.next() % 124, rng);
        out.bytes += frame(kFin | ws::kClose, close_body(code, reason), rng);
        out.expected.push_back({'C', reason, code, {}});
      }
      stopped = true;
    }
  }
  if (stopped && rng.next() % 2) out.bytes += random_frame(rng);  // read by no one
  return out;
}

std::string mutate(std::string s, Rng& rng, const std::vector<Seed>& seeds, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = rng.next() % (s.size() + 1);
    const std::vector<std::size_t> at = headers(s);
    const std::size_t h = at.empty() ? 0 : at[rng.next() % at.size()];
    switch (rng.next() % 12) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng.next() % s.size()] ^= static_cast<char>(1u << (rng.next() % 8));
        break;
      case 1:  // set a byte
        if (!s.empty()) s[rng.next() % s.size()] = static_cast<char>(rng.next());
        break;
      case 2:  // insert random bytes
        for (std::size_t n = 1 + rng.next() % 8; n > 0; --n) {
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<char>(rng.next()));
        }
        break;
      case 3:  // delete a span
        s.erase(pos, 1 + rng.next() % (rng.next() % 4 ? 8 : 512));
        break;
      case 4:  // duplicate a span
        if (!s.empty()) s.insert(pos, s.substr(rng.next() % s.size(), rng.next() % 300));
        break;
      case 5: {  // splice a seed in, at a frame boundary or anywhere
        const std::string& other = seeds[rng.next() % seeds.size()].bytes;
        s.insert(rng.next() % 2 ? h : pos,
                 other.substr(0, rng.next() % 4 ? other.size() : rng.next() % (other.size() + 1)));
        break;
      }
      case 6:  // insert a frame (any opcode, any announced length), often at a boundary
        s.insert(rng.next() % 2 ? h : pos, random_frame(rng));
        break;
      case 7:  // a frame's mask bit off (or on)
        if (!at.empty()) s[h + 1] ^= '\x80';
        break;
      case 8:  // a frame's FIN, RSV bits or opcode
        if (!at.empty()) {
          const std::uint64_t which = rng.next() % 3;
          const unsigned bits = which == 0   ? 0x80u
                                : which == 1 ? 0x10u << rng.next() % 3
                                             : static_cast<unsigned>(rng.next() % 16);
          s[h] = static_cast<char>(s[h] ^ bits);
        }
        break;
      case 9:  // a frame's length
        if (!at.empty()) {
          const char lens[] = {0, 1, 125, 126, 127, static_cast<char>(rng.next() % 128)};
          s[h + 1] = static_cast<char>((s[h + 1] & 0x80) | lens[rng.next() % 6]);
        }
        break;
      case 10:  // a ping flood, or pings between fragments
        for (std::size_t n = 1 + rng.next() % 12; n > 0; --n) {
          s.insert(rng.next() % 2 ? h : pos,
                   frame(kFin | ws::kPing, utf8_text(rng.next() % 8, rng), rng));
        }
        break;
      case 11:  // cut the end off
        s.resize(rng.next() % (s.size() + 1));
        break;
    }
  }
  if (s.size() > 4 * kLimit) s.resize(4 * kLimit);
  return s;
}

}  // namespace

void fuzz_bounded_run(long iterations, const std::vector<std::string>& /*replayed*/) {
  const std::vector<Seed> seeds = make_seeds();
  if (const char* dir = std::getenv("WEBSOCKET_FUZZ_WRITE_SEEDS")) {
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      const std::string path = std::string(dir) + "/seed-" + std::to_string(i);
      std::FILE* f = std::fopen(path.c_str(), "wb");
      if (!f || std::fwrite(seeds[i].bytes.data(), 1, seeds[i].bytes.size(), f) !=
                    seeds[i].bytes.size()) {
        std::perror(path.c_str());
        std::exit(1);
      }
      std::fclose(f);
    }
  }
  for (const Seed& seed : seeds) {
    const Outcome got = run_one(seed.bytes);
    if (!same_but_why(got.events, seed.expected)) {
      print("read    ", got.events);
      print("expected", seed.expected);
      fail("a seed did not read as built");
    }
  }
  Rng rng{20261124};
  std::vector<std::string> recent;  // mutants are mutated again now and then
  long generated = 0;
  for (long i = 0; i < iterations; ++i) {
    std::string input;
    const std::uint64_t how = rng.next() % 8;
    if (how < 3) {
      Seed s = stream(rng);
      if (how == 0) {  // as generated: it must read as built
        ++generated;
        const Outcome got = run_one(s.bytes);
        if (!same_but_why(got.events, s.expected)) {
          print("read    ", got.events);
          print("expected", s.expected);
          fail("a generated stream did not read as built");
        }
        continue;
      }
      input = mutate(std::move(s.bytes), rng, seeds, 1 + static_cast<int>(rng.next() % 2));
    } else {
      const std::string& base = !recent.empty() && rng.next() % 4 == 0
                                    ? recent[rng.next() % recent.size()]
                                    : seeds[rng.next() % seeds.size()].bytes;
      input = mutate(base, rng, seeds, 1 + static_cast<int>(rng.next() % 4));
    }
    run_one(input);
    if (recent.size() < 256) {
      recent.push_back(std::move(input));
    } else {
      recent[rng.next() % recent.size()] = std::move(input);
    }
  }
  std::printf(
      "%ld inputs (%ld generated streams checked against their events, the rest mutated from "
      "%zu seeds and generated streams): no crash, invariants held\n",
      iterations, generated, seeds.size());
}
#endif
