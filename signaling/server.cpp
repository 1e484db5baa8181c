#include "server.h"

#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "log.h"
#include "metrics.h"
#include "static-files.h"
#include "ws-hub.h"

namespace signaling {

namespace {

using gwc::GRef;

// How long a connection we closed may take to finish the close handshake.
constexpr std::int64_t kCloseGraceUs = 3 * G_USEC_PER_SEC;
// Period of the keepalive sweep: pings, dead peers, closes that never finish.
constexpr std::int64_t kSweepUs = G_USEC_PER_SEC;

char* json_protocols[] = {const_cast<char*>("json"), nullptr};

}  // namespace

class Server::Impl final : private WsConnection::Handler {
 public:
  explicit Impl(ServerConfig config)
      : config_(std::move(config)),
        router_(config_.router),
        hub_(*this, config_.io_uring, config_.busy_poll_us) {}
  ~Impl() override;

  bool listen(gwc::GErrorPtr& error);
  std::vector<std::string> uris() const;
  void shutdown(unsigned timeout_ms, std::function<void()> done);
  std::string metrics_text() const {
    return metrics_.render(conns_.size(), router_.registered_count());
  }
  bool tls() const { return !config_.tls_cert_file.empty(); }
  const std::string& io_note() const { return hub_.io_note(); }

 private:
  struct Connection {
    ConnId id = 0;
    WsConnection* ws = nullptr;  // owned by the hub
    std::string peer;
    bool departed = false;  // the router has forgotten it
    std::int64_t last_ping_us = 0;
  };

  // Handshake data carried from the HTTP handler to the upgrade.
  struct Upgrade {
    Impl* server;
    std::string peer;
    bool authorized;
  };

  static void on_request(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query,
                         gpointer self);
  void handle_websocket_handshake(SoupServerMessage* msg, const char* path, GHashTable* query);
  static void on_upgraded(SoupServerMessage* msg, gpointer data);
  void accept_connection(SoupServerMessage* msg, const Upgrade& upgrade);

  static Connection& of(WsConnection& ws) { return *static_cast<Connection*>(ws.user_data); }
  // WsConnection::Handler
  void on_text(WsConnection& ws, std::string_view text) override;
  void on_binary(WsConnection& ws) override;
  void on_violation(WsConnection& ws, unsigned short code, std::string_view why) override;
  void on_closed(WsConnection& ws) override;

  void apply(Effects& fx);
  void send(Connection& c, const std::shared_ptr<const std::string>& text);
  void depart(Connection& c, Effects& fx);
  void forget(ConnId id);

  void schedule_userlist();
  static gboolean on_userlist_timer(gpointer self);
  static gboolean on_keepalive_sweep(gpointer self);
  static gboolean on_shutdown_timeout(gpointer self);
  void maybe_finish_shutdown();

  ServerConfig config_;
  Router router_;
  WsHub hub_;
  Metrics metrics_;
  GRef<SoupServer> soup_;
  std::unordered_map<ConnId, std::unique_ptr<Connection>> conns_;
  std::unordered_map<std::string, unsigned> per_address_;
  ConnId next_id_ = 1;

  GSource* userlist_timer_ = nullptr;
  std::int64_t last_flush_end_us_ = 0;
  std::int64_t last_flush_cost_us_ = 0;
  GSource* keepalive_timer_ = nullptr;

