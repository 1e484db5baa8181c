#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace wcc_test {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point DeadlineIn(int timeout_ms) {
  return Clock::now() + std::chrono::milliseconds(timeout_ms);
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Writes everything to a non-blocking socket. False on error or timeout.
bool WriteFd(int fd, std::string_view bytes, int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      int left = RemainingMs(deadline);
      if (left == 0) return false;
      int r = poll(&p, 1, left);
      if (r < 0 && errno != EINTR) return false;
      if (r == 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

// Reads what is available within timeout_ms into `rx`. False on timeout, EOF or error
// (`eof` is set for the last two).
bool FillFd(int fd, std::string& rx, bool& eof, int timeout_ms) {
  if (eof) return false;
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  char buf[65536];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      rx.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    eof = true;  // 0: orderly end; <0: reset
    return false;
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(g_ascii_tolower(c));
  return s;
}

std::string Trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  std::size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Reads an HTTP response head (and its body when `with_body`) from `fd`, leaving any bytes
// after it in `rx`. False when no complete head arrived in time.
bool ReadHttpResponse(int fd, std::string& rx, bool& eof, bool with_body, int timeout_ms,
                      HttpResponse* out) {
  auto deadline = DeadlineIn(timeout_ms);
  std::size_t head_end;
  while ((head_end = rx.find("\r\n\r\n")) == std::string::npos) {
    if (!FillFd(fd, rx, eof, RemainingMs(deadline)) && (eof || RemainingMs(deadline) == 0)) {
      return false;
    }
  }
  std::istringstream head(rx.substr(0, head_end));
  rx.erase(0, head_end + 4);
  std::string line;
  std::getline(head, line);
  // "HTTP/1.1 101 Switching Protocols"
  std::size_t sp = line.find(' ');
  if (sp == std::string::npos) return false;
  out->status = std::atoi(line.c_str() + sp + 1);
  while (std::getline(head, line)) {
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string value = Trim(line.substr(colon + 1));
    auto [it, inserted] = out->headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  if (!with_body) return true;

  std::string length = out->Header("content-length");
  bool chunked = Lower(out->Header("transfer-encoding")).find("chunked") != std::string::npos;
  if (!length.empty()) {
    std::size_t want = std::strtoull(length.c_str(), nullptr, 10);
    while (rx.size() < want &&
           (FillFd(fd, rx, eof, RemainingMs(deadline)) || (!eof && RemainingMs(deadline) > 0))) {
    }
    out->body = rx.substr(0, std::min(want, rx.size()));
    rx.erase(0, out->body.size());
    return true;
  }
  // Until the end of the stream (Connection: close).
  while (!eof && RemainingMs(deadline) > 0) FillFd(fd, rx, eof, RemainingMs(deadline));
  if (!chunked) {
    out->body = std::move(rx);
    rx.clear();
    return true;
  }
  std::size_t pos = 0;
  while (true) {
    std::size_t eol = rx.find("\r\n", pos);
    if (eol == std::string::npos) break;
    std::size_t size = std::strtoull(rx.c_str() + pos, nullptr, 16);
    if (size == 0) break;
    out->body += rx.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  rx.clear();
  return true;
}

std::string AcceptFor(const std::string& key) {
  std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  guint8 digest[20];
  gsize len = sizeof digest;
  GChecksum* sum = g_checksum_new(G_CHECKSUM_SHA1);
  g_checksum_update(sum, reinterpret_cast<const guchar*>(in.data()),
                    static_cast<gssize>(in.size()));
  g_checksum_get_digest(sum, digest, &len);
  g_checksum_free(sum);
  gwc::GCharPtr b64(g_base64_encode(digest, len));
  return b64.get();
}

}  // namespace

// ---- JSON ----

std::optional<Json> Json::Parse(std::string_view text) {
  gwc::GRef<JsonParser> parser = gwc::GRef<JsonParser>::adopt(json_parser_new());
  if (!json_parser_load_from_data(parser.get(), text.data(), static_cast<gssize>(text.size()),
                                  nullptr)) {
    return std::nullopt;
  }
  JsonNode* root = json_parser_get_root(parser.get());
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT(root)) return std::nullopt;
  Json j;
  j.text_ = std::string(text);
  j.root_ = gwc::GRef<JsonNode>::ref(root);
  return j;
}

JsonObject* Json::object() const {
  return json_node_get_object(root_.get());
}

bool Json::Has(const char* member) const {
  return json_object_has_member(object(), member);
}

bool Json::IsNull(const char* member) const {
  JsonNode* n = json_object_get_member(object(), member);
  return n != nullptr && JSON_NODE_HOLDS_NULL(n);
}

std::optional<std::string> Json::Str(const char* member) const {
  JsonNode* n = json_object_get_member(object(), member);
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    return std::nullopt;
  }
  return std::string(json_node_get_string(n));
}

std::optional<std::int64_t> Json::Int(const char* member) const {
  JsonNode* n = json_object_get_member(object(), member);
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE(n)) return std::nullopt;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64) return json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) return static_cast<std::int64_t>(json_node_get_double(n));
  return std::nullopt;
}

