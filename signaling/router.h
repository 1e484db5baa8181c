// The router: who may send what to whom.
//
// A pure state machine: it is fed connection events and message texts and answers with
// the effects the transport must carry out (texts to send, connections to close). It does
// no I/O and reads no clock: callers pass the time. Registration, renames, call pairing,
// name stamping, rate limits and the user list all live here, so every rule of
// PROTOCOL.md can be unit-tested by feeding messages.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol.h"
#include "websocket.h"

namespace signaling {

using ConnId = std::uint64_t;

// WebSocket close codes the router asks for: 1008 (garbage, flooding), 1009 (message over
// the size limit), 1001.
using ws::kCloseGoingAway;
using ws::kClosePolicy;
using ws::kCloseTooBig;

struct RouterConfig {
  protocol::Limits limits;
  // Token bucket per connection: sustained rate and burst, in messages.
  double max_messages_per_second = 50.0;
  double burst = 100.0;
  // Refused messages (malformed, wrong types, bad names, ...) a connection may send before
  // it is closed with 1008.
  unsigned max_bad_messages = 10;
  // Rate-limited messages in a row before the connection is closed with 1008.
  unsigned max_rate_strikes = 200;
  // When non-empty, `username` must carry this `token` (unless the transport already
  // checked it at the handshake).
  std::string token;
  // Opt-in (--relay-untargeted), for apps that never send `target` (the seed app and its
  // copies): an untargeted `video-offer` from a user in no call goes to every other
  // registered user, so every one of them gets the caller's SDP (a private room or a LAN).
  // The first answer pairs the call; see PROTOCOL.md "Apps that omit target". Off: such an
  // offer is refused `no-target` and nothing is ever broadcast.
  bool relay_untargeted = false;
  // The caller's candidates sent before anyone answered its untargeted offer are held until
  // the answer, at most this many and this many bytes per caller; the rest are dropped.
  unsigned max_held_candidates = 100;
  std::size_t max_held_candidate_bytes = 64 * 1024;
};

struct Effects {
  struct Send {
    ConnId to;
    std::shared_ptr<const std::string> text;
  };
  struct Close {
    ConnId conn;
    unsigned short code;
    std::string reason;
  };
  // A connection event worth one log line (registered, renamed, refused, closed...).
  struct Event {
    ConnId conn;
    std::string what;
    std::string detail;
  };
  std::vector<Send> sends;
  std::vector<Close> closes;
  std::vector<Event> events;
  std::vector<protocol::ErrorCode> refused;  // one entry per refused message
  std::uint64_t relayed = 0;                 // messages delivered from one client to another
  bool userlist_changed = false;
  // The untargeted mode (RouterConfig::relay_untargeted):
  std::uint64_t untargeted_offers = 0;   // untargeted offers relayed to every other user
  std::uint64_t late_answers = 0;        // answers to such an offer that another user answered
  std::uint64_t held_dropped_limit = 0;  // held candidates dropped over the per-caller limit
  std::uint64_t held_dropped_ended = 0;  // held candidates of an offer that ended unanswered

  void clear() { *this = Effects(); }
};

class Router {
 public:
  explicit Router(RouterConfig config);

  // A WebSocket connection opened. Sends its `id`. `authorized`: the transport already
  // checked the token (or none is required).
  void connect(ConnId conn, bool authorized, std::int64_t now_us, Effects& fx);
  // A text message arrived.
  void receive(ConnId conn, std::string_view text, std::int64_t now_us, Effects& fx);
  // The transport refused a message itself (e.g. a fragmented message over the size
  // limit): counts it and answers with an error.
  void refuse(ConnId conn, protocol::ErrorCode code, std::string_view why, Effects& fx);
  // The connection is gone (closed, dead, or closed by us). Call partners get a hang-up.
  void disconnect(ConnId conn, Effects& fx);

  // The current user list as a `userlist` message, sorted by name.
  std::string userlist_message() const;
  // Registered connections: those that receive the user list.
  std::vector<ConnId> registered() const;

  std::size_t connection_count() const { return conns_.size(); }
  std::size_t registered_count() const { return by_name_.size(); }
  // The registered name of a connection, empty when unregistered or unknown.
  std::string name_of(ConnId conn) const;
  // Call partners of a connection (by connection id).
  std::set<ConnId> partners_of(ConnId conn) const;
  // The untargeted mode: the users an untargeted offer of `caller` went to and who may still
  // answer it (empty when it has none), and how many of its candidates are held.
  std::set<ConnId> offered_to(ConnId caller) const;
  std::size_t held_candidates(ConnId caller) const;
  const RouterConfig& config() const { return config_; }

 private:
  struct Conn {
    std::string name;  // empty until registered
    bool authorized = false;
    double tokens = 0;
    std::int64_t last_refill_us = 0;
    unsigned bad_messages = 0;
    unsigned rate_strikes = 0;
    std::set<ConnId> partners;
  };

  bool take_token(Conn& c, std::int64_t now_us);
  void send(Effects& fx, ConnId to, std::string text);
  void refuse_message(ConnId id, Conn& c, protocol::ErrorCode code, std::string_view why,
                      Effects& fx);
  void handle_username(ConnId id, Conn& c, protocol::Username& msg, Effects& fx);
  void handle_chat(ConnId id, Conn& c, protocol::Chat& msg, Effects& fx);
  void handle_signal(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx);
  // Stamps the sender's name and sends `msg` to `to`; an offer pairs them, a hang-up unpairs.
  void deliver(ConnId id, Conn& c, protocol::Signal& msg, ConnId to, Effects& fx);
  std::string unique_name(const std::string& wanted) const;
  void pair(ConnId a, ConnId b);
  void unpair(ConnId a, ConnId b);

  // The untargeted mode (relay_untargeted). An untargeted offer of a caller in no call, sent
  // to every other registered user, until its call ends.
  struct Broadcast {
    std::set<ConnId> offered_to;  // who got it and may still answer (not declined, not gone)
    ConnId answered_by = 0;       // 0 until the first answer pairs the call
    // The caller's candidates as sent; stamped with its name when delivered (it may rename).
    std::vector<gwc::GRef<JsonObject>> held;
    std::size_t held_bytes = 0;
    bool drop_logged = false;
  };
  // An untargeted call signal of a user in no call. Returns false when the mode has no rule
  // for it (the caller refuses it as without the mode).
  bool relay_untargeted(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx);
  void broadcast_offer(ConnId id, Conn& c, protocol::Signal& msg, Effects& fx);
  // An answer (targeted or not) from `id` to an untargeted offer of `caller`. Returns false
  // when it must not be delivered (someone else answered first: `id` got a hang-up).
  bool answer_broadcast(ConnId id, ConnId caller, Broadcast& b, Effects& fx);
  // A hang-up from a user the offer went to who is not its partner: a decline. Returns
  // whether to deliver it: only when nobody else may still answer.
  bool decline_broadcast(ConnId id, ConnId caller, Effects& fx);
  // The callers whose unanswered or answered offer went to `id` (and `id` may still answer).
  std::vector<ConnId> broadcasts_to(ConnId id) const;
  void end_broadcast(ConnId caller, Effects& fx);

  RouterConfig config_;
  std::unordered_map<ConnId, Conn> conns_;
  std::unordered_map<std::string, ConnId> by_name_;
  std::unordered_map<ConnId, Broadcast> broadcasts_;  // by caller
};

}  // namespace signaling