  bool shutting_down_ = false;
  GSource* shutdown_timer_ = nullptr;
  std::function<void()> shutdown_done_;
};

Server::Impl::~Impl() {
  gwc::clear_source(userlist_timer_);
  gwc::clear_source(keepalive_timer_);
  gwc::clear_source(shutdown_timer_);
  conns_.clear();  // the hub closes their sockets
  if (soup_) soup_server_disconnect(soup_.get());
}

bool Server::Impl::listen(gwc::GErrorPtr& error) {
  GRef<GTlsCertificate> cert;
  if (!config_.tls_cert_file.empty()) {
    cert = GRef<GTlsCertificate>::adopt(g_tls_certificate_new_from_files(
        config_.tls_cert_file.c_str(), config_.tls_key_file.c_str(), gwc::out(error)));
    if (!cert) return false;
  }
  soup_ = GRef<SoupServer>::adopt(
      static_cast<SoupServer*>(g_object_new(SOUP_TYPE_SERVER, "server-header", "webrtc-call-server",
                                            "tls-certificate", cert.get(), nullptr)));
  soup_server_add_handler(soup_.get(), nullptr, on_request, this, nullptr);

  // Our own listening socket: GSocket's default backlog of 10 drops SYNs when hundreds of
  // clients connect at once, and the retransmission costs them a whole second.
  std::vector<GRef<GInetAddress>> addresses;
  if (config_.address.empty()) {
    addresses.push_back(GRef<GInetAddress>::adopt(g_inet_address_new_any(G_SOCKET_FAMILY_IPV6)));
    addresses.push_back(GRef<GInetAddress>::adopt(g_inet_address_new_any(G_SOCKET_FAMILY_IPV4)));
  } else {
    GRef<GInetAddress> a =
        GRef<GInetAddress>::adopt(g_inet_address_new_from_string(config_.address.c_str()));
    if (!a) {
      g_set_error(gwc::out(error), G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "--address %s is not an IP address", config_.address.c_str());
      return false;
    }
    addresses.push_back(std::move(a));
  }
  auto options = static_cast<SoupServerListenOptions>(cert ? SOUP_SERVER_LISTEN_HTTPS : 0);
  guint port = config_.port;
  bool listening = false;
  for (auto& addr : addresses) {
    gwc::GErrorPtr err;
    GRef<GSocket> sock = GRef<GSocket>::adopt(g_socket_new(g_inet_address_get_family(addr.get()),
                                                           G_SOCKET_TYPE_STREAM,
                                                           G_SOCKET_PROTOCOL_TCP, gwc::out(err)));
    GRef<GSocketAddress> sa = GRef<GSocketAddress>::adopt(
        g_inet_socket_address_new(addr.get(), static_cast<guint16>(port)));
    if (sock) g_socket_set_listen_backlog(sock.get(), SOMAXCONN);
    bool ok = sock && g_socket_bind(sock.get(), sa.get(), TRUE, gwc::out(err)) &&
              g_socket_listen(sock.get(), gwc::out(err)) &&
              soup_server_listen_socket(soup_.get(), sock.get(), options, gwc::out(err));
    if (!ok) {
      // With both families, a dual-stack IPv6 socket already took the IPv4 port.
      if (listening && g_error_matches(err.get(), G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) continue;
      if (listening) continue;
      if (&addr != &addresses.back()) continue;  // e.g. IPv6 disabled: try IPv4
      error = std::move(err);
      return false;
    }
    listening = true;
    if (port == 0) {
      GRef<GSocketAddress> local =
          GRef<GSocketAddress>::adopt(g_socket_get_local_address(sock.get(), nullptr));
      if (local) port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local.get()));
    }
  }

  keepalive_timer_ = gwc::add_timeout(kSweepUs / 1000, on_keepalive_sweep, this);
  return true;
}

std::vector<std::string> Server::Impl::uris() const {
  std::vector<std::string> out;
  GSList* list = soup_server_get_uris(soup_.get());
  for (GSList* l = list; l; l = l->next) {
    gwc::GCharPtr s(g_uri_to_string(static_cast<GUri*>(l->data)));
    out.emplace_back(s.get());
  }
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  return out;
}

void Server::Impl::on_request(SoupServer*, SoupServerMessage* msg, const char* path,
                              GHashTable* query, gpointer data) {
  Impl* self = static_cast<Impl*>(data);
  SoupMessageHeaders* req = soup_server_message_get_request_headers(msg);
  if (soup_message_headers_header_equals(req, "Upgrade", "websocket") ||
      soup_message_headers_header_contains(req, "Upgrade", "websocket")) {
    self->handle_websocket_handshake(msg, path, query);
    return;
  }
  if (g_str_equal(path, "/healthz")) {
    static const char kOk[] = "ok\n";
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, kOk,
                                     sizeof kOk - 1);
    return;
  }
  if (g_str_equal(path, "/metrics")) {
    std::string text = self->metrics_text();
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
    soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
                                     SOUP_MEMORY_COPY, text.data(), text.size());
    return;
  }
  if (self->config_.web_root.empty()) {
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
    return;
  }
  serve_static_file(msg, self->config_.web_root, path);
}

