#include "server.h"

#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <utility>

#include "http-policy.h"
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

bool is_upgrade(SoupMessageHeaders* req) {
  return soup_message_headers_header_equals(req, "Upgrade", "websocket") ||
         soup_message_headers_header_contains(req, "Upgrade", "websocket");
}

// Connections accepted per wakeup of a listening socket, so that a connect storm cannot keep
// the main loop from everything else.
constexpr int kAcceptBatch = 64;
// How long accepting pauses when accept() fails (no descriptor left).
constexpr guint kAcceptPauseMs = 100;
// A TLS record (the ClientHello) is at most 16 KiB plus its 5-byte header.
constexpr std::size_t kMaxTlsRecord = 5 + 16384 + 2048;
// How often a partly arrived ClientHello is looked at again.
constexpr guint kHelloPollMs = 50;

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
    return metrics_.render(conns_.size(), router_.registered_count(), http_.size());
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
    std::int64_t opened_us = 0;
  };

  // A TCP connection before it is a WebSocket: we accept it, do the TLS handshake, then
  // give it to libsoup for the HTTP exchange (one request per connection). Every stage has a
  // deadline; the sweep shuts the socket down when it passes, which libsoup sees as the end
  // of the connection.
  struct HttpConn;
  struct StreamWatch {  // weak reference on the stream given to libsoup
    Impl* server;
    std::uint64_t id;
  };
  struct HttpConn {
    enum class Stage { kTlsHello, kTlsHandshake, kHead, kResponse };
    std::uint64_t id = 0;
    Stage stage = Stage::kHead;
    std::int64_t since_us = 0;  // start of the stage
    GRef<GSocket> socket;
    GRef<GSocketAddress> remote;  // also what libsoup's messages return: the lookup key
    std::string peer;
    GSource* hello_watch = nullptr;  // kTlsHello
    GRef<GIOStream> tcp;             // until handed to libsoup
    GRef<GCancellable> cancel;       // kTlsHandshake
    GRef<GIOStream> tls;             // kTlsHandshake
    GObject* handed = nullptr;       // the stream libsoup has (weakly referenced)
    StreamWatch* watch = nullptr;
    bool shut = false;         // shut down by a bound
    bool handshaking = false;  // counted in tls_running_
  };

  // Handshake data carried from the HTTP handler to the upgrade.
  struct Upgrade {
    Impl* server;
    std::string peer;
    bool authorized;
  };

  static gboolean on_incoming(GSocket* listener, GIOCondition, gpointer self);
  void watch_listeners();
  void pause_accepting(const std::string& why);
  void accept_one(GSocket* socket);
  enum class Hello { kWait, kReady, kBad, kGone };
  static Hello peek_hello(int fd);
  // Starts the handshake, or ends the connection, once its ClientHello is decided; false
  // while it is incomplete.
  bool check_hello(HttpConn& c);
  static gboolean on_tls_hello(GSocket* socket, GIOCondition, gpointer self);
  void tls_hello_ready(HttpConn& c);
  void start_handshake(HttpConn& c);
  void end_handshake(HttpConn& c);
  static void on_tls_handshake(GObject* source, GAsyncResult* res, gpointer data);
  void hand_to_soup(HttpConn& c, GIOStream* stream);
  static void on_stream_gone(gpointer data, GObject* stream);
  HttpConn* http_of(SoupServerMessage* msg);
  void close_http(HttpConn& c, HttpClosed why);
  void forget_http(std::uint64_t id);
  void sweep_http(std::int64_t now);
  static void on_request_started(SoupServer*, SoupServerMessage* msg, gpointer self);
  static void on_got_headers(SoupServerMessage* msg, gpointer self);
  void refuse_head(SoupServerMessage* msg, const http::Decision& d);

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
  GRef<GTlsCertificate> cert_;
  std::vector<GRef<GSocket>> listeners_;
  std::vector<GSource*> listen_sources_;
  GSource* accept_pause_timer_ = nullptr;
  std::unordered_map<std::uint64_t, std::unique_ptr<HttpConn>> http_;
  std::unordered_map<GSocketAddress*, std::uint64_t> http_by_remote_;
  std::unordered_map<std::string, unsigned> http_per_address_;
  // TLS handshakes in glib-networking's threads, and those waiting for one, per address.
  std::unordered_map<std::string, unsigned> tls_running_;
  std::unordered_map<std::string, std::deque<std::uint64_t>> tls_waiting_;
  std::uint64_t next_http_id_ = 1;
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
  for (GSource*& src : listen_sources_) gwc::clear_source(src);
  gwc::clear_source(accept_pause_timer_);
  // HTTP connections: nothing may call back into us any more.
  for (auto& [id, c] : http_) {
    gwc::clear_source(c->hello_watch);
    if (c->cancel) g_cancellable_cancel(c->cancel.get());
    if (c->handed) g_object_weak_unref(c->handed, on_stream_gone, c->watch);
    delete c->watch;
    if (c->socket) g_socket_shutdown(c->socket.get(), TRUE, TRUE, nullptr);
  }
  http_.clear();
  conns_.clear();  // the hub closes their sockets
  if (soup_) soup_server_disconnect(soup_.get());
}

