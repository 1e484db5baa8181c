// Test harness for the server tests: the real webrtc-call-server executable, spawned per
// test on 127.0.0.1 with port 0, driven over real sockets by a small blocking WebSocket
// client written for the tests (POSIX sockets + poll, no libsoup), so that the tests can
// send what no well-behaved library would: custom fragmentation, oversized frames, invalid
// UTF-8, binary frames, silence instead of pongs.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gref.h"
#include "websocket.h"

namespace wcc_test {

inline constexpr int kTimeoutMs = 5000;  // default wait for anything the server should send

// ---- JSON ----

// One received JSON message (a JSON object), with its text for diagnostics.
class Json {
 public:
  // nullopt unless `text` is a JSON object.
  static std::optional<Json> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  std::string type() const { return Str("type").value_or(""); }
  bool Has(const char* member) const;
  bool IsNull(const char* member) const;
  std::optional<std::string> Str(const char* member) const;
  std::optional<std::int64_t> Int(const char* member) const;
  // The `users` array of a `userlist` (string elements).
  std::vector<std::string> Users() const;
  bool HasUser(std::string_view name) const;
  JsonObject* object() const;

 private:
  std::string text_;
  gwc::GRef<JsonNode> root_;
};

// `s` as a JSON string literal, quotes included. Bytes >= 0x80 are copied as they are (so
// invalid UTF-8 can be sent on purpose).
std::string Quote(std::string_view s);

bool IsError(const Json& m, std::string_view code);
bool IsUserlistWith(const Json& m, const std::vector<std::string>& present,
                    const std::vector<std::string>& absent = {});

// ---- HTTP ----

struct HttpResponse {
  int status = 0;                              // 0: no response
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

// GET `raw_target` (sent as is on the request line) with Connection: close.
HttpResponse HttpGet(int port, const std::string& raw_target,
                     const std::vector<std::string>& extra_headers = {});

// Sends `request` exactly as given on a new connection and reads one response (its body by
// Content-Length, or until the server closes). status 0: no response within timeout_ms.
HttpResponse HttpExchange(int port, const std::string& request, int timeout_ms = kTimeoutMs);

// ---- Raw TCP, for hostile clients ----

// A connected non-blocking TCP socket to 127.0.0.1:port, bound first to `source` (another
// loopback address such as 127.0.0.2, to be another client address) when given. -1 on error.
int TcpConnect(int port, const char* source = nullptr);
// Writes everything within timeout_ms; false when the server refused it or closed.
bool SendAll(int fd, std::string_view bytes, int timeout_ms = kTimeoutMs);
// True once the server ended the connection (EOF or reset) within timeout_ms. What it sent
// before is discarded, or appended to `rx` when given.
bool WaitPeerClosed(int fd, int timeout_ms, std::string* rx = nullptr);
// True when the server has not closed the connection (no EOF or reset waiting to be read).
bool PeerOpen(int fd);

// ---- WebSocket client ----

// The opcodes of RFC 6455 (the client itself is the tests' own, not the server's code).
using signaling::ws::kBinary;
using signaling::ws::kClose;
using signaling::ws::kContinuation;
using signaling::ws::kPing;
using signaling::ws::kPong;
using signaling::ws::kText;

struct Frame {
  std::uint8_t opcode = 0;
  bool fin = true;
  std::string payload;
};

struct HandshakeOptions {
  std::string path = "/";
  std::vector<std::string> protocols = {"json"};  // Sec-WebSocket-Protocol; empty: none
  std::string origin;                             // Origin header when not empty
  // Text messages written in the same write() as the request, before the server answers
  // (a client in a hurry: RFC 6455 says to wait for the 101, but nothing may be lost).
  std::vector<std::string> early_texts;
};

class WsClient {
 public:
  // Connects to 127.0.0.1:port and performs the opening handshake. Returns nullptr only when
  // the TCP connection or the HTTP exchange failed; check status() for the server's answer.
  static std::unique_ptr<WsClient> Connect(int port, const HandshakeOptions& options = {});
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  const HttpResponse& handshake() const { return handshake_; }
  int status() const { return handshake_.status; }
  std::string protocol() const { return handshake_.Header("sec-websocket-protocol"); }

  // Answer pings with pongs (default on). Off: pings are counted and ignored.
  void set_auto_pong(bool on) { auto_pong_ = on; }
  // Answer the server's close frame with a close frame (default on).
  void set_echo_close(bool on) { echo_close_ = on; }

  // -- Sending (masked, as a client must). False when the socket refused the bytes (the
  // server closed it) or they could not be written within timeout_ms.
  bool SendFrame(std::uint8_t opcode, std::string_view payload, bool fin = true,
                 int timeout_ms = kTimeoutMs);
  bool SendText(std::string_view text) { return SendFrame(kText, text); }
  bool SendBinary(std::string_view data) { return SendFrame(kBinary, data); }
  // One text message split into frames of `fragment_bytes` (text + continuations).
  bool SendFragmented(std::string_view text, std::size_t fragment_bytes,
                      int timeout_ms = kTimeoutMs);
  bool SendClose(std::uint16_t code);
  // Drops the TCP connection without a close frame (a crashed or vanished client).
  void Abort();