void Server::Impl::handle_websocket_handshake(SoupServerMessage* msg, const char* path,
                                              GHashTable* query) {
  const char* peer = soup_server_message_get_remote_host(msg);
  std::string peer_s = peer ? peer : "";
  auto refuse = [&](guint status, const char* why, std::uint64_t& counter) {
    counter++;
    log::connection_event("handshake-refused", 0, peer_s, why);
    soup_server_message_set_status(msg, status, nullptr);
    soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, why,
                                     strlen(why));
  };
  if (!g_str_equal(path, "/") && !g_str_equal(path, "/ws")) {
    refuse(SOUP_STATUS_NOT_FOUND, "WebSocket endpoints are / and /ws",
           metrics_.handshakes_refused_bad);
    return;
  }
  if (shutting_down_) {
    refuse(SOUP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down",
           metrics_.handshakes_refused_limit);
    return;
  }
  gwc::GErrorPtr err;
  if (!soup_websocket_server_check_handshake(msg, nullptr, json_protocols, nullptr,
                                             gwc::out(err))) {
    refuse(SOUP_STATUS_BAD_REQUEST, err->message, metrics_.handshakes_refused_bad);
    return;
  }
  SoupMessageHeaders* req = soup_server_message_get_request_headers(msg);
  const char* origin = soup_message_headers_get_one(req, "Origin");
  if (origin && !config_.allowed_origins.empty() &&
      std::none_of(
          config_.allowed_origins.begin(), config_.allowed_origins.end(),
          [&](const std::string& o) { return g_ascii_strcasecmp(o.c_str(), origin) == 0; })) {
    refuse(SOUP_STATUS_FORBIDDEN, "Origin not allowed", metrics_.handshakes_refused_origin);
    return;
  }
  if (conns_.size() >= config_.max_connections) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After", "5");
    refuse(SOUP_STATUS_SERVICE_UNAVAILABLE, "too many connections",
           metrics_.handshakes_refused_limit);
    return;
  }
  if (per_address_[peer_s] >= config_.max_connections_per_address) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After", "5");
    refuse(429 /* Too Many Requests */, "too many connections from this address",
           metrics_.handshakes_refused_limit);
    return;
  }
  bool authorized = config_.router.token.empty();
  if (!authorized && query) {
    const char* token = static_cast<const char*>(g_hash_table_lookup(query, "token"));
    authorized = token && config_.router.token == token;
  }
  if (!soup_websocket_server_process_handshake(msg, nullptr, json_protocols, nullptr, nullptr)) {
    metrics_.handshakes_refused_bad++;
    return;
  }
  auto* upgrade = new Upgrade{this, peer_s, authorized};
  g_signal_connect_data(
      msg, "wrote-informational", G_CALLBACK(on_upgraded), upgrade,
      [](gpointer data, GClosure*) { delete static_cast<Upgrade*>(data); },
      static_cast<GConnectFlags>(0));
}

void Server::Impl::on_upgraded(SoupServerMessage* msg, gpointer data) {
  auto* upgrade = static_cast<Upgrade*>(data);
  upgrade->server->accept_connection(msg, *upgrade);
}

void Server::Impl::accept_connection(SoupServerMessage* msg, const Upgrade& upgrade) {
  GRef<SoupServerMessage> hold = GRef<SoupServerMessage>::ref(msg);
  GRef<GIOStream> raw = GRef<GIOStream>::adopt(soup_server_message_steal_connection(msg));
  if (!raw) return;
  GSocket* socket = static_cast<GSocket*>(g_object_get_data(G_OBJECT(raw.get()), "GSocket"));
  if (!socket && G_IS_SOCKET_CONNECTION(raw.get())) {
    socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(raw.get()));
  }
  WsConnection* ws =
      socket ? hub_.adopt(raw.get(), socket, tls(), config_.router.limits.max_message_bytes)
             : nullptr;
  if (!ws) {
    log::connection_event("error", 0, upgrade.peer, "cannot watch the upgraded connection");
    g_io_stream_close(raw.get(), nullptr, nullptr);
    return;
  }
  auto c = std::make_unique<Connection>();
  c->id = next_id_++;
  c->ws = ws;
  c->peer = upgrade.peer;
  c->last_ping_us = g_get_monotonic_time();
  ws->user_data = c.get();
  ConnId id = c->id;
  per_address_[c->peer]++;
  metrics_.connections_total++;
  const char* protocol = soup_message_headers_get_one(soup_server_message_get_response_headers(msg),
                                                      "Sec-WebSocket-Protocol");
  log::connection_event("connect", id, c->peer,
                        protocol ? std::string("protocol=") + protocol : "");
  conns_.emplace(id, std::move(c));

  Effects fx;
  router_.connect(id, upgrade.authorized, g_get_monotonic_time(), fx);
  apply(fx);
}

void Server::Impl::on_text(WsConnection& ws, std::string_view text) {
  Connection& c = of(ws);
  if (c.departed) return;
  metrics_.messages_received++;
  Effects fx;
  router_.receive(c.id, text, g_get_monotonic_time(), fx);
  apply(fx);
}