bool Server::Impl::listen(gwc::GErrorPtr& error) {
  if (!config_.tls_cert_file.empty()) {
    cert_ = GRef<GTlsCertificate>::adopt(g_tls_certificate_new_from_files(
        config_.tls_cert_file.c_str(), config_.tls_key_file.c_str(), gwc::out(error)));
    if (!cert_) return false;
  }
  // libsoup gets each connection from us (soup_server_accept_iostream) after the TLS
  // handshake: it has no listener, so it closes every connection after its response (no
  // keep-alive connection can linger).
  soup_ = GRef<SoupServer>::adopt(static_cast<SoupServer*>(
      g_object_new(SOUP_TYPE_SERVER, "server-header", "webrtc-call-server", nullptr)));
  soup_server_add_handler(soup_.get(), nullptr, on_request, this, nullptr);
  g_signal_connect(soup_.get(), "request-started", G_CALLBACK(on_request_started), this);

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
              g_socket_listen(sock.get(), gwc::out(err));
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
    g_socket_set_blocking(sock.get(), FALSE);
    listeners_.push_back(std::move(sock));
  }
  watch_listeners();

  keepalive_timer_ = gwc::add_timeout(kSweepUs / 1000, on_keepalive_sweep, this);
  return true;
}

std::vector<std::string> Server::Impl::uris() const {
  std::vector<std::string> out;
  for (const GRef<GSocket>& sock : listeners_) {
    GRef<GSocketAddress> local =
        GRef<GSocketAddress>::adopt(g_socket_get_local_address(sock.get(), nullptr));
    if (!local) continue;
    auto* inet = G_INET_SOCKET_ADDRESS(local.get());
    GInetAddress* a = g_inet_socket_address_get_address(inet);
    gwc::GCharPtr host(g_inet_address_to_string(a));
    bool v6 = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6;
    out.push_back(std::string(tls() ? "https" : "http") + "://" + (v6 ? "[" : "") + host.get() +
                  (v6 ? "]" : "") + ":" + std::to_string(g_inet_socket_address_get_port(inet)) +
                  "/");
  }
  return out;
}

// ---- HTTP connections, before any upgrade ----