std::vector<std::string> Json::Users() const {
  std::vector<std::string> users;
  JsonNode* n = json_object_get_member(object(), "users");
  if (n == nullptr || !JSON_NODE_HOLDS_ARRAY(n)) return users;
  JsonArray* a = json_node_get_array(n);
  for (guint i = 0; i < json_array_get_length(a); ++i) {
    JsonNode* e = json_array_get_element(a, i);
    if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING) {
      users.emplace_back(json_node_get_string(e));
    }
  }
  return users;
}

bool Json::HasUser(std::string_view name) const {
  for (const std::string& u : Users()) {
    if (u == name) return true;
  }
  return false;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

bool IsError(const Json& m, std::string_view code) {
  return m.type() == "error" && m.Str("code") == std::string(code);
}

bool IsUserlistWith(const Json& m, const std::vector<std::string>& present,
                    const std::vector<std::string>& absent) {
  if (m.type() != "userlist") return false;
  for (const std::string& p : present) {
    if (!m.HasUser(p)) return false;
  }
  for (const std::string& a : absent) {
    if (m.HasUser(a)) return false;
  }
  return true;
}

// ---- HTTP ----

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpResponse HttpGet(int port, const std::string& raw_target,
                     const std::vector<std::string>& extra_headers) {
  HttpResponse r;
  int fd = ConnectTcp(port);
  if (fd < 0) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
    return r;
  }
  std::string req = "GET " + raw_target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  for (const std::string& h : extra_headers) req += h + "\r\n";
  req += "\r\n";
  std::string rx;
  bool eof = false;
  if (!WriteFd(fd, req, kTimeoutMs) || !ReadHttpResponse(fd, rx, eof, true, kTimeoutMs, &r)) {
    r.status = 0;
  }
  close(fd);
  return r;
}

HttpResponse HttpExchange(int port, const std::string& request, int timeout_ms) {
  HttpResponse r;
  int fd = ConnectTcp(port);
  if (fd < 0) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
    return r;
  }
  std::string rx;
  bool eof = false;
  // The request may be refused before it is all written: read the answer anyway.
  WriteFd(fd, request, timeout_ms);
  if (!ReadHttpResponse(fd, rx, eof, true, timeout_ms, &r)) r.status = 0;
  close(fd);
  return r;
}