void Server::Impl::on_binary(WsConnection& ws) {
  Connection& c = of(ws);
  if (c.departed) return;
  metrics_.messages_received++;
  Effects fx;
  router_.refuse(c.id, protocol::ErrorCode::kMalformed,
                 "binary messages are not part of the protocol; send JSON text", fx);
  apply(fx);
}

void Server::Impl::on_violation(WsConnection& ws, unsigned short code, std::string_view why) {
  Connection& c = of(ws);
  log::connection_event("protocol-violation", c.id, c.peer,
                        "code=" + std::to_string(code) + " reason=" + std::string(why));
  if (c.departed) return;
  // Tell the client why before the close frame goes out.
  Effects fx;
  if (code == ws::kCloseTooBig) {
    router_.refuse(c.id, protocol::ErrorCode::kTooLarge, why, fx);
  } else if (code == ws::kClosePolicy) {
    router_.refuse(c.id, protocol::ErrorCode::kRateLimited, why, fx);
  } else {
    metrics_.websocket_errors++;
  }
  apply(fx);
}

void Server::Impl::on_closed(WsConnection& ws) {
  Connection& c = of(ws);
  std::string detail = "code=" + std::to_string(ws.peer_close_code());
  if (!ws.peer_close_reason().empty()) detail += " reason=" + ws.peer_close_reason();
  if (ws.sent_close_code()) detail += " sent=" + std::to_string(ws.sent_close_code());
  log::connection_event("disconnect", c.id, c.peer, detail);
  ConnId id = c.id;
  if (!c.departed) {
    Effects fx;
    depart(c, fx);
    apply(fx);
  }
  forget(id);
  maybe_finish_shutdown();
}

void Server::Impl::depart(Connection& c, Effects& fx) {
  c.departed = true;
  router_.disconnect(c.id, fx);
}

void Server::Impl::forget(ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Connection> c = std::move(it->second);
  conns_.erase(it);
  if (auto a = per_address_.find(c->peer); a != per_address_.end() && --a->second == 0) {
    per_address_.erase(a);
  }
  c->ws->user_data = nullptr;
}

void Server::Impl::send(Connection& c, const std::shared_ptr<const std::string>& text) {
  if (c.ws->state() != WsConnection::State::kOpen) return;
  std::size_t backlog = c.ws->backlog();
  if (backlog > config_.max_send_backlog_bytes) {
    // The peer does not read what it is sent. Dropping it bounds our memory.
    metrics_.slow_peers_dropped++;
    log::connection_event("slow-peer", c.id, c.peer, std::to_string(backlog) + " bytes unsent");
    Effects fx;
    depart(c, fx);
    c.ws->close(kClosePolicy, "too slow: unsent data over the limit");
    apply(fx);
    return;
  }
  c.ws->send_text(text);
}

void Server::Impl::apply(Effects& fx) {
  // Applying can produce more effects (closing a connection hangs up its calls).
  while (true) {
    metrics_.messages_relayed += fx.relayed;
    for (protocol::ErrorCode code : fx.refused) metrics_.refused[static_cast<std::size_t>(code)]++;
    for (const Effects::Event& e : fx.events) {
      auto it = conns_.find(e.conn);
      log::connection_event(e.what, e.conn, it == conns_.end() ? "" : it->second->peer, e.detail);
    }
    for (const Effects::Send& s : fx.sends) {
      auto it = conns_.find(s.to);
      if (it != conns_.end() && !it->second->departed) send(*it->second, s.text);
    }
    bool userlist = fx.userlist_changed;
    Effects more;
    for (const Effects::Close& cl : fx.closes) {
      auto it = conns_.find(cl.conn);
      if (it == conns_.end()) continue;
      Connection& c = *it->second;
      log::connection_event("close", c.id, c.peer,
                            "code=" + std::to_string(cl.code) + " reason=" + cl.reason);
      if (!c.departed) depart(c, more);
      c.ws->close(cl.code, cl.reason);
    }
    if (userlist || more.userlist_changed) schedule_userlist();
    if (more.sends.empty() && more.closes.empty() && more.events.empty()) break;
    fx = std::move(more);
  }
}

void Server::Impl::schedule_userlist() {
  if (userlist_timer_) return;
  // Coalesce: one broadcast per window, and never more than a third of the time spent
  // broadcasting (a list of 10,000 names sent to 10,000 users is a gigabyte).
  std::int64_t now = g_get_monotonic_time();
  std::int64_t at = std::max(now + config_.userlist_delay_ms * 1000,
                             last_flush_end_us_ + 2 * last_flush_cost_us_);
  userlist_timer_ =
      gwc::add_timeout(static_cast<guint>((at - now + 999) / 1000), on_userlist_timer, this);
}

