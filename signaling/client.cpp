#include "client.h"

#include <libsoup/soup.h>

#include <utility>

#include "gref.h"

namespace signaling {

using gwc::GRef;

struct Client::State {
  ClientOptions options;
  ClientCallbacks callbacks;
  GRef<SoupSession> session;
  GRef<SoupWebsocketConnection> ws;
  GRef<GCancellable> cancellable;
  gulong handlers[2] = {};
  bool closed_reported = false;

  // The callback may destroy the Client: it runs from a copy, and nothing touches the
  // State after it.
  void report_closed(unsigned short code, const std::string& reason) {
    if (closed_reported) return;
    closed_reported = true;
    if (auto cb = callbacks.on_closed) cb(code, reason);
  }

  // Disconnects from the connection and drops it once the current emission (if any) is over.
  void drop_connection() {
    if (!ws) return;
    for (gulong& h : handlers) {
      if (h) g_signal_handler_disconnect(ws.get(), std::exchange(h, 0));
    }
    gwc::unref_later(ws.release());
  }
};

namespace {

// Heap box for async callbacks: a weak reference, so a Client destroyed meanwhile is never
// touched.
using WeakState = std::weak_ptr<Client::State>;

}  // namespace

Client::Client(ClientOptions options, ClientCallbacks callbacks)
    : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  state_->callbacks = std::move(callbacks);
}

Client::~Client() {
  state_->callbacks = {};
  if (state_->cancellable) g_cancellable_cancel(state_->cancellable.get());
  if (state_->ws &&
      soup_websocket_connection_get_state(state_->ws.get()) == SOUP_WEBSOCKET_STATE_OPEN) {
    soup_websocket_connection_close(state_->ws.get(), SOUP_WEBSOCKET_CLOSE_GOING_AWAY, nullptr);
  }
  state_->drop_connection();
}

const std::string& Client::uri() const {
  return state_->options.uri;
}

bool Client::is_open() const {
  return state_->ws &&
         soup_websocket_connection_get_state(state_->ws.get()) == SOUP_WEBSOCKET_STATE_OPEN;
}

void Client::connect() {
  State& s = *state_;
  s.drop_connection();
  s.closed_reported = false;
  s.cancellable = GRef<GCancellable>::adopt(g_cancellable_new());
  if (!s.session) {
    s.session = GRef<SoupSession>::adopt(soup_session_new());
    if (!s.options.tls_ca_file.empty()) {
      gwc::GErrorPtr err;
      GRef<GTlsDatabase> db = GRef<GTlsDatabase>::adopt(
          g_tls_file_database_new(s.options.tls_ca_file.c_str(), gwc::out(err)));
      if (!db) {
        s.report_closed(0,
                        "cannot read TLS CA file " + s.options.tls_ca_file + ": " + err->message);
        return;
      }
      soup_session_set_tls_database(s.session.get(), db.get());
    }
  }
  // A URI given as http(s):// is accepted too: the WebSocket is on the same server.
  std::string uri = s.options.uri;
  if (uri.starts_with("ws://")) uri.replace(0, 2, "http");
  if (uri.starts_with("wss://")) uri.replace(0, 3, "https");
  gwc::GErrorPtr err;
  GRef<GUri> parsed = GRef<GUri>::adopt(
      g_uri_parse(uri.c_str(), static_cast<GUriFlags>(SOUP_HTTP_URI_FLAGS), gwc::out(err)));
  if (!parsed || !g_uri_get_host(parsed.get()) ||
      (g_strcmp0(g_uri_get_scheme(parsed.get()), "http") != 0 &&
       g_strcmp0(g_uri_get_scheme(parsed.get()), "https") != 0)) {
    s.report_closed(0,
                    "invalid signaling URI \"" + s.options.uri + "\" (expected ws:// or wss://)");
    return;
  }
  GRef<SoupMessage> msg = GRef<SoupMessage>::adopt(soup_message_new_from_uri("GET", parsed.get()));
  std::vector<char*> protocols;
  for (auto& p : s.options.subprotocols) protocols.push_back(p.data());
  protocols.push_back(nullptr);

  auto* weak = new WeakState(state_);
  soup_session_websocket_connect_async(
      s.session.get(), msg.get(), s.options.origin.empty() ? nullptr : s.options.origin.c_str(),
      protocols.size() > 1 ? protocols.data() : nullptr, G_PRIORITY_DEFAULT, s.cancellable.get(),
      [](GObject* source, GAsyncResult* result, gpointer data) {
        std::unique_ptr<WeakState> owner(static_cast<WeakState*>(data));
        gwc::GErrorPtr error;
        auto ws = GRef<SoupWebsocketConnection>::adopt(
            soup_session_websocket_connect_finish(SOUP_SESSION(source), result, gwc::out(error)));
        std::shared_ptr<State> state = owner->lock();
        if (!state) return;
        if (!ws) {
          if (g_error_matches(error.get(), G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;
          state->report_closed(0, error ? error->message : "connection failed");
          return;
        }
        state->ws = ws;
        soup_websocket_connection_set_max_incoming_payload_size(ws.get(),
                                                                state->options.max_message_bytes);
        soup_websocket_connection_set_keepalive_interval(ws.get(),
                                                         state->options.keepalive_interval_s);
        // The handlers hold the State raw: they are disconnected before it goes away.
        state->handlers[0] = g_signal_connect(
            ws.get(), "message",
            G_CALLBACK(+[](SoupWebsocketConnection*, gint type, GBytes* message, gpointer d) {
              auto* st = static_cast<State*>(d);
              if (type != SOUP_WEBSOCKET_DATA_TEXT || !st->callbacks.on_text) return;
              gsize size = 0;
              const char* text = static_cast<const char*>(g_bytes_get_data(message, &size));
              auto cb = st->callbacks.on_text;  // see report_closed()
              cb(std::string_view(text, size));
            }),
            state.get());
        state->handlers[1] = g_signal_connect(
            ws.get(), "closed", G_CALLBACK(+[](SoupWebsocketConnection* conn, gpointer d) {
              auto* st = static_cast<State*>(d);
              unsigned short code = soup_websocket_connection_get_close_code(conn);
              const char* reason = soup_websocket_connection_get_close_data(conn);
              st->drop_connection();
              st->report_closed(
                  code ? code : static_cast<unsigned short>(SOUP_WEBSOCKET_CLOSE_ABNORMAL),
                  reason ? reason : "");
            }),
            state.get());
        if (state->callbacks.on_open) state->callbacks.on_open();
      },
      weak);
}

bool Client::send(std::string_view text) {
  if (!is_open()) return false;
  std::string copy(text);  // libsoup wants a NUL-terminated string
  soup_websocket_connection_send_text(state_->ws.get(), copy.c_str());
  return true;
}

void Client::close(unsigned short code, std::string_view reason) {
  if (!is_open()) return;
  std::string r(reason);
  soup_websocket_connection_close(state_->ws.get(), code, r.empty() ? nullptr : r.c_str());
}

}  // namespace signaling