int TcpConnect(int port, const char* source) {
  if (!source) return ConnectTcp(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool SendAll(int fd, std::string_view bytes, int timeout_ms) {
  return WriteFd(fd, bytes, timeout_ms);
}

bool WaitPeerClosed(int fd, int timeout_ms, std::string* rx) {
  auto deadline = DeadlineIn(timeout_ms);
  std::string sink;
  bool eof = false;
  while (!eof) {
    int left = RemainingMs(deadline);
    if (left == 0) return false;
    FillFd(fd, rx ? *rx : sink, eof, left);
    sink.clear();
  }
  return true;
}

bool PeerOpen(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// ---- WebSocket client ----

namespace {
std::string EncodeClientFrame(std::uint8_t opcode, std::string_view payload, bool fin);
}  // namespace

std::unique_ptr<WsClient> WsClient::Connect(int port, const HandshakeOptions& options) {
  std::unique_ptr<WsClient> c(new WsClient());
  c->fd_ = ConnectTcp(port);
  if (c->fd_ < 0) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
    return nullptr;
  }
  guint8 raw_key[16];
  for (guint8& b : raw_key) b = static_cast<guint8>(g_random_int_range(0, 256));
  gwc::GCharPtr key(g_base64_encode(raw_key, sizeof raw_key));
  std::string req =
      "GET " + options.path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key.get() +
      "\r\nSec-WebSocket-Version: 13\r\n";
  if (!options.protocols.empty()) {
    req += "Sec-WebSocket-Protocol: ";
    for (std::size_t i = 0; i < options.protocols.size(); ++i) {
      if (i) req += ", ";
      req += options.protocols[i];
    }
    req += "\r\n";
  }
  if (!options.origin.empty()) req += "Origin: " + options.origin + "\r\n";
  req += "\r\n";
  for (const std::string& text : options.early_texts) req += EncodeClientFrame(kText, text, true);
  if (!c->WriteAll(req, kTimeoutMs)) {
    ADD_FAILURE() << "cannot send the handshake: " << std::strerror(errno);
    return nullptr;
  }
  bool ok =
      ReadHttpResponse(c->fd_, c->rx_, c->eof_, /*with_body=*/false, kTimeoutMs, &c->handshake_);
  if (!ok) {
    ADD_FAILURE() << "no HTTP answer to the WebSocket handshake";
    return nullptr;
  }
  if (c->handshake_.status == 101) {
    EXPECT_EQ(c->handshake_.Header("sec-websocket-accept"), AcceptFor(key.get()))
        << "wrong Sec-WebSocket-Accept";
  } else {
    // The refusal's body (a short reason), read up to Content-Length.
    std::string length = c->handshake_.Header("content-length");
    std::size_t want = length.empty() ? 0 : std::strtoull(length.c_str(), nullptr, 10);
    auto deadline = DeadlineIn(kTimeoutMs);
    while (c->rx_.size() < want && !c->eof_ && RemainingMs(deadline) > 0) {
      FillFd(c->fd_, c->rx_, c->eof_, RemainingMs(deadline));
    }
    c->handshake_.body = c->rx_.substr(0, std::min(want, c->rx_.size()));
    c->rx_.clear();
  }
  return c;
}

WsClient::~WsClient() {
  if (fd_ < 0) return;
  if (handshake_.status == 101 && !sent_close_ && !eof_) {
    SendFrame(kClose, std::string("\x03\xe8", 2), true, 100);  // 1000, best effort
  }
  close(fd_);
}

void WsClient::Abort() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  eof_ = true;
}

bool WsClient::WriteAll(std::string_view bytes, int timeout_ms) {
  return WriteFd(fd_, bytes, timeout_ms);
}

bool WsClient::Fill(int timeout_ms) {
  return FillFd(fd_, rx_, eof_, timeout_ms);
}

namespace {

// One masked client frame.
std::string EncodeClientFrame(std::uint8_t opcode, std::string_view payload, bool fin) {
  std::string frame;
  frame.reserve(payload.size() + 14);
  frame += static_cast<char>((fin ? 0x80 : 0x00) | (opcode & 0x0f));
  std::uint64_t len = payload.size();
  if (len < 126) {
    frame += static_cast<char>(0x80 | len);
  } else if (len <= 0xffff) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>((len >> 8) & 0xff);
    frame += static_cast<char>(len & 0xff);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((len >> shift) & 0xff);
  }
  char mask[4];
  guint32 m = g_random_int();
  std::memcpy(mask, &m, 4);
  frame.append(mask, 4);
  std::size_t start = frame.size();
  frame.append(payload);
  for (std::size_t i = 0; i < payload.size(); ++i) frame[start + i] ^= mask[i % 4];
  return frame;
}

}  // namespace

bool WsClient::SendFrame(std::uint8_t opcode, std::string_view payload, bool fin, int timeout_ms) {
  if (opcode == kClose) sent_close_ = true;
  return WriteAll(EncodeClientFrame(opcode, payload, fin), timeout_ms);
}

bool WsClient::SendFragmented(std::string_view text, std::size_t fragment_bytes, int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  std::size_t off = 0;
  bool first = true;
  do {
    std::size_t n = std::min(fragment_bytes, text.size() - off);
    bool fin = off + n >= text.size();
    if (!SendFrame(first ? kText : kContinuation, text.substr(off, n), fin,
                   std::max(RemainingMs(deadline), 1))) {
      return false;
    }
    first = false;
    off += n;
  } while (off < text.size());
  return true;
}