gboolean Server::Impl::on_userlist_timer(gpointer data) {
  auto* self = static_cast<Impl*>(data);
  gwc::clear_source(self->userlist_timer_);
  std::int64_t start = g_get_monotonic_time();
  auto text = std::make_shared<const std::string>(self->router_.userlist_message());
  for (ConnId id : self->router_.registered()) {
    auto it = self->conns_.find(id);
    if (it != self->conns_.end() && !it->second->departed) self->send(*it->second, text);
  }
  self->metrics_.userlist_broadcasts++;
  self->last_flush_end_us_ = g_get_monotonic_time();
  self->last_flush_cost_us_ = self->last_flush_end_us_ - start;
  return G_SOURCE_REMOVE;
}

gboolean Server::Impl::on_keepalive_sweep(gpointer data) {
  auto* self = static_cast<Impl*>(data);
  std::int64_t now = g_get_monotonic_time();
  std::int64_t timeout =
      static_cast<std::int64_t>(self->config_.keepalive_timeout_s) * G_USEC_PER_SEC;
  std::int64_t interval =
      static_cast<std::int64_t>(self->config_.keepalive_interval_s) * G_USEC_PER_SEC;
  std::vector<ConnId> dead;
  std::vector<WsConnection*> stuck;
  for (auto& [id, c] : self->conns_) {
    WsConnection& ws = *c->ws;
    if (ws.state() == WsConnection::State::kOpen) {
      if (now - ws.last_rx_us() > timeout) {
        dead.push_back(id);
      } else if (interval > 0 && now - c->last_ping_us + kSweepUs / 2 >= interval) {
        // (The sweep runs once a second: within half of that is on time.)
        c->last_ping_us = now;
        ws.send_ping();
      }
    } else if (ws.state() == WsConnection::State::kClosing &&
               now - ws.closing_since_us() > kCloseGraceUs) {
      // We closed it and the peer never finished the close handshake (nor read our close
      // frame): end the TCP connection.
      stuck.push_back(&ws);
    }
  }
  for (WsConnection* ws : stuck) ws->abort();
  for (ConnId id : dead) {
    auto it = self->conns_.find(id);
    if (it == self->conns_.end()) continue;
    Connection& c = *it->second;
    self->metrics_.dead_peers_dropped++;
    log::connection_event(
        "dead-peer", id, c.peer,
        "silent for over " + std::to_string(self->config_.keepalive_timeout_s) + " s");
    Effects fx;
    self->depart(c, fx);
    c.ws->close(kCloseGoingAway, "keepalive timeout");
    self->apply(fx);
  }
  return G_SOURCE_CONTINUE;
}

void Server::Impl::shutdown(unsigned timeout_ms, std::function<void()> done) {
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  log::server_event("shutdown", "closing " + std::to_string(conns_.size()) + " connections");
  std::vector<ConnId> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (ConnId id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Connection& c = *it->second;
    Effects fx;  // not applied: no hang-ups or user lists, everybody is leaving
    depart(c, fx);
    c.ws->close(kCloseGoingAway, "server shutting down");
  }
  shutdown_timer_ = gwc::add_timeout(timeout_ms, on_shutdown_timeout, this);
  maybe_finish_shutdown();
}

gboolean Server::Impl::on_shutdown_timeout(gpointer data) {
  auto* self = static_cast<Impl*>(data);
  gwc::clear_source(self->shutdown_timer_);
  log::server_event("shutdown", std::to_string(self->conns_.size()) +
                                    " connections did not answer the close in time");
  if (auto done = std::exchange(self->shutdown_done_, nullptr)) done();
  return G_SOURCE_REMOVE;
}

void Server::Impl::maybe_finish_shutdown() {
  if (!shutting_down_ || !conns_.empty() || !shutdown_done_) return;
  gwc::clear_source(shutdown_timer_);
  std::exchange(shutdown_done_, nullptr)();
}

// ---- Server ----

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

std::unique_ptr<Server> Server::start(ServerConfig config, gwc::GErrorPtr& error) {
  auto impl = std::make_unique<Impl>(std::move(config));
  if (!impl->listen(error)) return nullptr;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::vector<std::string> Server::listening_uris() const {
  return impl_->uris();
}
bool Server::tls() const {
  return impl_->tls();
}
void Server::shutdown(unsigned timeout_ms, std::function<void()> done) {
  impl_->shutdown(timeout_ms, std::move(done));
}
std::string Server::metrics_text() const {
  return impl_->metrics_text();
}
std::string Server::io_note() const {
  return impl_->io_note();
}

}  // namespace signaling
