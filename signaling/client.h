// A WebSocket client for the signaling protocol (libsoup-3), used by the webrtccall element
// and by tests. It runs on the thread-default GMainContext of the thread that creates it
// and must only be used from that thread. Callbacks run on that context; none is called
// after the Client is destroyed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace signaling {

struct ClientOptions {
  std::string uri;          // ws:// or wss://
  std::string tls_ca_file;  // PEM file of CAs to trust for wss:// (instead of the system's)
  std::vector<std::string> subprotocols{"json"};
  std::string origin;                       // sent as Origin when not empty
  unsigned keepalive_interval_s = 15;       // ping period; 0: no pings
  std::size_t max_message_bytes = 8 << 20;  // server messages (user lists grow with users)
};

struct ClientCallbacks {
  std::function<void()> on_open;
  std::function<void(std::string_view text)> on_text;
  // The connection ended (after on_open) or could not be made (then code is 0).
  std::function<void(unsigned short code, const std::string& reason)> on_closed;
};

class Client {
 public:
  Client(ClientOptions options, ClientCallbacks callbacks);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting; on_open or on_closed follows.
  void connect();
  // Sends one text message. Returns false when the connection is not open.
  bool send(std::string_view text);
  // Starts a clean close (close frame); on_closed follows.
  void close(unsigned short code = 1000, std::string_view reason = {});
  bool is_open() const;
  const std::string& uri() const;

  struct State;  // shared with pending async callbacks, which hold it weakly

 private:
  std::shared_ptr<State> state_;
};

}  // namespace signaling
