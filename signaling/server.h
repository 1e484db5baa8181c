// The transport of the signaling server.
//
// It carries bytes between sockets and the Router and nothing else. libsoup-3 serves HTTP
// (/healthz, /metrics, the web client's files) and answers the WebSocket handshake (Origin,
// subprotocol `json`, connection limits); then the WsHub takes the connection over (own
// framing, one epoll set for all connections, see ws-hub.h). Around them: keepalive pings and
// dead-peer detection, the slow-peer limit on unsent data, the coalesced user list. It runs
// on the thread-default GMainContext of the thread that starts it and must only be used from
// that thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gref.h"
#include "router.h"

namespace signaling {

struct ServerConfig {
  std::string address;        // empty: every interface (IPv6 and IPv4)
  unsigned port = 8443;       // 0: any free port
  std::string tls_cert_file;  // PEM; with tls_key_file: https and wss
  std::string tls_key_file;
  std::string web_root;                      // folder served on GET /, empty: none
  std::vector<std::string> allowed_origins;  // empty: any Origin (and none) is accepted
  RouterConfig router;
  unsigned max_connections = 10000;
  unsigned max_connections_per_address = 100;  // WebSockets; and, apart, connections before it
  unsigned keepalive_interval_s = 15;          // ping period
  unsigned keepalive_timeout_s = 40;           // silence after which a peer is dropped
  unsigned userlist_delay_ms = 20;             // coalescing window of user list broadcasts
  std::size_t max_send_backlog_bytes =
      32 * 1024 * 1024;  // unsent bytes before a slow peer is dropped
  // Bounds on connections that are not WebSockets (yet), in seconds.
  unsigned tls_handshake_timeout_s = 10;  // accept to the end of the TLS handshake
  unsigned header_timeout_s = 10;         // accept (or TLS handshake) to a complete request head
  unsigned http_idle_timeout_s = 30;      // request head to the end of its response
  unsigned registration_timeout_s = 30;   // WebSocket open without a registered name
  unsigned max_tls_handshakes_per_address = 4;  // at once in glib-networking's threads
  bool io_uring = true;        // batch each turn's system calls through io_uring when allowed
  unsigned busy_poll_us = 50;  // under load, poll this long for input before sleeping
};

class Server {
 public:
  // Starts listening. Returns nullptr and sets `error` when the address cannot be bound
  // or the certificate cannot be read.
  static std::unique_ptr<Server> start(ServerConfig config, gwc::GErrorPtr& error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The URIs the server listens on (http:// or https://, with the real port).
  std::vector<std::string> listening_uris() const;
  bool tls() const;

  // Closes every WebSocket with a close frame (1001) and calls `done` once all are closed,
  // or after `timeout_ms` at the latest.
  void shutdown(unsigned timeout_ms, std::function<void()> done);

  std::string metrics_text() const;
  // How WebSocket connections are read and written: "io_uring" or "system calls (why)".
  std::string io_note() const;

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace signaling