gboolean Server::Impl::on_incoming(GSocket* listener, GIOCondition, gpointer data) {
  auto* self = static_cast<Impl*>(data);
  for (int i = 0; i < kAcceptBatch; ++i) {
    gwc::GErrorPtr err;
    GSocket* s = g_socket_accept(listener, nullptr, gwc::out(err));
    if (!s) {
      if (!g_error_matches(err.get(), G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the backlog
        // and the socket readable. Stop watching for a moment instead of spinning.
        self->pause_accepting(err ? err->message : "accept failed");
      }
      break;
    }
    self->accept_one(s);
    g_object_unref(s);
  }
  return G_SOURCE_CONTINUE;
}

void Server::Impl::watch_listeners() {
  for (const GRef<GSocket>& sock : listeners_) {
    GSource* src = g_socket_create_source(sock.get(), G_IO_IN, nullptr);
    g_source_set_callback(src, reinterpret_cast<GSourceFunc>(on_incoming), this, nullptr);
    g_source_attach(src, g_main_context_get_thread_default());
    listen_sources_.push_back(src);
  }
}

void Server::Impl::pause_accepting(const std::string& why) {
  if (accept_pause_timer_) return;
  metrics_.accept_pauses++;
  log::server_event("accept-paused", why);
  // (Called from one of these sources' callbacks: destroying it there is allowed.)
  for (GSource*& src : listen_sources_) gwc::clear_source(src);
  listen_sources_.clear();
  accept_pause_timer_ = gwc::add_timeout(
      kAcceptPauseMs,
      [](gpointer data) -> gboolean {
        auto* self = static_cast<Impl*>(data);
        gwc::clear_source(self->accept_pause_timer_);
        self->watch_listeners();
        return G_SOURCE_REMOVE;
      },
      this);
}

void Server::Impl::accept_one(GSocket* socket) {
  GRef<GSocketAddress> remote =
      GRef<GSocketAddress>::adopt(g_socket_get_remote_address(socket, nullptr));
  if (!remote || !G_IS_INET_SOCKET_ADDRESS(remote.get())) {
    g_socket_close(socket, nullptr);
    return;
  }
  gwc::GCharPtr ip(g_inet_address_to_string(
      g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote.get()))));
  std::string peer = ip.get();
  // Before any byte is read: at most this many connections (per address, and in all) are
  // not WebSockets.
  auto pending = http_per_address_.find(peer);
  bool per_address =
      pending != http_per_address_.end() && pending->second >= config_.max_connections_per_address;
  if (per_address || http_.size() >= config_.max_connections) {
    metrics_.http_closed[static_cast<std::size_t>(per_address ? HttpClosed::kPerAddressLimit
                                                              : HttpClosed::kLimit)]++;
    g_socket_close(socket, nullptr);
    return;
  }
  http_per_address_[peer]++;
  g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, TRUE, nullptr);
  auto c = std::make_unique<HttpConn>();
  c->id = next_http_id_++;
  c->socket = GRef<GSocket>::ref(socket);
  c->remote = std::move(remote);
  c->peer = std::move(peer);
  c->since_us = g_get_monotonic_time();
  c->tcp =
      GRef<GIOStream>::adopt(G_IO_STREAM(g_socket_connection_factory_create_connection(socket)));
  HttpConn& ref = *c;
  http_.emplace(c->id, std::move(c));
  if (!cert_) {
    hand_to_soup(ref, ref.tcp.get());
    return;
  }
  // TLS: wait on the main loop, without a thread, until the whole ClientHello record is here;
  // glib-networking runs a handshake in a thread of a small shared pool, which a client that
  // sends nothing (or half a ClientHello) must not be able to hold.
  ref.stage = HttpConn::Stage::kTlsHello;
  ref.hello_watch = g_socket_create_source(socket, G_IO_IN, nullptr);
  auto* w = new StreamWatch{this, ref.id};
  g_source_set_callback(ref.hello_watch, reinterpret_cast<GSourceFunc>(on_tls_hello), w,
                        [](gpointer p) { delete static_cast<StreamWatch*>(p); });
  g_source_attach(ref.hello_watch, g_main_context_get_thread_default());
}

Server::Impl::Hello Server::Impl::peek_hello(int fd) {
  // Looks at the bytes queued on the socket without taking them (glib-networking reads them).
  int queued = 0;
  if (ioctl(fd, FIONREAD, &queued) != 0) return Hello::kGone;
  unsigned char head[5];
  ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Hello::kWait : Hello::kGone;
  }
  if (n == 0) return Hello::kGone;        // closed before its ClientHello
  if (head[0] != 22) return Hello::kBad;  // not a TLS handshake record
  if (n < 5) return Hello::kWait;
  std::size_t record = 5 + ((static_cast<std::size_t>(head[3]) << 8) | head[4]);
  if (record > kMaxTlsRecord) return Hello::kBad;
  return static_cast<std::size_t>(queued) >= record ? Hello::kReady : Hello::kWait;
}

