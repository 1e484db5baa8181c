#include "metrics.h"

namespace signaling {

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help,
            std::uint64_t value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string Metrics::render(std::size_t connections, std::size_t registered_users,
                            std::size_t http_connections) const {
  std::string out;
  metric(out, "webrtc_call_connections", "gauge", "Open WebSocket connections.", connections);
  metric(out, "webrtc_call_http_connections", "gauge",
         "Connections not upgraded (yet): TLS handshakes, HTTP requests and their answers.",
         http_connections);
  metric(out, "webrtc_call_registered_users", "gauge", "Registered users (the user list).",
         registered_users);
  metric(out, "webrtc_call_connections_total", "counter", "WebSocket connections accepted.",
         connections_total);
  metric(out, "webrtc_call_messages_received_total", "counter",
         "Text messages received from clients.", messages_received);
  metric(out, "webrtc_call_messages_relayed_total", "counter",
         "Messages delivered from one client to another.", messages_relayed);
  metric(out, "webrtc_call_userlist_broadcasts_total", "counter", "Coalesced user list broadcasts.",
         userlist_broadcasts);
  metric(out, "webrtc_call_dead_peers_dropped_total", "counter",
         "Connections dropped because the peer stopped answering keepalive pings.",
         dead_peers_dropped);
  metric(out, "webrtc_call_slow_peers_dropped_total", "counter",
         "Connections dropped because their unsent data went over the limit.", slow_peers_dropped);
  metric(out, "webrtc_call_websocket_errors_total", "counter",
         "Connections closed for breaking RFC 6455 (1002) or sending text that is not UTF-8 "
         "(1007).",
         websocket_errors);

  out +=
      "# HELP webrtc_call_messages_refused_total Client messages refused, by reason.\n"
      "# TYPE webrtc_call_messages_refused_total counter\n";
  for (int i = 0; i < protocol::kErrorCodeCount; ++i) {
    out += "webrtc_call_messages_refused_total{reason=\"";
    out += protocol::to_string(static_cast<protocol::ErrorCode>(i));
    out += "\"} ";
    out += std::to_string(refused[static_cast<std::size_t>(i)]);
    out += '\n';
  }
  out +=
      "# HELP webrtc_call_handshakes_refused_total WebSocket handshakes refused, by reason.\n"
      "# TYPE webrtc_call_handshakes_refused_total counter\n";
  out += "webrtc_call_handshakes_refused_total{reason=\"origin\"} " +
         std::to_string(handshakes_refused_origin) + "\n";
  out += "webrtc_call_handshakes_refused_total{reason=\"limit\"} " +
         std::to_string(handshakes_refused_limit) + "\n";
  out += "webrtc_call_handshakes_refused_total{reason=\"bad-handshake\"} " +
         std::to_string(handshakes_refused_bad) + "\n";
  out +=
      "# HELP webrtc_call_http_closed_total HTTP connections (not WebSockets) closed by a bound, "
      "by reason.\n"
      "# TYPE webrtc_call_http_closed_total counter\n";
  for (std::size_t i = 0; i < http_closed.size(); ++i) {
    out += "webrtc_call_http_closed_total{reason=\"";
    out += kHttpClosedReasons[i];
    out += "\"} " + std::to_string(http_closed[i]) + "\n";
  }
  out +=
      "# HELP webrtc_call_http_refused_total HTTP requests refused from their head, by reason.\n"
      "# TYPE webrtc_call_http_refused_total counter\n";
  out +=
      "webrtc_call_http_refused_total{reason=\"body\"} " + std::to_string(http_refused_body) + "\n";
  out += "webrtc_call_http_refused_total{reason=\"expect\"} " +
         std::to_string(http_refused_expect) + "\n";
  metric(out, "webrtc_call_http_ranges_ignored_total", "counter",
         "Range headers ignored (more than one range): the whole file was served.",
         http_ranges_ignored);
  metric(out, "webrtc_call_unregistered_closed_total", "counter",
         "WebSockets closed (1008) for not registering within --registration-timeout.",
         unregistered_closed);
  metric(out, "webrtc_call_accept_pauses_total", "counter",
         "Times accepting paused for 100 ms because accept() failed (no file descriptor left).",
         accept_pauses);
  metric(out, "webrtc_call_untargeted_offers_total", "counter",
         "Offers without a target relayed to every other registered user (--relay-untargeted).",
         untargeted_offers);
  metric(out, "webrtc_call_late_answers_total", "counter",
         "Answers to an untargeted offer that another user answered first: refused with a "
         "hang-up (answered-elsewhere).",
         late_answers);
  out +=
      "# HELP webrtc_call_held_candidates_dropped_total Candidates held for an untargeted offer "
      "and dropped: over --max-held-candidates/--max-held-candidate-bytes (limit), or the offer "
      "ended unanswered (ended).\n"
      "# TYPE webrtc_call_held_candidates_dropped_total counter\n";
  out += "webrtc_call_held_candidates_dropped_total{reason=\"limit\"} " +
         std::to_string(held_dropped_limit) + "\n";
  out += "webrtc_call_held_candidates_dropped_total{reason=\"ended\"} " +
         std::to_string(held_dropped_ended) + "\n";
  return out;
}

}  // namespace signaling