bool WsClient::SendClose(std::uint16_t code) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xff);
  return SendFrame(kClose, payload, true, 1000);
}

std::optional<Frame> WsClient::ParseFrame() {
  if (rx_.size() < 2) return std::nullopt;
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(rx_[i]); };
  bool masked = (b(1) & 0x80) != 0;
  std::uint64_t len = b(1) & 0x7f;
  std::size_t header = 2;
  if (len == 126) {
    if (rx_.size() < 4) return std::nullopt;
    len = (std::uint64_t{b(2)} << 8) | b(3);
    header = 4;
  } else if (len == 127) {
    if (rx_.size() < 10) return std::nullopt;
    len = 0;
    for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | b(i);
    header = 10;
  }
  std::size_t mask_at = header;
  if (masked) header += 4;
  if (rx_.size() < header + len) return std::nullopt;
  Frame f;
  f.fin = (b(0) & 0x80) != 0;
  f.opcode = b(0) & 0x0f;
  f.payload = rx_.substr(header, static_cast<std::size_t>(len));
  if (masked) {
    ADD_FAILURE() << "the server sent a masked frame (servers must not mask)";
    for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= rx_[mask_at + i % 4];
  }
  rx_.erase(0, header + static_cast<std::size_t>(len));
  return f;
}

std::optional<Frame> WsClient::ReadFrame(int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  while (true) {
    if (std::optional<Frame> f = ParseFrame()) {
      if (f->opcode == kPong) continue;
      if (f->opcode == kPing) {
        pings_++;
        if (auto_pong_ && !sent_close_) SendFrame(kPong, f->payload, true, 1000);
      } else if (f->opcode == kClose) {
        if (f->payload.size() >= 2) {
          close_code_ = (static_cast<unsigned char>(f->payload[0]) << 8) |
                        static_cast<unsigned char>(f->payload[1]);
          close_reason_ = f->payload.substr(2);
        } else {
          close_code_ = 1005;
        }
        if (echo_close_ && !sent_close_) {
          SendFrame(kClose, f->payload.substr(0, std::min<std::size_t>(2, f->payload.size())), true,
                    1000);
        }
      }
      return f;
    }
    if (eof_) return std::nullopt;
    if (!Fill(RemainingMs(deadline)) && !eof_ && RemainingMs(deadline) == 0) {
      return std::nullopt;  // timeout
    }
  }
}

std::optional<Json> WsClient::Read(int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  while (true) {
    std::optional<Frame> f = ReadFrame(RemainingMs(deadline));
    if (!f) return std::nullopt;
    switch (f->opcode) {
      case kText:
        if (in_message_) ADD_FAILURE() << "text frame inside a fragmented message";
        partial_ = std::move(f->payload);
        in_message_ = !f->fin;
        break;
      case kContinuation:
        if (!in_message_) ADD_FAILURE() << "continuation frame outside a message";
        partial_ += f->payload;
        in_message_ = !f->fin;
        break;
      case kBinary:
        ADD_FAILURE() << "the server sent a binary frame";
        continue;
      case kClose:
        return std::nullopt;
      default:
        continue;  // ping
    }
    if (in_message_) continue;
    std::optional<Json> j = Json::Parse(partial_);
    if (!j) {
      ADD_FAILURE() << "the server sent text that is not a JSON object: " << partial_;
      continue;
    }
    return j;
  }
}

std::optional<Json> WsClient::ReadUntil(const std::function<bool(const Json&)>& pred,
                                        int timeout_ms, std::vector<Json>* seen) {
  auto deadline = DeadlineIn(timeout_ms);
  while (true) {
    std::optional<Json> m = Read(RemainingMs(deadline));
    if (!m) return std::nullopt;
    if (seen) seen->push_back(*m);
    if (pred(*m)) return m;
  }
}

std::vector<Json> WsClient::Drain(int timeout_ms) {
  std::vector<Json> out;
  while (std::optional<Json> m = Read(timeout_ms)) out.push_back(std::move(*m));
  return out;
}