bool Server::Impl::check_hello(HttpConn& c) {
  switch (peek_hello(g_socket_get_fd(c.socket.get()))) {
    case Hello::kWait:
      return false;
    case Hello::kGone:
      gwc::clear_source(c.hello_watch);
      g_socket_close(c.socket.get(), nullptr);
      forget_http(c.id);
      return true;
    case Hello::kBad:
      gwc::clear_source(c.hello_watch);
      close_http(c, HttpClosed::kTlsHandshakeFailed);
      return true;
    case Hello::kReady:
      gwc::clear_source(c.hello_watch);
      tls_hello_ready(c);
      return true;
  }
  return true;
}

gboolean Server::Impl::on_tls_hello(GSocket*, GIOCondition, gpointer data) {
  auto* w = static_cast<StreamWatch*>(data);  // valid until this call returns
  Impl* self = w->server;
  auto it = self->http_.find(w->id);
  if (it == self->http_.end()) return G_SOURCE_REMOVE;
  HttpConn& c = *it->second;
  if (self->check_hello(c)) return G_SOURCE_REMOVE;
  // Part of it came: the socket stays readable while we only look, so look again from a
  // timer instead of from the socket (which would wake the loop without pause).
  gwc::clear_source(c.hello_watch);
  c.hello_watch = g_timeout_source_new(kHelloPollMs);
  g_source_set_callback(
      c.hello_watch,
      [](gpointer p) -> gboolean {
        auto* t = static_cast<StreamWatch*>(p);
        auto found = t->server->http_.find(t->id);
        if (found == t->server->http_.end()) return G_SOURCE_REMOVE;
        return t->server->check_hello(*found->second) ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
      },
      new StreamWatch{self, c.id}, [](gpointer p) { delete static_cast<StreamWatch*>(p); });
  g_source_attach(c.hello_watch, g_main_context_get_thread_default());
  return G_SOURCE_REMOVE;
}

void Server::Impl::tls_hello_ready(HttpConn& c) {
  // glib-networking's handshake threads come from GLib's small shared pool (10, growing
  // slowly): one address may use only a few of them, the others wait for a free one (within
  // the same deadline).
  if (tls_running_[c.peer] >= config_.max_tls_handshakes_per_address) {
    tls_waiting_[c.peer].push_back(c.id);
    return;
  }
  start_handshake(c);
}

void Server::Impl::end_handshake(HttpConn& c) {
  if (!c.handshaking) return;
  c.handshaking = false;
  std::string peer = c.peer;
  auto r = tls_running_.find(peer);
  if (r != tls_running_.end() && --r->second == 0) tls_running_.erase(r);
  auto w = tls_waiting_.find(peer);
  while (w != tls_waiting_.end() && !w->second.empty()) {
    std::uint64_t next = w->second.front();
    w->second.pop_front();
    auto it = http_.find(next);
    if (it == http_.end() || it->second->shut) continue;
    if (w->second.empty()) tls_waiting_.erase(w);
    start_handshake(*it->second);
    return;
  }
  if (w != tls_waiting_.end()) tls_waiting_.erase(w);
}

