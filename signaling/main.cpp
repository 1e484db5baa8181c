// webrtc-call-server: argument parsing and process lifetime only. Everything else is in
// the signaling library (protocol, router, transport).
#include <glib-unix.h>
#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <string>

#include "log.h"
#include "server.h"

namespace {

std::string default_web_root() {
  // Run from the build tree: serve the source tree's web client; installed: the installed one.
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    gwc::GCharPtr dir(g_path_get_dirname(exe));
    char real_build[PATH_MAX];
    if (realpath(BUILD_DIR, real_build) && g_str_equal(dir.get(), real_build)) {
      return WEB_ROOT_SOURCE;
    }
  }
  return WEB_ROOT_INSTALLED;
}

// Lets 10,000 connections in: raise the soft file descriptor limit to the hard one.
void raise_fd_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  signaling::ServerConfig config;
  int port = static_cast<int>(config.port);
  char* address = nullptr;
  char* tls_cert = nullptr;
  char* tls_key = nullptr;
  char* web_root = nullptr;
  char* token = nullptr;
  char** origins = nullptr;
  int max_message = static_cast<int>(config.router.limits.max_message_bytes);
  int max_depth = static_cast<int>(config.router.limits.max_depth);
  double max_rate = config.router.max_messages_per_second;
  double max_burst = config.router.burst;
  int max_bad = static_cast<int>(config.router.max_bad_messages);
  int max_conns = static_cast<int>(config.max_connections);
  int max_conns_addr = static_cast<int>(config.max_connections_per_address);
  int keepalive = static_cast<int>(config.keepalive_interval_s);
  int keepalive_timeout = static_cast<int>(config.keepalive_timeout_s);
  int userlist_delay = static_cast<int>(config.userlist_delay_ms);
  int max_backlog = static_cast<int>(config.max_send_backlog_bytes);
  int tls_handshake_timeout = static_cast<int>(config.tls_handshake_timeout_s);
  int header_timeout = static_cast<int>(config.header_timeout_s);
  int http_idle_timeout = static_cast<int>(config.http_idle_timeout_s);
  int registration_timeout = static_cast<int>(config.registration_timeout_s);
  int max_tls_handshakes = static_cast<int>(config.max_tls_handshakes_per_address);
  gboolean no_io_uring = FALSE;
  gboolean relay_untargeted = FALSE;
  int max_held = static_cast<int>(config.router.max_held_candidates);
  int max_held_bytes = static_cast<int>(config.router.max_held_candidate_bytes);
  int busy_poll = static_cast<int>(config.busy_poll_us);

  const GOptionEntry entries[] = {
      {"port", 'p', 0, G_OPTION_ARG_INT, &port, "TCP port (default 8443; 0 picks a free one)",
       "PORT"},
      {"address", 'a', 0, G_OPTION_ARG_STRING, &address,
       "IP address to listen on (default: every interface)", "ADDR"},
      {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
       "PEM certificate (chain); with --tls-key serves https and wss on the same port", "FILE"},
      {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key, "PEM private key of --tls-cert", "FILE"},
      {"web-root", 0, 0, G_OPTION_ARG_FILENAME, &web_root,
       "Folder of the web client served on / (default: the built or installed examples/web)",
       "DIR"},
      {"allowed-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &origins,
       "Accept WebSockets from pages of this origin only, e.g. https://example.org "
       "(repeat for more; default: any)",
       "ORIGIN"},
      {"token", 0, 0, G_OPTION_ARG_STRING, &token,
       "Shared secret required to register (?token= on the WebSocket URL or `token` in "
       "`username`); default: none",
       "SECRET"},
      {"max-message-size", 0, 0, G_OPTION_ARG_INT, &max_message,
       "Largest message in bytes, fragmented messages included (default 262144)", "BYTES"},
      {"max-depth", 0, 0, G_OPTION_ARG_INT, &max_depth, "Deepest JSON nesting (default 32)", "N"},
      {"max-rate", 0, 0, G_OPTION_ARG_DOUBLE, &max_rate,
       "Messages per second per connection, sustained (default 50)", "N"},
      {"max-burst", 0, 0, G_OPTION_ARG_DOUBLE, &max_burst,
       "Messages per connection in a burst (default 100)", "N"},
      {"relay-untargeted", 0, 0, G_OPTION_ARG_NONE, &relay_untargeted,
       "For apps that never send `target` (the seed app): an untargeted offer goes to EVERY "
       "other registered user, who all get the caller's SDP; the first answer pairs the call. "
       "Only for a private room or a LAN (default: off, untargeted offers are refused)",
       nullptr},
      {"max-held-candidates", 0, 0, G_OPTION_ARG_INT, &max_held,
       "With --relay-untargeted: candidates of a caller held until its untargeted offer is "
       "answered; more are dropped (default 100)",
       "N"},
      {"max-held-candidate-bytes", 0, 0, G_OPTION_ARG_INT, &max_held_bytes,
       "With --relay-untargeted: bytes of held candidates per caller (default 65536)", "BYTES"},
      {"max-bad-messages", 0, 0, G_OPTION_ARG_INT, &max_bad,
       "Refused messages before a connection is closed with 1008 (default 10)", "N"},
      {"max-connections", 0, 0, G_OPTION_ARG_INT, &max_conns,
       "WebSocket connections in total, and apart from them connections not upgraded yet "
       "(default 10000)",
       "N"},
      {"max-connections-per-address", 0, 0, G_OPTION_ARG_INT, &max_conns_addr,
       "WebSocket connections per client IP address, and apart from them connections not "
       "upgraded yet (TLS handshakes, HTTP requests) (default 100)",
       "N"},
      {"tls-handshake-timeout", 0, 0, G_OPTION_ARG_INT, &tls_handshake_timeout,
       "Seconds from accepting a connection to the end of its TLS handshake (default 10)", "S"},
      {"max-tls-handshakes-per-address", 0, 0, G_OPTION_ARG_INT, &max_tls_handshakes,
       "TLS handshakes of one client IP address run at once (after a complete ClientHello); "
       "the others wait (default 4)",
       "N"},
      {"header-timeout", 0, 0, G_OPTION_ARG_INT, &header_timeout,
       "Seconds from accepting a connection (and its TLS handshake) to a complete HTTP request "
       "head (default 10)",
       "S"},
      {"http-idle-timeout", 0, 0, G_OPTION_ARG_INT, &http_idle_timeout,
       "Seconds from an HTTP request head to the end of its response (a client that does not "
       "read it) (default 30)",
       "S"},
      {"registration-timeout", 0, 0, G_OPTION_ARG_INT, &registration_timeout,
       "Seconds a WebSocket may stay open without registering a name before it is closed with "
       "1008 (default 30)",
       "S"},
      {"keepalive-interval", 0, 0, G_OPTION_ARG_INT, &keepalive,
       "Seconds between pings (default 15)", "S"},
      {"keepalive-timeout", 0, 0, G_OPTION_ARG_INT, &keepalive_timeout,
       "Seconds of silence after which a peer is dropped (default 40)", "S"},
      {"userlist-delay", 0, 0, G_OPTION_ARG_INT, &userlist_delay,
       "Milliseconds over which user list changes are coalesced (default 20)", "MS"},
      {"max-send-backlog", 0, 0, G_OPTION_ARG_INT, &max_backlog,
       "Unsent bytes to one client before it is dropped as too slow (default 33554432)", "BYTES"},
      {"busy-poll", 0, 0, G_OPTION_ARG_INT, &busy_poll,
       "While WebSocket traffic keeps the server over half busy, look for input again until "
       "none came for this many microseconds before sleeping (default 50, 0: never)",
       "US"},
      {"no-io-uring", 0, 0, G_OPTION_ARG_NONE, &no_io_uring,
       "One system call per read and write instead of a batch per main-loop turn through "
       "io_uring (used only where the kernel allows it)",
       nullptr},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext* ctx = g_option_context_new("- WebRTC call signaling server");
  g_option_context_set_summary(
      ctx,
      "Users register a name over a WebSocket, see who is online and exchange offers, "
      "answers and ICE candidates\n(MDN webrtc-from-chat protocol, hardened). Serves the "
      "web client on /, /healthz and /metrics.");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  gwc::GErrorPtr err;
  if (!g_option_context_parse(ctx, &argc, &argv, gwc::out(err))) {
    std::fprintf(stderr, "webrtc-call-server: %s\n(see --help)\n", err->message);
    return 2;
  }
  g_option_context_free(ctx);

  auto bad = [](const char* what) {
    std::fprintf(stderr, "webrtc-call-server: %s\n", what);
    return 2;
  };
  if (port < 0 || port > 65535) return bad("--port must be 0 to 65535");
  if (!tls_cert != !tls_key) return bad("--tls-cert and --tls-key go together");
  if (max_message < 1024) return bad("--max-message-size must be at least 1024");
  if (max_depth < 2)
    return bad("--max-depth must be at least 2 (the protocol needs objects in objects)");
  if (max_rate <= 0 || max_burst < 1) return bad("--max-rate must be > 0 and --max-burst >= 1");
  if (max_conns < 1 || max_conns_addr < 1 || max_tls_handshakes < 1)
    return bad("connection limits must be at least 1");
  if (keepalive < 1 || keepalive_timeout <= keepalive) {
    return bad("--keepalive-interval must be >= 1 and less than --keepalive-timeout");
  }
  if (tls_handshake_timeout < 1 || header_timeout < 1 || http_idle_timeout < 1 ||
      registration_timeout < 1) {
    return bad(
        "--tls-handshake-timeout, --header-timeout, --http-idle-timeout and "
        "--registration-timeout must be at least 1 second");
  }
  if (busy_poll < 0 || busy_poll > 10000) return bad("--busy-poll must be 0 to 10000 microseconds");
  if (max_held < 0 || max_held_bytes < 0) {
    return bad("--max-held-candidates and --max-held-candidate-bytes must be >= 0");
  }
  if (userlist_delay < 0 || max_backlog < 65536 || max_bad < 0) {
    return bad("--userlist-delay >= 0, --max-send-backlog >= 65536, --max-bad-messages >= 0");
  }

  config.port = static_cast<unsigned>(port);
  if (address) config.address = address;
  if (tls_cert) config.tls_cert_file = tls_cert;
  if (tls_key) config.tls_key_file = tls_key;
  config.web_root = web_root ? web_root : default_web_root();
  for (char** o = origins; o && *o; ++o) config.allowed_origins.emplace_back(*o);
  if (token) config.router.token = token;
  config.router.limits.max_message_bytes = static_cast<std::size_t>(max_message);
  config.router.limits.max_depth = static_cast<unsigned>(max_depth);
  config.router.max_messages_per_second = max_rate;
  config.router.burst = max_burst;
  config.router.max_bad_messages = static_cast<unsigned>(max_bad);
  config.router.relay_untargeted = relay_untargeted;
  config.router.max_held_candidates = static_cast<unsigned>(max_held);
  config.router.max_held_candidate_bytes = static_cast<std::size_t>(max_held_bytes);
  config.max_connections = static_cast<unsigned>(max_conns);
  config.max_connections_per_address = static_cast<unsigned>(max_conns_addr);
  config.keepalive_interval_s = static_cast<unsigned>(keepalive);
  config.keepalive_timeout_s = static_cast<unsigned>(keepalive_timeout);
  config.userlist_delay_ms = static_cast<unsigned>(userlist_delay);
  config.max_send_backlog_bytes = static_cast<std::size_t>(max_backlog);
  config.tls_handshake_timeout_s = static_cast<unsigned>(tls_handshake_timeout);
  config.header_timeout_s = static_cast<unsigned>(header_timeout);
  config.http_idle_timeout_s = static_cast<unsigned>(http_idle_timeout);
  config.registration_timeout_s = static_cast<unsigned>(registration_timeout);
  config.max_tls_handshakes_per_address = static_cast<unsigned>(max_tls_handshakes);
  config.io_uring = !no_io_uring;
  config.busy_poll_us = static_cast<unsigned>(busy_poll);
  g_free(address);
  g_free(tls_cert);
  g_free(tls_key);
  g_free(web_root);
  g_free(token);
  g_strfreev(origins);

  signaling::log::install_writer();
  raise_fd_limit();
  if (!g_file_test(config.web_root.c_str(), G_FILE_TEST_IS_DIR)) {
    g_warning("web root %s is not a folder: the web client is not served", config.web_root.c_str());
    config.web_root.clear();
  }

  std::unique_ptr<signaling::Server> server = signaling::Server::start(config, err);
  if (!server) {
    std::fprintf(stderr, "webrtc-call-server: cannot start: %s\n", err->message);
    return 1;
  }

  // Signal handlers first: whoever reads "Listening on" may stop us right away.
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  struct Stop {
    signaling::Server* server;
    GMainLoop* loop;
    bool stopping;
  } stop{server.get(), loop, false};
  auto on_signal = [](gpointer data) -> gboolean {
    auto* s = static_cast<Stop*>(data);
    if (s->stopping) return G_SOURCE_CONTINUE;
    s->stopping = true;
    GMainLoop* l = s->loop;
    s->server->shutdown(1500, [l] { g_main_loop_quit(l); });
    return G_SOURCE_CONTINUE;
  };
  g_unix_signal_add(SIGINT, on_signal, &stop);
  g_unix_signal_add(SIGTERM, on_signal, &stop);
  std::vector<std::string> uris = server->listening_uris();
  std::string url = uris.empty() ? "" : uris.front();
  if (config.address.empty() && !uris.empty()) {
    // Listening everywhere: localhost is the address that works on this machine.
    GUri* u = g_uri_parse(uris.front().c_str(), G_URI_FLAGS_NONE, nullptr);
    if (u) {
      url = std::string(server->tls() ? "https" : "http") +
            "://localhost:" + std::to_string(g_uri_get_port(u)) + "/";
      g_uri_unref(u);
    }
  }
  std::printf("Listening on %s\n", url.c_str());
  std::fflush(stdout);
  for (const std::string& u : uris) signaling::log::server_event("listening", u);
  signaling::log::server_event("io", server->io_note());
  if (!server->tls()) {
    signaling::log::server_event(
        "no-tls",
        "serving plain http/ws: browsers allow camera access and WebSockets to other machines "
        "only over https/wss. Give --tls-cert/--tls-key (a test certificate: see README), or "
        "run behind a TLS-terminating proxy. Plain http works for http://localhost only.");
  }

  if (config.router.relay_untargeted) {
    signaling::log::server_event(
        "relay-untargeted",
        "offers without a target go to every registered user, who all get the caller's SDP: "
        "for a private room or a LAN only");
  }

  g_main_loop_run(loop);
  server.reset();
  g_main_loop_unref(loop);
  signaling::log::server_event("exit", "stopped");
  return 0;
}