bool WsClient::WaitClosed(int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  while (!closed()) {
    std::optional<Frame> f = ReadFrame(RemainingMs(deadline));
    if (!f && !eof_) return false;  // timeout
  }
  return true;
}

bool WsClient::WaitEof(int timeout_ms) {
  auto deadline = DeadlineIn(timeout_ms);
  while (!eof_) {
    std::optional<Frame> f = ReadFrame(RemainingMs(deadline));
    if (!f && !eof_) return false;
  }
  return true;
}

std::unique_ptr<WsClient> Join(int port, const std::string& name, const HandshakeOptions& options) {
  std::unique_ptr<WsClient> c = WsClient::Connect(port, options);
  if (!c) return nullptr;
  if (c->status() != 101) {
    ADD_FAILURE() << "handshake for " << name << " answered " << c->status();
    return nullptr;
  }
  std::optional<Json> id = c->Read();
  if (!id || id->type() != "id" || !id->Int("id")) {
    ADD_FAILURE() << "first message to " << name
                  << " is not an `id`: " << (id ? id->text() : "(nothing)");
    return nullptr;
  }
  c->id = *id->Int("id");
  c->SendText(R"({"type":"username","name":)" + Quote(name) + R"(,"id":)" + std::to_string(c->id) +
              R"(,"date":1700000000000})");
  std::string given = name;
  std::optional<Json> m = c->ReadUntil([&](const Json& j) {
    if (j.type() == "rejectusername") given = j.Str("name").value_or(given);
    return j.type() == "error" || (j.type() == "userlist" && j.HasUser(given));
  });
  if (!m || m->type() != "userlist") {
    ADD_FAILURE() << name << " did not register: " << (m ? m->text() : "(no user list)");
    return nullptr;
  }
  c->name = given;
  return c;
}

std::string AppMsg(std::string_view target, std::string_view seq) {
  return R"({"type":"app","target":)" + Quote(target) + R"(,"seq":)" + Quote(seq) + "}";
}

std::string OfferMsg(std::string_view target) {
  std::string m = R"({"type":"video-offer","name":"whoever",)";
  if (!target.empty()) m += R"("target":)" + Quote(target) + ",";
  m += R"("sdp":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}})";
  return m;
}

// ---- The server process ----