void Server::Impl::start_handshake(HttpConn& c) {
  tls_running_[c.peer]++;
  c.handshaking = true;
  gwc::GErrorPtr err;
  GRef<GIOStream> tls = GRef<GIOStream>::adopt(
      G_IO_STREAM(g_tls_server_connection_new(c.tcp.get(), cert_.get(), gwc::out(err))));
  if (!tls) {
    log::connection_event("error", 0, c.peer, std::string("TLS: ") + err->message);
    end_handshake(c);
    close_http(c, HttpClosed::kTlsHandshakeFailed);
    return;
  }
  g_object_set(tls.get(), "require-close-notify", FALSE, nullptr);
  c.stage = HttpConn::Stage::kTlsHandshake;
  c.tls = std::move(tls);
  c.cancel = GRef<GCancellable>::adopt(g_cancellable_new());
  // The handshake runs in glib-networking's thread; the deadline cancels it (the sweep).
  g_tls_connection_handshake_async(G_TLS_CONNECTION(c.tls.get()), G_PRIORITY_DEFAULT,
                                   c.cancel.get(), on_tls_handshake, new StreamWatch{this, c.id});
}

void Server::Impl::on_tls_handshake(GObject* source, GAsyncResult* res, gpointer data) {
  std::unique_ptr<StreamWatch> w(static_cast<StreamWatch*>(data));
  gwc::GErrorPtr err;
  gboolean ok = g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, gwc::out(err));
  // (The server outlives every handshake: its destructor runs after the main loop ends.)
  Impl* self = w->server;
  auto it = self->http_.find(w->id);
  if (it == self->http_.end()) return;
  HttpConn& c = *it->second;
  self->end_handshake(c);  // (may start the next one of this address)
  if (!ok) {
    if (!c.shut) {
      log::connection_event("tls-failed", 0, c.peer, err ? err->message : "");
      self->close_http(c, HttpClosed::kTlsHandshakeFailed);
    } else {
      self->forget_http(c.id);
    }
    return;
  }
  c.cancel.reset();
  c.stage = HttpConn::Stage::kHead;
  c.since_us = g_get_monotonic_time();
  GRef<GIOStream> tls = std::move(c.tls);
  self->hand_to_soup(c, tls.get());
}

void Server::Impl::hand_to_soup(HttpConn& c, GIOStream* stream) {
  GRef<GSocketAddress> local =
      GRef<GSocketAddress>::adopt(g_socket_get_local_address(c.socket.get(), nullptr));
  c.stage = HttpConn::Stage::kHead;
  c.watch = new StreamWatch{this, c.id};
  c.handed = G_OBJECT(stream);
  g_object_weak_ref(c.handed, on_stream_gone, c.watch);
  http_by_remote_[c.remote.get()] = c.id;
  GRef<GIOStream> tcp = std::move(c.tcp);  // libsoup holds the streams from now on
  soup_server_accept_iostream(soup_.get(), stream, local.get(), c.remote.get(), nullptr);
}

void Server::Impl::on_stream_gone(gpointer data, GObject*) {
  // libsoup let go of the connection (closed after its response, or by a bound).
  auto* w = static_cast<StreamWatch*>(data);
  Impl* self = w->server;
  std::uint64_t id = w->id;
  auto it = self->http_.find(id);
  if (it != self->http_.end()) {
    it->second->handed = nullptr;
    self->forget_http(id);
  } else {
    delete w;
  }
}

Server::Impl::HttpConn* Server::Impl::http_of(SoupServerMessage* msg) {
  auto it = http_by_remote_.find(soup_server_message_get_remote_address(msg));
  if (it == http_by_remote_.end()) return nullptr;
  auto c = http_.find(it->second);
  return c == http_.end() ? nullptr : c->second.get();
}

void Server::Impl::close_http(HttpConn& c, HttpClosed why) {
  if (c.shut) return;
  c.shut = true;
  metrics_.http_closed[static_cast<std::size_t>(why)]++;
  log::connection_event("http-closed", 0, c.peer,
                        kHttpClosedReasons[static_cast<std::size_t>(why)]);
  gwc::clear_source(c.hello_watch);
  if (c.cancel) g_cancellable_cancel(c.cancel.get());  // the handshake callback forgets it
  // libsoup (or the handshake) sees the end of the stream and lets go: on_stream_gone.
  g_socket_shutdown(c.socket.get(), TRUE, TRUE, nullptr);
  if (!c.handed && !c.cancel) {
    g_socket_close(c.socket.get(), nullptr);
    forget_http(c.id);
  }
}