  // -- Receiving.
  // The next frame other than pong; pings are answered when auto_pong is on (and still
  // returned). nullopt on timeout or end of stream (see eof()).
  std::optional<Frame> ReadFrame(int timeout_ms);
  // The next text message parsed as JSON. nullopt on timeout, close (see closed()) or EOF.
  // Text that is not a JSON object is a test failure.
  std::optional<Json> Read(int timeout_ms = kTimeoutMs);
  // Reads messages until one matches `pred`; every message read (the match too) is appended
  // to `seen` when given. nullopt when none matched in time.
  std::optional<Json> ReadUntil(const std::function<bool(const Json&)>& pred,
                                int timeout_ms = kTimeoutMs, std::vector<Json>* seen = nullptr);
  // Messages already received or arriving within timeout_ms, until a quiet period.
  std::vector<Json> Drain(int timeout_ms);
  // Waits until the server closes the WebSocket (close frame) or the TCP connection.
  bool WaitClosed(int timeout_ms = kTimeoutMs);
  // Waits for the end of the TCP stream (after a close frame, if any).
  bool WaitEof(int timeout_ms = kTimeoutMs);

  bool closed() const { return close_code_ >= 0 || eof_; }
  // The server's close code; -1 before any close frame, 1005 for a close frame without code.
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  bool eof() const { return eof_; }
  int pings_received() const { return pings_; }

  // Registration state filled in by Join().
  std::string name;
  std::int64_t id = -1;

 private:
  WsClient() = default;
  bool WriteAll(std::string_view bytes, int timeout_ms);
  // Reads what the socket has, waiting at most timeout_ms. False on EOF, error or timeout.
  bool Fill(int timeout_ms);
  std::optional<Frame> ParseFrame();

  int fd_ = -1;
  HttpResponse handshake_;
  std::string rx_;
  bool auto_pong_ = true;
  bool echo_close_ = true;
  bool sent_close_ = false;
  bool eof_ = false;
  int close_code_ = -1;
  std::string close_reason_;
  int pings_ = 0;
  std::string partial_;  // text message being reassembled from fragments
  bool in_message_ = false;
};

// Connects, reads `id`, sends `username` and waits for a user list that has the registered
// name (the requested one, or the one given by a `rejectusername`). Any failure is a test
// failure and returns nullptr.
std::unique_ptr<WsClient> Join(int port, const std::string& name, const HandshakeOptions& = {});

// A targeted application message `{"type":"app","target":...,"seq":...}`: relayed as is.
std::string AppMsg(std::string_view target, std::string_view seq);
// A `video-offer` to `target` (target omitted when empty) with a small SDP.
std::string OfferMsg(std::string_view target);

// ---- The server process ----

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Spawns $WEBRTC_CALL_SERVER --address 127.0.0.1 --port 0 $WEBRTC_CALL_SERVER_FLAGS `flags`,
  // its stderr into a temporary file, and waits (5 s at most) for
  // `Listening on http://127.0.0.1:PORT/`.
  bool Start(const std::vector<std::string>& flags, std::string* error);
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM (unless already sent) and waits for the exit. True when it exited within
  // timeout_ms; `wait_status` is the waitpid() status.
  bool Terminate(int timeout_ms, int* wait_status);
  // Waits for an exit after a signal sent by the caller.
  bool WaitExit(int timeout_ms, int* wait_status);
  void Kill();
  bool reaped() const { return pid_ <= 0; }
  // The server's stderr so far (its logfmt log).
  std::string Log() const;
  // VmRSS from /proc/PID/status, in KiB; -1 when unavailable.
  long RssKiB() const;
  // Peak resident memory (VmHWM), in KiB; -1 when unavailable. ResetPeakRss() sets the peak
  // to the current RSS (writes "5" to /proc/PID/clear_refs), so that a later PeakRssKiB()
  // shows what a transfer needed at its worst, even if it was freed by then.
  long PeakRssKiB() const;
  bool ResetPeakRss() const;
  // Open file descriptors (/proc/PID/fd) and threads (/proc/PID/status); -1 when unavailable.
  int FdCount() const;
  int ThreadCount() const;
  // The value of a Prometheus sample line `name` (with labels, e.g.
  // `webrtc_call_messages_refused_total{reason="malformed"}`) from GET /metrics; -1 if absent.
  double Metric(const std::string& sample);

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int stdout_fd_ = -1;
  std::string log_path_;
};

// Fixture: one server per test, started by the test with its flags. TearDown stops it with
// SIGTERM and requires exit status 0 within 2 s; the server's log is printed when the test
// failed.
class ServerTest : public ::testing::Test {
 protected:
  // Use as ASSERT_NO_FATAL_FAILURE(StartServer({...})).
  void StartServer(const std::vector<std::string>& flags = {});
  void TearDown() override;
  int port() const { return server_.port(); }
  // The process runs and answers GET /healthz.
  bool ServerAlive();
  // Stops the server and checks it exits 0 within 2 s (what TearDown does).
  void ExpectCleanExit();

  ServerProcess server_;
};

// A temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& rel, const std::string& contents) const;

 private:
  std::string path_;
};

}  // namespace wcc_test