ServerProcess::~ServerProcess() {
  Kill();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

bool ServerProcess::Start(const std::vector<std::string>& flags, std::string* error) {
  const char* exe = g_getenv("WEBRTC_CALL_SERVER");
  if (exe == nullptr) {
    *error = "WEBRTC_CALL_SERVER is not set (run through meson test)";
    return false;
  }
  std::string log_template = std::string(g_get_tmp_dir()) + "/wcc-server-XXXXXX.log";
  int log_fd = mkostemps(log_template.data(), 4, O_CLOEXEC);
  if (log_fd < 0) {
    *error = std::string("mkostemps: ") + std::strerror(errno);
    return false;
  }
  log_path_ = log_template;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(log_fd);
    *error = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  std::vector<std::string> args = {exe, "--address", "127.0.0.1", "--port", "0"};
  // Flags for every server of a test run (e.g. --no-io-uring, to test the other I/O path).
  if (const char* more = g_getenv("WEBRTC_CALL_SERVER_FLAGS")) {
    gwc::GStrvPtr words(g_strsplit(more, " ", -1));
    for (char** w = words.get(); *w; ++w) {
      if (**w) args.emplace_back(*w);
    }
  }
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(log_fd);
    close(out[0]);
    close(out[1]);
    return false;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    dup2(out[1], STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  close(out[1]);
  close(log_fd);
  stdout_fd_ = out[0];

  // The first line: "Listening on http://127.0.0.1:PORT/".
  std::string line;
  auto deadline = DeadlineIn(5000);
  while (line.find('\n') == std::string::npos) {
    pollfd p{stdout_fd_, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      *error = "the server printed no `Listening on` line within 5 s";
      return false;
    }
    char buf[256];
    ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) {
      *error = "the server exited before listening";
      return false;
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  line.resize(line.find('\n'));
  const std::string prefix = "Listening on http://127.0.0.1:";
  if (!line.starts_with(prefix)) {
    *error = "unexpected first line: " + line;
    return false;
  }
  port_ = std::atoi(line.c_str() + prefix.size());
  if (port_ <= 0 || !line.ends_with("/")) {
    *error = "no port in: " + line;
    return false;
  }
  return true;
}

bool ServerProcess::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    ADD_FAILURE() << "the server exited unexpectedly, wait status " << st
                  << (WIFSIGNALED(st) ? std::string(" signal ") + strsignal(WTERMSIG(st)) : "");
    pid_ = -1;
    return false;
  }
  return true;
}

bool ServerProcess::WaitExit(int timeout_ms, int* wait_status) {
  if (pid_ <= 0) return true;
  auto deadline = DeadlineIn(timeout_ms);
  while (true) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      *wait_status = st;
      pid_ = -1;
      return true;
    }
    if (RemainingMs(deadline) == 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool ServerProcess::Terminate(int timeout_ms, int* wait_status) {
  if (pid_ <= 0) return true;
  kill(pid_, SIGTERM);
  return WaitExit(timeout_ms, wait_status);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

std::string ServerProcess::Log() const {
  if (log_path_.empty()) return {};
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long ServerProcess::RssKiB() const {
  if (pid_ <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

long ServerProcess::PeakRssKiB() const {
  if (pid_ <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

int ServerProcess::FdCount() const {
  if (pid_ <= 0) return -1;
  GDir* dir = g_dir_open(("/proc/" + std::to_string(pid_) + "/fd").c_str(), 0, nullptr);
  if (!dir) return -1;
  int n = 0;
  while (g_dir_read_name(dir)) n++;
  g_dir_close(dir);
  return n;
}

int ServerProcess::ThreadCount() const {
  if (pid_ <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Threads:")) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

bool ServerProcess::ResetPeakRss() const {
  if (pid_ <= 0) return false;
  std::ofstream out("/proc/" + std::to_string(pid_) + "/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

double ServerProcess::Metric(const std::string& sample) {
  HttpResponse r = HttpGet(port_, "/metrics");
  if (r.status != 200) return -1;
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(sample + " "))
      return std::strtod(line.c_str() + sample.size() + 1, nullptr);
  }
  return -1;
}

// ---- Fixture ----

void ServerTest::StartServer(const std::vector<std::string>& flags) {
  std::string error;
  ASSERT_TRUE(server_.Start(flags, &error)) << error << "\n--- server log ---\n" << server_.Log();
}

bool ServerTest::ServerAlive() {
  return server_.running() && HttpGet(port(), "/healthz").status == 200;
}

void ServerTest::ExpectCleanExit() {
  if (server_.reaped()) return;
  int st = 0;
  auto start = Clock::now();
  bool exited = server_.Terminate(2000, &st);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  if (!exited) {
    server_.Kill();
    ADD_FAILURE() << "the server did not exit within 2 s of SIGTERM";
    return;
  }
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
      << "the server did not exit cleanly: wait status " << st
      << (WIFSIGNALED(st) ? std::string(" signal ") + strsignal(WTERMSIG(st)) : "")
      << (WIFEXITED(st) ? " exit code " + std::to_string(WEXITSTATUS(st)) : "");
  RecordProperty("shutdown_ms", static_cast<int>(ms));
}

void ServerTest::TearDown() {
  bool started = server_.port() > 0;
  if (started) ExpectCleanExit();
  std::string log = server_.Log();
  EXPECT_EQ(log.find("level=critical"), std::string::npos) << "GLib criticals in the server log";
  if (HasFailure() && !log.empty()) {
    std::printf("--- server log (stderr) ---\n%s--- end of server log ---\n", log.c_str());
  }
}

// ---- TempDir ----

TempDir::TempDir() {
  gwc::GCharPtr dir(g_dir_make_tmp("wcc-server-test-XXXXXX", nullptr));
  if (dir) path_ = dir.get();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  nftw(
      path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return remove(p); },
      16, FTW_DEPTH | FTW_PHYS);
}

std::string TempDir::Write(const std::string& rel, const std::string& contents) const {
  std::string p = path_ + "/" + rel;
  g_file_set_contents(p.c_str(), contents.data(), static_cast<gssize>(contents.size()), nullptr);
  return p;
}

}  // namespace wcc_test