void Server::Impl::forget_http(std::uint64_t id) {
  auto it = http_.find(id);
  if (it == http_.end()) return;
  std::unique_ptr<HttpConn> c = std::move(it->second);
  http_.erase(it);
  gwc::clear_source(c->hello_watch);
  end_handshake(*c);
  if (c->handed) g_object_weak_unref(c->handed, on_stream_gone, c->watch);
  delete c->watch;
  if (auto r = http_by_remote_.find(c->remote.get());
      r != http_by_remote_.end() && r->second == id) {
    http_by_remote_.erase(r);
  }
  if (auto a = http_per_address_.find(c->peer); a != http_per_address_.end() && --a->second == 0) {
    http_per_address_.erase(a);
  }
}

void Server::Impl::sweep_http(std::int64_t now) {
  auto over = [now](const HttpConn& c, unsigned limit_s) {
    return now - c.since_us > static_cast<std::int64_t>(limit_s) * G_USEC_PER_SEC;
  };
  std::vector<std::pair<std::uint64_t, HttpClosed>> expired;
  for (auto& [id, c] : http_) {
    if (c->shut) continue;
    switch (c->stage) {
      case HttpConn::Stage::kTlsHello:
      case HttpConn::Stage::kTlsHandshake:
        if (over(*c, config_.tls_handshake_timeout_s))
          expired.emplace_back(id, HttpClosed::kTlsHandshakeTimeout);
        break;
      case HttpConn::Stage::kHead:
        if (over(*c, config_.header_timeout_s))
          expired.emplace_back(id, HttpClosed::kHeaderTimeout);
        break;
      case HttpConn::Stage::kResponse:
        if (over(*c, config_.http_idle_timeout_s))
          expired.emplace_back(id, HttpClosed::kIdleTimeout);
        break;
    }
  }
  for (auto& [id, why] : expired) {
    auto it = http_.find(id);
    if (it != http_.end()) close_http(*it->second, why);
  }
}

void Server::Impl::on_request_started(SoupServer*, SoupServerMessage* msg, gpointer self) {
  g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), self);
}

void Server::Impl::on_got_headers(SoupServerMessage* msg, gpointer data) {
  auto* self = static_cast<Impl*>(data);
  if (HttpConn* c = self->http_of(msg)) {
    c->stage = HttpConn::Stage::kResponse;
    c->since_us = g_get_monotonic_time();
  }
  SoupMessageHeaders* req = soup_server_message_get_request_headers(msg);
  auto header = [req](const char* name) -> std::optional<std::string_view> {
    const char* v = soup_message_headers_get_list(req, name);
    if (!v) return std::nullopt;
    return std::string_view(v);
  };
  http::RequestHead head{.content_length = header("Content-Length"),
                         .transfer_encoding = header("Transfer-Encoding").has_value(),
                         .expect = header("Expect"),
                         .range = header("Range")};
  http::Decision d = http::decide(head);
  if (d.ignore_range) {
    self->metrics_.http_ranges_ignored++;
    soup_message_headers_remove(req, "Range");
  }
  if (d.refusal != http::Refusal::kNone) {
    self->refuse_head(msg, d);
    return;
  }
  // One request per connection: say so (libsoup closes it after the response). A WebSocket
  // upgrade says `Connection: Upgrade` instead, or `close` when refused.
  if (!is_upgrade(req)) {
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                                 "close");
  }
}

