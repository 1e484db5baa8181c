// Counters the server exposes on /metrics in Prometheus text format.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "protocol.h"

namespace signaling {

// Why an HTTP connection was closed by the server before it became a WebSocket.
enum class HttpClosed {
  kTlsHandshakeTimeout,
  kTlsHandshakeFailed,
  kHeaderTimeout,
  kIdleTimeout,
  kPerAddressLimit,
  kLimit,
};
inline constexpr const char* kHttpClosedReasons[] = {
    "tls-handshake-timeout", "tls-handshake-failed", "header-timeout",
    "idle-timeout",          "per-address-limit",    "limit",
};

struct Metrics {
  std::uint64_t connections_total = 0;    // WebSocket connections accepted since start
  std::uint64_t messages_received = 0;    // text messages received from clients
  std::uint64_t messages_relayed = 0;     // messages delivered from one client to another
  std::uint64_t userlist_broadcasts = 0;  // coalesced user list flushes
  std::array<std::uint64_t, protocol::kErrorCodeCount> refused{};  // by reason
  // Handshakes refused before a WebSocket existed.
  std::uint64_t handshakes_refused_origin = 0;
  std::uint64_t handshakes_refused_limit = 0;
  std::uint64_t handshakes_refused_bad = 0;
  std::uint64_t dead_peers_dropped = 0;  // keepalive timeouts
  std::uint64_t slow_peers_dropped = 0;  // send buffer over the limit
  // Connections closed for breaking RFC 6455 (1002) or sending text that is not UTF-8 (1007).
  std::uint64_t websocket_errors = 0;

  // HTTP connections (before any upgrade) closed by a bound, by reason (see kHttpClosedReasons).
  std::array<std::uint64_t, 6> http_closed{};
  // Requests refused from their head: a declared body (413), an Expect (417).
  std::uint64_t http_refused_body = 0;
  std::uint64_t http_refused_expect = 0;
  std::uint64_t http_ranges_ignored = 0;  // Range headers not served (more than one range)
  std::uint64_t unregistered_closed = 0;  // WebSockets closed for not registering in time
  std::uint64_t accept_pauses = 0;        // accept() failed (no descriptor left): paused
  // The untargeted mode (--relay-untargeted), see Effects.
  std::uint64_t untargeted_offers = 0;
  std::uint64_t late_answers = 0;
  std::uint64_t held_dropped_limit = 0;
  std::uint64_t held_dropped_ended = 0;

  // Renders all counters plus the gauges.
  std::string render(std::size_t connections, std::size_t registered_users,
                     std::size_t http_connections) const;
};

}  // namespace signaling