void Server::Impl::refuse_head(SoupServerMessage* msg, const http::Decision& d) {
  if (d.refusal == http::Refusal::kBody) metrics_.http_refused_body++;
  if (d.refusal == http::Refusal::kExpect) metrics_.http_refused_expect++;
  const char* peer = soup_server_message_get_remote_host(msg);
  log::connection_event(
      "http-refused", 0, peer ? peer : "",
      std::string("status=") + std::to_string(d.status) + " reason=" + http::to_string(d.refusal));
  // Take the connection from libsoup before it reads a byte of the body (or answers
  // `100 Continue`), answer, and close it.
  GIOStream* stream = soup_server_message_steal_connection(msg);
  if (!stream) return;
  std::string text = std::string(d.reason) + "\n";
  const char* phrase = d.status == 413 ? "Content Too Large" : "Expectation Failed";
  auto* answer =
      new std::string("HTTP/1.1 " + std::to_string(d.status) + " " + phrase +
                      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                      std::to_string(text.size()) +
                      "\r\nConnection: close\r\nServer: webrtc-call-server\r\n\r\n" + text);
  g_object_set_data(G_OBJECT(stream), "wcc-answer", answer);
  g_output_stream_write_all_async(
      g_io_stream_get_output_stream(stream), answer->data(), answer->size(), G_PRIORITY_DEFAULT,
      nullptr,
      [](GObject*, GAsyncResult* res, gpointer data) {
        auto* s = static_cast<GIOStream*>(data);
        g_output_stream_write_all_finish(G_OUTPUT_STREAM(g_io_stream_get_output_stream(s)), res,
                                         nullptr, nullptr);
        delete static_cast<std::string*>(g_object_get_data(G_OBJECT(s), "wcc-answer"));
        g_io_stream_close_async(s, G_PRIORITY_DEFAULT, nullptr, nullptr, nullptr);
        g_object_unref(s);
      },
      stream);
}

void Server::Impl::on_request(SoupServer*, SoupServerMessage* msg, const char* path,
                              GHashTable* query, gpointer data) {
  Impl* self = static_cast<Impl*>(data);
  SoupMessageHeaders* req = soup_server_message_get_request_headers(msg);
  if (is_upgrade(req)) {
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
  SoupMessageHeaders* response = soup_server_message_get_response_headers(msg);
  auto refuse = [&](guint status, const char* why, std::uint64_t& counter) {
    counter++;
    log::connection_event("handshake-refused", 0, peer_s, why);
    soup_message_headers_replace(response, "Connection", "close");
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
    soup_message_headers_replace(response, "Connection", "close");
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
  HttpConn* http = http_of(msg);
  GRef<GSocket> socket = http ? http->socket : GRef<GSocket>();
  GRef<GIOStream> raw = GRef<GIOStream>::adopt(soup_server_message_steal_connection(msg));
  // A WebSocket now: the HTTP bounds no longer apply, the WebSocket ones do.
  if (http) forget_http(http->id);
  if (!raw) return;
  WsConnection* ws =
      socket ? hub_.adopt(raw.get(), socket.get(), tls(), config_.router.limits.max_message_bytes)
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
  c->opened_us = c->last_ping_us;
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
    metrics_.untargeted_offers += fx.untargeted_offers;
    metrics_.late_answers += fx.late_answers;
    metrics_.held_dropped_limit += fx.held_dropped_limit;
    metrics_.held_dropped_ended += fx.held_dropped_ended;
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
  std::int64_t registration =
      static_cast<std::int64_t>(self->config_.registration_timeout_s) * G_USEC_PER_SEC;
  self->sweep_http(now);
  std::vector<ConnId> dead, unregistered;
  std::vector<WsConnection*> stuck;
  for (auto& [id, c] : self->conns_) {
    WsConnection& ws = *c->ws;
    if (ws.state() == WsConnection::State::kOpen) {
      if (!c->departed && now - c->opened_us > registration && self->router_.name_of(id).empty()) {
        unregistered.push_back(id);
      } else if (now - ws.last_rx_us() > timeout) {
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
  for (ConnId id : unregistered) {
    auto it = self->conns_.find(id);
    if (it == self->conns_.end()) continue;
    Connection& c = *it->second;
    self->metrics_.unregistered_closed++;
    log::connection_event(
        "unregistered", id, c.peer,
        "no name within " + std::to_string(self->config_.registration_timeout_s) + " s");
    Effects fx;
    self->depart(c, fx);
    c.ws->close(kClosePolicy, "registration timeout");
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
